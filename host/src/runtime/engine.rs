//! One wasmtime `Engine` for the process: pooling allocator, epoch
//! interruption driven by a ticker thread, async host functions.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::budget::BudgetDefaults;
use super::cache::{CompileCache, CompileStats};
use super::call::{MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES};
use super::capability::CapabilityTable;
use super::settings::SettingOverrides;
use super::warm::{DEFAULT_WARM_MEMORY_MB, DEFAULT_WARM_PER_PLUGIN, WarmBudget, WarmLimits};

/// How often the epoch advances; deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The largest `memory_mb` a manifest may ask for; the pool reserves slots of this size.
pub const MAX_PLUGIN_MEMORY_MB: u64 = 1024;

/// Plugin instances that may be alive at the same time (messages in flight),
/// unless `PLUGIN_POOL_INSTANCES` says otherwise.
pub const DEFAULT_POOL_INSTANCES: u32 = 256;

/// Freed slots are returned to the OS in batches of this many.
const DECOMMIT_BATCH: usize = 64;

/// Bytes of each memory and table reset by memset instead of madvise.
const KEEP_RESIDENT_BYTES: usize = 64 << 10;

pub struct PluginEngine {
    engine: Engine,
    cache: Option<CompileCache>,
    stats: CompileStats,
    capabilities: CapabilityTable,
    budget_defaults: BudgetDefaults,
    setting_overrides: SettingOverrides,
    warm_budget: Arc<WarmBudget>,
    pool_instances: u32,
    ticker_stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

/// How instance memory is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots reused call after call (the default).
    Pooling,
    /// mmap per instance (what a host without the pool would do; benchmarks compare).
    OnDemand,
}

impl PluginEngine {
    /// `cache_dir`: where compiled components are kept between runs (none:
    /// always compile); `capabilities`: what manifests may grant.
    pub fn new(
        cache_dir: Option<std::path::PathBuf>,
        capabilities: CapabilityTable,
    ) -> anyhow::Result<Self> {
        Self::with_allocation(cache_dir, capabilities, Allocation::Pooling)
    }

    /// A pool of `instances` slots: calls past it are answered "busy".
    pub fn with_pool_size(
        cache_dir: Option<std::path::PathBuf>,
        capabilities: CapabilityTable,
        instances: u32,
    ) -> anyhow::Result<Self> {
        Self::build(cache_dir, capabilities, Some(instances))
    }

    pub fn with_allocation(
        cache_dir: Option<std::path::PathBuf>,
        capabilities: CapabilityTable,
        allocation: Allocation,
    ) -> anyhow::Result<Self> {
        let pool = (allocation == Allocation::Pooling).then_some(DEFAULT_POOL_INSTANCES);
        Self::build(cache_dir, capabilities, pool)
    }

    fn build(
        cache_dir: Option<std::path::PathBuf>,
        capabilities: CapabilityTable,
        pool_instances: Option<u32>,
    ) -> anyhow::Result<Self> {
        let pooling = pool_instances.map(pooling_config);
        let engine = match Engine::new(&base_config(pooling)) {
            Ok(engine) => engine,
            Err(error) => {
                // Some sandboxes refuse the pool's large virtual reservation;
                // on-demand allocation is slower but works everywhere.
                tracing::warn!(%error, "pooling allocator unavailable, using on-demand allocation");
                Engine::new(&base_config(None))
                    .map_err(anyhow::Error::from)
                    .context("creating the wasmtime engine")?
            }
        };
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })
                .context("starting the epoch ticker thread")?
        };
        let cache = cache_dir.and_then(|dir| match CompileCache::open(dir.clone(), &engine) {
            Ok(cache) => Some(cache),
            Err(error) => {
                // Said once, at start: plugins still load, each compiled afresh.
                tracing::warn!(
                    error = %format!("{error:#}"),
                    dir = %dir.display(),
                    "the compile cache is not used: every plugin is compiled at load"
                );
                None
            }
        });
        Ok(Self {
            engine,
            cache,
            stats: CompileStats::default(),
            capabilities,
            budget_defaults: BudgetDefaults::new(),
            setting_overrides: SettingOverrides::new(),
            warm_budget: Arc::new(WarmBudget::new(WarmLimits::new(
                DEFAULT_WARM_PER_PLUGIN,
                DEFAULT_WARM_MEMORY_MB,
                pool_instances.unwrap_or(DEFAULT_POOL_INSTANCES),
            ))),
            pool_instances: pool_instances.unwrap_or(DEFAULT_POOL_INSTANCES),
            ticker_stop,
            ticker: Some(ticker),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Component instances alive now (calls in flight), when pooling.
    pub fn instances_in_use(&self) -> u64 {
        self.engine
            .pooling_allocator_metrics()
            .map_or(0, |metrics| metrics.component_instances())
    }

    /// The operator's per-call budgets (`PLUGIN_<KEY>`), for manifests that set none.
    pub fn with_budget_defaults(mut self, defaults: BudgetDefaults) -> Self {
        self.budget_defaults = defaults;
        self
    }

    pub fn budget_defaults(&self) -> &BudgetDefaults {
        &self.budget_defaults
    }

    /// The operator's `PLUGIN_<PLUGIN>_<KEY>` settings, applied at every load.
    pub fn with_setting_overrides(mut self, overrides: SettingOverrides) -> Self {
        self.setting_overrides = overrides;
        self
    }

    pub fn setting_overrides(&self) -> &SettingOverrides {
        &self.setting_overrides
    }

    /// `PLUGIN_WARM_INSTANCES` per plugin (0: off) and `PLUGIN_WARM_MEMORY_MB`
    /// for all: how many never-used instances are kept ready. Set before
    /// plugins are loaded.
    pub fn with_warm_limits(mut self, per_plugin: usize, memory_mb: u64) -> Self {
        self.warm_budget = Arc::new(WarmBudget::new(WarmLimits::new(
            per_plugin,
            memory_mb,
            self.pool_instances,
        )));
        self
    }

    /// What all plugins' ready instances hold, against the operator's bounds.
    pub fn warm_budget(&self) -> &Arc<WarmBudget> {
        &self.warm_budget
    }

    /// What manifests may grant, as the host's capability table lists it.
    pub fn capabilities(&self) -> CapabilityTable {
        self.capabilities
    }

    pub fn stats(&self) -> &CompileStats {
        &self.stats
    }

    /// Compiles a component, or takes it from the compile cache.
    pub fn component(&self, bytes: &[u8], content_hash: &str) -> wasmtime::Result<Component> {
        match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, bytes, content_hash, &self.stats),
            None => {
                let component = Component::new(&self.engine, bytes)?;
                self.stats.count_compiled();
                Ok(component)
            }
        }
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

fn base_config(pooling: Option<PoolingAllocationConfig>) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // Copy-on-write images save a copy at instantiation but cost a page
    // fault and a cross-CPU TLB flush on the first write to each page; our
    // plugins are small and write to most of their data, so copying wins.
    config.memory_init_cow(false);
    if let Some(pooling) = pooling {
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    }
    config
}

fn pooling_config(instances: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(instances)
        .total_core_instances(instances * 8)
        .total_memories(instances * 2)
        .total_tables(instances * 8)
        .total_stacks(instances)
        // A component that needs more than a call may use is refused at load.
        .max_core_instances_per_component(MAX_CORE_INSTANCES as u32)
        .max_memories_per_component(MAX_MEMORIES as u32)
        .max_tables_per_component(MAX_TABLES as u32)
        .max_memory_size((MAX_PLUGIN_MEMORY_MB as usize) << 20);
    // Measured with `just bench` (docs/benchmarks.md), 2 cores: resetting a
    // slot with one madvise per call made every call pay a syscall and a
    // TLB shootdown across threads (p50 35 µs, and both cores together were
    // slower than one). Batching the decommits and keeping the first 64 KiB
    // resident (zeroed by memset: a Rust guest's hot stack and data pages)
    // brought /start to ~21 µs and ~70k msg/s on both cores.
    pool.decommit_batch_size(DECOMMIT_BATCH)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES);
    pool
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::budget::CallBudgets;
    use super::super::call::CallState;
    use super::*;

    /// Two 40 MiB memories under a 64 MiB cap, through wasmtime itself: the
    /// limiter sees a memory being created (not only grown), so the sum holds.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_component_cannot_get_the_cap_once_per_memory() {
        use wasmtime::component::{Component, Linker};

        let engine = PluginEngine::new(None, &[]).unwrap();
        let one = "(core module $m (memory 640)) (core instance (instantiate $m))";
        for (memories, fits) in [(1, true), (2, false)] {
            let text = format!("(component {})", one.repeat(memories));
            let text = text.replacen("$m", "$m0", 2);
            let text = text.replacen("$m", "$m1", 2);
            let bytes = wat::parse_str(&text).unwrap();
            let component = Component::new(engine.engine(), bytes).unwrap();
            let ctx = super::super::call::tests::test_context();
            let state = CallState::new(
                "p".into(),
                Arc::from([]),
                ctx,
                64 << 20,
                CallBudgets::new(&[]),
                Arc::from([]),
                crate::runtime::call::CallGrants::default(),
            );
            let mut store = wasmtime::Store::new(engine.engine(), state);
            store.limiter(|state| state.limiter());
            store.set_epoch_deadline(u64::MAX / 2);
            let linker = Linker::<CallState>::new(engine.engine());
            let instantiated = linker.instantiate_async(&mut store, &component).await;
            assert_eq!(instantiated.is_ok(), fits, "{memories} memories");
            assert_eq!(store.data().memory_exceeded(), !fits, "{memories} memories");
        }
    }
}
