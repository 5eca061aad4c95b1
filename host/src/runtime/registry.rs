//! The set of loaded plugins, swapped atomically so a message always sees one
//! consistent snapshot, and reloaded plugin by plugin when files change.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::engine::PluginEngine;
use super::manifest::{CommandSpec, PluginLimits};
use super::plugin::{LoadError, LoadedPlugin};
use crate::infra::health::PluginReport;

/// A consistent set of plugins and the command table built from them.
#[derive(Default, Clone)]
pub struct PluginSet {
    plugins: Vec<Arc<LoadedPlugin>>,
    commands: HashMap<String, Arc<LoadedPlugin>>,
    /// Tool name -> the plugin that offers it (names are unique across plugins).
    tools: HashMap<String, Arc<LoadedPlugin>>,
    errors: Vec<LoadError>,
}

impl PluginSet {
    /// Loads every `NAME.wasm` + `NAME.toml` pair in `dir`, in name order.
    /// A plugin that fails to load is left out and its error kept, so one bad
    /// file never takes the others down.
    pub fn load_dir(engine: &PluginEngine, dir: &Path, defaults: PluginLimits) -> Self {
        let mut set = PluginSet::default();
        let (components, errors) = scan_dir(dir);
        set.errors = errors;
        let names: Vec<String> = components
            .iter()
            .filter_map(|wasm| Some(wasm.file_stem()?.to_str()?.to_string()))
            .collect();
        for wasm in &components {
            let own = wasm.file_stem().and_then(|stem| stem.to_str());
            let siblings: Vec<String> = names
                .iter()
                .filter(|name| Some(name.as_str()) != own)
                .cloned()
                .collect();
            match LoadedPlugin::load_among(engine, wasm, defaults, &siblings) {
                Ok(plugin) => set.add(Arc::new(plugin)),
                Err(error) => set.errors.push(error),
            }
        }
        for error in &set.errors {
            tracing::error!(plugin = %error.plugin, reason = %error.reason, "plugin not loaded");
        }
        set
    }

    /// Adds a plugin unless one of its commands is taken, which is an error
    /// naming both plugins.
    pub fn add(&mut self, plugin: Arc<LoadedPlugin>) {
        if let Err(error) = self.try_add(plugin) {
            self.errors.push(error);
        }
    }

    pub fn push_error(&mut self, error: LoadError) {
        self.errors.push(error);
    }

    fn try_add(&mut self, plugin: Arc<LoadedPlugin>) -> Result<(), LoadError> {
        let taken = plugin.manifest().commands.iter().find_map(|c| {
            self.commands
                .get(&c.name)
                .map(|owner| (c.name.clone(), owner.name().to_string()))
        });
        if let Some((command, owner)) = taken {
            return Err(LoadError {
                plugin: plugin.name().to_string(),
                reason: format!("command `/{command}` is already provided by plugin `{owner}`"),
            });
        }
        let clash = plugin.tools().iter().find_map(|tool| {
            self.tools
                .get(tool.name())
                .map(|owner| (tool.name().to_string(), owner.name().to_string()))
        });
        if let Some((tool, owner)) = clash {
            return Err(LoadError {
                plugin: plugin.name().to_string(),
                reason: format!(
                    "tool `{tool}` is already offered by plugin `{owner}`: tool names are unique across plugins, so `{}` is not loaded (rename one of the two tools)",
                    plugin.name()
                ),
            });
        }
        for command in &plugin.manifest().commands {
            self.commands.insert(command.name.clone(), plugin.clone());
        }
        for tool in plugin.tools() {
            self.tools.insert(tool.name().to_string(), plugin.clone());
        }
        self.plugins.push(plugin);
        self.plugins.sort_by(|a, b| a.name().cmp(b.name()));
        Ok(())
    }

    /// This set without the plugin `name` and without its errors.
    fn without(&self, name: &str) -> Self {
        let mut set = PluginSet {
            errors: self
                .errors
                .iter()
                .filter(|e| e.plugin != name)
                .cloned()
                .collect(),
            ..PluginSet::default()
        };
        for plugin in self.plugins.iter().filter(|p| p.name() != name) {
            set.add(plugin.clone());
        }
        set
    }

    pub fn plugin_for(&self, command: &str) -> Option<&Arc<LoadedPlugin>> {
        self.commands.get(command)
    }

    /// The plugin offering the tool `name`.
    pub fn tool_owner(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.tools.get(name)
    }

    pub fn plugin(&self, name: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.iter().find(|p| p.name() == name)
    }

    pub fn plugins(&self) -> &[Arc<LoadedPlugin>] {
        &self.plugins
    }

    pub fn errors(&self) -> &[LoadError] {
        &self.errors
    }

    /// Every command with its description, sorted by name.
    pub fn commands(&self) -> Vec<&CommandSpec> {
        let mut commands: Vec<&CommandSpec> = self
            .plugins
            .iter()
            .flat_map(|p| p.manifest().commands.iter())
            .collect();
        commands.sort_by(|a, b| a.name.cmp(&b.name));
        commands
    }
}

/// Pairs components with manifests; a file without its partner is an error.
fn scan_dir(dir: &Path) -> (Vec<PathBuf>, Vec<LoadError>) {
    let mut components = Vec::new();
    let mut errors = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            errors.push(LoadError {
                plugin: "*".into(),
                reason: format!("cannot read plugins directory {}: {error}", dir.display()),
            });
            return (components, errors);
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let Some(name) = plugin_name(&path) else {
            continue;
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") if path.with_extension("toml").is_file() => components.push(path),
            Some("wasm") => errors.push(LoadError {
                plugin: name.into(),
                reason: format!("{} has no manifest {name}.toml beside it", path.display()),
            }),
            Some("toml") if !path.with_extension("wasm").is_file() => errors.push(LoadError {
                plugin: name.into(),
                reason: format!("{} has no component {name}.wasm beside it", path.display()),
            }),
            _ => {}
        }
    }
    (components, errors)
}

/// The plugin a file in the plugins directory belongs to: `NAME.wasm` or
/// `NAME.toml`; hidden files (half-written temporaries) belong to none.
pub fn plugin_name(path: &Path) -> Option<&str> {
    let file = path.file_name()?.to_str()?;
    if file.starts_with('.') {
        return None;
    }
    match path.extension()?.to_str()? {
        "wasm" | "toml" => path.file_stem()?.to_str(),
        _ => None,
    }
}

/// What a reload did to one plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    Loaded {
        version: String,
    },
    Unloaded,
    /// The new files were refused; the previous version (if any) keeps serving.
    Refused {
        reason: String,
    },
    Unchanged,
}

/// The live plugin set and what it was loaded from. Readers take a snapshot
/// without locking; a reload swaps in a whole new set.
pub struct PluginRegistry {
    engine: Arc<PluginEngine>,
    dir: PathBuf,
    defaults: PluginLimits,
    current: ArcSwap<PluginSet>,
    /// Serializes reloads so two never build from the same old set.
    reloading: tokio::sync::Mutex<()>,
}

impl PluginRegistry {
    /// Loads every plugin in `dir`. Compiling is CPU-bound, so it runs on a
    /// blocking thread.
    pub async fn load(
        engine: Arc<PluginEngine>,
        dir: PathBuf,
        defaults: PluginLimits,
    ) -> anyhow::Result<Self> {
        let set = {
            let engine = engine.clone();
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || PluginSet::load_dir(&engine, &dir, defaults))
                .await?
        };
        Ok(Self {
            engine,
            dir,
            defaults,
            current: ArcSwap::from_pointee(set),
            reloading: tokio::sync::Mutex::new(()),
        })
    }

    pub fn snapshot(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Loads, replaces or unloads the named plugins from the files now on
    /// disk. Compilation happens off the message path; messages already
    /// running finish on the version they started with.
    pub async fn reload(&self, names: Vec<String>) -> Vec<(String, ReloadOutcome)> {
        let _guard = self.reloading.lock().await;
        let engine = self.engine.clone();
        let dir = self.dir.clone();
        let defaults = self.defaults;
        let before = self.snapshot();
        let work = tokio::task::spawn_blocking(move || {
            let mut set = (*before).clone();
            let mut outcomes = Vec::with_capacity(names.len());
            for name in names {
                let outcome = reload_one(&engine, &dir, defaults, &mut set, &name);
                outcomes.push((name, outcome));
            }
            (set, outcomes)
        });
        let (set, outcomes) = match work.await {
            Ok(result) => result,
            Err(error) => {
                tracing::error!(%error, "plugin reload task failed; the current plugins keep serving");
                return Vec::new();
            }
        };
        if outcomes.iter().any(|(_, o)| *o != ReloadOutcome::Unchanged) {
            self.current.store(Arc::new(set));
        }
        outcomes
    }
}

fn reload_one(
    engine: &PluginEngine,
    dir: &Path,
    defaults: PluginLimits,
    set: &mut PluginSet,
    name: &str,
) -> ReloadOutcome {
    let wasm = dir.join(format!("{name}.wasm"));
    let manifest = dir.join(format!("{name}.toml"));
    let loaded = set.plugin(name).is_some();
    if !wasm.is_file() {
        if !loaded && !set.errors.iter().any(|e| e.plugin == name) {
            return ReloadOutcome::Unchanged;
        }
        if let Some(old) = set.plugin(name) {
            old.discard_ready();
        }
        *set = set.without(name);
        tracing::info!(plugin = name, "plugin unloaded: its component was removed");
        return ReloadOutcome::Unloaded;
    }
    let refuse = |set: &mut PluginSet, reason: String| {
        tracing::error!(plugin = name, %reason, kept_previous = loaded, "plugin reload refused");
        set.errors.retain(|e| e.plugin != name);
        set.errors.push(LoadError {
            plugin: name.to_string(),
            reason: reason.clone(),
        });
        ReloadOutcome::Refused { reason }
    };
    if !manifest.is_file() {
        return refuse(
            set,
            format!("{} has no manifest {name}.toml beside it", wasm.display()),
        );
    }
    let plugin = match LoadedPlugin::load(engine, &wasm, defaults) {
        Ok(plugin) => Arc::new(plugin),
        Err(error) => return refuse(set, error.reason),
    };
    let had_error = set.errors.iter().any(|e| e.plugin == name);
    if let Some(old) = set.plugin(name)
        && old.content_hash() == plugin.content_hash()
        && old.manifest() == plugin.manifest()
        && !had_error
    {
        return ReloadOutcome::Unchanged;
    }
    let mut next = set.without(name);
    if let Err(error) = next.try_add(plugin.clone()) {
        return refuse(set, error.reason);
    }
    // Calls still running on the old version finish on it; none starts
    // on an instance of it made ahead.
    if let Some(old) = set.plugin(name) {
        old.discard_ready();
    }
    *set = next;
    let version = plugin.manifest().version.clone();
    tracing::info!(plugin = name, version = %version, hash = &plugin.content_hash()[..12], "plugin loaded");
    ReloadOutcome::Loaded { version }
}

/// The health checks' `plugins` line.
impl PluginReport for PluginRegistry {
    fn plugin_report(&self) -> (usize, Option<String>) {
        let set = self.snapshot();
        let last_error = set.errors().last().map(ToString::to_string);
        (set.plugins().len(), last_error)
    }
}
