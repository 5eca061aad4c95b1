//! What every process that serves plugins runs beside its adapter, built
//! here once for `chat`, `run` and `worker`: the dispatcher, the plugin
//! jobs' runner, the plugins folder's watcher and the health monitor. The
//! adapters (`chat/telegram`, `chat/console`) only connect, receive and drain.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;

use super::config::Config;
use super::root::Host;
use crate::chat::Dispatcher;
use crate::chat::access::AccessPolicy;
use crate::chat::jobs::{JobOutput, JobRunner, RunnerRole};
use crate::runtime::{PluginSet, PluginWatcher, ReloadOutcome};

/// Who a process's dispatcher talks to.
pub struct Audience {
    /// Where its answers go (`telegram`, `console`): jobs its plugins add
    /// are fired by a process serving the same.
    pub channel: &'static str,
    /// The bot's @username, for telling group chatter meant for it.
    pub bot_username: Option<String>,
    /// Who may use it; everyone when None (the console's own user).
    pub access: Option<AccessPolicy>,
}

impl Host {
    /// The dispatcher every event of this process takes, with the
    /// operator's default plugin and the agent's limits.
    pub fn dispatcher(&self, config: &Config, audience: Audience) -> Arc<Dispatcher> {
        let mut dispatcher = Dispatcher::new(self.registry.clone(), audience.bot_username)
            .with_services(self.services.clone())
            .with_default_plugin(config.default_plugin.clone())
            .with_agent(config.agent)
            .with_channel(audience.channel);
        if let Some(access) = audience.access {
            dispatcher = dispatcher.with_access(access);
        }
        Arc::new(dispatcher)
    }

    /// Fires the plugins' due jobs and webhook deliveries through
    /// `dispatcher` into `output` until `stopping` turns true; None
    /// without a database (nothing is scheduled).
    pub fn spawn_plugin_jobs(
        &self,
        role: RunnerRole,
        dispatcher: Arc<Dispatcher>,
        output: Arc<dyn JobOutput>,
        stopping: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let store = self.services.store.clone()?;
        let runner = JobRunner::new(role, dispatcher, store, output);
        Some(tokio::spawn(runner.run(stopping)))
    }

    /// Reloads plugins rebuilt in `PLUGINS_DIR` while the process runs; a
    /// refused reload is alerted (the previous version keeps serving), and
    /// `reloaded` hears of every new set.
    pub fn watch_plugins(
        &self,
        reloaded: impl Fn(&PluginSet) + Send + Sync + 'static,
    ) -> anyhow::Result<PluginWatcher> {
        let alerter = self.services.alerter.clone();
        crate::runtime::watch(self.registry.clone(), move |outcomes, plugins| {
            for (plugin, outcome) in outcomes {
                if let ReloadOutcome::Refused { reason } = outcome {
                    alerter.alert(
                        &format!("plugin:{plugin}"),
                        format!("⚠️ Plugin `{plugin}` was not reloaded: {reason}. The previous version keeps serving."),
                    );
                }
            }
            reloaded(plugins);
        })
        .with_context(|| format!("watching {}", self.registry.dir().display()))
    }

    /// Checks every service each `HEALTH_INTERVAL_SECS` until `stopping`
    /// turns true, alerting on changes.
    pub fn spawn_health_monitor(&self, config: &Config, mut stopping: watch::Receiver<bool>) {
        if let Some(monitor) = self.services.health.clone() {
            let interval = config.health.interval;
            tokio::spawn(async move {
                monitor
                    .run(interval, async move {
                        let _ = stopping.wait_for(|stopped| *stopped).await;
                    })
                    .await
            });
        }
    }
}
