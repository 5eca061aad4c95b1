//! The set of loaded plugins, swapped atomically so a message always sees one
//! consistent snapshot.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::engine::PluginEngine;
use super::manifest::{CommandSpec, PluginLimits};
use super::plugin::{LoadError, LoadedPlugin};

/// A consistent set of plugins and the command table built from them.
#[derive(Default)]
pub struct PluginSet {
    plugins: Vec<Arc<LoadedPlugin>>,
    commands: HashMap<String, Arc<LoadedPlugin>>,
    errors: Vec<LoadError>,
}

impl PluginSet {
    /// Loads every `NAME.wasm` + `NAME.toml` pair in `dir`, in name order.
    /// A plugin that fails to load is left out and its error kept, so one bad
    /// file never takes the others down.
    pub fn load_dir(engine: &wasmtime::Engine, dir: &Path, defaults: PluginLimits) -> Self {
        let mut set = PluginSet::default();
        let (components, errors) = scan_dir(dir);
        set.errors = errors;
        for wasm in components {
            match LoadedPlugin::load(engine, &wasm, defaults) {
                Ok(plugin) => set.add(plugin),
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
    pub fn add(&mut self, plugin: LoadedPlugin) {
        let taken = plugin.manifest().commands.iter().find_map(|c| {
            self.commands
                .get(&c.name)
                .map(|owner| (c.name.clone(), owner.name().to_string()))
        });
        if let Some((command, owner)) = taken {
            self.errors.push(LoadError {
                plugin: plugin.name().to_string(),
                reason: format!("command `/{command}` is already provided by plugin `{owner}`"),
            });
            return;
        }
        let plugin = Arc::new(plugin);
        for command in &plugin.manifest().commands {
            self.commands.insert(command.name.clone(), plugin.clone());
        }
        self.plugins.push(plugin);
    }

    pub fn plugin_for(&self, command: &str) -> Option<&Arc<LoadedPlugin>> {
        self.commands.get(command)
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
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("?");
        match path.extension().and_then(|e| e.to_str()) {
            Some("wasm") if path.with_extension("toml").is_file() => components.push(path),
            Some("wasm") => errors.push(LoadError {
                plugin: stem.into(),
                reason: format!("{} has no manifest {stem}.toml beside it", path.display()),
            }),
            Some("toml") if !path.with_extension("wasm").is_file() => errors.push(LoadError {
                plugin: stem.into(),
                reason: format!("{} has no component {stem}.wasm beside it", path.display()),
            }),
            _ => {}
        }
    }
    (components, errors)
}

/// The live plugin set and what it was loaded from. Readers take a snapshot
/// without locking; a reload swaps in a whole new set.
pub struct PluginRegistry {
    engine: Arc<PluginEngine>,
    dir: PathBuf,
    defaults: PluginLimits,
    current: ArcSwap<PluginSet>,
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
            tokio::task::spawn_blocking(move || {
                PluginSet::load_dir(engine.engine(), &dir, defaults)
            })
            .await?
        };
        Ok(Self {
            engine,
            dir,
            defaults,
            current: ArcSwap::from_pointee(set),
        })
    }

    pub fn snapshot(&self) -> Arc<PluginSet> {
        self.current.load_full()
    }

    pub fn replace(&self, set: PluginSet) {
        self.current.store(Arc::new(set));
    }

    pub fn engine(&self) -> &Arc<PluginEngine> {
        &self.engine
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn defaults(&self) -> PluginLimits {
        self.defaults
    }
}
