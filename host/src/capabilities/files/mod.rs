//! The `files` grant: a folder of the plugin's own, `FILES_DIR/PLUGIN/`
//! (default `data/files/PLUGIN/`), preopened into WASI at `/data`, so
//! plain `std::fs` works inside it and nothing outside it exists for the
//! plugin (wasmtime resolves every path with cap-std, beneath the folder).
//! It survives reloads and restarts. A quota in bytes
//! (`limits.files_kb`, 50 MiB unless set) is enforced on every write
//! (`quota_fs.rs`), shared by the plugin's calls in flight; a plugin
//! without the grant has no folder at all.

mod quota_fs;
mod room;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use cap_std::fs::Dir;
use wasmtime::component::Linker;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use self::quota_fs::{QuotaFilesystem, QuotaFs};
use self::room::{FolderLedger, FolderRoom};
use crate::runtime::{Budget, CallSetup, CallState, Extension, Grant, GrantInput};

/// What a plugin's folder may hold, in KiB (entries count 4 KiB each).
pub static FILES_KB: Budget = Budget::new(
    "files_kb",
    "KiB in the plugin's folder",
    50 * 1024,
    1024 * 1024,
);

/// Where the folder appears inside the plugin.
pub const GUEST_PATH: &str = "/data";

/// `FILES_DIR` when unset.
pub const DEFAULT_FILES_DIR: &str = "data/files";

/// The quota-checking filesystem replaces the one every plugin gets.
pub fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = wasmtime_wasi::p2::bindings::filesystem::types::add_to_linker::<
        CallState,
        QuotaFilesystem,
    >(linker, |state| {
        let (inner, room) = state.filesystem_and_extension::<Arc<FolderRoom>>();
        QuotaFs {
            inner,
            // Prepared for every call of a plugin with this grant; a call
            // without one has no room at all.
            room: room
                .cloned()
                .unwrap_or_else(|| Arc::new(FolderRoom::refusing(Arc::from("?")))),
        }
    });
    linker.allow_shadowing(false);
    linked
}

/// Nothing to keep of the manifest: the folder's running total is kept
/// per folder (`FolderLedger`), shared by every version of the plugin.
pub fn configure(_manifest: &GrantInput<'_>) -> Result<Grant, String> {
    Ok(Arc::new(()))
}

/// The plugin's folder, created if missing, preopened, and measured on
/// the plugin's first call in this process.
pub fn prepare(
    setup: &CallSetup<'_>,
    wasi: &mut WasiCtxBuilder,
) -> anyhow::Result<Option<Extension>> {
    let root = folder(setup);
    // Made on the plugin's first call; every later call only opens it.
    let dir = match Dir::open_ambient_dir(&root, cap_std::ambient_authority()) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(&root)
                .with_context(|| format!("creating the files folder {}", root.display()))?;
            Dir::open_ambient_dir(&root, cap_std::ambient_authority())
        }
        opened => opened,
    }
    .with_context(|| format!("opening the files folder {}", root.display()))?;
    let quota = u64::from(setup.limit(&FILES_KB)) << 10;
    let room = FolderRoom::begin(
        Arc::from(setup.plugin),
        quota,
        FolderLedger::of(&root),
        &dir,
    )
    .with_context(|| format!("measuring the files folder {}", root.display()))?;
    wasi.preopened_dir(&root, GUEST_PATH, FsPerms::ReadWrite)
        .map_err(|error| anyhow::anyhow!("preopening {}: {error:#}", root.display()))?;
    let room = Arc::new(room);
    Ok(Some(Box::new(room)))
}

/// What `folder` holds as the quota counts it (0 when it does not exist
/// yet), for `plugins list`.
pub fn usage_of(folder: &std::path::Path) -> std::io::Result<u64> {
    match Dir::open_ambient_dir(folder, cap_std::ambient_authority()) {
        Ok(dir) => room::usage(&dir),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error),
    }
}

fn folder(setup: &CallSetup<'_>) -> PathBuf {
    setup
        .context
        .services
        .files_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FILES_DIR))
        .join(setup.plugin)
}
