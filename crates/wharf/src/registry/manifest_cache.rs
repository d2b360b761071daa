//! Manifest bytes by digest, kept in memory so a hot `GET /manifests/<tag>` reads only the two
//! small links that decide what the repository serves (the tag and the revision) and never the
//! manifest itself.
//!
//! The key is the digest of the bytes, so an entry can never be stale: the same digest always
//! names the same bytes, and whether a repository still holds the manifest is decided by its
//! links, which are read from storage on every request. That also makes it correct for several
//! instances sharing one storage, with no invalidation at all. Bounded by total bytes; the
//! oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use wharf_oci::Digest;

/// Bytes of manifests kept by default: a few hundred typical images, well inside the memory
/// budget.
pub const DEFAULT_BYTES: usize = 4 * 1024 * 1024;

/// What is served for a digest: the stored bytes and the media type read from them.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The exact bytes stored.
    pub bytes: Bytes,
    /// The Content-Type they are served with.
    pub media_type: String,
}

/// A byte-bounded map from digest to manifest.
#[derive(Debug)]
pub struct ManifestCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<Digest, Cached>,
    order: VecDeque<Digest>,
    bytes: usize,
}

impl Default for ManifestCache {
    fn default() -> Self {
        Self::new(DEFAULT_BYTES)
    }
}

impl ManifestCache {
    /// A cache holding at most `capacity` bytes of manifests; 0 keeps nothing.
    pub fn new(capacity: usize) -> Self {
        ManifestCache {
            capacity,
            inner: Mutex::default(),
        }
    }

    /// The manifest stored under `digest`, if this process has read or written it lately.
    pub fn get(&self, digest: &Digest) -> Option<Cached> {
        self.lock().entries.get(digest).cloned()
    }

    /// Remembers what `digest` names; manifests larger than a quarter of the cache are not kept.
    pub fn insert(&self, digest: &Digest, cached: Cached) {
        let size = cached.bytes.len();
        if size > self.capacity / 4 {
            return;
        }
        let mut inner = self.lock();
        if inner.entries.contains_key(digest) {
            return;
        }
        while inner.bytes + size > self.capacity {
            let Some(old) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.entries.remove(&old) {
                inner.bytes -= gone.bytes.len();
            }
        }
        inner.bytes += size;
        inner.order.push_back(digest.clone());
        inner.entries.insert(digest.clone(), cached);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // a panic while holding the lock cannot leave the map inconsistent in a way that
        // matters here (at worst the byte count is off), so a poisoned lock is used as is
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> (Digest, Cached) {
        let bytes = Bytes::from(vec![b'x'; n]);
        let digest = Digest::sha256(&bytes);
        let media_type = "application/vnd.oci.image.manifest.v1+json".to_owned();
        (digest, Cached { bytes, media_type })
    }

    #[test]
    fn keeps_within_its_byte_budget_dropping_the_oldest() {
        let cache = ManifestCache::new(1000);
        let entries: Vec<_> = (1..=5).map(|i| entry(200 + i)).collect();
        for (d, c) in &entries {
            cache.insert(d, c.clone());
        }
        // 201+202+203+204 = 810, so the fifth (205) pushes the first out
        assert!(cache.get(&entries[0].0).is_none());
        for (d, c) in &entries[1..] {
            assert_eq!(cache.get(d).map(|g| g.bytes), Some(c.bytes.clone()));
        }
        assert!(cache.lock().bytes <= 1000);
    }

    #[test]
    fn refuses_entries_too_large_to_share_the_cache() {
        let cache = ManifestCache::new(1000);
        let (d, c) = entry(300);
        cache.insert(&d, c);
        assert!(cache.get(&d).is_none());
        let off = ManifestCache::new(0);
        let (d, c) = entry(1);
        off.insert(&d, c);
        assert!(off.get(&d).is_none());
    }
}
