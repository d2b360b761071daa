//! The filesystem backend's `FileWriter`: buffered appends written around the page cache
//! (O_DIRECT) where the filesystem allows it, and the fsync at commit.
//!
//! An upload's bytes are read once more only when it is pulled, so caching them on the way in
//! buys nothing: going through the page cache cost 0.5 to 3.5 CPU-seconds per GiB here (the
//! copy, delayed allocation, writeback, reclaim under a full cache), O_DIRECT about 0.12.

use super::*;

/// Per-file locks that writers' flushes hold while they run. A writer dropped mid-flush (its
/// request cut short) leaves that flush running; a later `writer`, `reader`, `stat` or `rename`
/// of the file waits for it, so a resumed upload never sees a length that is about to change.
#[derive(Debug, Default)]
pub(super) struct FlushLocks(std::sync::Mutex<HashMap<PathBuf, Weak<tokio::sync::Mutex<()>>>>);

impl FlushLocks {
    /// The lock of `full`, made if no writer or flush holds one.
    pub(super) fn lock_of(&self, full: &Path) -> Arc<tokio::sync::Mutex<()>> {
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
    pub(super) async fn settle(&self, full: &Path) {
        let lock = {
            let mut locks = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if locks.is_empty() {
                return;
            }
            // Forget the locks of finished writers here too, so once uploads are over every
            // stat is back on the fast path above.
            locks.retain(|_, lock| lock.strong_count() > 0);
            locks.get(full).and_then(Weak::upgrade)
        };
        if let Some(lock) = lock {
            drop(lock.lock().await);
        }
    }
}

/// Opens a file for a writer: returns it, its current size and whether this call created it.
pub(super) fn open_for_write(full: &Path, append: bool) -> io::Result<Opened> {
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

/// A file opened for a writer, as `open_for_write` leaves it.
pub(super) struct Opened {
    pub(super) file: File,
    pub(super) size: u64,
    /// The open created the file: its directory entry needs a sync at commit.
    pub(super) created: bool,
    /// The O_DIRECT handle and the bytes of the file's partial last block, if any.
    pub(super) direct: Option<(File, Vec<u8>)>,
}

/// The two handles a flush borrows: the page-cache one (the tail of an upload, and all of it
/// where O_DIRECT is refused) and the direct one.
struct Handles {
    file: File,
    direct: Option<File>,
}

/// What a flush gives back when it lands.
struct Flushed {
    handles: Handles,
    buf: AlignedBuf,
    /// Bytes that went through the page cache.
    cached: u64,
}

/// An open file and two bounded buffers: one fills while the blocking pool writes the other,
/// so the disk works while the network and the hash do. Beyond the pool, two small ones, or
/// one once many are out.
pub(super) struct FilesystemWriter {
    path: StoragePath,
    full: PathBuf,
    /// The handles while no flush holds them; `None` after a flush failed.
    handles: Option<Handles>,
    /// The flush in flight, if any. Dropped with the writer, it runs on, holding `lock`.
    flushing: Option<tokio::task::JoinHandle<io::Result<Flushed>>>,
    buf: AlignedBuf,
    /// The other buffer, once its flush has landed.
    spare: AlignedBuf,
    /// Where `buf`'s first byte belongs in the file; block-aligned while writing direct.
    offset: u64,
    size: u64,
    created: bool,
    limit: Arc<Semaphore>,
    /// The file's flush lock (see `FlushLocks`), held by each flush while it runs.
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Bytes flushed through the page cache since the last background writeback started.
    unsynced: u64,
    /// The background writeback in progress, if any.
    syncing: Option<tokio::task::JoinHandle<()>>,
}

impl FilesystemWriter {
    /// A writer appending to the file `open_for_write` opened at `full`.
    pub(super) fn new(
        driver: &FilesystemDriver,
        path: StoragePath,
        full: PathBuf,
        opened: Opened,
        lock: Arc<tokio::sync::Mutex<()>>,
    ) -> Self {
        let mut buf = AlignedBuf::new(Arc::clone(&driver.buffers));
        let (direct, offset) = match opened.direct {
            Some((direct, tail)) => {
                // Direct writes start on a block boundary: the partial last block is rewritten
                // from there, with the new bytes after it.
                buf.push(&tail);
                (Some(direct), opened.size - tail.len() as u64)
            }
            None => (None, opened.size),
        };
        FilesystemWriter {
            path,
            full,
            handles: Some(Handles {
                file: opened.file,
                direct,
            }),
            flushing: None,
            buf,
            spare: AlignedBuf::new(Arc::clone(&driver.buffers)),
            offset,
            size: opened.size,
            created: opened.created,
            limit: Arc::clone(&driver.limit),
            lock,
            unsynced: 0,
            syncing: None,
        }
    }

    /// Whether the writer still writes around the page cache (tests look).
    #[cfg(test)]
    pub(super) async fn is_direct(&mut self) -> bool {
        self.land().await.unwrap();
        self.handles.as_ref().is_some_and(|h| h.direct.is_some())
    }

    /// How many of its buffers came from the pool, once no flush holds one (tests look).
    #[cfg(test)]
    pub(super) async fn pooled_buffers(&mut self) -> usize {
        self.land().await.unwrap();
        usize::from(self.buf.pooled()) + usize::from(self.spare.pooled())
    }

    /// How many buffers hold memory: the writer's two and the one a flush in flight holds
    /// (tests look).
    #[cfg(test)]
    pub(super) fn held_buffers(&self) -> usize {
        usize::from(!self.buf.mem.is_empty())
            + usize::from(!self.spare.mem.is_empty())
            + usize::from(self.flushing.is_some())
    }

    /// Waits for the flush in flight, if any, and takes back the handles and its buffer.
    async fn land(&mut self) -> Result<()> {
        let Some(flushing) = self.flushing.take() else {
            return Ok(());
        };
        let landed = flushing.await.map_err(io::Error::other).and_then(|r| r);
        let Flushed {
            handles,
            mut buf,
            cached,
        } = landed.map_err(|e| Error::io(NAME, &self.path, e))?;
        buf.clear();
        self.handles = Some(handles);
        self.spare = buf;
        self.unsynced += cached;
        self.start_writeback();
        Ok(())
    }

    /// Sends what `buf` holds to the blocking pool and goes on filling the spare buffer. At
    /// most one flush is in flight: this waits for the one before.
    async fn flush(&mut self) -> Result<()> {
        self.land().await?;
        let handles = self.take_handles()?;
        if self.buf.len == 0 {
            self.handles = Some(handles);
            return Ok(());
        }
        // Beyond the pool and with many small buffers out, a writer that has one keeps it
        // alone: it waits for the flush and refills the same memory. With 256 uploads at once
        // that held 20-28 MiB less, as fast.
        let single = !self.buf.pooled() && self.spare.mem.is_empty() && self.buf.pool.crowded();
        let idle = AlignedBuf::new(Arc::clone(&self.buf.pool));
        let buf = std::mem::replace(&mut self.buf, std::mem::replace(&mut self.spare, idle));
        let offset = self.offset;
        self.offset += buf.len as u64;
        // The lock and the permit are taken here, so the flush is one hop to the blocking pool
        // (not a task that then hops); both go with it if the writer is dropped.
        let guard = Arc::clone(&self.lock).lock_owned().await;
        let permit = Arc::clone(&self.limit).acquire_owned().await;
        let permit = permit.map_err(|e| Error::io(NAME, &self.path, io::Error::other(e)))?;
        self.flushing = Some(tokio::task::spawn_blocking(move || {
            let _held = (guard, permit);
            write_out(handles, buf, offset)
        }));
        if single {
            self.land().await?;
            // `buf` is the empty spare; the landed buffer is the one to refill.
            std::mem::swap(&mut self.buf, &mut self.spare);
        }
        Ok(())
    }

    /// Starts writing back what the last flushes left in the page cache, unless a writeback is
    /// still running or no blocking permit is free. Errors are left to the fsync at commit.
    fn start_writeback(&mut self) {
        if self.unsynced < WRITEBACK_EVERY
            || self.syncing.as_ref().is_some_and(|h| !h.is_finished())
        {
            return;
        }
        let Some(Ok(file)) = self.handles.as_ref().map(|h| h.file.try_clone()) else {
            return;
        };
        let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() else {
            return;
        };
        self.unsynced = 0;
        self.syncing = Some(tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let _ = file.sync_data();
        }));
    }

    /// The handles, once no flush holds them.
    fn take_handles(&mut self) -> Result<Handles> {
        self.handles.take().ok_or_else(|| Error::Backend {
            driver: NAME,
            source: format!("writer for {} failed earlier", self.path).into(),
        })
    }

    /// Flushes everything and waits for it: what `close` and `commit` start with.
    async fn drain(&mut self) -> Result<Handles> {
        self.flush().await?;
        self.land().await?;
        self.take_handles()
    }
}

/// Writes `buf` at `offset`: its whole blocks through the direct handle when there is one, the
/// rest (only at the end of a write session) through the page cache.
fn write_out(mut handles: Handles, buf: AlignedBuf, offset: u64) -> io::Result<Flushed> {
    let data = buf.filled();
    let mut direct_len = 0;
    if let Some(direct) = &handles.direct {
        let whole = data.len() - data.len() % DIRECT_ALIGN;
        match direct.write_all_at(&data[..whole], offset) {
            Ok(()) => direct_len = whole,
            // Took O_DIRECT at open but refuses these writes: use the page cache.
            Err(e) if e.kind() == ErrorKind::InvalidInput => handles.direct = None,
            Err(e) => return Err(e),
        }
    }
    let cached = &data[direct_len..];
    handles
        .file
        .write_all_at(cached, offset + direct_len as u64)?;
    let cached = cached.len() as u64;
    Ok(Flushed {
        handles,
        buf,
        cached,
    })
}

#[async_trait]
impl FileWriter for FilesystemWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            rest = &rest[self.buf.push(rest)..];
            if self.buf.is_full() {
                self.flush().await?;
            }
        }
        self.size += chunk.len() as u64;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let handles = self.drain().await?;
        if let Some(running) = self.syncing.take() {
            let _ = running.await;
        }
        let (full, created) = (self.full.clone(), self.created);
        let synced = blocking(&self.limit, move || {
            handles.file.sync_all()?;
            // A new directory entry is durable only once its directory is synced.
            match full.parent() {
                Some(dir) if created => sync_dir(dir),
                _ => Ok(()),
            }
        })
        .await;
        synced.map_err(|e| Error::io(NAME, &self.path, e))
    }

    async fn close(mut self: Box<Self>) -> Result<()> {
        let handles = self.drain().await?;
        if handles.direct.is_some() {
            // Only a partial block went through the page cache; the sync at commit takes it.
            return Ok(());
        }
        // Start writing the chunk back now, so the sync when the upload completes finds little
        // left to do; nobody waits for it, and its errors surface at that sync.
        if let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() {
            drop(tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let _ = handles.file.sync_data();
            }));
        }
        Ok(())
    }

    async fn cancel(mut self: Box<Self>) -> Result<()> {
        // The bytes are going away; a failed flush changes nothing.
        let _ = self.land().await;
        drop(self.handles.take());
        let full = self.full.clone();
        let removed = blocking(&self.limit, move || match fs::remove_file(full) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await;
        removed.map_err(|e| Error::io(NAME, &self.path, e))
    }
}

/// Full-size write buffers shared by a driver's writers, at most `cap` of them lent at once,
/// so the memory uploads hold stays bounded however many run, and a request reuses warm memory
/// instead of faulting in a fresh megabyte. It also counts the small buffers writers make
/// while it has none to lend, so once `roomy` are out a writer makes one instead of two.
#[derive(Debug)]
pub(super) struct BufferPool {
    cap: usize,
    roomy: usize,
    state: std::sync::Mutex<Lent>,
}

/// The pool's books: how many buffers are out, the returned ones kept for reuse, and how many
/// small buffers writers hold.
#[derive(Debug, Default)]
struct Lent {
    out: usize,
    free: Vec<Vec<u8>>,
    small: usize,
}

impl BufferPool {
    /// A pool lending at most `cap` buffers at once, with writers making a second small buffer
    /// only while fewer than `roomy` are out.
    pub(super) fn new(cap: usize, roomy: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            cap,
            roomy,
            state: std::sync::Mutex::default(),
        })
    }

    /// Whether `roomy` small buffers or more are out.
    fn crowded(&self) -> bool {
        self.books().small >= self.roomy
    }

    /// Counts a small buffer made or let go.
    fn count_small(&self, made: bool) {
        let mut books = self.books();
        if made {
            books.small += 1;
        } else {
            books.small -= 1;
        }
    }

    fn books(&self) -> std::sync::MutexGuard<'_, Lent> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A full-size buffer, or `None` while `cap` of them are out.
    fn take(&self) -> Option<Vec<u8>> {
        let reused = {
            let mut books = self.books();
            if books.out >= self.cap {
                return None;
            }
            books.out += 1;
            books.free.pop()
        };
        Some(reused.unwrap_or_else(|| vec![0; WRITE_BUFFER + DIRECT_ALIGN]))
    }

    /// Takes a buffer back and keeps it for the next writer: with at most `cap` out, the pool
    /// never holds more than `cap` in all.
    fn give(&self, mem: Vec<u8>) {
        let mut books = self.books();
        books.out -= 1;
        books.free.push(mem);
    }

    /// Buffers lent right now, and returned ones kept for reuse (tests look).
    #[cfg(test)]
    pub(super) fn counts(&self) -> (usize, usize) {
        let books = self.books();
        (books.out, books.free.len())
    }

    /// Small buffers writers hold right now (tests look).
    #[cfg(test)]
    pub(super) fn small_out(&self) -> usize {
        self.books().small
    }
}

/// Bytes whose first byte sits on a `DIRECT_ALIGN` boundary, as O_DIRECT needs of memory,
/// without unsafe code: a slightly larger vector used from its first aligned byte. Allocated on
/// first use, so a writer that never writes holds nothing: `WRITE_BUFFER` bytes from the pool,
/// or `SMALL_WRITE_BUFFER` of its own (counted by the pool) while the pool has none to lend.
struct AlignedBuf {
    mem: Vec<u8>,
    start: usize,
    len: usize,
    /// Usable bytes: `WRITE_BUFFER` when `mem` came from the pool.
    size: usize,
    pool: Arc<BufferPool>,
}

impl AlignedBuf {
    fn new(pool: Arc<BufferPool>) -> Self {
        AlignedBuf {
            mem: Vec::new(),
            start: 0,
            len: 0,
            size: 0,
            pool,
        }
    }

    /// Copies as much of `bytes` as fits and says how much that was.
    fn push(&mut self, bytes: &[u8]) -> usize {
        if bytes.is_empty() {
            return 0;
        }
        if self.mem.is_empty() {
            (self.mem, self.size) = match self.pool.take() {
                Some(mem) => (mem, WRITE_BUFFER),
                None => {
                    self.pool.count_small(true);
                    (
                        vec![0; SMALL_WRITE_BUFFER + DIRECT_ALIGN],
                        SMALL_WRITE_BUFFER,
                    )
                }
            };
            // `align_offset` may answer "impossible"; an unaligned buffer then makes the
            // direct write fail with EINVAL, and the writer falls back to the page cache.
            self.start = self
                .mem
                .as_ptr()
                .align_offset(DIRECT_ALIGN)
                .min(DIRECT_ALIGN);
        }
        let n = bytes.len().min(self.size - self.len);
        let at = self.start + self.len;
        self.mem[at..at + n].copy_from_slice(&bytes[..n]);
        self.len += n;
        n
    }

    fn is_full(&self) -> bool {
        self.size > 0 && self.len == self.size
    }

    fn filled(&self) -> &[u8] {
        &self.mem[self.start..self.start + self.len]
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// Whether the memory came from the pool.
    fn pooled(&self) -> bool {
        self.size == WRITE_BUFFER
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        if self.size == WRITE_BUFFER {
            self.pool.give(std::mem::take(&mut self.mem));
        } else if self.size == SMALL_WRITE_BUFFER {
            self.pool.count_small(false);
        }
    }
}
