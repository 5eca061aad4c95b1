//! The individual checks: each returns within `CHECK_TIMEOUT`, healthy or
//! not, and an unconfigured service is "not configured", never failing.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::status::{CHECK_TIMEOUT, ServiceHealth, Status};
use crate::infra::audit::{AuditHealth, AuditWriter};
use crate::infra::cache::CacheSettings;
use crate::infra::llm::LlmClient;
use crate::infra::store::Store;
use crate::infra::vectors::{ServerVectors, VectorSettings};

/// What the `plugins` line reports. The runtime's registry answers it; the
/// health checks do not know the runtime.
pub trait PluginReport: Send + Sync {
    /// How many plugins are loaded, and the last load error if any.
    fn plugin_report(&self) -> (usize, Option<String>);
}

pub struct HealthChecker {
    store: Option<Store>,
    redis: Option<redis::Client>,
    redis_error: Option<String>,
    /// Its own client, so a check never waits behind plugins' calls.
    qdrant: Option<Result<ServerVectors, String>>,
    llm: Option<Arc<LlmClient>>,
    plugins: Option<Arc<dyn PluginReport>>,
    /// The audit writer, in the processes that have one (not the worker).
    audit: Option<Arc<AuditWriter>>,
}

impl HealthChecker {
    /// Checks what the settings point at: `REDIS_URL`, `QDRANT_URL` (each
    /// "not configured" when unset), and the given database and LLM.
    pub fn new(
        cache: &CacheSettings,
        vectors: &VectorSettings,
        store: Option<Store>,
        llm: Option<Arc<LlmClient>>,
    ) -> Self {
        let redis_url = cache.redis_url.as_ref();
        let (redis, redis_error) = match redis_url.map(|url| redis::Client::open(url.expose())) {
            Some(Ok(client)) => (Some(client), None),
            Some(Err(error)) => (
                None,
                Some(format!("REDIS_URL is not usable ({:?})", error.kind())),
            ),
            None => (None, None),
        };
        Self {
            store,
            redis,
            redis_error,
            qdrant: vectors
                .qdrant
                .as_ref()
                .map(|settings| ServerVectors::new(settings).map_err(|e| e.to_string())),
            llm,
            plugins: None,
            audit: None,
        }
    }

    /// Adds a `plugins` line (otherwise "not configured").
    pub fn with_plugins(mut self, plugins: Option<Arc<dyn PluginReport>>) -> Self {
        self.plugins = plugins;
        self
    }

    /// Adds an `audit` line: ok, stalled or overflowing.
    pub fn with_audit(mut self, audit: Option<Arc<AuditWriter>>) -> Self {
        self.audit = audit;
        self
    }

    /// Every service, checked in parallel.
    pub async fn check_all(&self) -> Vec<ServiceHealth> {
        let (database, redis, qdrant, llm) =
            tokio::join!(self.database(), self.redis(), self.qdrant(), self.llm());
        let mut results = vec![database, redis, qdrant, llm, self.plugins()];
        if let Some(audit) = self.audit() {
            results.push(audit);
        }
        results
    }

    /// The writer's own view; no query, so no latency.
    fn audit(&self) -> Option<ServiceHealth> {
        let writer = self.audit.as_ref()?;
        let health = writer.health();
        Some(match health {
            AuditHealth::Ok => ServiceHealth {
                name: "audit",
                status: Status::Healthy,
                latency_ms: None,
                detail: Some(format!("ok, {} pending", writer.pending())),
            },
            problem => unhealthy("audit", None, problem.to_string()),
        })
    }

    async fn database(&self) -> ServiceHealth {
        let Some(store) = &self.store else {
            return not_configured("database");
        };
        timed("database", async {
            store.ping().await.map(|_| None).map_err(|e| e.to_string())
        })
        .await
    }

    async fn redis(&self) -> ServiceHealth {
        if let Some(error) = &self.redis_error {
            return unhealthy("redis", None, error.clone());
        }
        let Some(client) = &self.redis else {
            return not_configured("redis");
        };
        timed("redis", async {
            let mut connection = client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            let pong: String = redis::cmd("PING")
                .query_async(&mut connection)
                .await
                .map_err(|e| format!("PING failed: {e}"))?;
            if pong == "PONG" {
                Ok(None)
            } else {
                Err(format!("PING answered {pong:?}"))
            }
        })
        .await
    }

    async fn qdrant(&self) -> ServiceHealth {
        let client = match &self.qdrant {
            None => return not_configured("qdrant"),
            Some(Err(error)) => return unhealthy("qdrant", None, error.clone()),
            Some(Ok(client)) => client,
        };
        timed("qdrant", async { client.ping().await.map(Some) }).await
    }

    async fn llm(&self) -> ServiceHealth {
        let Some(llm) = &self.llm else {
            return not_configured("llm");
        };
        timed("llm", async {
            llm.ping().await.map(|_| None).map_err(|e| e.to_string())
        })
        .await
    }

    fn plugins(&self) -> ServiceHealth {
        let Some(plugins) = &self.plugins else {
            return not_configured("plugins");
        };
        let (loaded, last_error) = plugins.plugin_report();
        match last_error {
            Some(error) => unhealthy(
                "plugins",
                None,
                format!("{loaded} loaded; last load error: {error}"),
            ),
            None if loaded == 0 => unhealthy("plugins", None, "no plugins loaded".into()),
            None => ServiceHealth {
                name: "plugins",
                status: Status::Healthy,
                latency_ms: None,
                detail: Some(format!("{loaded} loaded")),
            },
        }
    }
}

/// Runs `check` under the deadline and measures it.
async fn timed(
    name: &'static str,
    check: impl Future<Output = Result<Option<String>, String>>,
) -> ServiceHealth {
    let started = Instant::now();
    let result = tokio::time::timeout(CHECK_TIMEOUT, check).await;
    let latency_ms = Some(started.elapsed().as_millis().min(u32::MAX as u128) as u32);
    match result {
        Ok(Ok(detail)) => ServiceHealth {
            name,
            status: Status::Healthy,
            latency_ms,
            detail,
        },
        Ok(Err(error)) => unhealthy(name, latency_ms, error),
        Err(_) => unhealthy(
            name,
            latency_ms,
            format!("no answer within {} s", CHECK_TIMEOUT.as_secs()),
        ),
    }
}

fn unhealthy(name: &'static str, latency_ms: Option<u32>, detail: String) -> ServiceHealth {
    ServiceHealth {
        name,
        status: Status::Unhealthy,
        latency_ms,
        detail: Some(detail),
    }
}

fn not_configured(name: &'static str) -> ServiceHealth {
    ServiceHealth {
        name,
        status: Status::NotConfigured,
        latency_ms: None,
        detail: None,
    }
}
