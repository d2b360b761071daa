//! Cases about bytes: whole-file puts and gets, writers (truncate, resume, cancel) and readers.

use bytes::Bytes;
use futures::future::join_all;

use super::{
    ODD_CHUNKS, assert_not_found, at, finish, pattern, read_all, scratch, verify_pattern,
    write_all, write_pattern,
};
use crate::driver::{Driver, Error};
use crate::path::StoragePath;

/// The root is a directory: file operations on it fail with `InvalidPath`, as in distribution.
pub async fn root_is_not_a_file(d: &dyn Driver) {
    let root = StoragePath::root();
    let invalid = |r: Result<(), Error>| matches!(r, Err(Error::InvalidPath(_)));
    assert!(invalid(d.put_content(&root, Bytes::new()).await));
    assert!(invalid(d.get_content(&root).await.map(drop)));
    assert!(invalid(d.reader(&root, 0).await.map(drop)));
    assert!(invalid(d.writer(&root, true).await.map(drop)));
}

/// Small files survive `put_content`/`get_content` byte for byte: empty, one byte, non-UTF-8, 1 MiB.
pub async fn content_round_trip(d: &dyn Driver) {
    let root = scratch("content");
    let contents = [
        Bytes::new(),
        Bytes::from_static(b"a"),
        Bytes::from_static(&[0x80, 0x80, 0xc3, 0x28]),
        Bytes::from(pattern(1, 0, 1 << 20)),
    ];
    for (i, content) in contents.into_iter().enumerate() {
        let p = at(&root, &format!("file-{i}"));
        d.put_content(&p, content.clone()).await.unwrap();
        let got = d.get_content(&p).await.unwrap();
        assert!(
            got == content,
            "{p}: {} bytes back, {} put",
            got.len(),
            content.len()
        );
        assert_eq!(d.stat(&p).await.unwrap().size, content.len() as u64);
    }
    finish(d, &root).await;
}

/// The same contents written through a writer come back identical through a reader.
pub async fn streamed_round_trip(d: &dyn Driver) {
    let root = scratch("streamed");
    let contents = [
        vec![],
        b"a".to_vec(),
        vec![0x80, 0x80],
        pattern(2, 0, (1 << 20) + 3),
    ];
    for (i, content) in contents.iter().enumerate() {
        let p = at(&root, &format!("file-{i}"));
        write_all(d, &p, content).await;
        assert!(read_all(d, &p, 0).await == *content, "{p}");
        assert!(d.get_content(&p).await.unwrap() == content[..], "{p}");
    }
    finish(d, &root).await;
}

/// Concurrent readers of a file being replaced see the old or the new content, never a mix, and
/// a smaller replacement leaves no tail (distribution `TestPutContentMultipleTimes`).
pub async fn put_content_replaces_atomically(d: &dyn Driver) {
    let root = scratch("atomic");
    let p = at(&root, "manifest");
    let (a, b) = (
        Bytes::from(pattern(3, 0, 300_000)),
        Bytes::from(pattern(4, 0, 100_000)),
    );
    d.put_content(&p, a.clone()).await.unwrap();
    let writes = async {
        for i in 0..20 {
            let next = if i % 2 == 0 { &b } else { &a };
            d.put_content(&p, next.clone()).await.unwrap();
        }
    };
    let reads = async {
        for _ in 0..40 {
            let got = d.get_content(&p).await.unwrap();
            assert!(got == a || got == b, "torn read of {} bytes", got.len());
        }
    };
    futures::join!(writes, reads);
    assert!(d.get_content(&p).await.unwrap() == a);
    d.put_content(&p, b.clone()).await.unwrap();
    assert!(
        d.get_content(&p).await.unwrap() == b,
        "no tail of the longer content"
    );
    finish(d, &root).await;
}

/// `put_contents` leaves every group's files readable, keeps or replaces files put again (a
/// shorter replacement leaves no tail), and leaves nothing else behind.
pub async fn put_contents_writes_every_group(d: &dyn Driver) {
    let root = scratch("groups");
    let (data, link, referrer, tag) = (
        at(&root, "blobs/data"),
        at(&root, "revisions/link"),
        at(&root, "referrers/link"),
        at(&root, "tags/current/link"),
    );
    let long = Bytes::from(pattern(5, 0, 5_000));
    let groups = |tag_content: &Bytes| {
        vec![
            vec![(data.clone(), long.clone())],
            vec![
                (link.clone(), Bytes::from_static(b"sha256:one")),
                (referrer.clone(), Bytes::from_static(b"sha256:one")),
            ],
            vec![(tag.clone(), tag_content.clone())],
        ]
    };
    let first = Bytes::from_static(b"sha256:first-and-longer");
    d.put_contents(groups(&first)).await.unwrap();
    // again: the same bytes everywhere but the tag, which moves to a shorter content
    let second = Bytes::from_static(b"sha256:second");
    d.put_contents(groups(&second)).await.unwrap();
    assert!(d.get_content(&data).await.unwrap() == long);
    for p in [&link, &referrer] {
        assert_eq!(d.get_content(p).await.unwrap(), &b"sha256:one"[..], "{p}");
    }
    assert_eq!(
        d.get_content(&tag).await.unwrap(),
        second,
        "no tail of the longer tag"
    );
    for p in [&data, &link, &referrer, &tag] {
        let dir = p.parent().unwrap();
        assert_eq!(
            d.list(&dir).await.unwrap(),
            vec![p.clone()],
            "only {p} in {dir}"
        );
    }
    d.put_contents(Vec::new()).await.unwrap();
    finish(d, &root).await;
}

/// 64 MiB in odd-sized chunks streams in and back out exactly (distribution `TestWriteReadLargeStreams`).
pub async fn large_streamed_write(d: &dyn Driver) {
    const LEN: u64 = 64 << 20;
    let root = scratch("large");
    let p = at(&root, "blob/data");
    let mut w = d.writer(&p, false).await.unwrap();
    write_pattern(&mut *w, 5, 0, LEN, &ODD_CHUNKS).await;
    w.commit().await.unwrap();
    assert_eq!(d.stat(&p).await.unwrap().size, LEN);
    verify_pattern(d, &p, 5, 0, LEN).await;
    verify_pattern(d, &p, 5, LEN - 1_234_567, LEN).await;
    finish(d, &root).await;
}

/// A writer without `append` starts the file over (distribution `TestTruncate`).
pub async fn writer_truncates(d: &dyn Driver) {
    let root = scratch("truncate");
    let p = at(&root, "file");
    d.put_content(&p, Bytes::from(pattern(6, 0, 1 << 20)))
        .await
        .unwrap();
    let mut w = d.writer(&p, false).await.unwrap();
    assert_eq!(w.size(), 0);
    w.write(Bytes::from_static(b"fresh")).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(d.get_content(&p).await.unwrap(), &b"fresh"[..]);
    finish(d, &root).await;
}

/// Three writers, each opened anew with `append`, continue where the last committed, as an
/// upload resumed on another instance does (distribution `TestContinueStreamAppend*`).
async fn resume(d: &dyn Driver, case: &str, part: u64) {
    let root = scratch(case);
    let p = at(&root, "_uploads/id/data");
    let mut size = 0;
    for round in 0..3 {
        let mut w = d.writer(&p, round > 0).await.unwrap();
        assert_eq!(
            w.size(),
            size,
            "round {round} resumes at the committed size"
        );
        write_pattern(&mut *w, 7, size, part, &[65_539, 31]).await;
        w.commit().await.unwrap();
        size += part;
        assert_eq!(d.stat(&p).await.unwrap().size, size);
    }
    verify_pattern(d, &p, 7, 0, size).await;
    finish(d, &root).await;
}

/// Resuming with tiny parts, the corner case of buffering backends.
pub async fn writer_resume_small_chunks(d: &dyn Driver) {
    resume(d, "resume-small", 32).await;
}

/// Resuming with parts above S3's 5 MiB multipart minimum.
pub async fn writer_resume_large_chunks(d: &dyn Driver) {
    resume(d, "resume-large", 10 << 20).await;
}

/// A file grown by several `append` writers (parts below and above 5 MiB) moves into place
/// whole, as an upload's data does at its final PUT; nothing is left at the source.
pub async fn rename_after_resume(d: &dyn Driver) {
    let root = scratch("rename-resumed");
    let (src, dst) = (at(&root, "_uploads/id/data"), at(&root, "blobs/ab/data"));
    let parts: [u64; 4] = [6 << 20, 32, (5 << 20) + 7, 1];
    let mut size = 0;
    for (round, part) in parts.into_iter().enumerate() {
        let mut w = d.writer(&src, round > 0).await.unwrap();
        write_pattern(&mut *w, 16, size, part, &[1 << 20, 4093]).await;
        // uploads close their chunks and rely on the rename for durability
        if round % 2 == 0 {
            w.close().await.unwrap();
        } else {
            w.commit().await.unwrap();
        }
        size += part;
    }
    let walked = d.walk(&root).await.unwrap();
    let info = walked.iter().find(|i| i.path == src).unwrap();
    assert_eq!(info.size, size, "walk reports the whole resumed file");
    d.rename(&src, &dst).await.unwrap();
    assert_eq!(d.stat(&dst).await.unwrap().size, size);
    verify_pattern(d, &dst, 16, 0, size).await;
    verify_pattern(d, &dst, 16, size - 40, size).await;
    assert_not_found(d.stat(&src).await, "source after rename");
    finish(d, &root).await;
}

/// `put_scratch` reads back like `put_content`, replaces whole, and leaves nothing else behind.
pub async fn scratch_round_trip(d: &dyn Driver) {
    let root = scratch("scratch");
    let p = at(&root, "state/0");
    d.put_scratch(&p, Bytes::from_static(b"first state"))
        .await
        .unwrap();
    d.put_scratch(&p, Bytes::from_static(b"second"))
        .await
        .unwrap();
    assert_eq!(d.get_content(&p).await.unwrap(), &b"second"[..]);
    let listed = d.list(&at(&root, "state")).await.unwrap();
    assert_eq!(listed, vec![p.clone()], "no temporary file is listed");
    finish(d, &root).await;
}

/// `append` on a missing file starts an empty one rather than failing.
pub async fn writer_append_creates_missing_file(d: &dyn Driver) {
    let root = scratch("append-missing");
    let p = at(&root, "new/file");
    let mut w = d.writer(&p, true).await.unwrap();
    assert_eq!(w.size(), 0);
    w.write(Bytes::from_static(b"abc")).await.unwrap();
    w.commit().await.unwrap();
    assert_eq!(d.get_content(&p).await.unwrap(), &b"abc"[..]);
    finish(d, &root).await;
}

/// `cancel` discards the whole file, including what an earlier writer committed.
pub async fn cancel_removes_file(d: &dyn Driver) {
    let root = scratch("cancel");
    let p = at(&root, "file");
    let mut w = d.writer(&p, false).await.unwrap();
    w.write(Bytes::from(pattern(8, 0, 100))).await.unwrap();
    w.cancel().await.unwrap();
    assert_not_found(d.stat(&p).await, "stat after cancel");

    d.put_content(&p, Bytes::from_static(b"committed"))
        .await
        .unwrap();
    let mut w = d.writer(&p, true).await.unwrap();
    w.write(Bytes::from_static(b" and more")).await.unwrap();
    w.cancel().await.unwrap();
    assert_not_found(d.get_content(&p).await, "get after cancel of an append");
    finish(d, &root).await;
}

/// Reads from 0, the middle, the last byte and the end (empty) (distribution `TestReaderWithOffset`).
pub async fn reader_offsets(d: &dyn Driver) {
    let root = scratch("offsets");
    let p = at(&root, "file");
    let content = pattern(9, 0, 96);
    d.put_content(&p, Bytes::from(content.clone()))
        .await
        .unwrap();
    for offset in [0, 32, 64, 95, 96] {
        let got = read_all(d, &p, offset).await;
        assert_eq!(got, content[offset as usize..], "from {offset}");
    }
    finish(d, &root).await;
}

/// An offset past the end is `InvalidOffset` naming the path and offset, even on an empty file.
pub async fn reader_past_end_is_invalid_offset(d: &dyn Driver) {
    let root = scratch("invalid-offset");
    let (p, empty) = (at(&root, "file"), at(&root, "empty"));
    d.put_content(&p, Bytes::from(pattern(10, 0, 96)))
        .await
        .unwrap();
    d.put_content(&empty, Bytes::new()).await.unwrap();
    for (path, offset) in [(&p, 97), (&p, u64::MAX), (&empty, 1)] {
        match d.reader(path, offset).await {
            Err(Error::InvalidOffset {
                path: at,
                offset: o,
            }) => {
                assert_eq!((&at, o), (path, offset));
            }
            Err(e) => panic!("{path} at {offset}: expected InvalidOffset, got {e:?}"),
            Ok(_) => panic!("{path} at {offset}: expected InvalidOffset, got a stream"),
        }
    }
    assert!(read_all(d, &empty, 0).await.is_empty());
    finish(d, &root).await;
}

/// Sixteen writers to different paths, interleaved, each get exactly their own bytes.
pub async fn concurrent_writers(d: &dyn Driver) {
    let root = scratch("concurrent-writers");
    let paths: Vec<_> = (0..16)
        .map(|i| at(&root, &format!("upload-{i}/data")))
        .collect();
    let len = |i: u64| 100_000 + i * 4_099;
    join_all(paths.iter().zip(0u64..).map(|(p, i)| async move {
        let mut w = d.writer(p, false).await.unwrap();
        write_pattern(&mut *w, 100 + i, 0, len(i), &[1000 + i as usize * 77]).await;
        w.commit().await.unwrap();
    }))
    .await;
    for (p, i) in paths.iter().zip(0u64..) {
        verify_pattern(d, p, 100 + i, 0, len(i)).await;
    }
    finish(d, &root).await;
}

/// Ten readers at different offsets of one file stream at once (distribution `TestConcurrentStreamReads`).
pub async fn concurrent_readers(d: &dyn Driver) {
    const LEN: u64 = 8 << 20;
    let root = scratch("concurrent-readers");
    let p = at(&root, "blob");
    d.put_content(&p, Bytes::from(pattern(15, 0, LEN as usize)))
        .await
        .unwrap();
    join_all((0..10).map(|i| verify_pattern(d, &p, 15, i * 777_777, LEN))).await;
    finish(d, &root).await;
}

/// `local_file`, where a backend has one, holds exactly the file's bytes, and a missing path
/// is `NotFound` there; a backend without local files answers `None` for both.
pub async fn local_file_is_the_content(d: &dyn Driver) {
    use std::io::Read;
    let root = scratch("local-file");
    let p = at(&root, "blob/data");
    let content = Bytes::from(pattern(7, 0, 300_000));
    d.put_content(&p, content.clone()).await.unwrap();
    let missing = d.local_file(&at(&root, "blob/missing")).await;
    if let Some(mut file) = d.local_file(&p).await.unwrap() {
        let mut read = Vec::new();
        file.read_to_end(&mut read).unwrap();
        assert!(read == content, "the local file holds other bytes");
        assert_not_found(missing.map(drop), "local_file of a missing path");
    } else {
        assert!(matches!(missing, Ok(None)), "{missing:?}");
    }
    finish(d, &root).await;
}
