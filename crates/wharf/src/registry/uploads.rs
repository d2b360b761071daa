//! Resumable blob uploads whose whole state lives in storage, so any instance sharing the
//! storage can continue an upload another one started.
//!
//! After every request the data file is durable and the hasher state for its length is saved at
//! `hashstates/<alg>/<offset>`. A request cut short (client gone, process killed) may leave bytes
//! past the last saved state; they are kept and re-hashed from the file on the next request, so
//! the reported offset is always the file's length and the digest is always over exactly it.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use wharf_oci::{Algorithm, Digest, Hasher, RepoName};

use super::layout::PathSpec;
use super::{Error, Registry, Result};

/// An upload session id: the last URL segment, also a storage path component.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    /// A fresh random id (a UUID, as distribution uses).
    pub fn generate() -> Self {
        UploadId(uuid::Uuid::new_v4().to_string())
    }

    /// The id as it appears in URLs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for UploadId {
    type Err = ();

    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(UploadId(s.to_owned()))
        } else {
            Err(())
        }
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One async mutex per upload id in use, so concurrent requests on one session (a client
/// racing its own chunks) append and hash in turn. Instances sharing storage do not see each
/// other's locks; clients send one session's chunks in order, which is what the spec asks.
#[derive(Default)]
pub(crate) struct UploadLocks(std::sync::Mutex<HashMap<UploadId, Weak<tokio::sync::Mutex<()>>>>);

impl UploadLocks {
    /// Waits for and holds the session's lock until the guard is dropped.
    pub(crate) async fn lock(&self, id: &UploadId) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
            map.retain(|_, w| w.strong_count() > 0);
            match map.get(id).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(id.clone(), Arc::downgrade(&l));
                    l
                }
            }
        };
        lock.lock_owned().await
    }
}

/// Hash state is kept for sha256, the algorithm nearly every client uses; other algorithms
/// re-hash the data file once at the end.
const STATE_ALGORITHM: Algorithm = Algorithm::Sha256;

impl Registry {
    /// Opens a new upload session.
    pub async fn start_upload(&self, repo: &RepoName) -> Result<UploadId> {
        self.check_writable()?;
        let id = UploadId::generate();
        let now = crate::rfc3339::seconds(SystemTime::now());
        // Not synced: an upload's bytes are not durable before its commit either, so after a
        // crash the client starts over whether or not this file survived.
        self.driver
            .put_scratch(
                &PathSpec::UploadStartedAt { repo, id: &id }.path(),
                now.into(),
            )
            .await?;
        Ok(id)
    }

    /// Bytes received so far; `UploadUnknown` if the session does not exist in this repository.
    pub async fn upload_size(&self, repo: &RepoName, id: &UploadId) -> Result<u64> {
        if !self
            .exists(&PathSpec::UploadStartedAt { repo, id }.path())
            .await?
        {
            return Err(Error::UploadUnknown);
        }
        match self
            .driver
            .stat(&PathSpec::UploadData { repo, id }.path())
            .await
        {
            Ok(info) => Ok(info.size),
            Err(e) if e.is_not_found() => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Appends a request body; `start` (from Content-Range) must equal the current size.
    /// Returns the new size.
    pub async fn append_upload<S, E>(
        &self,
        repo: &RepoName,
        id: &UploadId,
        start: Option<u64>,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        self.check_writable()?;
        let _guard = self.upload_locks.lock(id).await;
        let size = self.upload_size(repo, id).await?;
        if let Some(start) = start
            && start != size
        {
            return Err(Error::RangeInvalid {
                detail: format!("chunk starts at {start} but the upload holds {size} bytes"),
                size,
            });
        }
        let (size, _) = self.append(repo, id, size, body, true).await?;
        Ok(size)
    }

    /// Streams `body` onto the data file, hashing as it goes. The writer opens on the first
    /// byte, so an empty body (Docker's closing PUT) costs no write and no fsync. With
    /// `save_state` the hasher state for the new length is stored for the next request.
    async fn append<S, E>(
        &self,
        repo: &RepoName,
        id: &UploadId,
        size: u64,
        mut body: S,
        save_state: bool,
    ) -> Result<(u64, Hasher)>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        let mut hasher = self.resume_hasher(repo, id, size).await?;
        let data = PathSpec::UploadData { repo, id }.path();
        let mut writer = None;
        let mut failure = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(chunk) if chunk.is_empty() => {}
                Ok(chunk) => {
                    let w = match &mut writer {
                        Some(w) => w,
                        None => writer.insert(self.driver.writer(&data, true).await?),
                    };
                    hasher.update(&chunk);
                    w.write(chunk).await?;
                }
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let mut new_size = size;
        if let Some(w) = writer {
            new_size = w.size();
            // Keep what arrived even when the body broke off: the client resumes from there.
            // A chunk is only closed: the blob is made durable once, when it moves into place.
            if save_state {
                w.close().await?;
            } else {
                w.commit().await?;
            }
            // Only once the bytes are in the file: a state for bytes that never landed could
            // later be paired with other bytes written at the same offsets.
            if save_state || failure.is_some() {
                self.save_hasher(repo, id, new_size, &hasher).await?;
            }
        }
        match failure {
            Some(e) => Err(Error::Body(e)),
            None => Ok((new_size, hasher)),
        }
    }

    async fn save_hasher(
        &self,
        repo: &RepoName,
        id: &UploadId,
        offset: u64,
        hasher: &Hasher,
    ) -> Result<()> {
        let path = PathSpec::UploadHashState {
            repo,
            id,
            algorithm: STATE_ALGORITHM,
            offset,
        }
        .path();
        // Losing it costs only a re-hash of the data file, so it is not synced.
        Ok(self
            .driver
            .put_scratch(&path, Bytes::from(hasher.save_state()))
            .await?)
    }

    /// The hasher after `size` bytes: the newest saved state at or below it, then the rest of
    /// the data file re-hashed.
    async fn resume_hasher(&self, repo: &RepoName, id: &UploadId, size: u64) -> Result<Hasher> {
        let dir = PathSpec::UploadHashStates {
            repo,
            id,
            algorithm: STATE_ALGORITHM,
        }
        .path();
        let mut offsets: Vec<u64> = self
            .child_names(&dir)
            .await?
            .iter()
            .filter_map(|n| n.parse().ok())
            .filter(|&o| o <= size)
            .collect();
        offsets.sort_unstable();
        let mut start = (0, Hasher::new(STATE_ALGORITHM));
        for &offset in offsets.iter().rev() {
            let path = PathSpec::UploadHashState {
                repo,
                id,
                algorithm: STATE_ALGORITHM,
                offset,
            }
            .path();
            let loaded = match self.driver.get_content(&path).await {
                Ok(b) => Hasher::load_state(STATE_ALGORITHM, &b),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            if let Some(h) = loaded {
                start = (offset, h);
                break;
            }
        }
        let (offset, mut hasher) = start;
        if offset < size {
            self.hash_file_range(repo, id, offset, size, &mut hasher)
                .await?;
        }
        Ok(hasher)
    }

    async fn hash_file_range(
        &self,
        repo: &RepoName,
        id: &UploadId,
        from: u64,
        to: u64,
        hasher: &mut Hasher,
    ) -> Result<()> {
        let data = PathSpec::UploadData { repo, id }.path();
        let mut stream = self.driver.reader(&data, from).await?;
        let mut left = to - from;
        while left > 0 {
            let Some(chunk) = stream.next().await else {
                break;
            };
            let chunk =
                chunk.map_err(|e| wharf_storage::Error::io(self.driver.name(), &data, e))?;
            let take = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            hasher.update(&chunk[..take]);
            left -= take as u64;
        }
        Ok(())
    }

    /// Appends an optional last body, verifies the digest and moves the bytes into the blob
    /// store, where they become visible. On a digest mismatch the session is discarded and
    /// nothing becomes visible. Returns the blob's size.
    pub async fn finish_upload<S, E>(
        &self,
        repo: &RepoName,
        id: &UploadId,
        digest: &Digest,
        body: S,
    ) -> Result<u64>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send + Unpin,
        E: fmt::Display,
    {
        self.check_writable()?;
        let _guard = self.upload_locks.lock(id).await;
        let size = self.upload_size(repo, id).await?;
        let (size, hasher) = self.append(repo, id, size, body, false).await?;
        let actual = if digest.algorithm() == STATE_ALGORITHM {
            hasher.finish()
        } else {
            let mut h = Hasher::new(digest.algorithm());
            self.hash_file_range(repo, id, 0, size, &mut h).await?;
            h.finish()
        };
        if &actual != digest {
            self.remove(&PathSpec::Upload { repo, id }.path()).await?;
            return Err(Error::DigestInvalid(format!(
                "content digest {actual} does not match {digest}"
            )));
        }
        let data = PathSpec::UploadData { repo, id }.path();
        // With online GC on, bytes the store already holds are still moved in: the fresh
        // modification time is what the collector re-checks just before deleting blob data.
        let gc_on = self.options.link_refresh.is_some();
        if gc_on || self.blob_size(digest).await?.is_none() {
            self.place_blob(&data, digest, size).await?;
        }
        self.write_link(PathSpec::LayerLink { repo, digest }, digest)
            .await?;
        if gc_on && self.blob_size(digest).await?.is_none() {
            // swept between our move and our link: an empty blob can be written again
            self.place_blob(&data, digest, size).await?;
        }
        self.remember_blob(digest, size).await;
        self.remember_link(repo, digest).await;
        self.remove(&PathSpec::Upload { repo, id }.path()).await?;
        self.emit(|| crate::notify::blob_report(crate::notify::Action::Push, repo, digest, size));
        Ok(size)
    }

    /// Moves an upload's bytes to the blob store (an empty blob never created a data file).
    async fn place_blob(
        &self,
        data: &wharf_storage::StoragePath,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        let blob = PathSpec::BlobData { digest }.path();
        if self.exists(data).await? {
            self.driver.rename(data, &blob).await?;
        } else if size == 0 {
            self.driver.put_content(&blob, Bytes::new()).await?;
        }
        Ok(())
    }

    /// Discards an upload session and its bytes.
    pub async fn cancel_upload(&self, repo: &RepoName, id: &UploadId) -> Result<()> {
        self.check_writable()?;
        let _guard = self.upload_locks.lock(id).await;
        self.upload_size(repo, id).await?;
        self.remove(&PathSpec::Upload { repo, id }.path()).await
    }

    /// Removes upload sessions started longer ago than `age` (storage.maintenance.uploadpurging).
    /// Returns the sessions found (removed unless `dry_run`).
    pub async fn purge_uploads(&self, age: Duration, dry_run: bool) -> Result<Vec<String>> {
        let cutoff = SystemTime::now()
            .checked_sub(age)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut purged = Vec::new();
        for repo in self.repositories_holding(&["_uploads"]).await? {
            let Ok(repo) = repo.parse::<RepoName>() else {
                continue;
            };
            let dir = PathSpec::Repository { repo: &repo }
                .path()
                .join("_uploads")?;
            for name in self.child_names(&dir).await? {
                let Ok(id) = name.parse::<UploadId>() else {
                    continue;
                };
                let upload = PathSpec::Upload {
                    repo: &repo,
                    id: &id,
                }
                .path();
                let started = PathSpec::UploadStartedAt {
                    repo: &repo,
                    id: &id,
                }
                .path();
                let modified = match self.driver.stat(&started).await {
                    Ok(info) => info.modified,
                    Err(_) => match self.driver.stat(&upload).await {
                        Ok(info) => info.modified,
                        Err(_) => continue,
                    },
                };
                if modified < cutoff {
                    if !dry_run {
                        self.remove(&upload).await?;
                    }
                    purged.push(format!("{repo}/_uploads/{id}"));
                }
            }
        }
        Ok(purged)
    }
}

#[cfg(test)]
mod tests;
