//! `wasmbot plugins list|check`: what is loaded, and whether a plugin would load.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use crate::app::config::Config;
use crate::app::root::{open_store, plugin_engine};
use crate::capabilities;
use crate::infra::cache::CacheStore;
use crate::infra::store::Store;
use crate::infra::vectors::ServerVectors;
use crate::runtime::{LoadedPlugin, PluginEngine, PluginLimits, PluginSet};

#[derive(Subcommand)]
pub enum PluginsCommand {
    /// List the plugins in PLUGINS_DIR: version, commands, grants, limits, hash, load status.
    List,
    /// Check a plugin (NAME.wasm with NAME.toml beside it, or a folder of them)
    /// against the world and its grants, without starting a bot.
    Check { path: PathBuf },
}

pub async fn run(config: &Config, command: PluginsCommand) -> anyhow::Result<ExitCode> {
    let engine = plugin_engine(
        config,
        match command {
            PluginsCommand::List => Some(config.plugin_cache_dir.clone()),
            PluginsCommand::Check { .. } => None,
        },
    )?;
    let limits = config.plugin_limits;
    let (set, single) = match command {
        PluginsCommand::List => {
            let dir = config.plugins_dir.clone();
            let set =
                tokio::task::spawn_blocking(move || PluginSet::load_dir(&engine, &dir, limits))
                    .await?;
            (set, false)
        }
        PluginsCommand::Check { path } => {
            let single = !path.is_dir();
            let set = tokio::task::spawn_blocking(move || check(&engine, &path, limits)).await?;
            (set, single)
        }
    };
    let sources = match single {
        false => UsageSources::open(config).await,
        true => UsageSources::default(),
    };
    let warm = match single {
        false => RunningBot::ask(config.http_addr).await,
        true => RunningBot::default(),
    };
    for plugin in set.plugins() {
        println!(
            "{}{}{}",
            describe(plugin),
            warm.describe(plugin.name()),
            sources.describe(plugin).await
        );
    }
    if let Some(store) = sources.store {
        store.close().await;
    }
    for error in set.errors() {
        println!("{}\tREFUSED\t{}", error.plugin, error.reason);
    }
    if set.plugins().is_empty() && set.errors().is_empty() && !single {
        println!("no plugins found");
    }
    Ok(if set.errors().is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn check(engine: &PluginEngine, path: &Path, limits: PluginLimits) -> PluginSet {
    if path.is_dir() {
        return PluginSet::load_dir(engine, path, limits);
    }
    let wasm = path.with_extension("wasm");
    let mut set = PluginSet::default();
    match LoadedPlugin::load(engine, &wasm, limits) {
        Ok(plugin) => set.add(Arc::new(plugin)),
        Err(error) => set.push_error(error),
    }
    set
}

/// The pre-warmed instances of the bot running on `HTTP_ADDR` (its `/plugins`).
#[derive(Default)]
struct RunningBot {
    /// Plugin name → (ready instances, calls that found one); None: no bot answered.
    warm: Option<std::collections::HashMap<String, (u64, u64)>>,
}

impl RunningBot {
    async fn ask(addr: Option<std::net::SocketAddr>) -> Self {
        let Some(addr) = addr else {
            return Self::default();
        };
        let client = reqwest::Client::new();
        let answer = client
            .get(format!("http://{addr}/plugins"))
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await;
        let Ok(response) = answer.and_then(reqwest::Response::error_for_status) else {
            return Self::default();
        };
        let Ok(text) = response.text().await else {
            return Self::default();
        };
        let warm = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.split('\t');
                let name = fields.next()?.to_string();
                let ready = fields.next()?.parse().ok()?;
                let hits = fields.next()?.parse().ok()?;
                Some((name, (ready, hits)))
            })
            .collect();
        Self { warm: Some(warm) }
    }

    fn describe(&self, plugin: &str) -> String {
        match &self.warm {
            Some(warm) => {
                let (ready, hits) = warm.get(plugin).copied().unwrap_or_default();
                format!("\tready: {ready} (calls that found one: {hits})")
            }
            None => "\tready: - (no bot answering on HTTP_ADDR)".to_string(),
        }
    }
}

/// False for an embedded database whose file is not there yet.
fn database_exists(url: &str) -> bool {
    match url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        Some(rest) => Path::new(rest.split('?').next().unwrap_or(rest)).is_file(),
        None => true,
    }
}

/// Where `plugins list` reads usage against quota: the database when there
/// is one (listing never creates the embedded file or migrates), Redis and a
/// Qdrant server when configured. The in-process cache and the embedded
/// vector engine live in the bot's process: not read from here.
#[derive(Default)]
struct UsageSources {
    store: Option<Store>,
    cache: Option<CacheStore>,
    vectors: Option<ServerVectors>,
    /// `FILES_DIR`: each plugin's `files` folder is measured there.
    files_dir: Option<std::path::PathBuf>,
}

impl UsageSources {
    async fn open(config: &Config) -> Self {
        let store = match database_exists(config.database_url.expose()) {
            true => open_store(config, false).await.ok(),
            false => None,
        };
        let cache = config
            .cache
            .redis_url
            .as_ref()
            .and_then(|_| CacheStore::from_settings(&config.cache).ok());
        let vectors = config
            .vectors
            .qdrant
            .as_ref()
            .and_then(|settings| ServerVectors::new(settings).ok());
        Self {
            store,
            cache,
            vectors,
            files_dir: Some(config.files_dir.clone()),
        }
    }

    /// `\tstate: 12 of 10000 keys, 3 of 10240 KiB` and the like, for what
    /// the plugin is granted and this process can read.
    async fn describe(&self, plugin: &LoadedPlugin) -> String {
        let quota = |key: &str| {
            plugin
                .quotas()
                .iter()
                .find(|(budget, _)| budget.key == key)
                .map(|&(_, limit)| limit)
        };
        let name = plugin.name();
        let mut text = String::new();
        if let (Some(store), Some(keys), Some(kib)) =
            (&self.store, quota("state_keys"), quota("state_kb"))
        {
            text.push_str(&match store.state_usage(name).await {
                Ok(usage) => format!(
                    "\tstate: {} of {keys} keys, {} of {kib} KiB",
                    usage.keys,
                    usage.bytes.div_ceil(1024)
                ),
                Err(error) => format!("\tstate: usage unknown ({error})"),
            });
        }
        if let (Some(store), Some(jobs)) = (&self.store, quota("schedule_jobs")) {
            text.push_str(&match store.jobs_usage(name).await {
                Ok((kept, 0)) => format!("\tjobs: {kept} of {jobs}"),
                Ok((kept, dead)) => format!("\tjobs: {kept} of {jobs} ({dead} set aside)"),
                Err(error) => format!("\tjobs: usage unknown ({error})"),
            });
        }
        if let (Some(cache), Some(keys), Some(kib)) =
            (&self.cache, quota("cache_keys"), quota("cache_kb"))
        {
            text.push_str(&match cache.shared_usage(name).await {
                Ok(Some((used, bytes))) => format!(
                    "\tcache: {used} of {keys} keys, {} of {kib} KiB",
                    bytes.div_ceil(1024)
                ),
                Ok(None) => String::new(),
                Err(error) => format!("\tcache: usage unknown ({error})"),
            });
        }
        if let (Some(dir), Some(kib)) = (&self.files_dir, quota("files_kb")) {
            let folder = dir.join(name);
            text.push_str(&match capabilities::files_usage(&folder) {
                Ok(bytes) => format!("\tfiles: {} of {kib} KiB", bytes.div_ceil(1024)),
                Err(error) => format!("\tfiles: usage unknown ({error})"),
            });
        }
        if let (Some(vectors), Some(points)) = (&self.vectors, quota("vector_points")) {
            text.push_str(&match vectors.points_of(name).await {
                Ok(held) => format!("\tvectors: {held} of {points} points"),
                Err(error) => format!("\tvectors: usage unknown ({error})"),
            });
        }
        text
    }
}

fn describe(plugin: &LoadedPlugin) -> String {
    let manifest = plugin.manifest();
    let mut commands: Vec<String> = manifest
        .commands
        .iter()
        .map(|c| format!("/{}", c.name))
        .collect();
    if manifest.free_text {
        commands.push("(free text)".into());
    }
    let grants: Vec<&str> = manifest.capabilities.iter().map(|c| c.name).collect();
    // Where it may go and what it is set to, as the operator's variables left it.
    let mut reach = String::new();
    if !manifest.http.is_empty() {
        reach.push_str(&format!("\thttp: {}", manifest.http.join(", ")));
    }
    let settings: Vec<String> = plugin
        .settings()
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    if !settings.is_empty() {
        reach.push_str(&format!("\tsettings: {}", settings.join(", ")));
    }
    if !plugin.tools().is_empty() {
        let tools: Vec<String> = plugin
            .tools()
            .iter()
            .map(|tool| {
                let confirm = if tool.spec.confirm { " (confirm)" } else { "" };
                format!("{}{confirm}", tool.name())
            })
            .collect();
        reach.push_str(&format!("\ttools: {}", tools.join(", ")));
    }
    format!(
        "{}\t{}\tloaded\t{}\tlanguage: {}\tsize: {:.1} MB\tloaded in: {} ms\tworld: {}\tgrants: {}\tsecrets: {}\tlimits: {} ms, {} MiB\tsha256:{}{}",
        plugin.name(),
        manifest.version,
        commands.join(" "),
        plugin.language().label(),
        plugin.size_bytes() as f64 / 1e6,
        plugin.load_time().as_millis(),
        plugin.world_label(),
        if grants.is_empty() {
            "none".to_string()
        } else {
            grants.join(", ")
        },
        if manifest.secrets.is_empty() {
            "none".to_string()
        } else {
            manifest.secrets.join(", ")
        },
        manifest.limits.timeout.as_millis(),
        manifest.limits.memory_bytes >> 20,
        &plugin.content_hash()[..16],
        reach,
    )
}
