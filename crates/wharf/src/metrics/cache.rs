//! Blob descriptor cache metrics: a [`DescriptorCache`] decorator counting lookups by what they
//! asked (a blob's size, a repository's link) and how they ended (hit, miss, error), so an
//! operator sees whether the cache spares backend round trips. Applied only with Prometheus on.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use wharf_oci::{Digest, RepoName};

use crate::registry::cache::{CacheError, DescriptorCache};

/// Hit, miss and error counts of one kind of lookup.
#[derive(Default)]
struct Outcomes {
    hit: AtomicU64,
    miss: AtomicU64,
    error: AtomicU64,
}

impl Outcomes {
    fn record<T>(&self, r: &Result<T, CacheError>, found: impl FnOnce(&T) -> bool) {
        let counter = match r {
            Ok(v) if found(v) => &self.hit,
            Ok(_) => &self.miss,
            Err(_) => &self.error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Lookup counts of one cache, shared by the decorator and the exporter.
#[derive(Default)]
pub struct CacheStats {
    /// `name()` of the cache counted (`inmemory`, `redis`); set when instrumenting.
    cache: std::sync::OnceLock<&'static str>,
    size: Outcomes,
    membership: Outcomes,
}

impl super::Source for CacheStats {
    fn render(&self, out: &mut String) {
        let name = "wharf_blob_descriptor_cache_lookups_total";
        let cache = self.cache.get().copied().unwrap_or("none");
        let _ = writeln!(
            out,
            "# HELP {name} Blob descriptor cache lookups by kind (size, membership) and result.\n# TYPE {name} counter"
        );
        for (kind, o) in [("size", &self.size), ("membership", &self.membership)] {
            for (result, n) in [("hit", &o.hit), ("miss", &o.miss), ("error", &o.error)] {
                let n = n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "{name}{{cache=\"{cache}\",kind=\"{kind}\",result=\"{result}\"}} {n}"
                );
            }
        }
    }
}

/// `cache` with every lookup counted in `stats`.
pub fn instrument(
    cache: Arc<dyn DescriptorCache>,
    stats: Arc<CacheStats>,
) -> Arc<dyn DescriptorCache> {
    let _ = stats.cache.set(cache.name());
    Arc::new(Counted {
        inner: cache,
        stats,
    })
}

/// The decorator: lookups are counted, fills and invalidations pass through.
struct Counted {
    inner: Arc<dyn DescriptorCache>,
    stats: Arc<CacheStats>,
}

#[async_trait]
impl DescriptorCache for Counted {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, CacheError> {
        let r = self.inner.size(digest).await;
        self.stats.size.record(&r, Option::is_some);
        r
    }

    async fn set_size(&self, digest: &Digest, size: u64) -> Result<(), CacheError> {
        self.inner.set_size(digest, size).await
    }

    async fn clear_size(&self, digest: &Digest) -> Result<(), CacheError> {
        self.inner.clear_size(digest).await
    }

    async fn is_member(&self, repo: &RepoName, digest: &Digest) -> Result<bool, CacheError> {
        let r = self.inner.is_member(repo, digest).await;
        self.stats.membership.record(&r, |linked| *linked);
        r
    }

    async fn add_member(&self, repo: &RepoName, digest: &Digest) -> Result<(), CacheError> {
        self.inner.add_member(repo, digest).await
    }

    async fn remove_member(&self, repo: &RepoName, digest: &Digest) -> Result<(), CacheError> {
        self.inner.remove_member(repo, digest).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Source;
    use crate::registry::cache::memory::MemoryCache;

    #[tokio::test]
    async fn lookups_are_counted_as_hits_and_misses_by_kind() {
        let stats = Arc::new(CacheStats::default());
        let cache = instrument(Arc::new(MemoryCache::new(16)), stats.clone());
        let digest: Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let repo: RepoName = "library/busybox".parse().unwrap();
        assert_eq!(cache.size(&digest).await.unwrap(), None);
        cache.set_size(&digest, 7).await.unwrap();
        assert_eq!(cache.size(&digest).await.unwrap(), Some(7));
        assert_eq!(cache.size(&digest).await.unwrap(), Some(7));
        assert!(!cache.is_member(&repo, &digest).await.unwrap());
        let mut out = String::new();
        stats.render(&mut out);
        let line = |kind: &str, result: &str, n: u64| {
            format!(
                "wharf_blob_descriptor_cache_lookups_total{{cache=\"inmemory\",kind=\"{kind}\",result=\"{result}\"}} {n}\n"
            )
        };
        assert!(out.contains(&line("size", "hit", 2)), "{out}");
        assert!(out.contains(&line("size", "miss", 1)), "{out}");
        assert!(out.contains(&line("membership", "miss", 1)), "{out}");
        assert!(out.contains(&line("membership", "hit", 0)), "{out}");
    }
}
