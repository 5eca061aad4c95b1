//! `wasmbot:plugin/health`: the health monitor's results, for `/health`.

use crate::infra::health::{ServiceHealth, Status};
use crate::runtime::CallState;
use crate::runtime::HOST_CALLS;
use crate::runtime::bindings::health as wit;

impl wit::Host for CallState {
    async fn latest(&mut self) -> Vec<wit::Service> {
        if self.spend(&HOST_CALLS).is_err() {
            return Vec::new();
        }
        match &self.services().health {
            Some(monitor) => monitor.latest().iter().map(to_wit).collect(),
            None => Vec::new(),
        }
    }

    async fn check_now(&mut self) -> Vec<wit::Service> {
        if self.spend(&HOST_CALLS).is_err() {
            return Vec::new();
        }
        let Some(monitor) = self.services().health.clone() else {
            return Vec::new();
        };
        monitor.check_now().await.iter().map(to_wit).collect()
    }
}

fn to_wit(service: &ServiceHealth) -> wit::Service {
    wit::Service {
        name: service.name.to_string(),
        status: match service.status {
            Status::Healthy => wit::Status::Healthy,
            Status::Unhealthy => wit::Status::Unhealthy,
            Status::NotConfigured => wit::Status::NotConfigured,
        },
        latency_ms: service.latency_ms,
        detail: service.detail.clone(),
    }
}
