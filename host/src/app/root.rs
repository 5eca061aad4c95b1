//! The composition root: the one place that builds the host's services (once,
//! behind an `Arc`) for `chat`, `run` and `worker`, the plugin registry with
//! the capability table, and what each command serves.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::config::Config;
use super::ops::{OpsServer, OpsState, ops_router};
use crate::capabilities;
use crate::chat::Dispatcher;
use crate::chat::jobs::hooks_router;
use crate::chat::telegram;
use crate::infra::alert::Alerter;
use crate::infra::audit::{AuditOptions, AuditWriter, DEFAULT_QUEUE_CAPACITY};
use crate::infra::cache::CacheStore;
use crate::infra::health::{HealthChecker, HealthMonitor, PluginReport};
use crate::infra::llm::LlmClient;
use crate::infra::oauth::OAuthTokens;
use crate::infra::services::HostServices;
use crate::infra::store::Store;
use crate::infra::vectors::{EmbeddingsClient, VectorStore};
use crate::runtime::{PluginEngine, PluginRegistry};

/// How long shutdown waits for queued audit entries to reach the database.
pub const AUDIT_FLUSH_DEADLINE: Duration = Duration::from_secs(10);

pub async fn open_store(config: &Config, migrate: bool) -> anyhow::Result<Store> {
    let store = Store::connect(config.database_url.expose()).await?;
    if migrate {
        store
            .migrate()
            .await
            .with_context(|| format!("migrating the {} database", store.backend()))?;
    }
    Ok(store)
}

/// The checks `wasmbot health`, the worker and the bot run: what the
/// settings point at, and the database and LLM given.
pub fn health_checker(
    config: &Config,
    store: Option<Store>,
    llm: Option<Arc<LlmClient>>,
) -> HealthChecker {
    HealthChecker::new(&config.cache, &config.vectors, store, llm)
}

/// Everything a message needs: the services and the loaded plugins.
pub struct Host {
    pub services: Arc<HostServices>,
    pub registry: Arc<PluginRegistry>,
}

impl Host {
    /// For `chat` and `run`: the database (migrated unless told not to), the
    /// plugins, and every service plugins may be lent.
    pub async fn start(config: &Config, migrate: bool) -> anyhow::Result<Self> {
        let store = open_store(config, migrate).await?;
        let registry = Arc::new(load_plugins(config).await?);
        let alerter = Alerter::log_only();
        let cache = shared_cache(config, &alerter)?;
        let vectors = VectorStore::from_settings(&config.vectors).context("QDRANT_URL")?;
        let embeddings = config
            .vectors
            .embeddings
            .as_ref()
            .map(EmbeddingsClient::new)
            .transpose()?
            .map(Arc::new);
        tracing::info!(
            cache = cache.backend_name(),
            vectors = vectors.describe(),
            embeddings = embeddings.as_ref().map(|e| e.model()),
            "shared state"
        );
        // The writer alerts through the same alerter (the admin chat once attached).
        let audit = Arc::new(AuditWriter::start_with(
            store.clone(),
            AuditOptions {
                alerter: Some(alerter.clone()),
                ..AuditOptions::new(DEFAULT_QUEUE_CAPACITY)
            },
        ));
        let llm = LlmClient::from_settings(&config.llm)?.map(Arc::new);
        let plugins: Arc<dyn PluginReport> = registry.clone();
        let checker = health_checker(config, Some(store.clone()), llm.clone())
            .with_plugins(Some(plugins))
            .with_audit(Some(audit.clone()));
        let oauth = match &config.vault {
            Some(vault) => Some(Arc::new(OAuthTokens::new(
                store.clone(),
                vault.clone(),
                alerter.clone(),
                Some(audit.clone()),
            )?)),
            None => None,
        };
        let services = HostServices {
            oauth,
            store: Some(store),
            vault: config.vault.clone(),
            audit: Some(audit),
            llm,
            cache,
            vectors: Some(vectors),
            embeddings,
            health: Some(Arc::new(HealthMonitor::new(checker, alerter.clone()))),
            alerter,
            http: config.http.clone(),
            files_dir: Some(config.files_dir.clone()),
            media: config.media,
            jobs_added: Default::default(),
        };
        Ok(Self {
            services: Arc::new(services),
            registry,
        })
    }

    /// What `/readyz` and `/metrics` look at.
    pub fn ops_state(&self) -> OpsState {
        OpsState {
            services: self.services.clone(),
            registry: Some(self.registry.clone()),
        }
    }

    /// Serves the ops endpoints on `HTTP_ADDR` and the webhooks on
    /// `HOOKS_ADDR`, or beside the ops endpoints, where they are set (`chat`).
    pub fn serve_ops_if_configured(
        &self,
        config: &Config,
        dispatcher: &Arc<Dispatcher>,
    ) -> Vec<OpsServer> {
        let hooks = hooks_router(dispatcher.clone());
        match (config.http_addr, config.hooks_addr) {
            (Some(ops), Some(hooks_addr)) => vec![
                OpsServer::start_with("HTTP_ADDR", ops, ops_router(self.ops_state())),
                OpsServer::start_with("HOOKS_ADDR", hooks_addr, hooks),
            ],
            (Some(ops), None) => vec![OpsServer::start_with(
                "HTTP_ADDR",
                ops,
                ops_router(self.ops_state()).merge(hooks),
            )],
            (None, Some(hooks_addr)) => {
                vec![OpsServer::start_with("HOOKS_ADDR", hooks_addr, hooks)]
            }
            (None, None) => Vec::new(),
        }
    }

    /// Flushes the audit queue and closes the database.
    pub async fn shutdown(&self) {
        if let Some(audit) = &self.services.audit {
            audit.shutdown(AUDIT_FLUSH_DEADLINE).await;
        }
        if let Some(store) = &self.services.store {
            store.close().await;
        }
    }
}

/// For `worker`: the database, the cache, the LLM and the health monitor,
/// alerting the admin chat when the bot's token and chat are set. No plugins,
/// so no vault, audit writer or vectors.
pub fn worker_services(config: &Config, store: &Store) -> anyhow::Result<Arc<HostServices>> {
    let alerter = Alerter::log_only();
    let cache = shared_cache(config, &alerter)?;
    if let Some(sink) = telegram::admin_alert_sink(&config.telegram)? {
        alerter.attach(sink);
    }
    let llm = LlmClient::from_settings(&config.llm)?.map(Arc::new);
    let checker = health_checker(config, Some(store.clone()), llm.clone());
    Ok(Arc::new(HostServices {
        store: Some(store.clone()),
        llm,
        cache,
        health: Some(Arc::new(HealthMonitor::new(checker, alerter.clone()))),
        alerter,
        ..HostServices::default()
    }))
}

/// `REDIS_URL` or the in-process cache. Replicas sharing Redis then send
/// each alert once between them all.
fn shared_cache(config: &Config, alerter: &Alerter) -> anyhow::Result<CacheStore> {
    let cache = CacheStore::from_settings(&config.cache).context("REDIS_URL")?;
    if cache.is_shared() {
        alerter.share_limits(cache.clone());
    }
    Ok(cache)
}

/// An engine that can grant every capability, with `PLUGIN_POOL_INSTANCES`
/// slots and the operator's per-call budgets; `cache_dir` keeps compiled components between runs.
pub fn plugin_engine(
    config: &Config,
    cache_dir: Option<PathBuf>,
) -> anyhow::Result<Arc<PluginEngine>> {
    let engine =
        PluginEngine::with_pool_size(cache_dir, capabilities::ALL, config.plugin_pool_instances)?
            .with_budget_defaults(config.budget_defaults.clone())
            .with_setting_overrides(config.plugin_settings.clone())
            .with_warm_limits(config.plugin_warm_instances, config.plugin_warm_memory_mb);
    Ok(Arc::new(engine))
}

/// The plugins in `PLUGINS_DIR`.
async fn load_plugins(config: &Config) -> anyhow::Result<PluginRegistry> {
    let engine = plugin_engine(config, Some(config.plugin_cache_dir.clone()))?;
    PluginRegistry::load(engine, config.plugins_dir.clone(), config.plugin_limits).await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (docker stop, systemd).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the bot");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutdown signal received");
}
