//! Small files made visible atomically: a synced temp file renamed over its target, then the
//! directory synced; and groups of them published in order, each durable before the next.

use super::*;

/// Writes a sibling temp file, fsyncs it and renames it over the target, so a reader sees the
/// old or the new content and a crash leaves one of them, then fsyncs the directory entry.
/// Without `durable`, the same steps minus both syncs.
pub(super) fn put_atomic(full: &Path, content: &[u8], durable: bool) -> io::Result<()> {
    let tmp = stage_temp(full, content, durable)?;
    if let Err(e) = fs::rename(&tmp, full) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    match full.parent() {
        Some(dir) if durable => sync_dir(dir),
        _ => Ok(()),
    }
}

/// The first half of `put_atomic`: a temp file beside `full` (synced when `durable`), returned
/// for renaming.
pub(super) fn stage_temp(full: &Path, content: &[u8], durable: bool) -> io::Result<PathBuf> {
    let dir = full.parent().ok_or_else(|| io::Error::other("no parent"))?;
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::new_v4().simple()));
    let written = File::create_new(&tmp).and_then(|mut file| {
        file.write_all(content)?;
        if durable { file.sync_all() } else { Ok(()) }
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
pub(super) fn publish_groups(groups: &[Vec<(PathBuf, PathBuf)>]) -> Option<(usize, io::Error)> {
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
pub(super) fn remove_temps<'a>(temps: impl IntoIterator<Item = &'a PathBuf>) -> io::Result<()> {
    for tmp in temps {
        let _ = fs::remove_file(tmp);
    }
    Ok(())
}
