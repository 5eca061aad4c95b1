//! Pre-warmed single-use instances: a few never-used instances of each busy
//! plugin, made ahead of time by a background task, so a message pays only
//! for its call. Every instance still serves exactly one message: a call
//! takes one out (or makes one itself when none is ready) and never gives it
//! back; what it leaves behind is dropped by the same task, off the message
//! path too.
//!
//! How many each plugin keeps follows its recent traffic (none once it has
//! been idle a while), bounded per plugin and, across all plugins of an
//! engine, by a number of instances and a memory budget the operator sets.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::infra::sync::lock;

/// Ready instances one plugin may keep, unless `PLUGIN_WARM_INSTANCES` says otherwise.
pub const DEFAULT_WARM_PER_PLUGIN: usize = 4;
/// Memory all ready instances may hold together, unless `PLUGIN_WARM_MEMORY_MB` says otherwise.
pub const DEFAULT_WARM_MEMORY_MB: u64 = 1024;

/// A plugin without a call for this long keeps no ready instance.
const IDLE_AFTER: Duration = Duration::from_secs(60);
/// How often the task looks at traffic when no call wakes it.
const TICK: Duration = Duration::from_secs(1);
/// Ready instances cover the calls expected within this long: about the
/// time to make a large (Python, JavaScript) instance, several times over.
const HORIZON_SECS: f64 = 0.05;
/// Left-behind stores waiting to be dropped past this are dropped by the call.
const MAX_RETIRED: usize = 64;
/// After a message found the pool full, nothing is made ahead for this long.
const STARVED_PAUSE: Duration = Duration::from_secs(1);

/// The operator's bounds on pre-warming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmLimits {
    /// Per plugin; 0 turns pre-warming off.
    pub per_plugin: usize,
    /// All ready instances together, in instance slots.
    pub instances: usize,
    /// All ready instances' linear memory together.
    pub memory_bytes: u64,
}

impl WarmLimits {
    /// `pool_instances`: the engine's slots; ready instances may hold a quarter.
    pub fn new(per_plugin: usize, memory_mb: u64, pool_instances: u32) -> Self {
        Self {
            per_plugin,
            instances: (pool_instances as usize / 4).max(1),
            memory_bytes: memory_mb << 20,
        }
    }
}

/// What every plugin's ready instances hold together, against [`WarmLimits`].
pub struct WarmBudget {
    limits: WarmLimits,
    instances: AtomicUsize,
    bytes: AtomicU64,
    /// Every plugin's instances, to free their pool slots for a call.
    members: Mutex<Vec<Weak<dyn Evict>>>,
    /// Milliseconds since `born` until which no instance is made ahead: the
    /// pool was short of slots for a message.
    starved_until_ms: AtomicU64,
    born: Instant,
}

/// A plugin's instances made ahead or left behind, dropped on demand.
trait Evict: Send + Sync {
    /// Drops them all; true if there was any.
    fn evict(&self) -> bool;
}

impl WarmBudget {
    pub fn new(limits: WarmLimits) -> Self {
        Self {
            limits,
            instances: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            members: Mutex::new(Vec::new()),
            starved_until_ms: AtomicU64::new(0),
            born: Instant::now(),
        }
    }

    /// A message found the pool full: drops every plugin's ready and
    /// left-behind instances (they hold pool slots) and makes none ahead
    /// for a while. True if anything was freed or is still being made (its
    /// slot is freed when it is done): worth trying again.
    pub fn evict_all(&self) -> bool {
        let pause = (self.born.elapsed() + STARVED_PAUSE).as_millis() as u64;
        // First the pause, then the eviction: a task that sees the slots
        // free also sees that it must not take them.
        self.starved_until_ms.fetch_max(pause, Ordering::AcqRel);
        let members: Vec<Arc<dyn Evict>> = lock(&self.members)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let mut freed = false;
        for member in members {
            freed |= member.evict();
        }
        freed || self.instances.load(Ordering::Acquire) > 0
    }

    fn starved(&self) -> bool {
        (self.born.elapsed().as_millis() as u64) < self.starved_until_ms.load(Ordering::Acquire)
    }

    fn join(&self, member: Weak<dyn Evict>) {
        let mut members = lock(&self.members);
        members.retain(|member| member.strong_count() > 0);
        members.push(member);
    }

    pub fn limits(&self) -> WarmLimits {
        self.limits
    }

    /// Ready instances held now by all plugins, and their memory.
    pub fn held(&self) -> (usize, u64) {
        (
            self.instances.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    fn reserve_slot(&self) -> bool {
        self.instances
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.limits.instances).then_some(held + 1)
            })
            .is_ok()
    }

    fn reserve_bytes(&self, bytes: u64) -> bool {
        self.bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + bytes <= self.limits.memory_bytes).then_some(held + bytes)
            })
            .is_ok()
    }

    fn release(&self, bytes: u64) {
        self.instances.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Makes one instance, and says how much memory it holds.
pub type MakeInstance<T> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<(T, u64)>> + Send>> + Send + Sync>;

/// One plugin's ready instances and the task that keeps them.
pub struct WarmInstances<T: Send + 'static> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    make: MakeInstance<T>,
    budget: Arc<WarmBudget>,
    ready: Mutex<Vec<(T, u64)>>,
    retired: Mutex<Vec<Box<dyn Send>>>,
    wake: tokio::sync::Notify,
    calls: AtomicU64,
    hits: AtomicU64,
    /// Milliseconds since `born` of the latest call.
    last_call_ms: AtomicU64,
    born: Instant,
    started: AtomicBool,
    discarded: AtomicBool,
}

impl<T: Send + 'static> WarmInstances<T> {
    pub fn new(budget: Arc<WarmBudget>, make: MakeInstance<T>) -> Self {
        let instances = Self {
            shared: Arc::new(Shared {
                make,
                budget,
                ready: Mutex::new(Vec::new()),
                retired: Mutex::new(Vec::new()),
                wake: tokio::sync::Notify::new(),
                calls: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                last_call_ms: AtomicU64::new(0),
                born: Instant::now(),
                started: AtomicBool::new(false),
                discarded: AtomicBool::new(false),
            }),
        };
        let member: Arc<dyn Evict> = instances.shared.clone();
        instances.shared.budget.join(Arc::downgrade(&member));
        instances
    }

    /// What every plugin's instances hold together; its `evict_all` frees
    /// them for a call that found the pool full.
    pub fn budget(&self) -> &Arc<WarmBudget> {
        &self.shared.budget
    }

    /// A never-used instance if one is ready. Either way the call is
    /// counted and the task woken (started on the first call) to make more.
    pub fn take(&self) -> Option<T> {
        let shared = &self.shared;
        if shared.budget.limits.per_plugin == 0 || shared.discarded.load(Ordering::Relaxed) {
            return None;
        }
        shared.calls.fetch_add(1, Ordering::Relaxed);
        shared
            .last_call_ms
            .store(shared.born.elapsed().as_millis() as u64, Ordering::Relaxed);
        let taken = lock(&shared.ready).pop();
        if !shared.started.swap(true, Ordering::AcqRel) {
            self.start();
        }
        shared.wake.notify_one();
        taken.map(|(instance, bytes)| {
            shared.budget.release(bytes);
            shared.hits.fetch_add(1, Ordering::Relaxed);
            instance
        })
    }

    /// What a call leaves behind (its used instance), dropped by the task.
    pub fn retire(&self, used: impl Send + 'static) {
        let shared = &self.shared;
        if !shared.started.load(Ordering::Acquire) || shared.discarded.load(Ordering::Relaxed) {
            return drop(used);
        }
        let mut retired = lock(&shared.retired);
        if retired.len() >= MAX_RETIRED {
            drop(retired);
            return drop(used);
        }
        retired.push(Box::new(used));
    }

    /// Instances ready now.
    pub fn ready(&self) -> usize {
        lock(&self.shared.ready).len()
    }

    /// Calls that found an instance ready.
    pub fn hits(&self) -> u64 {
        self.shared.hits.load(Ordering::Relaxed)
    }

    /// Drops every ready instance and stops making more (a reload replaced
    /// or removed this version).
    pub fn discard(&self) {
        self.shared.discarded.store(true, Ordering::Release);
        self.shared.clear();
        self.shared.wake.notify_one();
    }

    fn start(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(&self.shared);
        runtime.spawn(keep_ready(weak));
    }
}

impl<T: Send + 'static> Drop for WarmInstances<T> {
    fn drop(&mut self) {
        self.discard();
    }
}

impl<T: Send> Evict for Shared<T> {
    fn evict(&self) -> bool {
        let any = !lock(&self.ready).is_empty() || !lock(&self.retired).is_empty();
        self.clear();
        any
    }
}

impl<T> Shared<T> {
    fn clear(&self) {
        let ready = std::mem::take(&mut *lock(&self.ready));
        for (instance, bytes) in ready {
            self.budget.release(bytes);
            drop(instance);
        }
        lock(&self.retired).clear();
    }

    /// How many to keep: none when idle, else enough for the calls expected
    /// while one is being made, at least one, at most the per-plugin bound.
    fn target(&self, rate: f64) -> usize {
        let now = self.born.elapsed().as_millis() as u64;
        let last = self.last_call_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) > IDLE_AFTER.as_millis() as u64 {
            return 0;
        }
        ((rate * HORIZON_SECS).ceil() as usize).clamp(1, self.budget.limits.per_plugin)
    }
}

/// The background task of one plugin: drops what calls left behind, trims
/// or tops up the ready instances, until the plugin is discarded or gone.
async fn keep_ready<T: Send + 'static>(weak: Weak<Shared<T>>) {
    let mut rate = 0.0_f64;
    let mut counted = (Instant::now(), 0_u64);
    loop {
        let Some(shared) = weak.upgrade() else { return };
        if shared.discarded.load(Ordering::Acquire) {
            shared.clear();
            return;
        }
        let retired = std::mem::take(&mut *lock(&shared.retired));
        drop(retired);

        // Calls per second, smoothed over the last few rounds.
        let calls = shared.calls.load(Ordering::Relaxed);
        let elapsed = counted.0.elapsed().as_secs_f64();
        if elapsed >= 0.01 {
            let now_rate = (calls - counted.1) as f64 / elapsed;
            rate = if rate == 0.0 {
                now_rate
            } else {
                0.7 * rate + 0.3 * now_rate
            };
            counted = (Instant::now(), calls);
        }
        let target = shared.target(rate);
        trim(&shared, target);
        while lock(&shared.ready).len() < target && !shared.discarded.load(Ordering::Acquire) {
            if shared.budget.starved() || !shared.budget.reserve_slot() {
                break;
            }
            let make = shared.make.clone();
            let runtime = tokio::runtime::Handle::current();
            // Instantiating a large component copies megabytes: keep it off
            // the threads that run messages.
            let made = tokio::task::spawn_blocking(move || runtime.block_on(make()))
                .await
                .ok()
                .flatten();
            let Some((instance, bytes)) = made else {
                shared.budget.release(0);
                break;
            };
            // A message found the pool full meanwhile: give the slot back.
            if shared.budget.starved() || !shared.budget.reserve_bytes(bytes) {
                shared.budget.release(0);
                break;
            }
            let mut ready = lock(&shared.ready);
            // Checked under the lock `discard` clears under: once it has
            // returned, nothing is added.
            if shared.discarded.load(Ordering::Acquire) {
                drop(ready);
                shared.budget.release(bytes);
                return;
            }
            ready.push((instance, bytes));
        }
        // Dropping the plugin discards its instances and wakes this.
        let _ = tokio::time::timeout(TICK, shared.wake.notified()).await;
    }
}

fn trim<T>(shared: &Shared<T>, target: usize) {
    let extra: Vec<(T, u64)> = {
        let mut ready = lock(&shared.ready);
        let keep = ready.len().min(target);
        ready.drain(keep..).collect()
    };
    for (instance, bytes) in extra {
        shared.budget.release(bytes);
        drop(instance);
    }
}
