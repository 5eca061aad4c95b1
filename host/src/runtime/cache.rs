//! On-disk cache of compiled components, keyed by the component's content
//! hash and the engine's compatibility hash, so a restart with unchanged
//! plugins does not recompile. Every entry carries a SHA-256 of its own
//! bytes: a truncated or altered entry is detected, deleted and rebuilt,
//! never handed to wasmtime unchecked.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Counts what loading did, for tests, `plugins list` and benchmarks.
#[derive(Default, Debug)]
pub struct CompileStats {
    compiled: AtomicU64,
    cache_hits: AtomicU64,
    cache_rejected: AtomicU64,
}

impl CompileStats {
    pub(super) fn count_compiled(&self) {
        self.compiled.fetch_add(1, Ordering::Relaxed);
    }
    pub fn compiled(&self) -> u64 {
        self.compiled.load(Ordering::Relaxed)
    }
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }
    /// Entries found corrupt or stale and rebuilt.
    pub fn cache_rejected(&self) -> u64 {
        self.cache_rejected.load(Ordering::Relaxed)
    }
}

pub struct CompileCache {
    dir: PathBuf,
    engine_hash: String,
}

/// SHA-256 of a component's bytes, hex: its identity in the cache and in `plugins list`.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl CompileCache {
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_hash: format!("{:016x}", hasher.finish()),
        }
    }

    fn entry_path(&self, content_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{content_hash}-{}.cwasm", self.engine_hash))
    }

    /// The compiled component from the cache, or compiled now and cached.
    pub fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        content_hash: &str,
        stats: &CompileStats,
    ) -> wasmtime::Result<Component> {
        let path = self.entry_path(content_hash);
        if let Some(component) = self.read_entry(engine, &path, stats) {
            stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(component);
        }
        let component = Component::new(engine, bytes)?;
        stats.count_compiled();
        if let Err(error) = self.write_entry(&component, &path) {
            // A cache that cannot be written costs time on the next start, nothing else.
            tracing::warn!(%error, path = %path.display(), "cannot write the compile cache");
        }
        Ok(component)
    }

    fn read_entry(&self, engine: &Engine, path: &Path, stats: &CompileStats) -> Option<Component> {
        let data = std::fs::read(path).ok()?;
        let verified = data.len() > 32 && Sha256::digest(&data[32..]).as_slice() == &data[..32];
        let component = if verified {
            // SAFETY: the artifact was written by `Component::serialize` of
            // this engine configuration (the engine hash is in the file name)
            // and its SHA-256 matches, so it is byte-for-byte what we wrote.
            unsafe { Component::deserialize(engine, &data[32..]) }.ok()
        } else {
            None
        };
        if component.is_none() {
            stats.cache_rejected.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(path = %path.display(), "compile cache entry is corrupt or stale: rebuilding it");
            let _ = std::fs::remove_file(path);
        }
        component
    }

    fn write_entry(&self, component: &Component, path: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let artifact = component.serialize().map_err(anyhow::Error::from)?;
        let mut data = Vec::with_capacity(32 + artifact.len());
        data.extend_from_slice(&Sha256::digest(&artifact));
        data.extend_from_slice(&artifact);
        // Write beside and rename, so a reader never sees half an entry.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &data)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }
}
