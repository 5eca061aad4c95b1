//! On-disk cache of compiled components, keyed by the component's content
//! hash and the engine's compatibility hash, so a restart with unchanged
//! plugins does not recompile.
//!
//! An entry is native code that wasmtime loads without validating it
//! (`Component::deserialize` is `unsafe`), so it is trusted only when this
//! host provably wrote it. A checksum stored in the entry cannot prove that:
//! whoever can write the cache directory can write a matching checksum, so it
//! shows only that the bytes are intact. Instead every entry carries an
//! HMAC-SHA256 under a random key kept *beside* the directory
//! (`<PLUGIN_CACHE_DIR>.key`, mode 0600), over the entry's identity and its
//! bytes: an entry that was altered, forged, or moved to another plugin's
//! name fails it, is deleted and rebuilt. And since a directory others can
//! write is a standing invitation, one writable by group or others, or owned
//! by another user, is not used at all (the host compiles at every load).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use anyhow::Context as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

const KEY_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// Bound into every MAC, so a MAC made for something else under the same
/// key (or an older entry format) never verifies here.
const MAC_DOMAIN: &[u8] = b"wasmbot compile cache v2\0";

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
    /// Entries found unauthenticated, corrupt or stale, and rebuilt.
    pub fn cache_rejected(&self) -> u64 {
        self.cache_rejected.load(Ordering::Relaxed)
    }
}

pub struct CompileCache {
    dir: PathBuf,
    engine_hash: String,
    key: Zeroizing<[u8; KEY_LEN]>,
}

/// SHA-256 of a component's bytes, hex: its identity in the cache and in `plugins list`.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl CompileCache {
    /// The cache in `dir` (created, mode 0700, when missing) with its key
    /// from `<dir>.key` (created when missing). An error says why the
    /// directory or the key cannot be trusted; the caller then compiles
    /// without a cache.
    pub fn open(dir: PathBuf, engine: &Engine) -> anyhow::Result<Self> {
        create_private_dir(&dir)?;
        check_private(&dir, Private::Dir)?;
        let key_path = key_path(&dir)?;
        let key = load_or_create_key(&key_path)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir,
            engine_hash: format!("{:016x}", hasher.finish()),
            key,
        })
    }

    fn entry_path(&self, content_hash: &str) -> PathBuf {
        self.dir
            .join(format!("{content_hash}-{}.cwasm", self.engine_hash))
    }

    /// The MAC of an entry: the key proves this host wrote it, the identity
    /// (content and engine hash) that it was written for this file name.
    fn mac(&self, content_hash: &str, artifact: &[u8]) -> HmacSha256 {
        // Cannot fail: HMAC takes keys of any length.
        let mut mac = HmacSha256::new_from_slice(&self.key[..])
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(MAC_DOMAIN);
        mac.update(content_hash.as_bytes());
        mac.update(b"\0");
        mac.update(self.engine_hash.as_bytes());
        mac.update(b"\0");
        mac.update(artifact);
        mac
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
        if let Some(component) = self.read_entry(engine, &path, content_hash, stats) {
            stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(component);
        }
        let component = Component::new(engine, bytes)?;
        stats.count_compiled();
        if let Err(error) = self.write_entry(&component, &path, content_hash) {
            // A cache that cannot be written costs time on the next start, nothing else.
            tracing::warn!(error = %format!("{error:#}"), path = %path.display(), "cannot write the compile cache");
        }
        Ok(component)
    }

    fn read_entry(
        &self,
        engine: &Engine,
        path: &Path,
        content_hash: &str,
        stats: &CompileStats,
    ) -> Option<Component> {
        // Read into memory rather than mapping the file: the bytes checked
        // are then the bytes loaded, whatever happens to the file meanwhile.
        let data = std::fs::read(path).ok()?;
        let authentic = data.len() > MAC_LEN
            && self
                .mac(content_hash, &data[MAC_LEN..])
                .verify_slice(&data[..MAC_LEN])
                .is_ok();
        let component = if authentic {
            // SAFETY: the MAC verifies under a key only this host holds, over
            // this entry's content and engine hash, so these are the bytes
            // `Component::serialize` produced for this very component on an
            // engine of this configuration (the precondition of `deserialize`).
            unsafe { Component::deserialize(engine, &data[MAC_LEN..]) }.ok()
        } else {
            None
        };
        if component.is_none() {
            stats.cache_rejected.fetch_add(1, Ordering::Relaxed);
            let why = if authentic {
                "stale (wasmtime refused it)"
            } else {
                "not authenticated (damaged, forged, or written under another key)"
            };
            tracing::warn!(path = %path.display(), "compile cache entry is {why}: rebuilding it");
            let _ = std::fs::remove_file(path);
        }
        component
    }

    fn write_entry(
        &self,
        component: &Component,
        path: &Path,
        content_hash: &str,
    ) -> anyhow::Result<()> {
        let artifact = component
            .serialize()
            .map_err(anyhow::Error::from)
            .context("serializing the compiled component")?;
        let mac = self.mac(content_hash, &artifact).finalize().into_bytes();
        let mut data = Vec::with_capacity(MAC_LEN + artifact.len());
        data.extend_from_slice(&mac);
        data.extend_from_slice(&artifact);
        // Write beside and rename, so a reader never sees half an entry.
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &data).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        Ok(())
    }
}

/// `<dir>.key`: outside the directory, so writing the cache is not enough to
/// forge an entry.
fn key_path(dir: &Path) -> anyhow::Result<PathBuf> {
    let named = if dir.file_name().is_some() {
        dir.to_path_buf()
    } else {
        // `.`, `..` or a trailing `..`: name the directory it resolves to.
        dir.canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?
    };
    let (Some(parent), Some(name)) = (named.parent(), named.file_name()) else {
        anyhow::bail!(
            "{} has no parent to keep the cache key in; point PLUGIN_CACHE_DIR at a folder of its own",
            dir.display()
        );
    };
    let mut key_name = name.to_os_string();
    key_name.push(".key");
    Ok(parent.join(key_name))
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error).with_context(|| format!("creating {}", dir.display())),
    }
}

/// The key: 32 random bytes, created once with mode 0600 and only then
/// published under its name, so a concurrent start never reads half a key.
fn load_or_create_key(path: &Path) -> anyhow::Result<Zeroizing<[u8; KEY_LEN]>> {
    if !path.exists() {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(&mut key[..]);
        let tmp = path.with_extension(format!("key.tmp{}", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&tmp)
            .and_then(|mut file| file.write_all(&key[..]).and_then(|()| file.sync_all()))
            .with_context(|| format!("writing the compile cache key {}", tmp.display()));
        // A link fails when the name exists: another process that started
        // at the same time published its key first, and that one is used.
        let published = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(error) => Err(error).with_context(|| format!("creating {}", path.display())),
        });
        let _ = std::fs::remove_file(&tmp);
        published?;
    }
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("opening the compile cache key {}", path.display()))?;
    // Checked on the open file, so a swap after the check changes nothing.
    check_private_file(&file, path)?;
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    let mut rest = Vec::new();
    file.read_exact(&mut key[..])
        .and_then(|()| file.read_to_end(&mut rest))
        .with_context(|| format!("reading the compile cache key {}", path.display()))?;
    if !rest.is_empty() {
        anyhow::bail!(
            "{} is not a compile cache key ({KEY_LEN} bytes); delete it to have a new one made",
            path.display()
        );
    }
    Ok(key)
}

#[derive(Clone, Copy)]
enum Private {
    /// Nobody else may write in it.
    Dir,
    /// Nobody else may read or write it.
    KeyFile,
}

fn check_private(path: &Path, kind: Private) -> anyhow::Result<()> {
    let metadata =
        std::fs::metadata(path).with_context(|| format!("inspecting {}", path.display()))?;
    if matches!(kind, Private::Dir) && !metadata.is_dir() {
        anyhow::bail!("{} is not a directory", path.display());
    }
    check_owner_and_mode(&metadata, path, kind)
}

fn check_private_file(file: &std::fs::File, path: &Path) -> anyhow::Result<()> {
    let metadata = file
        .metadata()
        .with_context(|| format!("inspecting {}", path.display()))?;
    if !metadata.is_file() {
        anyhow::bail!("{} is not a file", path.display());
    }
    check_owner_and_mode(&metadata, path, Private::KeyFile)
}

#[cfg(unix)]
fn check_owner_and_mode(
    metadata: &std::fs::Metadata,
    path: &Path,
    kind: Private,
) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if metadata.uid() != me {
        anyhow::bail!(
            "{} belongs to user {}, not to this process's user {me}",
            path.display(),
            metadata.uid()
        );
    }
    let mode = metadata.mode() & 0o777;
    let (refused, risk, fix) = match kind {
        Private::Dir => (0o022, "others could plant code in it", "chmod go-w"),
        Private::KeyFile => (0o077, "others could read it and forge entries", "chmod 600"),
    };
    if mode & refused != 0 {
        anyhow::bail!("{} has mode {mode:o}: {risk} (`{fix}` it)", path.display());
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_owner_and_mode(_: &std::fs::Metadata, _: &Path, _: Private) -> anyhow::Result<()> {
    // No unix permissions to inspect; the MAC still guards every entry.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_lives_beside_the_folder_never_inside() {
        for dir in [
            "data/plugin-cache",
            "data/plugin-cache/",
            "/var/cache/wasmbot",
        ] {
            let key = key_path(Path::new(dir)).unwrap();
            assert_eq!(
                key,
                PathBuf::from(format!("{}.key", dir.trim_end_matches('/'))),
                "{dir}"
            );
            assert!(!key.starts_with(dir), "{dir}");
        }
        assert!(key_path(Path::new("/")).is_err());
    }

    #[test]
    fn two_starts_share_one_key() {
        let data = tempfile::tempdir().unwrap();
        let path = data.path().join("cache.key");
        let first = load_or_create_key(&path).unwrap();
        let second = load_or_create_key(&path).unwrap();
        assert_eq!(*first, *second);
        assert_ne!(*first, [0u8; KEY_LEN]);
        let leftovers = std::fs::read_dir(data.path()).unwrap().count();
        assert_eq!(leftovers, 1, "the temporary key file is removed");
    }
}
