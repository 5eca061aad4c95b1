//! The state of one plugin call: what the store knows while `handle` runs.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// What the guest may write to stdout/stderr in one call before writes fail.
const OUTPUT_CAPACITY: usize = 64 * 1024;
/// Table elements a plugin may grow to; Rust guests need a few hundred.
const MAX_TABLE_ELEMENTS: usize = 100_000;

pub struct CallState {
    plugin: Arc<str>,
    correlation_id: Arc<str>,
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

impl CallState {
    /// A WASI context with nothing ambient: no environment, arguments,
    /// directories or network; stdout and stderr are captured for the log.
    pub fn new(plugin: Arc<str>, correlation_id: Arc<str>, memory_bytes: u64) -> Self {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPACITY);
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build();
        Self {
            plugin,
            correlation_id,
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap {
                max_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
                exceeded: false,
            },
            stdout,
            stderr,
        }
    }

    pub fn plugin(&self) -> &str {
        &self.plugin
    }

    pub fn correlation_id(&self) -> &str {
        &self.correlation_id
    }

    pub(crate) fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.memory
    }

    pub(crate) fn memory_exceeded(&self) -> bool {
        self.memory.exceeded
    }

    /// What the guest printed, as log lines tagged with the plugin.
    pub(crate) fn forward_output(&self) {
        for (stream, pipe) in [("stdout", &self.stdout), ("stderr", &self.stderr)] {
            let bytes = pipe.contents();
            for line in String::from_utf8_lossy(&bytes).lines() {
                if line.trim().is_empty() {
                    continue;
                }
                if stream == "stderr" {
                    tracing::warn!(target: "plugin", plugin = %self.plugin, stream, "{line}");
                } else {
                    tracing::info!(target: "plugin", plugin = %self.plugin, stream, "{line}");
                }
            }
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Enforces the manifest's `memory_mb` and remembers that it was hit, so the
/// resulting trap can be reported as "out of memory" rather than a crash.
struct MemoryCap {
    max_bytes: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded = true;
            wasmtime::bail!(
                "plugin memory limit of {} MiB exceeded",
                self.max_bytes >> 20
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
