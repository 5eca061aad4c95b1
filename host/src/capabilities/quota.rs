//! What the capabilities with storage quotas share.

use crate::infra::metrics::{QuotaLabels, metrics};

/// `wasmbot_plugin_quota_refusals_total{plugin, quota}`.
pub fn count_quota_refusal(plugin: &str, quota: &str) {
    metrics()
        .quota_refusals
        .get_or_create(&QuotaLabels {
            plugin: plugin.to_string(),
            quota: quota.to_string(),
        })
        .inc();
}
