//! `wasmbot plugins list|check`: what is loaded, and whether a plugin would load.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use crate::app::config::Config;
use crate::app::root::{open_store, plugin_engine};
use crate::infra::store::Store;
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
    // Usage against quota, when there is a database to read: listing never
    // creates the embedded file or migrates.
    let store = match !single && database_exists(config.database_url.expose()) {
        true => open_store(config, false).await.ok(),
        false => None,
    };
    for plugin in set.plugins() {
        let mut line = describe(plugin);
        if let Some(store) = &store {
            line.push_str(&quota_usage(store, plugin).await);
        }
        println!("{line}");
    }
    if let Some(store) = store {
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

/// `\tstate: 12 of 10000 keys, 3 of 10240 KiB` for a plugin granted state.
async fn quota_usage(store: &Store, plugin: &LoadedPlugin) -> String {
    let quota = |key: &str| {
        plugin
            .quotas()
            .iter()
            .find(|(budget, _)| budget.key == key)
            .map(|&(_, limit)| limit)
    };
    let (Some(keys), Some(kib)) = (quota("state_keys"), quota("state_kb")) else {
        return String::new();
    };
    match store.state_usage(plugin.name()).await {
        Ok(usage) => format!(
            "\tstate: {} of {keys} keys, {} of {kib} KiB",
            usage.keys,
            usage.bytes.div_ceil(1024)
        ),
        Err(error) => format!("\tstate: usage unknown ({error})"),
    }
}

fn describe(plugin: &LoadedPlugin) -> String {
    let manifest = plugin.manifest();
    let commands: Vec<String> = manifest
        .commands
        .iter()
        .map(|c| format!("/{}", c.name))
        .collect();
    let grants: Vec<&str> = manifest.capabilities.iter().map(|c| c.name).collect();
    format!(
        "{}\t{}\tloaded\t{}\tgrants: {}\tsecrets: {}\tlimits: {} ms, {} MiB\tsha256:{}",
        plugin.name(),
        manifest.version,
        commands.join(" "),
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
    )
}
