use super::*;

async fn fixture() -> (FilesystemDriver, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let params = FilesystemParams {
        root_directory: dir.path().join("registry"),
        max_threads: 100,
    };
    (FilesystemDriver::new(params).await.unwrap(), dir)
}

fn path(s: &str) -> StoragePath {
    StoragePath::new(s).unwrap()
}

crate::conformance_tests!(fixture().await);

#[tokio::test]
async fn on_disk_mapping_is_root_plus_path() {
    let (d, _dir) = fixture().await;
    let p = path("/docker/registry/v2/repositories/library/alpine/_layers/link");
    d.put_content(&p, Bytes::from_static(b"sha256:abc"))
        .await
        .unwrap();
    let on_disk = d
        .root
        .join("docker/registry/v2/repositories/library/alpine/_layers/link");
    assert_eq!(fs::read(on_disk).unwrap(), b"sha256:abc");

    fs::create_dir_all(d.root.join("docker/registry/v2/blobs/sha256/ab")).unwrap();
    fs::write(d.root.join("docker/registry/v2/blobs/sha256/ab/data"), b"x").unwrap();
    let listed = d
        .list(&path("/docker/registry/v2/blobs/sha256/ab"))
        .await
        .unwrap();
    assert_eq!(listed, [path("/docker/registry/v2/blobs/sha256/ab/data")]);
}

#[tokio::test]
async fn temp_files_are_invisible_and_never_left_behind() {
    let (d, _dir) = fixture().await;
    let p = path("/dir/file");
    for content in ["one", "two"] {
        d.put_content(&p, Bytes::from(content)).await.unwrap();
    }
    let on_disk: Vec<_> = fs::read_dir(d.root.join("dir"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(on_disk, ["file"], "put_content leaves only the target");

    fs::write(d.root.join(format!("dir/{TEMP_PREFIX}crashed")), b"partial").unwrap();
    fs::create_dir(d.root.join("lost+found")).unwrap();
    assert_eq!(
        d.list(&path("/dir")).await.unwrap(),
        std::slice::from_ref(&p)
    );
    assert_eq!(d.list(&StoragePath::root()).await.unwrap(), [path("/dir")]);
    let walked: Vec<_> = d.walk(&StoragePath::root()).await.unwrap();
    let walked: Vec<_> = walked.into_iter().map(|i| i.path).collect();
    assert_eq!(walked, [path("/dir"), p]);
}

#[tokio::test]
async fn file_from_another_process_is_readable_and_appendable() {
    let (d, _dir) = fixture().await;
    let p = path("/_uploads/id/data");
    fs::create_dir_all(d.root.join("_uploads/id")).unwrap();
    fs::write(d.root.join("_uploads/id/data"), b"written by registry:2;").unwrap();
    assert_eq!(
        d.get_content(&p).await.unwrap(),
        &b"written by registry:2;"[..]
    );

    let mut w = d.writer(&p, true).await.unwrap();
    assert_eq!(w.size(), 22);
    w.write(Bytes::from_static(b" resumed by wharf"))
        .await
        .unwrap();
    w.commit().await.unwrap();
    let on_disk = fs::read(d.root.join("_uploads/id/data")).unwrap();
    assert_eq!(on_disk, b"written by registry:2; resumed by wharf");
}

#[tokio::test]
async fn dropped_writer_keeps_flushed_data_without_panicking() {
    let (d, _dir) = fixture().await;
    let p = path("/upload");
    let mut w = d.writer(&p, false).await.unwrap();
    w.write(Bytes::from(vec![7; WRITE_BUFFER + 1]))
        .await
        .unwrap();
    w.write(Bytes::from_static(b"buffered")).await.unwrap();
    drop(w);
    // the full buffer went out; the byte after it and "buffered" were still in memory
    assert_eq!(d.stat(&p).await.unwrap().size, WRITE_BUFFER as u64);
}

#[tokio::test]
async fn a_flush_left_running_by_a_dropped_writer_lands_before_the_file_is_looked_at() {
    let (d, _dir) = fixture().await;
    let full = WRITE_BUFFER as u64 * 4;
    for round in 0..10 {
        let p = path(&format!("/_uploads/{round}/data"));
        let mut w = d.writer(&p, false).await.unwrap();
        for _ in 0..4 {
            w.write(Bytes::from(vec![round; WRITE_BUFFER]))
                .await
                .unwrap();
        }
        // the fourth buffer's flush is in flight as the request dies
        drop(w);
        match round % 3 {
            0 => assert_eq!(d.stat(&p).await.unwrap().size, full),
            1 => assert_eq!(d.writer(&p, true).await.unwrap().size(), full),
            _ => {
                let read = d.reader(&p, 0).await.unwrap();
                let read: Vec<Bytes> = read.map(|c| c.unwrap()).collect().await;
                assert_eq!(read.iter().map(Bytes::len).sum::<usize>() as u64, full);
            }
        }
    }
}

/// A writer on `p` as the driver makes one, kept concrete so a test can ask how it writes;
/// with `cached`, as if the filesystem had refused O_DIRECT.
async fn open_writer(
    d: &FilesystemDriver,
    p: &StoragePath,
    append: bool,
    cached: bool,
) -> FilesystemWriter {
    let full = d.full_path(p);
    let target = full.clone();
    let mut opened = d
        .run(move || open_for_write(&target, append))
        .await
        .unwrap();
    if cached {
        opened.direct = None;
    }
    let lock = d.flushes.lock_of(&full);
    FilesystemWriter::new(d, p.clone(), full, opened, lock)
}

/// Whether the filesystem under `dir` takes O_DIRECT, asked without the code under test.
fn takes_o_direct(dir: &Path) -> bool {
    let probe = dir.join("probe");
    fs::write(&probe, b"").unwrap();
    let flags = i32::try_from(rustix::fs::OFlags::DIRECT.bits()).unwrap();
    let opened = OpenOptions::new()
        .write(true)
        .custom_flags(flags)
        .open(&probe);
    fs::remove_file(&probe).unwrap();
    opened.is_ok()
}

/// Writes one upload in three sessions, as three PATCHes would: each ends inside a block, the
/// next starts there, and the buffer fills at offsets that are not the file's. Session `i`
/// goes through the page cache only when `cached[i]`. The file is checked after each.
async fn three_sessions(cached: [bool; 3]) {
    let (d, dir) = fixture().await;
    let direct = takes_o_direct(dir.path());
    let p = path("/_uploads/id/data");
    let bytes: Vec<u8> = (0..WRITE_BUFFER * 2 + 9000)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let sessions = [
        (0, 5000, 777),
        (5000, WRITE_BUFFER + 5003, 65_537),
        (WRITE_BUFFER + 5003, bytes.len(), 300_001),
    ];
    for (i, &(from, to, chunk)) in sessions.iter().enumerate() {
        let mut w = Box::new(open_writer(&d, &p, i > 0, cached[i]).await);
        let expect = direct && !cached[i];
        assert_eq!(w.size(), from as u64);
        assert_eq!(
            w.is_direct().await,
            expect,
            "O_DIRECT where the filesystem takes it"
        );
        for part in bytes[from..to].chunks(chunk) {
            w.write(Bytes::copy_from_slice(part)).await.unwrap();
        }
        assert_eq!(w.is_direct().await, expect);
        if to == bytes.len() {
            w.commit().await.unwrap();
        } else {
            w.close().await.unwrap();
        }
        let on_disk = fs::read(d.full_path(&p)).unwrap();
        assert!(on_disk == bytes[..to], "session {i} left the wrong bytes");
    }
}

#[tokio::test]
async fn writer_bypasses_the_page_cache_and_resumes_inside_a_block() {
    three_sessions([false; 3]).await;
}

#[tokio::test]
async fn writer_through_the_page_cache_resumes_alike_and_mixes_with_direct_sessions() {
    three_sessions([true; 3]).await;
    three_sessions([false, true, false]).await;
}

/// Three writers at once against a pool of three buffers: each needs two, so the ones the pool
/// cannot lend are small buffers of the writer's own, and every file still gets every byte.
/// All pooled buffers come back, and the next writer reuses one instead of allocating.
#[tokio::test]
async fn writers_beyond_the_pool_use_small_buffers_and_pooled_ones_come_back() {
    let (mut d, _dir) = fixture().await;
    d.buffers = BufferPool::new(3, 64);
    let bytes: Vec<u8> = (0..WRITE_BUFFER * 3 + 1234)
        .map(|i| (i * 13 % 251) as u8)
        .collect();
    let paths: Vec<_> = (0..3)
        .map(|i| path(&format!("/_uploads/{i}/data")))
        .collect();
    let mut writers = Vec::new();
    for p in &paths {
        writers.push(Box::new(open_writer(&d, p, false, false).await));
    }
    for part in bytes.chunks(100_000) {
        for w in &mut writers {
            w.write(Bytes::copy_from_slice(part)).await.unwrap();
            assert!(
                d.buffers.counts().0 <= 3,
                "more buffers lent than the pool holds"
            );
        }
    }
    let mut pooled = 0;
    for w in &mut writers {
        pooled += w.pooled_buffers().await;
    }
    assert_eq!(pooled, 3, "the pool lends all it has and no more");
    for w in writers {
        w.commit().await.unwrap();
    }
    for p in &paths {
        let on_disk = fs::read(d.full_path(p)).unwrap();
        assert!(on_disk == bytes, "{p} has the wrong bytes");
    }
    assert_eq!(d.buffers.counts(), (0, 3), "every pooled buffer came back");
    let mut w = Box::new(open_writer(&d, &paths[0], true, false).await);
    w.write(Bytes::from_static(b"more")).await.unwrap();
    assert_eq!(d.buffers.counts(), (1, 2), "a returned buffer is reused");
    w.commit().await.unwrap();
}

/// Writers the pool has nothing for double-buffer small buffers while few are out; once
/// `roomy` are, a new writer keeps one and refills it after each flush lands. Across many
/// flushes and chunks that do not line up with the buffer, both files get every byte.
#[tokio::test]
async fn writers_beyond_the_pool_keep_one_small_buffer_once_many_are_out() {
    let (mut d, _dir) = fixture().await;
    d.buffers = BufferPool::new(0, 2);
    let bytes: Vec<u8> = (0..SMALL_WRITE_BUFFER * 5 + 777)
        .map(|i| (i * 17 % 251) as u8)
        .collect();
    let paths = [path("/_uploads/first/data"), path("/_uploads/second/data")];
    let mut first = Box::new(open_writer(&d, &paths[0], false, false).await);
    let mut second = Box::new(open_writer(&d, &paths[1], false, false).await);
    for (i, part) in bytes.chunks(40_001).enumerate() {
        first.write(Bytes::copy_from_slice(part)).await.unwrap();
        if i >= 1 {
            assert_eq!(first.held_buffers(), 2, "first writer, chunk {i}");
        }
    }
    for (i, part) in bytes.chunks(40_001).enumerate() {
        second.write(Bytes::copy_from_slice(part)).await.unwrap();
        assert_eq!(second.held_buffers(), 1, "second writer, chunk {i}");
    }
    for (w, p) in [first, second].into_iter().zip(&paths) {
        w.commit().await.unwrap();
        assert!(
            fs::read(d.full_path(p)).unwrap() == bytes,
            "{p}: wrong bytes"
        );
    }
    assert_eq!(d.buffers.small_out(), 0, "every small buffer counted out");
}

#[tokio::test]
async fn new_creates_missing_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/c");
    let params = FilesystemParams {
        root_directory: root.clone(),
        max_threads: 1,
    };
    let d = FilesystemDriver::new(params).await.unwrap();
    assert!(root.is_dir());
    assert_eq!(d.limit.available_permits(), MIN_THREADS as usize);
    assert!(d.list(&StoragePath::root()).await.unwrap().is_empty());
}

/// Inode number and link count of a file.
fn inode(full: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(full).unwrap();
    (meta.ino(), meta.nlink())
}

#[tokio::test]
async fn a_durable_put_links_new_files_keeps_equal_ones_and_replaces_the_rest() {
    let (d, _dir) = fixture().await;
    let p = path("/repo/_manifests/revisions/sha256/ab/link");
    let full = d.full_path(&p);
    let content = Bytes::from_static(b"sha256:abababab");

    // new: the temp file's inode becomes the target, its temp name gone
    d.put_content(&p, content.clone()).await.unwrap();
    let (ino, links) = inode(&full);
    assert_eq!(links, 1, "the temp name is removed once linked");
    let names: Vec<_> = fs::read_dir(full.parent().unwrap()).unwrap().collect();
    assert_eq!(names.len(), 1, "only the target in its directory");

    // equal: the same file is kept, its modification time refreshed
    let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    File::options()
        .write(true)
        .open(&full)
        .unwrap()
        .set_modified(old)
        .unwrap();
    d.put_contents(vec![vec![(p.clone(), content.clone())]])
        .await
        .unwrap();
    assert_eq!(inode(&full).0, ino, "a file holding the content is kept");
    assert!(
        fs::metadata(&full).unwrap().modified().unwrap() > old,
        "fresh mtime"
    );

    // torn, as a crash between link and sync can leave it: replaced whole
    fs::write(&full, &content[..7]).unwrap();
    d.put_content(&p, content.clone()).await.unwrap();
    assert_eq!(fs::read(&full).unwrap(), content);
    assert_ne!(inode(&full).0, ino, "a file holding less is replaced");

    // different and shorter: replaced, no tail
    d.put_content(&p, Bytes::from_static(b"sha256:cd"))
        .await
        .unwrap();
    assert_eq!(fs::read(&full).unwrap(), b"sha256:cd");
    let names: Vec<_> = fs::read_dir(full.parent().unwrap()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temp file left behind");
}

#[tokio::test]
async fn a_failed_group_stops_the_groups_after_it() {
    let (d, _dir) = fixture().await;
    // a directory where the second group's file should go makes that group fail
    fs::create_dir_all(d.full_path(&path("/b/link"))).unwrap();
    let groups = vec![
        vec![(path("/a/data"), Bytes::from_static(b"bytes"))],
        vec![(path("/b/link"), Bytes::from_static(b"link"))],
        vec![(path("/c/tag"), Bytes::from_static(b"tag"))],
    ];
    let err = d.put_contents(groups).await.unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
    assert_eq!(fs::read(d.full_path(&path("/a/data"))).unwrap(), b"bytes");
    assert!(
        !d.full_path(&path("/c")).exists(),
        "nothing of a later group"
    );
    let left: Vec<_> = fs::read_dir(d.full_path(&path("/b"))).unwrap().collect();
    assert_eq!(left.len(), 1, "only the directory in the way, no temp file");
}
