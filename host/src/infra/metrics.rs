//! The process's Prometheus metrics: one registry, incremented where things
//! happen (dispatcher, LLM, reloads, health), rendered by `GET /metrics`.

use std::sync::OnceLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub plugin: String,
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    pub service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    pub plugin: String,
    pub budget: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QuotaLabels {
    pub plugin: String,
    pub quota: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CutLabels {
    pub plugin: String,
    pub what: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub plugin: String,
    /// `ok` (any status came back), `denied`, `prohibited`, `too_large`, `timeout`, `failed`.
    pub outcome: String,
}

pub struct Metrics {
    /// Plugins' outbound HTTP requests, by plugin and outcome.
    pub plugin_http_requests: Family<HttpLabels, Counter>,
    /// Messages handled, by plugin and outcome (ok, declined, timeout, out_of_memory, crashed, denied).
    pub messages: Family<MessageLabels, Counter>,
    /// Time from a message's arrival to its reply, plugin messages only.
    pub handler_seconds: Histogram,
    /// Plugin calls ended by the host: timeouts, memory cap, traps.
    pub plugin_failures: Family<StatusLabels, Counter>,
    pub audit_queue_depth: Gauge,
    pub audit_overflow: Gauge,
    /// Audit entries the database refused, set aside in `audit_rejected` (or the log).
    pub audit_rejected: Counter,
    /// 1 while the audit writer has entries and has written nothing for a minute.
    pub audit_stalled: Gauge,
    /// Telegram updates through the inbox: kept, repeated, done, retried, dead.
    pub inbox_updates: Family<StatusLabels, Counter>,
    pub llm_requests: Family<StatusLabels, Counter>,
    pub llm_tokens: Family<TokenLabels, Counter>,
    /// Reload outcomes: loaded, unloaded, refused.
    pub plugin_reloads: Family<StatusLabels, Counter>,
    /// 1 healthy, 0 unhealthy; services not configured are absent.
    pub service_up: Family<ServiceLabels, Gauge>,
    /// Host calls refused because a per-call budget was used up.
    pub budget_refusals: Family<BudgetLabels, Counter>,
    /// Writes refused because the plugin's storage quota was reached.
    pub quota_refusals: Family<QuotaLabels, Counter>,
    /// Replies and error texts cut to their limit.
    pub plugin_cuts: Family<CutLabels, Counter>,
    /// Plugin audit entries refused to keep room for the host's own.
    pub audit_plugin_refused: Counter,
    /// Due jobs and webhook deliveries, by what happened (fired, retried, dead).
    pub jobs: Family<StatusLabels, Counter>,
    /// How long after its due time a job was handed to its plugin.
    pub job_delay_seconds: Histogram,
    registry: Registry,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("wasmbot");
        let metrics = Self {
            messages: Family::default(),
            handler_seconds: Histogram::new(exponential_buckets(0.0001, 4.0, 10)),
            plugin_failures: Family::default(),
            audit_queue_depth: Gauge::default(),
            audit_overflow: Gauge::default(),
            audit_rejected: Counter::default(),
            audit_stalled: Gauge::default(),
            inbox_updates: Family::default(),
            llm_requests: Family::default(),
            llm_tokens: Family::default(),
            plugin_reloads: Family::default(),
            service_up: Family::default(),
            budget_refusals: Family::default(),
            audit_plugin_refused: Counter::default(),
            quota_refusals: Family::default(),
            plugin_cuts: Family::default(),
            plugin_http_requests: Family::default(),
            jobs: Family::default(),
            job_delay_seconds: Histogram::new(exponential_buckets(0.001, 4.0, 10)),
            registry: Registry::default(),
        };
        registry.register(
            "messages",
            "Messages handled, by plugin and status",
            metrics.messages.clone(),
        );
        registry.register(
            "handler_seconds",
            "Time to handle one plugin message",
            metrics.handler_seconds.clone(),
        );
        registry.register(
            "plugin_failures",
            "Plugin calls ended by a timeout, the memory cap or a trap",
            metrics.plugin_failures.clone(),
        );
        registry.register(
            "audit_queue_depth",
            "Audit entries waiting to be written",
            metrics.audit_queue_depth.clone(),
        );
        registry.register(
            "audit_overflow",
            "Audit entries refused because the queue was full",
            metrics.audit_overflow.clone(),
        );
        registry.register(
            "audit_rejected",
            "Audit entries the database refused, set aside in audit_rejected",
            metrics.audit_rejected.clone(),
        );
        registry.register(
            "audit_stalled",
            "1 while audit entries wait and nothing was written for the stall window",
            metrics.audit_stalled.clone(),
        );
        registry.register(
            "inbox_updates",
            "Telegram updates through the inbox, by what happened (kept, repeated, done, retried, dead)",
            metrics.inbox_updates.clone(),
        );
        registry.register(
            "llm_requests",
            "LLM requests by status",
            metrics.llm_requests.clone(),
        );
        registry.register(
            "llm_tokens",
            "LLM tokens by direction",
            metrics.llm_tokens.clone(),
        );
        registry.register(
            "plugin_reloads",
            "Plugin reloads by outcome",
            metrics.plugin_reloads.clone(),
        );
        registry.register(
            "service_up",
            "Health of each configured service (1 up, 0 down)",
            metrics.service_up.clone(),
        );
        registry.register(
            "plugin_budget_refusals",
            "Host calls refused because the call's budget was used up, by plugin and budget",
            metrics.budget_refusals.clone(),
        );
        registry.register(
            "audit_plugin_refused",
            "Plugin audit entries refused because the queue's plugin share was full",
            metrics.audit_plugin_refused.clone(),
        );
        registry.register(
            "plugin_quota_refusals",
            "Writes refused because the plugin's storage quota was reached, by plugin and quota",
            metrics.quota_refusals.clone(),
        );
        registry.register(
            "plugin_http_requests",
            "Outbound HTTP requests made by plugins, by plugin and outcome",
            metrics.plugin_http_requests.clone(),
        );
        registry.register(
            "plugin_cuts",
            "Replies and error texts cut to their limit, by plugin and what (reply, error)",
            metrics.plugin_cuts.clone(),
        );
        registry.register(
            "jobs",
            "Due jobs and webhook deliveries, by what happened (fired, retried, dead)",
            metrics.jobs.clone(),
        );
        registry.register(
            "job_delay_seconds",
            "Time from a job's due time to its plugin being called",
            metrics.job_delay_seconds.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(%error, "cannot encode the metrics");
        }
        text
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

pub fn label(status: &str) -> StatusLabels {
    StatusLabels {
        status: status.to_string(),
    }
}
