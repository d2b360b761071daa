//! One collector among instances sharing storage: a lease object in the storage root
//! (`_wharf/gc-lease`, JSON `{owner, expires_ms}`), taken by write then read-back and renewed
//! while its owner runs.
//!
//! Storage drivers offer no conditional write, so the lease is best-effort: two instances
//! writing within the settle delay can both read their own record back once; the next renewal
//! leaves one owner. Online GC stays safe with two collectors (every deletion is re-checked),
//! the lease only avoids doubled work. A strict lease (redis `SET NX PX`) implements [`Lease`].

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use wharf_storage::Driver;

use crate::registry::Result;
use crate::registry::layout::PathSpec;

/// The right to collect for a while; the seam where a redis lease plugs in.
#[async_trait]
pub trait Lease: Send + Sync {
    /// Takes or renews the lease; `false` when another instance holds it.
    async fn acquire(&self) -> Result<bool>;
    /// Who this instance is, for logs.
    fn owner(&self) -> &str;
}

/// What the lease object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The holder's id.
    pub owner: String,
    /// Milliseconds since the Unix epoch after which anyone may take it.
    pub expires_ms: u64,
}

/// Whether `record` keeps `me` from taking the lease at `now_ms`.
pub fn held_by_other(record: Option<&Record>, me: &str, now_ms: u64) -> bool {
    record.is_some_and(|r| r.owner != me && r.expires_ms > now_ms)
}

/// The lease as an object in the registry's storage.
pub struct StorageLease {
    driver: Arc<dyn Driver>,
    owner: String,
    ttl: Duration,
    settle: Duration,
}

impl StorageLease {
    /// A lease of `ttl` for this process, with a random owner id.
    pub fn new(driver: Arc<dyn Driver>, ttl: Duration) -> Self {
        StorageLease {
            driver,
            owner: format!("wharf-{}-{:08x}", std::process::id(), rand::random::<u32>()),
            ttl,
            settle: (ttl / 20).min(Duration::from_millis(500)),
        }
    }

    async fn read(&self) -> Result<Option<Record>> {
        match self.driver.get_content(&PathSpec::GcLease.path()).await {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[async_trait]
impl Lease for StorageLease {
    async fn acquire(&self) -> Result<bool> {
        let current = self.read().await?;
        if held_by_other(current.as_ref(), &self.owner, now_ms()) {
            return Ok(false);
        }
        let mine = current.as_ref().is_some_and(|r| r.owner == self.owner);
        let record = Record {
            owner: self.owner.clone(),
            expires_ms: now_ms() + self.ttl.as_millis() as u64,
        };
        let body = serde_json::to_vec(&record).unwrap_or_default();
        self.driver
            .put_content(&PathSpec::GcLease.path(), Bytes::from(body))
            .await?;
        if !mine {
            // a rival writing at the same moment overwrites us or we overwrite it: wait for
            // both writes to land, then whoever reads itself back holds the lease
            tokio::time::sleep(self.settle).await;
        }
        Ok(self.read().await?.is_some_and(|r| r.owner == self.owner))
    }

    fn owner(&self) -> &str {
        &self.owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unexpired_record_of_another_owner_holds_the_lease() {
        let rec = |owner: &str, expires_ms| Record {
            owner: owner.into(),
            expires_ms,
        };
        assert!(!held_by_other(None, "me", 100));
        assert!(!held_by_other(Some(&rec("me", 200)), "me", 100));
        assert!(held_by_other(Some(&rec("other", 200)), "me", 100));
        assert!(
            !held_by_other(Some(&rec("other", 100)), "me", 100),
            "expired"
        );
    }

    #[tokio::test]
    async fn two_instances_on_one_storage_get_one_lease_until_it_expires() {
        let driver: Arc<dyn Driver> =
            Arc::new(wharf_storage::backend::inmemory::InMemoryDriver::new());
        let a = StorageLease::new(driver.clone(), Duration::from_millis(400));
        let b = StorageLease::new(driver.clone(), Duration::from_millis(400));
        assert!(a.acquire().await.unwrap());
        assert!(!b.acquire().await.unwrap());
        assert!(a.acquire().await.unwrap(), "the owner renews");
        tokio::time::sleep(Duration::from_millis(450)).await;
        assert!(b.acquire().await.unwrap(), "taken over after expiry");
        assert!(!a.acquire().await.unwrap());
    }
}
