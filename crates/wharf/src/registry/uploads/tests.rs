use super::*;
use wharf_storage::{Driver, StoragePath};

#[tokio::test]
async fn purging_removes_only_uploads_older_than_age_and_dry_run_removes_none() {
    let driver = std::sync::Arc::new(wharf_storage::backend::inmemory::InMemoryDriver::new());
    let registry = Registry::new(driver, super::super::Options::default());
    let repo: RepoName = "a/b".parse().unwrap();
    let old = registry.start_upload(&repo).await.unwrap();
    // no finished push: the repository has `_uploads` alone, and is purged all the same
    tokio::time::sleep(Duration::from_millis(30)).await;
    let fresh = registry.start_upload(&repo).await.unwrap();

    let found = registry
        .purge_uploads(Duration::from_millis(20), true)
        .await
        .unwrap();
    assert_eq!(found, vec![format!("a/b/_uploads/{old}")]);
    assert!(
        registry.upload_size(&repo, &old).await.is_ok(),
        "dry run kept it"
    );

    registry
        .purge_uploads(Duration::from_millis(20), false)
        .await
        .unwrap();
    assert!(matches!(
        registry.upload_size(&repo, &old).await,
        Err(Error::UploadUnknown)
    ));
    assert!(registry.upload_size(&repo, &fresh).await.is_ok());
}

/// A driver whose writers fail to close or commit, dropping their last bytes, as a full
/// disk or a lost connection to a store would.
struct FailingClose(Arc<dyn Driver>);

/// A writer of [`FailingClose`].
struct NeverLands(Box<dyn wharf_storage::FileWriter>);

/// Whether `result` failed with [`refused`]'s error, not some other one on the way.
fn was_refused<T: std::fmt::Debug>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::Storage(e)) if e.to_string() == refused().to_string())
}

fn refused() -> wharf_storage::Error {
    wharf_storage::Error::Backend {
        driver: "failing-close",
        source: "the last bytes never landed".into(),
    }
}

#[async_trait::async_trait]
impl wharf_storage::FileWriter for NeverLands {
    async fn write(&mut self, chunk: Bytes) -> wharf_storage::Result<()> {
        self.0.write(chunk).await
    }
    fn size(&self) -> u64 {
        self.0.size()
    }
    async fn commit(self: Box<Self>) -> wharf_storage::Result<()> {
        Err(refused())
    }
    async fn close(self: Box<Self>) -> wharf_storage::Result<()> {
        Err(refused())
    }
    async fn cancel(self: Box<Self>) -> wharf_storage::Result<()> {
        self.0.cancel().await
    }
}

#[async_trait::async_trait]
impl Driver for FailingClose {
    fn name(&self) -> &'static str {
        "failing-close"
    }
    async fn get_content(&self, path: &StoragePath) -> wharf_storage::Result<Bytes> {
        self.0.get_content(path).await
    }
    async fn put_content(&self, path: &StoragePath, content: Bytes) -> wharf_storage::Result<()> {
        self.0.put_content(path, content).await
    }
    async fn reader(
        &self,
        path: &StoragePath,
        offset: u64,
    ) -> wharf_storage::Result<wharf_storage::ByteStream> {
        self.0.reader(path, offset).await
    }
    async fn writer(
        &self,
        path: &StoragePath,
        append: bool,
    ) -> wharf_storage::Result<Box<dyn wharf_storage::FileWriter>> {
        Ok(Box::new(NeverLands(self.0.writer(path, append).await?)))
    }
    async fn stat(&self, path: &StoragePath) -> wharf_storage::Result<wharf_storage::FileInfo> {
        self.0.stat(path).await
    }
    async fn list(&self, dir: &StoragePath) -> wharf_storage::Result<Vec<StoragePath>> {
        self.0.list(dir).await
    }
    async fn rename(&self, from: &StoragePath, to: &StoragePath) -> wharf_storage::Result<()> {
        self.0.rename(from, to).await
    }
    async fn delete(&self, path: &StoragePath) -> wharf_storage::Result<()> {
        self.0.delete(path).await
    }
}

/// The hasher states an upload has saved, by offset.
async fn saved_states(driver: &dyn Driver, repo: &RepoName, id: &UploadId) -> Vec<String> {
    let dir = PathSpec::UploadHashStates {
        repo,
        id,
        algorithm: STATE_ALGORITHM,
    }
    .path();
    match driver.list(&dir).await {
        Ok(states) => states.iter().map(|p| p.file_name().to_owned()).collect(),
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => panic!("listing {dir}: {e}"),
    }
}

/// A hasher state is saved only for bytes that landed: when the writer cannot close, the
/// chunk fails and no state for its end is left to be paired with other bytes later.
#[tokio::test]
async fn no_hasher_state_is_saved_for_bytes_that_never_landed() {
    let memory: Arc<dyn Driver> = Arc::new(wharf_storage::backend::inmemory::InMemoryDriver::new());
    let repo: RepoName = "a/b".parse().unwrap();
    let body = || {
        futures::stream::iter([Ok::<_, std::convert::Infallible>(Bytes::from_static(
            b"hello",
        ))])
    };

    // The same chunk on a driver whose writers close: its state is saved at its end.
    let landing = Registry::new(Arc::clone(&memory), super::super::Options::default());
    let id = landing.start_upload(&repo).await.unwrap();
    assert_eq!(
        landing
            .append_upload(&repo, &id, None, body())
            .await
            .unwrap(),
        5
    );
    assert_eq!(saved_states(memory.as_ref(), &repo, &id).await, ["5"]);

    let failing = Registry::new(
        Arc::new(FailingClose(Arc::clone(&memory))),
        super::super::Options::default(),
    );
    let id = failing.start_upload(&repo).await.unwrap();
    let appended = failing.append_upload(&repo, &id, None, body()).await;
    assert!(
        was_refused(&appended),
        "a chunk whose bytes did not land fails with the refused close: {appended:?}"
    );
    assert_eq!(
        saved_states(memory.as_ref(), &repo, &id).await,
        Vec::<String>::new(),
        "no state for bytes that never landed"
    );
    // The one-go push of the same bytes (commit instead of close) fails and saves none too.
    let digest = Digest::of(Algorithm::Sha256, b"hello");
    let id = failing.start_upload(&repo).await.unwrap();
    let finished = failing.finish_upload(&repo, &id, &digest, body()).await;
    assert!(
        was_refused(&finished),
        "fails with the refused commit: {finished:?}"
    );
    assert_eq!(
        saved_states(memory.as_ref(), &repo, &id).await,
        Vec::<String>::new()
    );
}

#[test]
fn upload_ids() {
    assert!(
        "0b3c2d1e-aaaa-4bbb-8ccc-1234567890ab"
            .parse::<UploadId>()
            .is_ok()
    );
    for bad in ["", "../x", "a/b", "a.b", &"a".repeat(129)] {
        assert!(bad.parse::<UploadId>().is_err(), "{bad}");
    }
}
