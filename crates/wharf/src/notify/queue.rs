//! A durable per-endpoint queue: events are appended as JSON lines to `<name>.events`, and the
//! byte offset of the first undelivered line is kept in `<name>.offset` (written by rename), so
//! a crash at any point loses no event and re-sends at most the one in flight.
//!
//! Durable across a power cut too: each append is `fdatasync`ed before the request that caused
//! it answers (one sync per event and endpoint, the batch the listener writes at once), the
//! directory is synced when the file is created, and the offset file is synced before it
//! replaces the old one.
//!
//! The file is bounded: past [`MAX_PENDING_BYTES`] of undelivered events new ones are dropped
//! with an error log, so a dead endpoint cannot fill the disk. Once everything is delivered and
//! the file has grown past [`COMPACT_BYTES`], it is truncated.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Undelivered bytes kept before new events are dropped.
pub const MAX_PENDING_BYTES: u64 = 256 << 20;
/// File size past which a fully delivered queue is truncated.
pub const COMPACT_BYTES: u64 = 1 << 20;

/// What can go wrong with the queue files.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing the queue files failed.
    #[error("notification queue {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The endpoint is too far behind; the event was not queued.
    #[error("notification queue {0} is full; event dropped")]
    Full(PathBuf),
}

/// One endpoint's queue files. Appends and acknowledgements are serialized by a mutex; the
/// delivery task is the only reader.
pub struct Queue {
    events: PathBuf,
    offset: PathBuf,
    lock: Mutex<()>,
    /// Undelivered events, for the queue-depth metric.
    pending: AtomicU64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

impl Queue {
    /// Opens (creating) the queue `name` under `dir`.
    pub fn open(dir: &Path, name: &str) -> Result<Queue, Error> {
        let new_dir = !dir.exists();
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let q = Queue {
            events: dir.join(format!("{name}.events")),
            offset: dir.join(format!("{name}.offset")),
            lock: Mutex::new(()),
            pending: AtomicU64::new(0),
        };
        let new_file = !q.events.exists();
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&q.events)
            .map_err(io(&q.events))?;
        if new_file {
            sync_dir(dir)?;
        }
        if new_dir && let Some(parent) = dir.parent() {
            sync_dir(parent)?;
        }
        q.pending.store(q.count_pending()?, Ordering::Relaxed);
        Ok(q)
    }

    /// Complete lines after the delivered offset (read once, at open).
    fn count_pending(&self) -> Result<u64, Error> {
        let mut f = File::open(&self.events).map_err(io(&self.events))?;
        f.seek(SeekFrom::Start(self.delivered()?))
            .map_err(io(&self.events))?;
        let mut n = 0;
        let mut line = Vec::new();
        let mut r = BufReader::new(f);
        loop {
            line.clear();
            let read = r.read_until(b'\n', &mut line).map_err(io(&self.events))?;
            if read == 0 || line.last() != Some(&b'\n') {
                return Ok(n);
            }
            n += 1;
        }
    }

    /// Events queued and not yet delivered.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    fn len(&self) -> Result<u64, Error> {
        Ok(std::fs::metadata(&self.events)
            .map_err(io(&self.events))?
            .len())
    }

    /// Offset of the first undelivered event; an offset past the end (the file was truncated
    /// just before a crash) means everything in the file is undelivered.
    pub fn delivered(&self) -> Result<u64, Error> {
        let offset = match std::fs::read_to_string(&self.offset) {
            Ok(s) => s.trim().parse().unwrap_or(0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io(&self.offset)(e)),
        };
        Ok(if offset > self.len()? { 0 } else { offset })
    }

    /// Appends one event line (no newline inside), before the request that caused it answers.
    pub fn append(&self, line: &[u8]) -> Result<(), Error> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.len()? - self.delivered()? > MAX_PENDING_BYTES {
            return Err(Error::Full(self.events.clone()));
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(&self.events)
            .map_err(io(&self.events))?;
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        f.write_all(&buf).map_err(io(&self.events))?;
        f.sync_data().map_err(io(&self.events))?;
        self.pending.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// The first undelivered line and the offset just past it, if any complete line is there.
    pub fn peek(&self) -> Result<Option<(Vec<u8>, u64)>, Error> {
        let start = self.delivered()?;
        let mut f = File::open(&self.events).map_err(io(&self.events))?;
        f.seek(SeekFrom::Start(start)).map_err(io(&self.events))?;
        let mut line = Vec::new();
        BufReader::new(f)
            .read_until(b'\n', &mut line)
            .map_err(io(&self.events))?;
        if line.last() != Some(&b'\n') {
            return Ok(None);
        }
        let next = start + line.len() as u64;
        line.pop();
        Ok(Some((line, next)))
    }

    /// Records that everything before `offset` was delivered; truncates a large drained file.
    pub fn ack(&self, offset: u64) -> Result<(), Error> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut offset = offset;
        if offset == self.len()? && offset > COMPACT_BYTES {
            File::create(&self.events).map_err(io(&self.events))?;
            offset = 0;
        }
        let tmp = self.offset.with_extension("offset.tmp");
        let mut f = File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(offset.to_string().as_bytes())
            .map_err(io(&tmp))?;
        f.sync_data().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.offset).map_err(io(&self.offset))?;
        let _ = self
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        Ok(())
    }
}

/// Makes a directory's entries (a created file, a rename) durable.
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_back_in_order_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), "ep").unwrap();
        assert!(q.peek().unwrap().is_none(), "empty queue");
        q.append(b"one").unwrap();
        q.append(b"two").unwrap();
        let (line, next) = q.peek().unwrap().unwrap();
        assert_eq!(line, b"one");
        q.ack(next).unwrap();
        drop(q);
        let q = Queue::open(dir.path(), "ep").unwrap();
        assert_eq!(q.pending(), 1, "the depth is recounted at open");
        let (line, next) = q.peek().unwrap().unwrap();
        assert_eq!(line, b"two", "a reopened queue resumes after the last ack");
        q.ack(next).unwrap();
        assert!(q.peek().unwrap().is_none());
        assert_eq!(q.pending(), 0);
    }

    #[test]
    fn a_queue_in_a_new_nested_directory_is_created_and_synced() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        let q = Queue::open(&nested, "ep").unwrap();
        q.append(b"one").unwrap();
        assert_eq!(
            std::fs::read(nested.join("ep.events")).unwrap(),
            b"one\n",
            "the line is on disk when append returns"
        );
    }

    #[test]
    fn a_half_written_line_is_not_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), "ep").unwrap();
        std::fs::write(dir.path().join("ep.events"), b"{\"partial").unwrap();
        assert!(q.peek().unwrap().is_none());
    }

    #[test]
    fn an_offset_past_a_truncated_file_restarts_from_the_beginning() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), "ep").unwrap();
        std::fs::write(dir.path().join("ep.offset"), b"999").unwrap();
        q.append(b"fresh").unwrap();
        assert_eq!(q.peek().unwrap().unwrap().0, b"fresh");
    }
}
