//! Plugins acting on their own: due jobs and webhook deliveries, kept in
//! `scheduled_jobs`, fired by the one process running its channel's jobs
//! (`runner`) through the dispatcher to the plugin's `on-event`, and the
//! actions delivered by the adapter (`JobOutput`) before the job is done.
//! Webhooks (`hooks`) are received on `HOOKS_ADDR` (else `HTTP_ADDR`) and
//! kept as deliveries.

mod hooks;
mod runner;

pub use hooks::{
    DELIVERY_HEADER, HOOK_BODY_LIMIT, SIGNATURE_HEADER, WebhookDelivery, hook_secret_name,
    hooks_router,
};
pub use runner::{JobOutput, JobRunner, LATE_AFTER, MAX_JOB_ATTEMPTS, RunnerRole};
