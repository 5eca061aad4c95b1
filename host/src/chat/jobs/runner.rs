//! The job runner: while this process is the leader for its channel
//! (`Leadership::Jobs`), it claims due jobs (leased, like the inbox), hands
//! each to its plugin's `on-event`, has the adapter deliver the actions and
//! only then marks the job done (or moves a cron job to its next time). A
//! failure gives the job back to try again; after [`MAX_JOB_ATTEMPTS`] it is
//! set aside with an alert. The others stand by and take over when the
//! leader goes away; a lease that runs out (its process died) makes the job
//! claimable again, so every job fires at least once.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, watch};

use super::hooks::WebhookDelivery;
use crate::chat::{Answer, Dispatcher};
use crate::infra::metrics::{label, metrics};
use crate::infra::schedule::{CronSpec, LeaderLock, Leadership, now_ms};
use crate::infra::store::{AuditEntry, ClaimRoom, Store, StoredJob};
use crate::infra::sync::lock;
use crate::runtime::{DueJob, Happening, HappeningKind, Webhook};

/// Attempts at one occurrence before it is set aside.
pub const MAX_JOB_ATTEMPTS: i32 = 3;

/// A job fired this long after its due time is late even if this process
/// was running jobs all along.
pub const LATE_AFTER: Duration = Duration::from_secs(60);

/// How often the leader looks for jobs other processes added (its own wake
/// it at once), and so the most a job another replica added can be late.
const POLL: Duration = Duration::from_millis(500);

/// How often a process standing by tries to become the leader.
const STANDBY: Duration = Duration::from_secs(2);

/// How long a claimed job is ours before another process may take it; renewed
/// while it runs.
const LEASE: Duration = Duration::from_secs(60);

/// How long stopping waits for the jobs in flight.
const DRAIN: Duration = Duration::from_secs(20);

/// Jobs running at once in this process.
const MAX_IN_FLIGHT: usize = 16;

/// Jobs (and webhook deliveries) of one plugin running at once: a plugin
/// whose jobs compute until their deadline keeps the others' slots free.
pub const JOBS_PER_PLUGIN: usize = MAX_IN_FLIGHT / 4;

/// A failed job is tried again no sooner than this, times the attempts so far.
const RETRY_STEP: Duration = Duration::from_secs(2);

/// Resolves once `stop` turns true (the guard `wait_for` returns is not `Send`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Sends a job's answer where it belongs, for one channel.
pub trait JobOutput: Send + Sync + 'static {
    /// The channel's admin chat, for jobs and hooks addressed to it.
    fn admin_chat(&self) -> Option<i64>;

    /// Carries out `answer` in `chat_id`; Ok once delivered.
    fn deliver(
        &self,
        chat_id: i64,
        answer: Answer,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>>;
}

/// Which process this runner is in: the bot processes run the jobs only
/// while no worker does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunnerRole {
    /// `run` or `chat`: leads the jobs unless a worker is there, and hands
    /// them over when one starts.
    Bot,
    /// `worker`: announces itself for as long as it lives, then leads.
    Worker,
}

pub struct JobRunner {
    role: RunnerRole,
    dispatcher: Arc<Dispatcher>,
    store: Store,
    output: Arc<dyn JobOutput>,
    /// This process's name on the leases it takes.
    owner: String,
    in_flight: Arc<Semaphore>,
    /// Jobs running now, by plugin (their shares of the slots).
    running: std::sync::Mutex<HashMap<String, usize>>,
    /// A job finished: its plugin may take another slot.
    finished: Notify,
}

impl JobRunner {
    pub fn new(
        role: RunnerRole,
        dispatcher: Arc<Dispatcher>,
        store: Store,
        output: Arc<dyn JobOutput>,
    ) -> Arc<Self> {
        Arc::new(Self {
            role,
            dispatcher,
            store,
            output,
            owner: uuid::Uuid::new_v4().simple().to_string(),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            running: std::sync::Mutex::default(),
            finished: Notify::new(),
        })
    }

    fn channel(&self) -> &'static str {
        self.dispatcher.channel()
    }

    /// Stands by until this process leads its channel's jobs, then fires them
    /// until `stop` turns true; jobs running then are finished (they are
    /// leased: unfinished ones fire again after their lease).
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        // A worker says it is there before it competes; held until it exits.
        let _announced = match self.role {
            RunnerRole::Worker => match self.announce(&mut stop).await {
                Some(lock) => Some(lock),
                None => return,
            },
            RunnerRole::Bot => None,
        };
        let mut standing_by = None;
        loop {
            let (lock, why) = if self.worker_runs_jobs().await {
                (None, "a worker runs the jobs; standing by")
            } else {
                let lock = LeaderLock::try_acquire(&self.store, Leadership::Jobs(self.channel()))
                    .await
                    .unwrap_or_else(|error| {
                        tracing::warn!(error = %format!("{error:#}"), "cannot take the jobs lock; retrying");
                        None
                    });
                (lock, "another process runs the jobs; standing by")
            };
            let Some(lock) = lock else {
                if standing_by != Some(why) {
                    tracing::info!(channel = self.channel(), "{why}");
                    standing_by = Some(why);
                }
                tokio::select! {
                    _ = tokio::time::sleep(STANDBY) => continue,
                    _ = stopped(&mut stop) => return,
                }
            };
            standing_by = None;
            tracing::info!(
                channel = self.channel(),
                "this process runs the scheduled jobs"
            );
            if self.clone().lead(lock, &mut stop).await {
                break;
            }
            tracing::warn!("the jobs lock was lost or handed over; standing by");
        }
        // Let the jobs in flight finish; one still running past this fires
        // again after its lease, in whichever process runs the jobs then.
        let _ =
            tokio::time::timeout(DRAIN, self.in_flight.acquire_many(MAX_IN_FLIGHT as u32)).await;
    }

    /// The worker's announcement: waits (standing by) while another worker
    /// holds it; None when stopped first.
    async fn announce(&self, stop: &mut watch::Receiver<bool>) -> Option<LeaderLock> {
        let mut said_standby = false;
        loop {
            match LeaderLock::try_acquire(&self.store, Leadership::JobsWorker(self.channel())).await
            {
                Ok(Some(lock)) => return Some(lock),
                Ok(None) if !said_standby => {
                    tracing::info!("another worker runs the jobs; standing by");
                    said_standby = true;
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "cannot announce this worker; retrying")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(STANDBY) => {}
                _ = stopped(stop) => return None,
            }
        }
    }

    /// Whether a bot process should leave the jobs to a worker now.
    async fn worker_runs_jobs(&self) -> bool {
        if self.role == RunnerRole::Worker {
            return false;
        }
        LeaderLock::is_held_elsewhere(&self.store, Leadership::JobsWorker(self.channel()))
            .await
            .unwrap_or_else(|error| {
                tracing::warn!(error = %format!("{error:#}"), "cannot tell whether a worker runs the jobs");
                false
            })
    }

    /// Fires due jobs while the lock holds. True when stopped, false when the lock was lost.
    async fn lead(self: Arc<Self>, mut lock: LeaderLock, stop: &mut watch::Receiver<bool>) -> bool {
        // A job due before this moment came due while no one ran jobs: late.
        let took_over = now_ms();
        let wake = self.dispatcher.services().jobs_added.clone();
        let mut check = tokio::time::interval(STANDBY);
        loop {
            let room = self.in_flight.available_permits();
            let mut claimed_any = false;
            if room > 0 {
                let now = now_ms();
                match self
                    .store
                    .jobs_claim(
                        self.channel(),
                        &self.owner,
                        now,
                        now + LEASE.as_millis() as i64,
                        &self.claim_room(room),
                    )
                    .await
                {
                    Ok(jobs) => {
                        claimed_any = !jobs.is_empty();
                        for job in jobs {
                            let Ok(permit) = self.in_flight.clone().acquire_owned().await else {
                                return true;
                            };
                            let runner = self.clone();
                            let running = RunningJob::start(&runner, &job.plugin);
                            tokio::spawn(async move {
                                runner.fire(job, took_over).await;
                                drop(running);
                                drop(permit);
                            });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "could not claim due jobs; retrying"),
                }
            }
            // Due jobs left unclaimed wait for a slot (a finished job wakes
            // this); otherwise until the next one comes due.
            let wait = if claimed_any {
                Duration::ZERO
            } else {
                match self.store.jobs_next_due(self.channel(), now_ms()).await {
                    Ok(Some(due)) => {
                        Duration::from_millis(u64::try_from(due - now_ms()).unwrap_or(0))
                            .clamp(Duration::from_millis(10), POLL)
                    }
                    Ok(None) => POLL,
                    Err(error) => {
                        tracing::warn!(%error, "could not look for due jobs; retrying");
                        POLL
                    }
                }
            };
            tokio::select! {
                _ = stopped(stop) => return true,
                _ = wake.notified() => {}
                _ = self.finished.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = check.tick() => {
                    if !lock.still_held().await {
                        return false;
                    }
                    if self.worker_runs_jobs().await {
                        tracing::info!("a worker started: it runs the jobs from now on");
                        lock.release().await;
                        return false;
                    }
                }
            }
        }
    }

    /// What the next claim may take: `free` slots, and of each plugin
    /// what is left of its share.
    fn claim_room(&self, free: usize) -> ClaimRoom {
        let running = lock(&self.running);
        ClaimRoom {
            total: free,
            per_plugin: JOBS_PER_PLUGIN,
            left: running
                .iter()
                .map(|(plugin, count)| (plugin.clone(), JOBS_PER_PLUGIN.saturating_sub(*count)))
                .collect(),
        }
    }

    /// One claimed job: its plugin called, its answer delivered, then done.
    async fn fire(&self, job: StoredJob, took_over: i64) {
        let now = now_ms();
        let delay_ms = (now - job.due_ms).max(0);
        metrics()
            .job_delay_seconds
            .observe(delay_ms as f64 / 1000.0);
        let Some(chat_id) = job.chat_id.or_else(|| self.output.admin_chat()) else {
            self.set_aside(
                &job,
                "it is for the admin chat, and none is set (TELEGRAM_ADMIN_CHAT_ID)",
            )
            .await;
            return;
        };
        let kind = match self.happening_kind(&job, took_over, now) {
            Ok(kind) => kind,
            Err(reason) => {
                self.set_aside(&job, &reason).await;
                return;
            }
        };
        let happening = Happening {
            correlation_id: uuid::Uuid::new_v4().simple().to_string(),
            chat_id,
            kind,
        };
        tracing::debug!(job_id = job.id, plugin = %job.plugin, delay_ms, "job due");
        let delivered = tokio::select! {
            delivered = self.call_and_deliver(&job, happening, chat_id) => delivered,
            never = self.renew(job.id) => match never {},
        };
        match delivered {
            Ok(()) => {
                metrics().jobs.get_or_create(&label("fired")).inc();
                self.finish(&job, None).await;
            }
            Err(reason) if job.attempts >= MAX_JOB_ATTEMPTS => self.set_aside(&job, &reason).await,
            Err(reason) => {
                metrics().jobs.get_or_create(&label("retried")).inc();
                let retry_in = RETRY_STEP * job.attempts.max(1) as u32;
                tracing::warn!(job_id = job.id, plugin = %job.plugin, attempts = job.attempts, error = %reason, retry_in_s = retry_in.as_secs(), "job failed; it will be tried again");
                let retry_at = now_ms() + retry_in.as_millis() as i64;
                if let Err(error) = self
                    .store
                    .jobs_retry(job.id, &self.owner, retry_at, &reason)
                    .await
                {
                    tracing::warn!(job_id = job.id, %error, "could not give the job back; it is retried when its lease runs out");
                }
            }
        }
    }

    async fn call_and_deliver(
        &self,
        job: &StoredJob,
        happening: Happening,
        chat_id: i64,
    ) -> Result<(), String> {
        let mut answer = self
            .dispatcher
            .handle_happening(&job.plugin, happening, job.user_id.unwrap_or(0))
            .await
            .map_err(|failure| failure.to_string())?;
        if job.chat_id.is_none() {
            // The admin chat, where the host's alerts go too.
            answer.mark_as_from(&job.plugin);
        }
        self.output
            .deliver(chat_id, answer)
            .await
            .map_err(|error| format!("delivering its answer: {error:#}"))
    }

    /// What the plugin receives for `job`.
    fn happening_kind(
        &self,
        job: &StoredJob,
        took_over: i64,
        now: i64,
    ) -> Result<HappeningKind, String> {
        if job.kind == "webhook" {
            let delivery: WebhookDelivery = serde_json::from_str(&job.payload)
                .map_err(|error| format!("the kept delivery is unreadable: {error}"))?;
            return Ok(HappeningKind::Webhook(Webhook {
                name: delivery.name.clone(),
                body: delivery.body()?,
                headers: delivery.headers,
            }));
        }
        let late_after = LATE_AFTER.as_millis() as i64;
        Ok(HappeningKind::Job(DueJob {
            id: u64::try_from(job.id).unwrap_or_default(),
            payload: job.payload.clone(),
            due_at: job.due_ms,
            late: job.due_ms < took_over || now - job.due_ms > late_after,
            repeats: job.kind == "cron",
            attempt: u32::try_from(job.attempts).unwrap_or(1),
        }))
    }

    /// Done: a one-shot job is deleted, a cron job waits for its next time
    /// (one firing however many times it came due while nothing ran).
    async fn finish(&self, job: &StoredJob, error: Option<&str>) {
        let next = match job.spec.as_deref().filter(|_| job.kind == "cron") {
            Some(spec) => match serde_json::from_str::<CronSpec>(spec)
                .map_err(|error| error.to_string())
                .and_then(|spec| spec.next_after(now_ms().max(job.due_ms)))
            {
                Ok(next) => next,
                Err(reason) => {
                    tracing::error!(job_id = job.id, %reason, "a cron job's schedule no longer reads; it is removed");
                    None
                }
            },
            None => None,
        };
        let result = match next {
            Some(next) => {
                self.store
                    .jobs_reschedule(job.id, &self.owner, next, error)
                    .await
            }
            None => self.store.jobs_done(job.id, &self.owner).await,
        };
        match result {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                job_id = job.id,
                "a finished job was no longer ours (cancelled, or its lease ran out)"
            ),
            Err(error) => {
                tracing::error!(job_id = job.id, %error, "could not mark a job done; it fires again after its lease")
            }
        }
    }

    /// Failed too often (or cannot run at all): kept as `dead` for the
    /// operator, with an alert; a cron job goes on at its next time instead.
    async fn set_aside(&self, job: &StoredJob, reason: &str) {
        metrics().jobs.get_or_create(&label("dead")).inc();
        tracing::error!(job_id = job.id, plugin = %job.plugin, attempts = job.attempts, %reason, "job set aside");
        let services = self.dispatcher.services();
        let repeats = job.kind == "cron";
        services.alerter.alert(
            &format!("job:{}", job.plugin),
            format!(
                "⚠️ A {} job of plugin `{}` (id {}) failed {} time(s): {reason}. {}",
                job.kind,
                job.plugin,
                job.id,
                job.attempts,
                if repeats {
                    "It runs again at its next time."
                } else {
                    "It was set aside (scheduled_jobs, status 'dead')."
                }
            ),
        );
        if let Some(audit) = &services.audit {
            audit.record(AuditEntry {
                chat_id: job.chat_id,
                plugin: Some(job.plugin.clone()),
                error: Some(reason.to_string()),
                metadata: sqlx::types::Json(serde_json::json!({
                    "job_id": job.id, "kind": job.kind, "attempts": job.attempts,
                })),
                ..AuditEntry::new("job_dead", "dead")
            });
        }
        if repeats {
            self.finish(job, Some(reason)).await;
        } else if let Err(error) = self.store.jobs_set_aside(job.id, &self.owner, reason).await {
            tracing::error!(job_id = job.id, %error, "could not set the job aside; it is retried after its lease");
        }
    }

    /// Keeps the lease of a running job alive; never returns.
    async fn renew(&self, id: i64) -> std::convert::Infallible {
        loop {
            tokio::time::sleep(LEASE / 3).await;
            let until = now_ms() + LEASE.as_millis() as i64;
            match self.store.jobs_renew(id, &self.owner, until).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    job_id = id,
                    "the lease on a running job ran out; it may fire twice"
                ),
                Err(error) => tracing::warn!(job_id = id, %error, "could not renew a job's lease"),
            }
        }
    }
}

/// One job counted against its plugin's share while it runs.
struct RunningJob {
    runner: Arc<JobRunner>,
    plugin: String,
}

impl RunningJob {
    fn start(runner: &Arc<JobRunner>, plugin: &str) -> Self {
        *lock(&runner.running).entry(plugin.to_string()).or_default() += 1;
        Self {
            runner: runner.clone(),
            plugin: plugin.to_string(),
        }
    }
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        let mut running = lock(&self.runner.running);
        if let Some(count) = running.get_mut(&self.plugin) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                running.remove(&self.plugin);
            }
        }
        drop(running);
        self.runner.finished.notify_one();
    }
}
