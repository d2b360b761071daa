//! Small files made visible atomically, and durably when asked. The bytes go to a temp file
//! beside the target, so a reader never sees part of them. A new target becomes a hard link to
//! that file, and one sync of the file then makes its bytes and its new directory entries
//! durable: Linux's local filesystems make a new entry durable with the file's own sync (ext4
//! without a journal syncs a new file's new parent directories, journaling filesystems commit
//! the entry with the inode). A target already holding the bytes is touched and synced; any
//! other is replaced by a rename, with a sync before and one of the directory after: two
//! device flushes where the other cases take one.

use super::*;

/// Writes `content` at `full` so a reader sees the old or the new content, never a mix. With
/// `durable`, it is durable on return, and a file already holding `content` is kept with a
/// fresh modification time; a crash before the return leaves the old content, or for a new
/// target possibly a file holding less, which the next durable put replaces.
pub(super) fn put_atomic(full: &Path, content: &[u8], durable: bool) -> io::Result<()> {
    let dir = full.parent().ok_or_else(|| io::Error::other("no parent"))?;
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let mut file = File::create_new(&tmp)?;
    let placed = file.write_all(content).and_then(|()| {
        if durable {
            place_durably(&tmp, &file, full, dir, content)
        } else {
            fs::rename(&tmp, full)
        }
    });
    if placed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    placed
}

/// The durable end of `put_atomic`, for a written, unsynced temp file.
fn place_durably(
    tmp: &Path,
    file: &File,
    full: &Path,
    dir: &Path,
    content: &[u8],
) -> io::Result<()> {
    match fs::hard_link(tmp, full) {
        Ok(()) => {
            // the temp name goes first, so the sync writes the directory in its final state
            let _ = fs::remove_file(tmp);
            return file.sync_all();
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            if let Some(existing) = holding(full, content) {
                fs::remove_file(tmp)?;
                existing.set_modified(SystemTime::now())?;
                return existing.sync_all();
            }
        }
        // a filesystem without hard links: the rename does the same in two flushes
        Err(_) => {}
    }
    file.sync_all()?;
    fs::rename(tmp, full)?;
    sync_dir(dir)
}

/// The file at `full`, open for writing, when it holds exactly `content` (a crash between a
/// link and its sync can leave a new file's name without its bytes: such a file is replaced).
fn holding(full: &Path, content: &[u8]) -> Option<File> {
    let file = OpenOptions::new().read(true).write(true).open(full).ok()?;
    let mut have = Vec::with_capacity(content.len() + 1);
    (&file)
        .take(content.len() as u64 + 1)
        .read_to_end(&mut have)
        .ok()?;
    (have == content).then_some(file)
}

/// Puts groups of files durably, in order: a group's files at once (on as many threads), and
/// the next group only once all of them are durable. On failure, the indexes of the group and
/// the file that failed, with the error; later groups are not written.
pub(super) fn put_in_order(groups: &[Vec<(PathBuf, Bytes)>]) -> Option<(usize, usize, io::Error)> {
    for (g, group) in groups.iter().enumerate() {
        let failed = match group.as_slice() {
            [(full, content)] => put_atomic(full, content, true).err().map(|e| (0, e)),
            _ => std::thread::scope(|s| {
                let each: Vec<_> = group
                    .iter()
                    .map(|(full, content)| s.spawn(move || put_atomic(full, content, true)))
                    .collect();
                // every thread is joined before the first error is picked
                let results: Vec<_> = each
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(io::Error::other("file write panicked")))
                    })
                    .collect();
                let mut failures = results.into_iter().enumerate();
                failures.find_map(|(i, r)| r.err().map(|e| (i, e)))
            }),
        };
        if let Some((i, e)) = failed {
            return Some((g, i, e));
        }
    }
    None
}
