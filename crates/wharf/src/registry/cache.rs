//! The blob descriptor cache (`storage.cache.blobdescriptor`): what distribution caches, so
//! HEAD/GET of known blobs and manifest validation skip backend round trips.
//!
//! Two facts are cached: the global descriptor of a digest (its size) and the membership of a
//! digest in a repository (the repository's `_layers` link exists). Reads go to the cache first
//! and fill it from the backend on a miss; writes fill it; deletes clear it before and after the
//! backend delete, so another instance sharing the cache cannot keep serving a deleted blob
//! (a reader that read the backend before the delete and fills after it can still leave one
//! stale entry behind, as in distribution). Negative answers are never cached.
//!
//! A failing cache never fails a request: the error is logged at warn and the backend answers.
//! `memory.rs` is one process's bounded map; `redis.rs` is shared by every instance.

pub mod memory;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use wharf_oci::{Digest, RepoName};

use super::layout::PathSpec;
use super::{Registry, Result};

/// Entries the in-memory cache keeps when `cache.blobdescriptorsize` is not set (distribution's).
pub const DEFAULT_SIZE: usize = 10_000;

/// Why the cache could not answer; the caller then asks the backend.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache server failed or timed out.
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// The cache server answered too slowly.
    #[error("redis: no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// A recent failure put the cache server on hold; the backend answers meanwhile.
    #[error("redis: unavailable since a recent failure")]
    OnHold,
    /// The cache server holds something that is not a descriptor.
    #[error("redis: malformed entry {0}")]
    Malformed(String),
}

/// A store of blob descriptors and repository memberships; one per process, shared by requests.
#[async_trait]
pub trait DescriptorCache: Send + Sync + 'static {
    /// `inmemory` or `redis`, for logs.
    fn name(&self) -> &'static str;
    /// Size of the blob with this digest, when cached.
    async fn size(&self, digest: &Digest) -> Result<Option<u64>, CacheError>;
    /// Records the size of a blob that exists in the backend.
    async fn set_size(&self, digest: &Digest, size: u64) -> Result<(), CacheError>;
    /// Forgets a blob's descriptor (the blob is being deleted).
    async fn clear_size(&self, digest: &Digest) -> Result<(), CacheError>;
    /// Whether the repository is known to link the digest.
    async fn is_member(&self, repo: &RepoName, digest: &Digest) -> Result<bool, CacheError>;
    /// Records that the repository links the digest.
    async fn add_member(&self, repo: &RepoName, digest: &Digest) -> Result<(), CacheError>;
    /// Forgets that the repository links the digest (the link is being deleted).
    async fn remove_member(&self, repo: &RepoName, digest: &Digest) -> Result<(), CacheError>;
}

/// Logs a cache failure once per call site and goes on without the cache.
fn degrade<T>(cache: &dyn DescriptorCache, what: &str, r: Result<T, CacheError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e @ CacheError::OnHold) => {
            tracing::debug!(cache = cache.name(), error = %e, "blob descriptor cache {what} skipped");
            None
        }
        Err(e) => {
            tracing::warn!(cache = cache.name(), error = %e, "blob descriptor cache {what} failed; using the backend");
            None
        }
    }
}

impl Registry {
    /// Whether `repo` links `digest` (its `_layers` link names the digest): the one check
    /// every blob access of a repository goes through (HEAD/GET, mount source, manifest
    /// references). Answers from the cache when it knows the link, else reads the link and
    /// records it.
    pub(crate) async fn repository_links_blob(
        &self,
        repo: &RepoName,
        digest: &Digest,
    ) -> Result<bool> {
        if let Some(cache) = &self.cache
            && degrade(&**cache, "lookup", cache.is_member(repo, digest).await) == Some(true)
        {
            return Ok(true);
        }
        let linked = self.read_link(PathSpec::LayerLink { repo, digest }).await?;
        let linked = linked.as_ref() == Some(digest);
        if linked {
            self.remember_link(repo, digest).await;
        }
        Ok(linked)
    }

    /// Size of a blob in the shared store, from the cache when it knows it; `None` when the
    /// backend has no such blob.
    pub(crate) async fn cached_blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        if let Some(cache) = &self.cache
            && let Some(Some(size)) = degrade(&**cache, "lookup", cache.size(digest).await)
        {
            return Ok(Some(size));
        }
        let size = self.blob_size(digest).await?;
        if let Some(size) = size {
            self.remember_blob(digest, size).await;
        }
        Ok(size)
    }

    /// Records a blob the backend now holds.
    pub(crate) async fn remember_blob(&self, digest: &Digest, size: u64) {
        if let Some(cache) = &self.cache {
            degrade(&**cache, "fill", cache.set_size(digest, size).await);
        }
    }

    /// Records a `_layers` link the backend now holds.
    pub(crate) async fn remember_link(&self, repo: &RepoName, digest: &Digest) {
        if let Some(cache) = &self.cache {
            degrade(&**cache, "fill", cache.add_member(repo, digest).await);
        }
    }

    /// Forgets a blob whose data is being deleted; call before and after the backend delete.
    pub(crate) async fn forget_blob(&self, digest: &Digest) {
        if let Some(cache) = &self.cache {
            degrade(&**cache, "invalidation", cache.clear_size(digest).await);
        }
    }

    /// Forgets a `_layers` link being deleted; call before and after the backend delete.
    pub(crate) async fn forget_link(&self, repo: &RepoName, digest: &Digest) {
        if let Some(cache) = &self.cache {
            degrade(
                &**cache,
                "invalidation",
                cache.remove_member(repo, digest).await,
            );
        }
    }

    /// The same registry with a blob descriptor cache in front of the backend.
    pub fn with_cache(mut self, cache: Arc<dyn DescriptorCache>) -> Self {
        self.cache = Some(cache);
        self
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;
    use wharf_storage::Driver;
    use wharf_storage::backend::inmemory::InMemoryDriver;

    use super::memory::MemoryCache;
    use super::*;
    use crate::registry::Options;

    fn digest(s: &str) -> Digest {
        Digest::sha256(s.as_bytes())
    }

    #[tokio::test]
    async fn a_known_blob_is_answered_from_the_cache_and_a_delete_clears_it() {
        let driver: Arc<dyn Driver> = Arc::new(InMemoryDriver::new());
        let cache = Arc::new(MemoryCache::new(16));
        let registry = Registry::new(
            driver.clone(),
            Options {
                delete_enabled: true,
                ..Options::default()
            },
        )
        .with_cache(cache.clone());
        let repo: RepoName = "a/b".parse().unwrap();
        let d = digest("x");
        driver
            .put_content(&PathSpec::BlobData { digest: &d }.path(), Bytes::from("x"))
            .await
            .unwrap();
        registry
            .write_link(
                PathSpec::LayerLink {
                    repo: &repo,
                    digest: &d,
                },
                &d,
            )
            .await
            .unwrap();
        assert_eq!(registry.stat_blob(&repo, &d).await.unwrap(), 1);
        // the backend loses the link behind the registry's back: the cache still answers
        driver
            .delete(
                &PathSpec::LayerLink {
                    repo: &repo,
                    digest: &d,
                }
                .path(),
            )
            .await
            .unwrap();
        assert!(cache.is_member(&repo, &d).await.unwrap());
        assert_eq!(registry.stat_blob(&repo, &d).await.unwrap(), 1);
        // a DELETE through the registry clears the entry
        registry
            .write_link(
                PathSpec::LayerLink {
                    repo: &repo,
                    digest: &d,
                },
                &d,
            )
            .await
            .unwrap();
        registry.delete_blob(&repo, &d).await.unwrap();
        assert!(!cache.is_member(&repo, &d).await.unwrap());
        assert!(registry.stat_blob(&repo, &d).await.is_err());
    }
}
