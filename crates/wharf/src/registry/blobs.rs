//! Blobs as seen through one repository: a blob is served only where the repository links it.

use wharf_oci::{Digest, RepoName};
use wharf_storage::ByteStream;

use super::layout::PathSpec;
use super::{Error, Registry, Result};
use crate::notify::{Action, blob_report};

/// Reading a blob's data file: its absence means the blob is unknown, whatever the backend says.
fn blob_unknown(digest: &Digest) -> impl FnOnce(wharf_storage::Error) -> Error + '_ {
    move |e| {
        if e.is_not_found() {
            Error::BlobUnknown(digest.clone())
        } else {
            e.into()
        }
    }
}

impl Registry {
    /// Size of a blob the repository holds; `BlobUnknown` otherwise.
    /// With online GC on, an old link is refreshed, so a client told "the blob exists" has a
    /// whole grace period to push the manifest that references it.
    pub async fn stat_blob(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        if !self.repository_links_blob(repo, digest).await? {
            return Err(Error::BlobUnknown(digest.clone()));
        }
        let size = self
            .cached_blob_size(digest)
            .await?
            .ok_or_else(|| Error::BlobUnknown(digest.clone()))?;
        self.refresh_link(&PathSpec::LayerLink { repo, digest }.path())
            .await?;
        self.emit(|| blob_report(Action::Pull, repo, digest, size));
        Ok(size)
    }

    /// Size of a blob the repository links, asked of the backend with no side effect (no cache,
    /// no refresh, no event): the re-checks that pair with online GC's deletions.
    pub(crate) async fn linked_blob_size(&self, repo: &RepoName, digest: &Digest) -> Result<u64> {
        let linked = self.read_link(PathSpec::LayerLink { repo, digest }).await?;
        if linked.as_ref() != Some(digest) {
            return Err(Error::BlobUnknown(digest.clone()));
        }
        self.blob_size(digest)
            .await?
            .ok_or_else(|| Error::BlobUnknown(digest.clone()))
    }

    /// Size of a blob in the shared store, whatever repository links it, asked of the backend
    /// (see [`Registry::cached_blob_size`] for the cached answer).
    pub(crate) async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        match self
            .driver
            .stat(&PathSpec::BlobData { digest }.path())
            .await
        {
            Ok(info) => Ok(Some(info.size)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams a blob from `offset`; call [`Registry::stat_blob`] first for access and size.
    pub async fn read_blob(&self, digest: &Digest, offset: u64) -> Result<ByteStream> {
        let path = PathSpec::BlobData { digest }.path();
        self.driver
            .reader(&path, offset)
            .await
            .map_err(blob_unknown(digest))
    }

    /// Reads a small blob (config, manifest-sized) whole: one read instead of a streaming reader
    /// with its buffers, which dominates the cost of serving a few hundred bytes.
    pub async fn read_small_blob(&self, digest: &Digest) -> Result<bytes::Bytes> {
        let path = PathSpec::BlobData { digest }.path();
        self.driver
            .get_content(&path)
            .await
            .map_err(blob_unknown(digest))
    }

    /// The blob's file when storage is local, for zero-copy sends; `None` on remote backends.
    pub async fn blob_file(&self, digest: &Digest) -> Result<Option<std::fs::File>> {
        let path = PathSpec::BlobData { digest }.path();
        self.driver
            .local_file(&path)
            .await
            .map_err(blob_unknown(digest))
    }

    /// A URL the client may fetch the blob from instead, when the backend offers one.
    pub async fn blob_redirect(&self, digest: &Digest) -> Result<Option<String>> {
        Ok(self
            .driver
            .redirect_url(&PathSpec::BlobData { digest }.path())
            .await?)
    }

    /// Removes the repository's link to a blob; the bytes stay for other repositories until GC.
    pub async fn delete_blob(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        self.check_deletable()?;
        let link = PathSpec::LayerLink { repo, digest }.path();
        if !self.exists(&link).await? {
            self.forget_link(repo, digest).await;
            return Err(Error::BlobUnknown(digest.clone()));
        }
        self.forget_link(repo, digest).await;
        self.remove(&link).await?;
        self.forget_link(repo, digest).await;
        self.emit(|| blob_report(Action::Delete, repo, digest, 0));
        Ok(())
    }

    /// Cross-repository mount: links `from`'s blob into `repo` without moving bytes.
    /// `None` when `from` does not hold it (the caller then starts a normal upload).
    pub async fn mount_blob(
        &self,
        repo: &RepoName,
        from: &RepoName,
        digest: &Digest,
    ) -> Result<Option<u64>> {
        self.check_writable()?;
        let size = match self.stat_blob(from, digest).await {
            Ok(size) => size,
            Err(Error::BlobUnknown(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.write_link(PathSpec::LayerLink { repo, digest }, digest)
            .await?;
        self.remember_link(repo, digest).await;
        // Online GC deletes a candidate's links before its data and then looks for new links:
        // if `from`'s link vanished meanwhile, our new link may have been missed, so withdraw
        // it and let the client upload the blob instead.
        if self.options.link_refresh.is_some() {
            match self.linked_blob_size(from, digest).await {
                Ok(_) => {}
                Err(Error::BlobUnknown(_)) => {
                    self.forget_link(repo, digest).await;
                    self.remove(&PathSpec::LayerLink { repo, digest }.path())
                        .await?;
                    self.forget_link(repo, digest).await;
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        self.emit(|| {
            let mut report = blob_report(Action::Mount, repo, digest, size);
            report.from = Some(from.clone());
            report
        });
        Ok(Some(size))
    }
}
