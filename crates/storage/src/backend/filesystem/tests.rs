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
    assert_eq!(d.stat(&p).await.unwrap().size, WRITE_BUFFER as u64 + 1);
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
