//! The filesystem backend's `FileWriter`: buffered appends, background writeback, and the
//! fsync at commit.

use super::*;

/// An open file plus a bounded buffer; the file is lent to the blocking pool during each flush.
pub(super) struct FilesystemWriter {
    path: StoragePath,
    full: PathBuf,
    /// `None` only after a flush failed or was cancelled midway; the writer is unusable then.
    file: Option<File>,
    buf: Vec<u8>,
    size: u64,
    created: bool,
    limit: Arc<Semaphore>,
    /// A second handle on the file for background writeback (`None` if it could not be had).
    writeback: Option<File>,
    /// Bytes flushed since the last background writeback started.
    unsynced: u64,
    /// The background writeback in progress, if any.
    syncing: Option<tokio::task::JoinHandle<()>>,
}

impl FilesystemWriter {
    /// A writer on `file`, just opened at `full`; `opened` is its size then and whether the
    /// open created it (a new entry needs its directory synced at commit).
    pub(super) fn new(
        path: StoragePath,
        full: PathBuf,
        file: File,
        opened: (u64, bool),
        limit: Arc<Semaphore>,
    ) -> Self {
        let (size, created) = opened;
        FilesystemWriter {
            path,
            full,
            writeback: file.try_clone().ok(),
            file: Some(file),
            buf: Vec::new(),
            size,
            created,
            limit,
            unsynced: 0,
            syncing: None,
        }
    }

    /// Writes the buffer, then `chunk`, in one trip to the blocking pool; hands the file back
    /// so `write` can keep it and `commit` can sync it.
    async fn flush_with(&mut self, chunk: Bytes) -> Result<File> {
        let mut file = self.file.take().ok_or_else(|| Error::Backend {
            driver: NAME,
            source: format!("writer for {} failed earlier", self.path).into(),
        })?;
        let mut buf = std::mem::take(&mut self.buf);
        let flushed = blocking(&self.limit, move || {
            file.write_all(&buf)?;
            file.write_all(&chunk)?;
            buf.clear();
            Ok((file, buf))
        })
        .await;
        let (file, buf) = flushed.map_err(|e| Error::io(NAME, &self.path, e))?;
        self.buf = buf;
        Ok(file)
    }

    /// Starts writing back what the last flushes left in the page cache, unless a writeback is
    /// still running or no blocking permit is free. Errors are left to the fsync at commit.
    fn start_writeback(&mut self) {
        if self.unsynced < WRITEBACK_EVERY
            || self.syncing.as_ref().is_some_and(|h| !h.is_finished())
        {
            return;
        }
        let Some(Ok(file)) = self.writeback.as_ref().map(File::try_clone) else {
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
}

#[async_trait]
impl FileWriter for FilesystemWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let len = chunk.len() as u64;
        if self.buf.len() + chunk.len() <= WRITE_BUFFER {
            self.buf.extend_from_slice(&chunk);
        } else {
            let flushed = self.buf.len() as u64 + len;
            let file = self.flush_with(chunk).await?;
            self.file = Some(file);
            self.unsynced += flushed;
            self.start_writeback();
        }
        self.size += len;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let file = self.flush_with(Bytes::new()).await?;
        if let Some(running) = self.syncing.take() {
            let _ = running.await;
        }
        let (full, created) = (self.full.clone(), self.created);
        let synced = blocking(&self.limit, move || {
            file.sync_all()?;
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
        let file = self.flush_with(Bytes::new()).await?;
        // Start writing the chunk back now, so the sync when the upload completes finds little
        // left to do; nobody waits for it, and its errors surface at that sync.
        if let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() {
            drop(tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let _ = file.sync_data();
            }));
        }
        Ok(())
    }

    async fn cancel(mut self: Box<Self>) -> Result<()> {
        drop(self.file.take());
        let full = self.full.clone();
        let removed = blocking(&self.limit, move || match fs::remove_file(full) {
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            other => other,
        })
        .await;
        removed.map_err(|e| Error::io(NAME, &self.path, e))
    }
}
