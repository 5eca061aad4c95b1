//! `wasi:filesystem/types` for a plugin granted `files`: wasmtime's own
//! implementation, with every call that makes the folder bigger charged to
//! the plugin's running total first (`FolderRoom`), by how much bigger, and
//! a removal given back. Past it the guest gets
//! `insufficient-space` (ENOSPC, "No space left on device") where WASI
//! returns an error code; a refused write on a file's stream fails that
//! stream (wasi-libc reports it as EIO). Everything else is passed through
//! unchanged.

use std::sync::Arc;

use wasmtime::component::{HasData, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    self, ErrorCode, HostDescriptor, HostDirectoryEntryStream,
};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream, FsError, FsResult};

use super::room::{ChargedStream, ENTRY_BYTES, FolderRoom};

/// The filesystem view of one call, with its room.
pub struct QuotaFs<'a> {
    pub inner: WasiFilesystemCtxView<'a>,
    pub room: Arc<FolderRoom>,
}

/// `HasData` for linking [`QuotaFs`].
pub struct QuotaFilesystem;

impl HasData for QuotaFilesystem {
    type Data<'a> = QuotaFs<'a>;
}

/// A second handle to the same descriptor, for a look before the real call.
fn borrow(fd: &Resource<types::Descriptor>) -> Resource<types::Descriptor> {
    Resource::new_borrow(fd.rep())
}

impl QuotaFs<'_> {
    /// Wraps a file's output stream so each write is charged.
    fn charged(
        &mut self,
        stream: Resource<DynOutputStream>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let inner = self.inner.table.delete(stream)?;
        let wrapped: DynOutputStream = Box::new(ChargedStream::new(inner, self.room.clone()));
        Ok(self.inner.table.push(wrapped)?)
    }
}

impl QuotaFs<'_> {
    /// A file's size now: one `fstat`, cheaper than wasmtime's `stat` (a
    /// trip through the blocking pool) and callable where nothing awaits.
    fn size_now(&mut self, fd: &Resource<types::Descriptor>) -> FsResult<u64> {
        match self.inner.table.get(fd)? {
            Descriptor::File(file) => Ok(file
                .file
                .metadata()
                .map_err(|error| FsError::from(ErrorCode::from(error)))?
                .len()),
            Descriptor::Dir(_) => Err(ErrorCode::IsDirectory.into()),
        }
    }
}

/// What [`super::room::usage`] counts of an entry besides [`ENTRY_BYTES`].
fn counted_size(stat: &types::DescriptorStat) -> u64 {
    if stat.type_ == types::DescriptorType::RegularFile {
        stat.size
    } else {
        0
    }
}

impl types::Host for QuotaFs<'_> {
    fn convert_error_code(&mut self, err: FsError) -> wasmtime::Result<ErrorCode> {
        types::Host::convert_error_code(&mut self.inner, err)
    }

    fn filesystem_error_code(
        &mut self,
        err: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        types::Host::filesystem_error_code(&mut self.inner, err)
    }
}

impl HostDescriptor for QuotaFs<'_> {
    async fn advise(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
        len: types::Filesize,
        advice: types::Advice,
    ) -> FsResult<()> {
        HostDescriptor::advise(&mut self.inner, fd, offset, len, advice).await
    }

    async fn sync_data(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        HostDescriptor::sync_data(&mut self.inner, fd).await
    }

    async fn get_flags(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<types::DescriptorFlags> {
        HostDescriptor::get_flags(&mut self.inner, fd).await
    }

    async fn get_type(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<types::DescriptorType> {
        HostDescriptor::get_type(&mut self.inner, fd).await
    }

    async fn set_size(
        &mut self,
        fd: Resource<types::Descriptor>,
        size: types::Filesize,
    ) -> FsResult<()> {
        let current = self.size_now(&fd)?;
        self.room.take(size.saturating_sub(current))?;
        if size < current {
            // Not given back: a call at once may be writing past `size`.
            self.room.changed();
        }
        HostDescriptor::set_size(&mut self.inner, fd, size).await
    }

    async fn set_times(
        &mut self,
        fd: Resource<types::Descriptor>,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times(&mut self.inner, fd, atim, mtim).await
    }

    async fn read(
        &mut self,
        fd: Resource<types::Descriptor>,
        len: types::Filesize,
        offset: types::Filesize,
    ) -> FsResult<(Vec<u8>, bool)> {
        HostDescriptor::read(&mut self.inner, fd, len, offset).await
    }

    async fn write(
        &mut self,
        fd: Resource<types::Descriptor>,
        buf: Vec<u8>,
        offset: types::Filesize,
    ) -> FsResult<types::Filesize> {
        // What the file grows by, gap included: it counts at its logical size.
        let current = self.size_now(&fd)?;
        let end = offset.saturating_add(buf.len() as u64);
        self.room.take(end.saturating_sub(current))?;
        if offset < current {
            self.room.changed();
        }
        HostDescriptor::write(&mut self.inner, fd, buf, offset).await
    }

    async fn read_directory(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<types::DirectoryEntryStream>> {
        HostDescriptor::read_directory(&mut self.inner, fd).await
    }

    async fn sync(&mut self, fd: Resource<types::Descriptor>) -> FsResult<()> {
        HostDescriptor::sync(&mut self.inner, fd).await
    }

    async fn create_directory_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        self.room.take(ENTRY_BYTES)?;
        HostDescriptor::create_directory_at(&mut self.inner, fd, path).await
    }

    async fn stat(&mut self, fd: Resource<types::Descriptor>) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat(&mut self.inner, fd).await
    }

    async fn stat_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::DescriptorStat> {
        HostDescriptor::stat_at(&mut self.inner, fd, path_flags, path).await
    }

    async fn set_times_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        atim: types::NewTimestamp,
        mtim: types::NewTimestamp,
    ) -> FsResult<()> {
        HostDescriptor::set_times_at(&mut self.inner, fd, path_flags, path, atim, mtim).await
    }

    async fn link_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path_flags: types::PathFlags,
        old_path: String,
        new_descriptor: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        // The measure counts each link at its file's size.
        let linked = HostDescriptor::stat_at(
            &mut self.inner,
            borrow(&fd),
            old_path_flags,
            old_path.clone(),
        )
        .await?;
        self.room
            .take(ENTRY_BYTES.saturating_add(counted_size(&linked)))?;
        HostDescriptor::link_at(
            &mut self.inner,
            fd,
            old_path_flags,
            old_path,
            new_descriptor,
            new_path,
        )
        .await
    }

    async fn open_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
        oflags: types::OpenFlags,
        flags: types::DescriptorFlags,
    ) -> FsResult<Resource<types::Descriptor>> {
        if oflags.contains(types::OpenFlags::CREATE) {
            self.room.take(ENTRY_BYTES)?;
        }
        if oflags.contains(types::OpenFlags::TRUNCATE) {
            self.room.changed();
        }
        HostDescriptor::open_at(&mut self.inner, fd, path_flags, path, oflags, flags).await
    }

    fn drop(&mut self, fd: Resource<types::Descriptor>) -> wasmtime::Result<()> {
        HostDescriptor::drop(&mut self.inner, fd)
    }

    async fn readlink_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<String> {
        HostDescriptor::readlink_at(&mut self.inner, fd, path).await
    }

    async fn remove_directory_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        HostDescriptor::remove_directory_at(&mut self.inner, fd, path).await?;
        // Only an empty folder can be removed: its entry is all it held.
        self.room.give_back(ENTRY_BYTES);
        Ok(())
    }

    async fn rename_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        old_path: String,
        new_fd: Resource<types::Descriptor>,
        new_path: String,
    ) -> FsResult<()> {
        // A file renamed over another frees it: not given back (a call at
        // once may be removing the same), measured again later.
        self.room.changed();
        HostDescriptor::rename_at(&mut self.inner, fd, old_path, new_fd, new_path).await
    }

    async fn symlink_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        src_path: String,
        dest_path: String,
    ) -> FsResult<()> {
        self.room.take(ENTRY_BYTES)?;
        HostDescriptor::symlink_at(&mut self.inner, fd, src_path, dest_path).await
    }

    async fn unlink_file_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path: String,
    ) -> FsResult<()> {
        // Looked at first, given back once removed: a removal succeeds once,
        // and whatever replaced the file meanwhile was charged when written.
        let removed = HostDescriptor::stat_at(
            &mut self.inner,
            borrow(&fd),
            types::PathFlags::empty(),
            path.clone(),
        )
        .await?;
        HostDescriptor::unlink_file_at(&mut self.inner, fd, path).await?;
        self.room
            .give_back(ENTRY_BYTES.saturating_add(counted_size(&removed)));
        Ok(())
    }

    fn read_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynInputStream>> {
        HostDescriptor::read_via_stream(&mut self.inner, fd, offset)
    }

    fn write_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
        offset: types::Filesize,
    ) -> FsResult<Resource<DynOutputStream>> {
        // A stream that starts past the end makes a gap the measure counts.
        let current = self.size_now(&fd)?;
        self.room.take(offset.saturating_sub(current))?;
        if offset < current {
            self.room.changed();
        }
        let stream = HostDescriptor::write_via_stream(&mut self.inner, fd, offset)?;
        self.charged(stream)
    }

    fn append_via_stream(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<Resource<DynOutputStream>> {
        let stream = HostDescriptor::append_via_stream(&mut self.inner, fd)?;
        self.charged(stream)
    }

    async fn is_same_object(
        &mut self,
        a: Resource<types::Descriptor>,
        b: Resource<types::Descriptor>,
    ) -> wasmtime::Result<bool> {
        HostDescriptor::is_same_object(&mut self.inner, a, b).await
    }

    async fn metadata_hash(
        &mut self,
        fd: Resource<types::Descriptor>,
    ) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash(&mut self.inner, fd).await
    }

    async fn metadata_hash_at(
        &mut self,
        fd: Resource<types::Descriptor>,
        path_flags: types::PathFlags,
        path: String,
    ) -> FsResult<types::MetadataHashValue> {
        HostDescriptor::metadata_hash_at(&mut self.inner, fd, path_flags, path).await
    }
}

impl HostDirectoryEntryStream for QuotaFs<'_> {
    async fn read_directory_entry(
        &mut self,
        stream: Resource<types::DirectoryEntryStream>,
    ) -> FsResult<Option<types::DirectoryEntry>> {
        HostDirectoryEntryStream::read_directory_entry(&mut self.inner, stream).await
    }

    fn drop(&mut self, stream: Resource<types::DirectoryEntryStream>) -> wasmtime::Result<()> {
        HostDirectoryEntryStream::drop(&mut self.inner, stream)
    }
}
