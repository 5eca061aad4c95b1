//! Start-up shared by the commands that serve messages: open the database
//! (migrating unless told not to), the vault, the audit writer, the plugins.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::audit::{AuditOptions, AuditWriter, DEFAULT_QUEUE_CAPACITY};
use crate::capabilities::cache::CacheStore;
use crate::capabilities::llm::LlmClient;
use crate::capabilities::vectors::{EmbeddingsClient, VectorStore};
use crate::config::Config;
use crate::crypto::Vault;
use crate::health::{HealthChecker, HealthMonitor};
use crate::runtime::{PluginEngine, PluginRegistry};
use crate::services::HostServices;
use crate::store::Store;

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

pub fn open_vault(config: &Config) -> anyhow::Result<Option<Arc<Vault>>> {
    config
        .encryption_key
        .as_ref()
        .map(|key| Vault::from_hex("ENCRYPTION_KEY", key.expose()).map(Arc::new))
        .transpose()
        .map_err(anyhow::Error::from)
}

/// Everything a message needs: the services and the loaded plugins.
pub struct Host {
    pub services: HostServices,
    pub registry: Arc<PluginRegistry>,
}

impl Host {
    pub async fn start(config: &Config, migrate: bool) -> anyhow::Result<Self> {
        let store = open_store(config, migrate).await?;
        let cache = CacheStore::from_settings(&config.cache).context("REDIS_URL")?;
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
        let alerter = crate::alert::Alerter::default();
        // The writer alerts through the same alerter (the admin chat once attached).
        let audit = Arc::new(AuditWriter::start_with(
            store.clone(),
            AuditOptions {
                alerter: Some(alerter.clone()),
                ..AuditOptions::new(DEFAULT_QUEUE_CAPACITY)
            },
        ));
        if cache.is_shared() {
            // Replicas sharing Redis then send each alert once between them.
            alerter.share_limits(cache.clone());
        }
        let mut services = HostServices {
            store: Some(store),
            vault: open_vault(config)?,
            audit: Some(audit),
            llm: LlmClient::from_settings(&config.llm)?.map(Arc::new),
            cache,
            vectors: Some(vectors),
            embeddings,
            alerter,
            health: None,
        };
        let engine = Arc::new(PluginEngine::new(Some(config.plugin_cache_dir.clone()))?);
        let registry =
            PluginRegistry::load(engine, config.plugins_dir.clone(), config.plugin_limits).await?;
        let registry = Arc::new(registry);
        let checker = HealthChecker::new(
            config,
            services.store.clone(),
            services.llm.clone(),
            Some(registry.clone()),
        )
        .with_audit(services.audit.clone());
        services.health = Some(Arc::new(HealthMonitor::new(
            checker,
            services.alerter.clone(),
        )));
        Ok(Self { services, registry })
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
