//! Cases about the tree: which paths exist, and stat, list, rename, delete and walk over them.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::join_all;

use super::{assert_not_found, at, finish, pattern, scratch};
use crate::driver::Driver;
use crate::path::StoragePath;

/// The root always exists, even on an empty backend (distribution `TestRootExists`).
pub async fn root_exists(d: &dyn Driver) {
    d.list(&StoragePath::root()).await.unwrap();
}

/// Every name the grammar allows round-trips, including dot-files a backend might take for its own.
pub async fn valid_paths_round_trip(d: &dyn Driver) {
    let root = scratch("valid-paths");
    let names = [
        "a",
        "2",
        "a.a",
        "0-9/abcdefg",
        "abc/1.2.3.4.5-6_zyx/123.z/4",
        ".abc",
        "abc./abc",
        "a--b",
        "_.abc",
        "Abc/Cba",
        ".wharf-tmp-x",
        "x/.wharf-tmp-y",
    ];
    for name in names {
        let p = at(&root, name);
        let content = Bytes::from(format!("content of {name}"));
        d.put_content(&p, content.clone()).await.unwrap();
        assert_eq!(d.get_content(&p).await.unwrap(), content, "{p}");
        let siblings = d.list(&p.parent().unwrap()).await.unwrap();
        assert!(siblings.contains(&p), "{p} missing from {siblings:?}");
    }
    finish(d, &root).await;
}

/// `stat` describes files (size, plausible mtime) and implicit directories (distribution `TestStatCall`).
pub async fn stat_file_and_directory(d: &dyn Driver) {
    let root = scratch("stat");
    let (dir, file) = (at(&root, "dir/sub"), at(&root, "dir/sub/file"));
    assert_not_found(d.stat(&dir).await, "stat of a missing directory");
    assert_not_found(d.stat(&file).await, "stat of a missing file");

    let started = SystemTime::now();
    d.put_content(&file, Bytes::from(pattern(11, 0, 4096)))
        .await
        .unwrap();
    let info = d.stat(&file).await.unwrap();
    assert_eq!((&info.path, info.size, info.is_dir), (&file, 4096, false));
    let slack = Duration::from_secs(3600);
    assert!(info.modified > started - slack && info.modified < SystemTime::now() + slack);

    for path in [&dir, &at(&root, "dir")] {
        let info = d.stat(path).await.unwrap();
        assert_eq!((&info.path, info.size, info.is_dir), (path, 0, true));
    }
    d.put_content(&file, Bytes::from(pattern(12, 0, 2048)))
        .await
        .unwrap();
    let rewritten = d.stat(&file).await.unwrap();
    assert_eq!(rewritten.size, 2048);
    assert!(rewritten.modified >= info.modified, "mtime moves forward");
    finish(d, &root).await;
}

/// 300 files plus nested prefixes: a listing is sorted, absolute and only direct children
/// (distribution `TestList`).
pub async fn list_many_sorted_direct_children(d: &dyn Driver) {
    let root = scratch("list");
    let dir = at(&root, "many");
    let mut expected: Vec<StoragePath> = (0..300)
        .map(|i| at(&dir, &format!("{:x}-f", i * 7919)))
        .collect();
    let nested = ["sub/deeper/x", "sub/y", "sub-sibling", "sub.d/z"];
    let puts = expected
        .iter()
        .cloned()
        .chain(nested.iter().map(|n| at(&dir, n)));
    let puts: Vec<_> = puts.collect();
    for result in join_all(puts.iter().map(|p| d.put_content(p, Bytes::new()))).await {
        result.unwrap();
    }
    expected.extend(["sub", "sub-sibling", "sub.d"].map(|n| at(&dir, n)));
    expected.sort();

    assert_eq!(d.list(&dir).await.unwrap(), expected);
    assert_eq!(d.list(&root).await.unwrap(), std::slice::from_ref(&dir));
    let sub = at(&dir, "sub");
    assert_eq!(
        d.list(&sub).await.unwrap(),
        [at(&sub, "deeper"), at(&sub, "y")]
    );
    assert!(d.list(&StoragePath::root()).await.unwrap().contains(&root));
    finish(d, &root).await;
}

/// Listing a missing directory, or a file, is `NotFound`.
pub async fn list_missing_is_not_found(d: &dyn Driver) {
    let root = scratch("list-missing");
    assert_not_found(d.list(&at(&root, "nothing")).await, "list of a missing dir");
    let file = at(&root, "file");
    d.put_content(&file, Bytes::from_static(b"x"))
        .await
        .unwrap();
    assert_not_found(d.list(&file).await, "list of a file");
    assert_not_found(d.list(&at(&file, "child")).await, "list below a file");
    finish(d, &root).await;
}

/// `rename` replaces the target, removes the source and creates missing parents
/// (distribution `TestMove`, `TestMoveOverwrite`).
pub async fn rename_replaces_target(d: &dyn Driver) {
    let root = scratch("rename");
    let (src, dst) = (at(&root, "_uploads/id/data"), at(&root, "blobs/ab/data"));
    let content = Bytes::from(pattern(13, 0, 32));
    d.put_content(&src, content.clone()).await.unwrap();
    d.put_content(&dst, Bytes::from(pattern(14, 0, 64)))
        .await
        .unwrap();
    d.rename(&src, &dst).await.unwrap();
    assert_eq!(d.get_content(&dst).await.unwrap(), content);
    assert_not_found(d.get_content(&src).await, "source after rename");

    let nested = at(&root, "new/nested/place");
    d.rename(&dst, &nested).await.unwrap();
    assert_eq!(d.get_content(&nested).await.unwrap(), content);
    assert_eq!(d.stat(&nested).await.unwrap().size, 32);
    finish(d, &root).await;
}

/// Renaming a missing source is `NotFound` and leaves the target alone (distribution `TestMoveNonexistent`).
pub async fn rename_missing_source_is_not_found(d: &dyn Driver) {
    let root = scratch("rename-missing");
    let dst = at(&root, "dst");
    d.put_content(&dst, Bytes::from_static(b"keep"))
        .await
        .unwrap();
    assert_not_found(
        d.rename(&at(&root, "missing"), &dst).await,
        "rename of a missing source",
    );
    let below_file = at(&dst, "child");
    assert_not_found(
        d.rename(&below_file, &at(&root, "x")).await,
        "rename from below a file",
    );
    assert_eq!(d.get_content(&dst).await.unwrap(), &b"keep"[..]);
    finish(d, &root).await;
}

/// Deleting a file removes only it; deleting a directory removes everything below (distribution `TestDeleteFolder`).
pub async fn delete_subtree(d: &dyn Driver) {
    let root = scratch("delete-subtree");
    let dir = at(&root, "repo");
    let files = ["a", "b", "c/d/e"].map(|n| at(&dir, n));
    for f in &files {
        d.put_content(f, Bytes::from_static(b"x")).await.unwrap();
    }
    d.delete(&files[0]).await.unwrap();
    assert_not_found(d.get_content(&files[0]).await, "deleted file");
    d.get_content(&files[1]).await.unwrap();
    d.delete(&dir).await.unwrap();
    for f in &files {
        assert_not_found(d.get_content(f).await, "file below a deleted directory");
    }
    assert_not_found(d.stat(&dir).await, "deleted directory");
    assert_not_found(d.list(&dir).await, "list of a deleted directory");
    finish(d, &root).await;
}

/// Deleting `/a` spares `/ab` and `/a-b`, which object stores share a key prefix with
/// (distribution `TestDeleteOnlyDeletesSubpaths`).
pub async fn delete_only_deletes_subpaths(d: &dyn Driver) {
    let root = scratch("delete-prefix");
    let names = [
        "file",
        "filesuffix",
        "file-x",
        "dir/file",
        "dirsuffix/file",
        "dir.x/file",
    ];
    for name in names {
        d.put_content(&at(&root, name), Bytes::from_static(b"x"))
            .await
            .unwrap();
    }
    d.delete(&at(&root, "file")).await.unwrap();
    d.delete(&at(&root, "dir")).await.unwrap();
    assert_not_found(d.get_content(&at(&root, "file")).await, "deleted file");
    assert_not_found(d.get_content(&at(&root, "dir/file")).await, "deleted dir");
    for name in ["filesuffix", "file-x", "dirsuffix/file", "dir.x/file"] {
        d.get_content(&at(&root, name)).await.unwrap();
    }
    finish(d, &root).await;
}

/// Deleting nothing is `NotFound`, also below a file (distribution `TestDeleteNonexistent`).
pub async fn delete_missing_is_not_found(d: &dyn Driver) {
    let root = scratch("delete-missing");
    assert_not_found(
        d.delete(&at(&root, "missing")).await,
        "delete of a missing path",
    );
    let file = at(&root, "file");
    d.put_content(&file, Bytes::new()).await.unwrap();
    assert_not_found(d.delete(&at(&file, "child")).await, "delete below a file");
    finish(d, &root).await;
}

/// `walk` yields every file and directory below the root, sorted, without the root itself.
pub async fn walk_returns_everything_below_root(d: &dyn Driver) {
    let root = scratch("walk");
    let files = [("a", 1), ("b/c", 3), ("b/d/e", 5), ("b-x", 2)];
    for (name, len) in files {
        d.put_content(&at(&root, name), Bytes::from(vec![b'x'; len]))
            .await
            .unwrap();
    }
    let mut expected: Vec<(StoragePath, bool, u64)> = files
        .iter()
        .map(|&(n, len)| (at(&root, n), false, len as u64))
        .collect();
    expected.extend(["b", "b/d"].map(|n| (at(&root, n), true, 0)));
    expected.sort();
    let walked = d.walk(&root).await.unwrap();
    let walked: Vec<_> = walked
        .into_iter()
        .map(|i| (i.path, i.is_dir, i.size))
        .collect();
    assert_eq!(walked, expected);
    assert_not_found(
        d.walk(&at(&root, "missing")).await,
        "walk of a missing root",
    );
    finish(d, &root).await;
}

/// Every lookup of an absent path is `NotFound`, including below a file and a directory read as
/// a file (distribution `TestReadNonexistent*`).
pub async fn missing_paths_are_not_found(d: &dyn Driver) {
    let root = scratch("missing");
    let file = at(&root, "dir/file");
    d.put_content(&file, Bytes::from_static(b"x"))
        .await
        .unwrap();
    for p in [at(&root, "missing"), at(&file, "child"), at(&root, "dir")] {
        assert_not_found(d.get_content(&p).await, &format!("get_content {p}"));
        assert_not_found(d.reader(&p, 0).await.map(drop), &format!("reader {p}"));
        assert_not_found(
            d.reader(&p, 64).await.map(drop),
            &format!("reader {p} at 64"),
        );
    }
    for p in [at(&root, "missing"), at(&file, "child")] {
        assert_not_found(d.stat(&p).await, &format!("stat {p}"));
    }
    finish(d, &root).await;
}
