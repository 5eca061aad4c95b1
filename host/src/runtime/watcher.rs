//! Hot reload: watches `PLUGINS_DIR` and reloads a plugin shortly after its
//! `NAME.wasm` or `NAME.toml` changes, appears or disappears. Bursts of file
//! events (a build writing several files) are debounced into one reload.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::task::JoinHandle;

use super::registry::{PluginRegistry, PluginSet, ReloadOutcome, plugin_name};

/// Quiet time after the last file event before reloading.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// Stops watching when dropped.
pub struct PluginWatcher {
    _watcher: RecommendedWatcher,
    task: JoinHandle<()>,
}

impl Drop for PluginWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts watching. `on_reload` runs after every reload that loaded,
/// unloaded or refused something, with what happened to each plugin and the
/// set now serving (e.g. to refresh Telegram's command menu, or alert the
/// admin about a refused file).
pub fn watch(
    registry: Arc<PluginRegistry>,
    on_reload: impl Fn(&[(String, ReloadOutcome)], &PluginSet) + Send + Sync + 'static,
) -> anyhow::Result<PluginWatcher> {
    let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if !matches!(event.kind, EventKind::Access(_)) => {
                for path in event.paths {
                    let _ = events.send(path);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "plugin watcher error"),
        })?;
    watcher.watch(registry.dir(), RecursiveMode::NonRecursive)?;

    let task = tokio::spawn(async move {
        while let Some(first) = receiver.recv().await {
            let mut names = BTreeSet::new();
            let mut add = |path: PathBuf| {
                if let Some(name) = plugin_name(&path) {
                    names.insert(name.to_string());
                }
            };
            add(first);
            while let Ok(Some(path)) = tokio::time::timeout(DEBOUNCE, receiver.recv()).await {
                add(path);
            }
            if names.is_empty() {
                continue;
            }
            let started = Instant::now();
            let outcomes = registry.reload(names.into_iter().collect()).await;
            for (_, outcome) in &outcomes {
                let status = match outcome {
                    ReloadOutcome::Loaded { .. } => "loaded",
                    ReloadOutcome::Unloaded => "unloaded",
                    ReloadOutcome::Refused { .. } => "refused",
                    ReloadOutcome::Unchanged => continue,
                };
                crate::infra::metrics::metrics()
                    .plugin_reloads
                    .get_or_create(&crate::infra::metrics::label(status))
                    .inc();
            }
            let changed = outcomes
                .iter()
                .filter(|(_, outcome)| {
                    matches!(
                        outcome,
                        ReloadOutcome::Loaded { .. } | ReloadOutcome::Unloaded
                    )
                })
                .count();
            tracing::info!(
                changed,
                refused = outcomes
                    .iter()
                    .filter(|(_, o)| matches!(o, ReloadOutcome::Refused { .. }))
                    .count(),
                reload_ms = started.elapsed().as_secs_f64() * 1000.0,
                "plugins reloaded"
            );
            if outcomes
                .iter()
                .any(|(_, outcome)| *outcome != ReloadOutcome::Unchanged)
            {
                on_reload(&outcomes, &registry.snapshot());
            }
        }
    });
    Ok(PluginWatcher {
        _watcher: watcher,
        task,
    })
}
