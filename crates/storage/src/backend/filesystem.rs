//! The `filesystem` backend: storage path `/a/b` is the file `<rootdirectory>/a/b`, exactly
//! distribution's mapping, so a tree written by `registry:2` is served unchanged and vice versa.
//!
//! Every operation runs its syscalls in one `spawn_blocking` call, behind a semaphore sized by
//! `maxthreads`, so a burst of requests cannot exhaust tokio's blocking pool. Knows nothing of OCI.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io::{self, ErrorKind, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::driver::{ByteStream, Driver, Error, FileInfo, FileWriter, Result};
use crate::factory::FilesystemParams;
use crate::path::{InvalidPath, StoragePath};

const NAME: &str = "filesystem";
/// Prefix of `put_content`'s temporary files. `~` lies outside the path grammar, so no storage
/// path can name one and listings can drop them without hiding content.
const TEMP_PREFIX: &str = ".wharf-tmp~";
/// distribution's floor for `maxthreads`; smaller values are raised, as it does.
const MIN_THREADS: u64 = 25;
/// Bytes per read: large enough to amortize the hop to the blocking pool, small enough that
/// 32 concurrent pulls hold well under 16 MiB of buffers between them.
const READ_CHUNK: usize = 256 * 1024;
/// Bytes a writer gathers before a syscall, so many small chunks don't become many writes; a
/// whole number of `DIRECT_ALIGN` blocks, so every full buffer can go out with O_DIRECT.
const WRITE_BUFFER: usize = 1024 * 1024;
/// Write buffers lent at once across a driver's writers (two uploads double-buffered, as many
/// as two cores hash at full speed); writers beyond them use `SMALL_WRITE_BUFFER`s. Memory
/// against speed, measured with 32 uploads of 16 MiB at once: 4 kept the server near 36 MiB
/// at 660-760 MiB/s; 64 reached about 830 MiB/s at 85 MiB.
const POOLED_WRITE_BUFFERS: usize = 4;
/// A writer's buffer while the pool has none to lend: still whole blocks for O_DIRECT, a
/// flush per 64 KiB instead of per MiB.
const SMALL_WRITE_BUFFER: usize = 64 * 1024;
/// Small buffers out before a writer beyond the pool makes one instead of two, refilled once
/// its flush lands: 32 uploads at once still double-buffer (4 MiB in all), and hundreds do not
/// hold twice the memory for no gain in speed.
const ROOMY_SMALL_BUFFERS: usize = 64;
/// Where O_DIRECT is refused: bytes a writer lets pile up in the page cache before it starts
/// their writeback in the background, so a large upload's closing fsync finds little left to
/// do. Durability still comes from the fsync at commit.
const WRITEBACK_EVERY: u64 = 32 * 1024 * 1024;
/// Alignment of O_DIRECT offsets, lengths and memory: enough for 512-byte and 4 KiB sectors.
const DIRECT_ALIGN: usize = 4096;

/// Files below a root directory, laid out as distribution's `filesystem` driver lays them out.
#[derive(Debug)]
pub struct FilesystemDriver {
    root: PathBuf,
    limit: Arc<Semaphore>,
    flushes: FlushLocks,
    buffers: Arc<BufferPool>,
    reads: Reads,
}

impl FilesystemDriver {
    /// Opens the tree at `rootdirectory`, creating the directory so a fresh install just works.
    pub async fn new(params: FilesystemParams) -> Result<Self> {
        let root = params.root_directory;
        tokio::fs::create_dir_all(&root)
            .await
            .map_err(|e| Error::io(NAME, &StoragePath::root(), e))?;
        let permits = usize::try_from(params.max_threads.max(MIN_THREADS))
            .unwrap_or(usize::MAX)
            .min(Semaphore::MAX_PERMITS);
        Ok(FilesystemDriver {
            limit: Arc::new(Semaphore::new(permits)),
            flushes: FlushLocks::default(),
            buffers: BufferPool::new(POOLED_WRITE_BUFFERS, ROOMY_SMALL_BUFFERS),
            reads: Reads::new(&root, reads::SETTLE),
            root,
        })
    }

    /// Where `path` lives on disk: the root joined with the path's segments, nothing else.
    fn full_path(&self, path: &StoragePath) -> PathBuf {
        if path.is_root() {
            self.root.clone()
        } else {
            self.root.join(path.relative())
        }
    }

    async fn run<T, F>(&self, f: F) -> io::Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> io::Result<T> + Send + 'static,
    {
        blocking(&self.limit, f).await
    }
}

/// Runs blocking file work on tokio's pool once a `maxthreads` permit is free.
async fn blocking<T, F>(limit: &Arc<Semaphore>, f: F) -> io::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> io::Result<T> + Send + 'static,
{
    let permit = Arc::clone(limit)
        .acquire_owned()
        .await
        .map_err(io::Error::other)?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(io::Error::other)?
}

/// The root is a directory, never a file: file operations on it are refused as distribution does.
fn reject_root(path: &StoragePath) -> Result<()> {
    if path.is_root() {
        return Err(Error::InvalidPath(InvalidPath(path.to_string())));
    }
    Ok(())
}

/// Maps a failed lookup: a file where a directory was expected (or the reverse) means nothing
/// usable is at the path, which object stores report as absent too.
fn lookup_err(path: &StoragePath, e: io::Error) -> Error {
    match e.kind() {
        ErrorKind::NotADirectory | ErrorKind::IsADirectory => {
            Error::NotFound { path: path.clone() }
        }
        _ => Error::io(NAME, path, e),
    }
}

fn file_info(path: StoragePath, meta: &Metadata) -> FileInfo {
    FileInfo {
        path,
        size: if meta.is_dir() { 0 } else { meta.len() },
        modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        is_dir: meta.is_dir(),
    }
}

/// The storage path of a directory entry, or `None` for names that are not content: our temp
/// files and anything outside the grammar (`lost+found` at a mount point, non-UTF-8 names).
fn child_path(dir: &StoragePath, name: OsString) -> Option<StoragePath> {
    let name = name.into_string().ok()?;
    if name.starts_with(TEMP_PREFIX) {
        return None;
    }
    dir.join(&name).ok()
}

fn list_dir(dir: &StoragePath, full: &Path) -> io::Result<Vec<StoragePath>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(full)? {
        if let Some(child) = child_path(dir, entry?.file_name()) {
            out.push(child);
        }
    }
    out.sort();
    Ok(out)
}

/// One pass over the subtree; entries deleted meanwhile (GC, purged uploads) are skipped.
fn walk_dir(root: &StoragePath, full: &Path) -> io::Result<Vec<FileInfo>> {
    let mut out = Vec::new();
    let mut stack = vec![(root.clone(), fs::read_dir(full)?)];
    while let Some((dir, entries)) = stack.pop() {
        for entry in entries {
            let entry = entry?;
            let Some(child) = child_path(&dir, entry.file_name()) else {
                continue;
            };
            let Ok(meta) = fs::metadata(entry.path()) else {
                continue;
            };
            if meta.is_dir()
                && let Ok(entries) = fs::read_dir(entry.path())
            {
                stack.push((child.clone(), entries));
            }
            out.push(file_info(child, &meta));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Opens a file positioned at `offset`; `None` when the offset lies past its end.
fn open_at(full: &Path, offset: u64) -> io::Result<Option<File>> {
    let mut file = File::open(full)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(ErrorKind::IsADirectory.into());
    }
    if offset > meta.len() {
        return Ok(None);
    }
    file.seek(SeekFrom::Start(offset))?;
    Ok(Some(file))
}

/// Reads up to [`READ_CHUNK`] bytes; fewer only at the end of the file. `read_to_end` fills
/// the spare capacity directly, so the buffer is never zeroed first.
fn read_chunk(file: &mut File) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(READ_CHUNK);
    file.take(READ_CHUNK as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// Removes a file, a symlink (not its target) or a whole directory tree.
fn remove_any(full: &Path) -> io::Result<()> {
    if fs::symlink_metadata(full)?.is_dir() {
        fs::remove_dir_all(full)
    } else {
        fs::remove_file(full)
    }
}

#[async_trait]
impl Driver for FilesystemDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        reject_root(path)?;
        // Inline, not on the blocking pool: callers read links and manifests (at most a few
        // MiB), and on a local filesystem the read costs less than the hop to another thread.
        let content = self.reads.read(&self.full_path(path));
        content.map_err(|e| lookup_err(path, e))
    }

    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        reject_root(path)?;
        let full = self.full_path(path);
        let written = self.run(move || put_atomic(&full, &content, true)).await;
        written.map_err(|e| Error::io(NAME, path, e))
    }

    async fn put_contents(&self, groups: Vec<Vec<(StoragePath, Bytes)>>) -> Result<()> {
        // One trip to the blocking pool for all groups: they go one after the other anyway,
        // and each extra trip is a thread hop between two syncs.
        let mut files = Vec::with_capacity(groups.len());
        for group in &groups {
            let mut full = Vec::with_capacity(group.len());
            for (path, content) in group {
                reject_root(path)?;
                full.push((self.full_path(path), content.clone()));
            }
            files.push(full);
        }
        match self.run(move || Ok(put_in_order(&files))).await {
            Ok(None) => Ok(()),
            Ok(Some((g, i, e))) => Err(Error::io(NAME, &groups[g][i].0, e)),
            Err(e) => Err(Error::io(NAME, &StoragePath::root(), e)),
        }
    }

    async fn put_scratch(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        reject_root(path)?;
        let full = self.full_path(path);
        let written = self.run(move || put_atomic(&full, &content, false)).await;
        written.map_err(|e| Error::io(NAME, path, e))
    }

    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        reject_root(path)?;
        let full = self.full_path(path);
        self.flushes.settle(&full).await;
        let opened = self.run(move || open_at(&full, offset)).await;
        let Some(file) = opened.map_err(|e| lookup_err(path, e))? else {
            return Err(Error::InvalidOffset {
                path: path.clone(),
                offset,
            });
        };
        let limit = Arc::clone(&self.limit);
        let chunks = futures::stream::try_unfold(file, move |mut file| {
            let limit = Arc::clone(&limit);
            async move {
                let (file, chunk) = blocking(&limit, move || {
                    let chunk = read_chunk(&mut file)?;
                    Ok((file, chunk))
                })
                .await?;
                Ok((!chunk.is_empty()).then(|| (Bytes::from(chunk), file)))
            }
        });
        Ok(chunks.boxed())
    }

    async fn local_file(&self, path: &StoragePath) -> Result<Option<File>> {
        reject_root(path)?;
        let full = self.full_path(path);
        let opened = self.run(move || open_at(&full, 0)).await;
        opened.map_err(|e| lookup_err(path, e))
    }

    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        reject_root(path)?;
        let full = self.full_path(path);
        let lock = self.flushes.lock_of(&full);
        // a writer dropped mid-flush may still be writing: start after its last byte
        drop(lock.lock().await);
        let target = full.clone();
        let opened = self.run(move || open_for_write(&target, append)).await;
        let opened = opened.map_err(|e| Error::io(NAME, path, e))?;
        Ok(Box::new(FilesystemWriter::new(
            self,
            path.clone(),
            full,
            opened,
            lock,
        )))
    }

    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        // Inline for the same reason as `get_content`: one metadata lookup.
        let full = self.full_path(path);
        self.flushes.settle(&full).await;
        let meta = fs::metadata(full);
        Ok(file_info(
            path.clone(),
            &meta.map_err(|e| lookup_err(path, e))?,
        ))
    }

    async fn list(&self, dir: &StoragePath) -> Result<Vec<StoragePath>> {
        // Inline like `get_content`: the registry lists one small directory at a time (a
        // repository level, a tag set), and the catalog lists one per repository, where a hop
        // to the blocking pool per directory would cost more than the listing itself.
        let listed = list_dir(dir, &self.full_path(dir));
        listed.map_err(|e| lookup_err(dir, e))
    }

    async fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        reject_root(from)?;
        reject_root(to)?;
        let (src, dst) = (self.full_path(from), self.full_path(to));
        self.flushes.settle(&src).await;
        let source = src.clone();
        let found = self
            .run(move || {
                let meta = fs::symlink_metadata(&source)?;
                // an upload's chunks were only closed, not synced: the blob they become must
                // not be lost by a power cut once the move is acknowledged
                if meta.is_file() {
                    File::open(&source)?.sync_data()?;
                }
                Ok(meta)
            })
            .await;
        found.map_err(|e| lookup_err(from, e))?;
        let moved = self
            .run(move || {
                let dir = dst.parent().ok_or_else(|| io::Error::other("no parent"))?;
                fs::create_dir_all(dir)?;
                fs::rename(&src, &dst)?;
                sync_dir(dir)
            })
            .await;
        moved.map_err(|e| Error::io(NAME, from, e))
    }

    async fn delete(&self, path: &StoragePath) -> Result<()> {
        let full = self.full_path(path);
        let removed = if path.is_root() {
            // The root stays: it "always exists", as distribution's suite requires.
            self.run(move || {
                for entry in fs::read_dir(full)? {
                    remove_any(&entry?.path())?;
                }
                Ok(())
            })
            .await
        } else {
            self.run(move || remove_any(&full)).await
        };
        removed.map_err(|e| lookup_err(path, e))
    }

    async fn walk(&self, root: &StoragePath) -> Result<Vec<FileInfo>> {
        let (full, owned) = (self.full_path(root), root.clone());
        let walked = self.run(move || walk_dir(&owned, &full)).await;
        walked.map_err(|e| lookup_err(root, e))
    }
}

mod publish;
mod reads;
mod writer;

use publish::{put_atomic, put_in_order};
use reads::Reads;
use writer::{BufferPool, FilesystemWriter, FlushLocks, open_for_write};

#[cfg(test)]
mod tests;
