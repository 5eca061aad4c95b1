//! The monitor: runs the checks every `HEALTH_INTERVAL_SECS`, keeps the
//! latest results (for `/health` and `/metrics`), alerts the admin chat when
//! a service goes down and sends one notice when it is back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::checks::HealthChecker;
use super::status::{ServiceHealth, Status};
use crate::infra::alert::Alerter;
use crate::infra::metrics::{ServiceLabels, metrics};
use crate::infra::sync::lock;

/// Services that alert the admin chat themselves; the monitor only shows them.
const SELF_ALERTING: &[&str] = &["audit"];

/// Runs the checks, remembers the latest results and reports transitions.
pub struct HealthMonitor {
    checker: HealthChecker,
    alerter: Alerter,
    latest: Mutex<Vec<ServiceHealth>>,
    /// Services currently known to be down (alerted, awaiting recovery).
    down: Mutex<HashMap<&'static str, String>>,
}

impl HealthMonitor {
    pub fn new(checker: HealthChecker, alerter: Alerter) -> Self {
        Self {
            checker,
            alerter,
            latest: Mutex::new(Vec::new()),
            down: Mutex::new(HashMap::new()),
        }
    }

    /// The last results; empty before the first check.
    pub fn latest(&self) -> Vec<ServiceHealth> {
        lock(&self.latest).clone()
    }

    /// Checks every service now, alerting on healthy -> unhealthy and
    /// noticing unhealthy -> healthy.
    pub async fn check_now(&self) -> Vec<ServiceHealth> {
        let results = self.checker.check_all().await;
        for service in &results {
            // The audit writer alerts for itself, within its stall window
            // rather than at this monitor's interval; a second alert here
            // would say the same thing twice.
            let alerts = !SELF_ALERTING.contains(&service.name);
            let up = || {
                metrics().service_up.get_or_create(&ServiceLabels {
                    service: service.name.to_string(),
                })
            };
            match service.status {
                Status::Healthy => {
                    up().set(1);
                    if lock(&self.down).remove(service.name).is_some() && alerts {
                        tracing::info!(service = service.name, "service healthy again");
                        self.alerter.notify(
                            &format!("health:{}", service.name),
                            format!("✅ {} is healthy again.", service.name),
                        );
                    }
                }
                Status::Unhealthy => {
                    up().set(0);
                    let detail = service.detail.clone().unwrap_or_default();
                    let newly_down = lock(&self.down)
                        .insert(service.name, detail.clone())
                        .is_none();
                    tracing::warn!(service = service.name, %detail, "service unhealthy");
                    if newly_down && alerts {
                        self.alerter.alert(
                            &format!("health:{}", service.name),
                            format!("❌ {} is unhealthy: {detail}", service.name),
                        );
                    }
                }
                Status::NotConfigured => {}
            }
        }
        *lock(&self.latest) = results.clone();
        results
    }

    /// Checks every `interval` until `stop` resolves.
    pub async fn run(
        self: Arc<Self>,
        interval: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    self.check_now().await;
                }
                _ = &mut stop => return,
            }
        }
    }
}
