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
            root,
            limit: Arc::new(Semaphore::new(permits)),
            flushes: FlushLocks::default(),
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

/// Per-file locks that writers' flushes hold while they run. A writer dropped mid-flush (its
/// request cut short) leaves that flush running; a later `writer`, `reader`, `stat` or `rename`
/// of the file waits for it, so a resumed upload never sees a length that is about to change.
#[derive(Debug, Default)]
struct FlushLocks(std::sync::Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>);

impl FlushLocks {
    /// The lock of `full`, made if no writer or flush holds one.
    fn lock_of(&self, full: &Path) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = locks.get(full).and_then(Weak::upgrade) {
            return lock;
        }
        locks.retain(|_, lock| lock.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(full.to_path_buf(), Arc::downgrade(&lock));
        lock
    }

    /// Returns once no flush of `full` is running; at once when no writer has it open.
    async fn settle(&self, full: &Path) {
        let lock = {
            let locks = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if locks.is_empty() {
                return;
            }
            locks.get(full).and_then(Weak::upgrade)
        };
        if let Some(lock) = lock {
            drop(lock.lock().await);
        }
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

/// Writes a sibling temp file, fsyncs it and renames it over the target, so a reader sees the
/// old or the new content and a crash leaves one of them, then fsyncs the directory entry.
fn put_atomic(full: &Path, content: &[u8], durable: bool) -> io::Result<()> {
    let dir = full.parent().ok_or_else(|| io::Error::other("no parent"))?;
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let written = (|| {
        let mut file = File::create_new(&tmp)?;
        file.write_all(content)?;
        if durable {
            file.sync_all()?;
        }
        fs::rename(&tmp, full)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if durable { sync_dir(dir) } else { Ok(()) }
}

/// The first half of `put_atomic`: a synced temp file beside `full`, returned for renaming.
fn stage_temp(full: &Path, content: &[u8]) -> io::Result<PathBuf> {
    let dir = full.parent().ok_or_else(|| io::Error::other("no parent"))?;
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let written = File::create_new(&tmp).and_then(|mut file| {
        file.write_all(content)?;
        file.sync_all()
    });
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Publishes staged temp files group by group, each group's entries durable before the next
/// group is renamed. On failure, the temp files not yet renamed are removed, and the index of
/// the failed group comes back with its error.
fn publish_groups(groups: &[Vec<(PathBuf, PathBuf)>]) -> Option<(usize, io::Error)> {
    for (i, group) in groups.iter().enumerate() {
        if let Err(e) = publish_temps(group) {
            let later = groups[i + 1..].iter().flatten().map(|(t, _)| t);
            let _ = remove_temps(later);
            return Some((i, e));
        }
    }
    None
}

/// The second half: renames staged temp files over their targets, then syncs their
/// directories (at once, when there are several), so the entries are durable when it returns.
/// Temp files it did not rename are removed.
fn publish_temps(moves: &[(PathBuf, PathBuf)]) -> io::Result<()> {
    let mut dirs: Vec<&Path> = Vec::new();
    for (i, (tmp, full)) in moves.iter().enumerate() {
        if let Err(e) = fs::rename(tmp, full) {
            let _ = remove_temps(moves[i..].iter().map(|(t, _)| t));
            return Err(e);
        }
        if let Some(dir) = full.parent()
            && !dirs.contains(&dir)
        {
            dirs.push(dir);
        }
    }
    sync_dirs(&dirs)
}

/// Syncs several directories at once: each sync waits on the disk, so side by side they
/// cost about one.
fn sync_dirs(dirs: &[&Path]) -> io::Result<()> {
    let Some((first, rest)) = dirs.split_first() else {
        return Ok(());
    };
    std::thread::scope(|s| {
        let others: Vec<_> = rest.iter().map(|d| s.spawn(move || sync_dir(d))).collect();
        let mut result = sync_dir(first);
        for other in others {
            let synced = other
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("directory sync panicked")));
            result = result.and(synced);
        }
        result
    })
}

/// Best-effort removal of temp files left by a failed multi-file write (never fails).
fn remove_temps<'a>(temps: impl IntoIterator<Item = &'a PathBuf>) -> io::Result<()> {
    for tmp in temps {
        let _ = fs::remove_file(tmp);
    }
    Ok(())
}

/// Opens a file for a writer: returns it, its current size and whether this call created it.
fn open_for_write(full: &Path, append: bool) -> io::Result<Opened> {
    if let Some(dir) = full.parent() {
        fs::create_dir_all(dir)?;
    }
    let created = fs::symlink_metadata(full).is_err();
    let mut options = OpenOptions::new();
    // Positional writes, never O_APPEND: Linux's pwrite appends on an O_APPEND handle, and the
    // direct handle rewrites the partial last block in place.
    options
        .create(true)
        .read(true)
        .write(true)
        .truncate(!append);
    let file = options.open(full)?;
    let size = file.metadata()?.len();
    let direct = open_direct(full, &file, size);
    Ok(Opened {
        file,
        size,
        created,
        direct,
    })
}

/// A second handle on `full` that bypasses the page cache, with the bytes of the file's
/// partial last block (direct writes start on a block boundary, so that block is rewritten);
/// `None` where the filesystem refuses O_DIRECT (tmpfs, some network filesystems).
fn open_direct(full: &Path, file: &File, size: u64) -> Option<(File, Vec<u8>)> {
    let flags = rustix::fs::OFlags::DIRECT.bits();
    let direct = OpenOptions::new()
        .write(true)
        .custom_flags(i32::try_from(flags).ok()?)
        .open(full)
        .ok()?;
    let partial = size % DIRECT_ALIGN as u64;
    let mut tail = vec![0; usize::try_from(partial).ok()?];
    file.read_exact_at(&mut tail, size - partial).ok()?;
    Some((direct, tail))
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

/// Reads a whole file with `read` calls only: the files read whole are links and manifests,
/// mostly under a kilobyte, and a hot manifest GET reads two of them. `File::read_to_end`
/// would first ask for the size and the position (statx and lseek), two syscalls of six.
fn read_small(full: &Path) -> io::Result<Vec<u8>> {
    let mut file = File::open(full)?;
    let mut buf = vec![0; 1024];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(len * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(buf)
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
        let content = read_small(&self.full_path(path));
        content.map(Bytes::from).map_err(|e| lookup_err(path, e))
    }

    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        reject_root(path)?;
        let full = self.full_path(path);
        let written = self.run(move || put_atomic(&full, &content, true)).await;
        written.map_err(|e| Error::io(NAME, path, e))
    }

    async fn put_contents(&self, groups: Vec<Vec<(StoragePath, Bytes)>>) -> Result<()> {
        // Every file's bytes are written and synced at once, on as many threads, so their
        // syncs overlap; then the groups are renamed into place in order, each group's
        // directories synced before the next group is renamed.
        let mut staging = Vec::new();
        for (path, content) in groups.iter().flatten() {
            reject_root(path)?;
            let (full, content) = (self.full_path(path), content.clone());
            staging.push(async move {
                let staged = self.run(move || stage_temp(&full, &content)).await;
                staged.map_err(|e| Error::io(NAME, path, e))
            });
        }
        let staged = futures::future::join_all(staging).await;
        let temps: Vec<PathBuf> = staged.iter().flatten().cloned().collect();
        if let Some(failed) = staged.into_iter().find_map(std::result::Result::err) {
            self.run(move || remove_temps(&temps)).await.ok();
            return Err(failed);
        }
        // All groups are published in one trip to the blocking pool: they go one after the
        // other anyway, and each extra trip is a thread hop between two syncs.
        let mut left = temps.into_iter();
        let moves: Vec<Vec<(PathBuf, PathBuf)>> = groups
            .iter()
            .map(|group| {
                let temps = left.by_ref().take(group.len());
                group
                    .iter()
                    .zip(temps)
                    .map(|((path, _), tmp)| (tmp, self.full_path(path)))
                    .collect()
            })
            .collect();
        match self.run(move || Ok(publish_groups(&moves))).await {
            Ok(None) => Ok(()),
            Ok(Some((failed, e))) => {
                let first = groups[failed]
                    .first()
                    .map_or_else(StoragePath::root, |(p, _)| p.clone());
                Err(Error::io(NAME, &first, e))
            }
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
        let limit = Arc::clone(&self.limit);
        Ok(Box::new(FilesystemWriter::new(
            path.clone(),
            full,
            opened,
            limit,
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

mod writer;

use writer::{FilesystemWriter, Opened};

#[cfg(test)]
mod tests;
