//! `blobdescriptor: inmemory`: one process's cache, bounded to `cache.blobdescriptorsize`
//! entries per kind; the oldest entry goes first when it is full. Not shared, so instances
//! behind one load balancer should use redis instead.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use async_trait::async_trait;
use wharf_oci::{Digest, RepoName};

use super::{CacheError, DescriptorCache};

/// A map that keeps at most `capacity` entries, evicting in insertion order.
struct Bounded<K, V> {
    capacity: usize,
    /// Value and the generation it was inserted at.
    entries: HashMap<K, (V, u64)>,
    /// Insertion order; entries whose generation no longer matches were removed or replaced.
    order: VecDeque<(K, u64)>,
    generation: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        Bounded {
            capacity: capacity.max(1),
            entries: HashMap::new(),
            order: VecDeque::new(),
            generation: 0,
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        self.entries.get(key).map(|(v, _)| v.clone())
    }

    fn insert(&mut self, key: K, value: V) {
        self.generation += 1;
        let generation = self.generation;
        if self
            .entries
            .insert(key.clone(), (value, generation))
            .is_none()
        {
            while self.entries.len() > self.capacity {
                let Some((old, g)) = self.order.pop_front() else {
                    break;
                };
                if self.entries.get(&old).is_some_and(|(_, cur)| *cur == g) {
                    self.entries.remove(&old);
                }
            }
        }
        self.order.push_back((key, generation));
        if self.order.len() > 2 * self.capacity {
            // drop stale order records so churn on few keys cannot grow the queue
            let entries = &self.entries;
            self.order
                .retain(|(k, g)| entries.get(k).is_some_and(|(_, cur)| cur == g));
        }
    }

    fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

/// The in-process cache.
pub struct MemoryCache {
    sizes: Mutex<Bounded<Digest, u64>>,
    members: Mutex<Bounded<(RepoName, Digest), ()>>,
}

impl MemoryCache {
    /// A cache holding at most `capacity` descriptors and `capacity` repository links.
    pub fn new(capacity: usize) -> Self {
        MemoryCache {
            sizes: Mutex::new(Bounded::new(capacity)),
            members: Mutex::new(Bounded::new(capacity)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // a panic while holding the lock leaves a consistent map: every method is one map operation
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl DescriptorCache for MemoryCache {
    fn name(&self) -> &'static str {
        "inmemory"
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, CacheError> {
        Ok(lock(&self.sizes).get(digest))
    }

    async fn set_size(&self, digest: &Digest, size: u64) -> Result<(), CacheError> {
        lock(&self.sizes).insert(digest.clone(), size);
        Ok(())
    }

    async fn clear_size(&self, digest: &Digest) -> Result<(), CacheError> {
        lock(&self.sizes).remove(digest);
        Ok(())
    }

    async fn is_member(&self, repo: &RepoName, digest: &Digest) -> Result<bool, CacheError> {
        Ok(lock(&self.members)
            .get(&(repo.clone(), digest.clone()))
            .is_some())
    }

    async fn add_member(&self, repo: &RepoName, digest: &Digest) -> Result<(), CacheError> {
        lock(&self.members).insert((repo.clone(), digest.clone()), ());
        Ok(())
    }

    async fn remove_member(&self, repo: &RepoName, digest: &Digest) -> Result<(), CacheError> {
        lock(&self.members).remove(&(repo.clone(), digest.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_capacity_entries_evicting_the_oldest() {
        let mut m = Bounded::new(3);
        for i in 0..5u32 {
            m.insert(i, i * 10);
        }
        assert_eq!(m.entries.len(), 3);
        assert_eq!((m.get(&0), m.get(&1)), (None, None));
        assert_eq!((m.get(&2), m.get(&4)), (Some(20), Some(40)));
        // churn on one key keeps the order queue bounded and the others in place
        for _ in 0..100 {
            m.remove(&4);
            m.insert(4, 41);
        }
        assert!(m.order.len() <= 6, "{}", m.order.len());
        assert_eq!(
            (m.get(&2), m.get(&3), m.get(&4)),
            (Some(20), Some(30), Some(41))
        );
    }
}
