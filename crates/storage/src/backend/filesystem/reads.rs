//! Whole-file reads, with small settled files (links) served from memory while a `stat` shows
//! them unchanged: a tag lookup costs one `stat` instead of an open, two reads and a close.
//!
//! The check holds across processes sharing the tree: any change to a file's bytes, whoever
//! makes it, gives the path a new inode (wharf writes a temp file and links or renames it) or a
//! new ctime (an in-place rewrite, as distribution's driver does). Two changes within one
//! timestamp tick could leave the ctime as it was, so a file changed less than `SETTLE` ago is
//! read but not kept (git's rule for "racily clean" index entries). Only on local filesystems:
//! an NFS client may answer a `stat` from its attribute cache, while an open revalidates.

use super::*;
use std::os::unix::fs::MetadataExt;
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{PoisonError, RwLock, RwLockReadGuard};
use std::time::{Duration, UNIX_EPOCH};

/// Largest file kept: a link is 71 bytes (sha256) or 135 (sha512).
const MAX_KEPT_SIZE: u64 = 512;
/// Files kept at most (a few hundred bytes each); the map starts over when it is full.
const MAX_KEPT: usize = 8192;
/// How long ago a file's ctime must lie before its bytes are kept: longer than the coarsest
/// timestamp step of the filesystems it runs on (one second on ext4 with 128-byte inodes).
pub(super) const SETTLE: Duration = Duration::from_secs(2);

/// Filesystem magic numbers (`statfs`) whose `stat` always reflects the disk: ext2/3/4, XFS,
/// Btrfs, tmpfs, ZFS.
const LOCAL_FILESYSTEMS: [u32; 5] = [0xEF53, 0x5846_5342, 0x9123_683E, 0x0102_1994, 0x2FC1_2FC1];

/// Whether the filesystem holding `dir` lets the cache trust a `stat`.
pub(super) fn is_local(dir: &Path) -> bool {
    rustix::fs::statfs(dir).is_ok_and(|fs| LOCAL_FILESYSTEMS.contains(&(fs.f_type as u32)))
}

/// What identifies one version of a file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &Metadata) -> Self {
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The ctime lies at least `settle` in the past.
    fn settled(&self, settle: Duration) -> bool {
        let Ok(now) = SystemTime::now().duration_since(UNIX_EPOCH) else {
            return false;
        };
        let (Ok(secs), Ok(nanos)) = (u64::try_from(self.ctime.0), u32::try_from(self.ctime.1))
        else {
            return false;
        };
        Duration::new(secs, nanos).saturating_add(settle) <= now
    }
}

#[derive(Debug)]
struct Kept {
    stamp: Stamp,
    bytes: Bytes,
}

/// The kept files, all on one device: the root's (files elsewhere are never kept).
#[derive(Debug)]
struct Memory {
    device: u64,
    files: RwLock<HashMap<PathBuf, Kept>>,
}

/// The driver's whole-file reader and its memory of small settled files.
#[derive(Debug)]
pub(super) struct Reads {
    /// `None` where a `stat` cannot be trusted to show a change.
    kept: Option<Memory>,
    settle: Duration,
    /// Reads served from memory (tests look; not counted in other builds, one contended
    /// counter fewer on the hot path).
    #[cfg(test)]
    hits: AtomicU64,
}

impl Reads {
    /// A reader for the tree at `root`, keeping small files once their ctime is `settle` old
    /// when `root` lies on a local filesystem.
    pub(super) fn new(root: &Path, settle: Duration) -> Self {
        let device = is_local(root)
            .then(|| fs::metadata(root).ok())
            .flatten()
            .map(|meta| meta.dev());
        Self::on_device(device, settle)
    }

    /// A reader keeping only files on `device` (none when `None`): a filesystem mounted below
    /// the root, an NFS share say, is another device and is read every time.
    fn on_device(device: Option<u64>, settle: Duration) -> Self {
        Reads {
            kept: device.map(|device| Memory {
                device,
                files: RwLock::default(),
            }),
            settle,
            #[cfg(test)]
            hits: AtomicU64::new(0),
        }
    }

    /// Reads served from memory so far (tests look).
    #[cfg(test)]
    pub(super) fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// The bytes of the file at `full`.
    pub(super) fn read(&self, full: &Path) -> io::Result<Bytes> {
        let Some(Memory {
            device,
            files: kept,
        }) = &self.kept
        else {
            return read_small(&mut File::open(full)?).map(Bytes::from);
        };
        // Only paths kept before pay for the `stat`: everything else goes straight to the read.
        let known = read_lock(kept)
            .get(full)
            .map(|k| (k.stamp.clone(), k.bytes.clone()));
        if let Some((stamp, bytes)) = &known
            && fs::metadata(full).is_ok_and(|meta| Stamp::of(&meta) == *stamp)
        {
            #[cfg(test)]
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes.clone());
        }
        let read = read_stamped(full);
        let keep = match &read {
            Ok((stamp, bytes)) => {
                stamp.dev == *device
                    && stamp.size <= MAX_KEPT_SIZE
                    && bytes.len() as u64 == stamp.size
                    && stamp.settled(self.settle)
            }
            Err(_) => false,
        };
        if keep || known.is_some() {
            let mut kept = kept.write().unwrap_or_else(PoisonError::into_inner);
            match &read {
                Ok((stamp, bytes)) if keep => {
                    if kept.len() >= MAX_KEPT && !kept.contains_key(full) {
                        kept.clear();
                    }
                    let entry = Kept {
                        stamp: stamp.clone(),
                        bytes: bytes.clone(),
                    };
                    kept.insert(full.to_path_buf(), entry);
                }
                _ => {
                    kept.remove(full);
                }
            }
        }
        read.map(|(_, bytes)| bytes)
    }
}

fn read_lock(kept: &RwLock<HashMap<PathBuf, Kept>>) -> RwLockReadGuard<'_, HashMap<PathBuf, Kept>> {
    kept.read().unwrap_or_else(PoisonError::into_inner)
}

/// A file's bytes with the stamp of the very file read. The stamp is taken from the open file
/// before its bytes: a change after that moves the ctime on, so a stamp is never paired with
/// bytes older than it.
fn read_stamped(full: &Path) -> io::Result<(Stamp, Bytes)> {
    let mut file = File::open(full)?;
    let stamp = Stamp::of(&file.metadata()?);
    Ok((stamp, Bytes::from(read_small(&mut file)?)))
}

/// Reads a whole file with `read` calls only: the files read whole are links and manifests,
/// mostly under a kilobyte, and a hot manifest GET reads two of them. `File::read_to_end`
/// would first ask for the size and the position (statx and lseek), two syscalls of six.
fn read_small(file: &mut File) -> io::Result<Vec<u8>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn link(dir: &Path) -> PathBuf {
        dir.join("link")
    }

    /// Reads `f` three times, each answering `want`, and says how many came from memory.
    fn hits_over_three_reads(reads: &Reads, f: &Path, want: &[u8]) -> u64 {
        let before = reads.hits();
        for _ in 0..3 {
            assert_eq!(reads.read(f).unwrap(), want);
        }
        reads.hits() - before
    }

    /// A reader trusting the device `dir` lies on, whatever filesystem that is.
    fn trusting(dir: &Path, settle: Duration) -> Reads {
        Reads::on_device(Some(fs::metadata(dir).unwrap().dev()), settle)
    }

    #[test]
    fn a_kept_file_is_served_from_memory_until_any_change() {
        let dir = tempfile::tempdir().unwrap();
        let f = link(dir.path());
        let reads = trusting(dir.path(), Duration::ZERO);
        fs::write(&f, "sha256:aaaa").unwrap();
        assert_eq!(reads.read(&f).unwrap(), "sha256:aaaa");
        assert_eq!(reads.hits(), 0);
        assert_eq!(reads.read(&f).unwrap(), "sha256:aaaa");
        assert_eq!(reads.hits(), 1);

        // replaced the way wharf replaces: a new inode renamed over the path
        let tmp = dir.path().join("tmp");
        fs::write(&tmp, "sha256:bbbb").unwrap();
        fs::rename(&tmp, &f).unwrap();
        assert_eq!(reads.read(&f).unwrap(), "sha256:bbbb");
        assert_eq!(reads.read(&f).unwrap(), "sha256:bbbb");
        assert_eq!(reads.hits(), 2);

        // rewritten in place to the same length, as distribution's driver does; past one
        // timestamp tick, which the settle time guarantees outside this test
        let ino = fs::metadata(&f).unwrap().ino();
        std::thread::sleep(Duration::from_millis(20));
        fs::write(&f, "sha256:cccc").unwrap();
        assert_eq!(
            fs::metadata(&f).unwrap().ino(),
            ino,
            "not rewritten in place"
        );
        assert_eq!(reads.read(&f).unwrap(), "sha256:cccc");
        assert_eq!(reads.hits(), 2);

        fs::remove_file(&f).unwrap();
        assert_eq!(reads.read(&f).unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[test]
    fn a_file_changed_within_the_settle_time_is_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let f = link(dir.path());
        let reads = trusting(dir.path(), SETTLE);
        fs::write(&f, "sha256:aaaa").unwrap();
        assert_eq!(hits_over_three_reads(&reads, &f, b"sha256:aaaa"), 0);
    }

    #[test]
    fn large_files_and_untrusted_filesystems_are_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("manifest");
        let body = vec![b'x'; MAX_KEPT_SIZE as usize + 1];
        fs::write(&big, &body).unwrap();
        let f = link(dir.path());
        fs::write(&f, "sha256:aaaa").unwrap();

        let reads = trusting(dir.path(), Duration::ZERO);
        assert_eq!(hits_over_three_reads(&reads, &big, &body), 0);

        let untrusted = Reads::on_device(None, Duration::ZERO);
        assert_eq!(hits_over_three_reads(&untrusted, &f, b"sha256:aaaa"), 0);
    }

    #[test]
    fn files_on_another_device_than_the_root_are_read_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir_in("/dev/shm").unwrap();
        let f = link(elsewhere.path());
        fs::write(&f, "sha256:aaaa").unwrap();
        let (root_dev, file_dev) = (
            fs::metadata(dir.path()).unwrap().dev(),
            fs::metadata(&f).unwrap().dev(),
        );
        assert_ne!(root_dev, file_dev, "the temp dir is on /dev/shm's device");
        let reads = trusting(dir.path(), Duration::ZERO);
        assert_eq!(hits_over_three_reads(&reads, &f, b"sha256:aaaa"), 0);
        // the same file read by a reader trusting its own device is kept
        let local = trusting(elsewhere.path(), Duration::ZERO);
        assert_eq!(hits_over_three_reads(&local, &f, b"sha256:aaaa"), 2);
    }

    #[test]
    fn only_local_filesystems_are_trusted() {
        assert!(!is_local(Path::new("/proc")));
        assert!(
            is_local(Path::new("/dev/shm")),
            "/dev/shm is tmpfs on Linux"
        );
    }
}
