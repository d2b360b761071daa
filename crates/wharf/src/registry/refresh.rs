//! Link refresh for online garbage collection: when a repository serves or validates a blob
//! (HEAD/GET, mount source, manifest check) or an index child, an old link file is rewritten so
//! its modification time is recent, and the collector's grace period covers the push that is
//! probably about to reference it ("layer already exists, skip the upload").
//!
//! Rate-limited in process: a link is looked at (one stat) at most once per `every`, and
//! rewritten only when older than `every`, so pulls do not turn into writes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use wharf_storage::StoragePath;

use super::{Registry, Result};

/// Entries kept before old ones are pruned.
const MAX_ENTRIES: usize = 100_000;

/// When each link was last looked at by this process.
#[derive(Default)]
pub(crate) struct RefreshCache {
    seen: Mutex<HashMap<StoragePath, Instant>>,
}

impl RefreshCache {
    /// Whether `link` is due for a look, recording that it is being looked at now.
    fn due(&self, link: &StoragePath, every: Duration) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if seen
            .get(link)
            .is_some_and(|t| now.duration_since(*t) < every)
        {
            return false;
        }
        if seen.len() >= MAX_ENTRIES {
            seen.retain(|_, t| now.duration_since(*t) < every);
        }
        seen.insert(link.clone(), now);
        true
    }
}

/// Whether a file modified at `modified` needs rewriting to look younger than `every`.
pub(crate) fn stale(modified: SystemTime, now: SystemTime, every: Duration) -> bool {
    now.duration_since(modified).is_ok_and(|age| age >= every)
}

impl Registry {
    /// Rewrites the link at `link` (same content) when online GC is on and the link is older
    /// than half the grace period. Missing links are left alone: refreshing must never create
    /// a claim the repository did not have.
    pub(crate) async fn refresh_link(&self, link: &StoragePath) -> Result<()> {
        let Some(every) = self.options.link_refresh else {
            return Ok(());
        };
        if self.options.read_only || !self.refreshed.due(link, every) {
            return Ok(());
        }
        let info = match self.driver.stat(link).await {
            Ok(info) => info,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if !stale(info.modified, SystemTime::now(), every) {
            return Ok(());
        }
        match self.driver.get_content(link).await {
            Ok(body) => Ok(self.driver.put_content(link, body).await?),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_links_older_than_the_refresh_period_are_stale() {
        let now = SystemTime::now();
        let every = Duration::from_secs(30);
        assert!(stale(now - Duration::from_secs(31), now, every));
        assert!(stale(now - every, now, every));
        assert!(!stale(now - Duration::from_secs(5), now, every));
        assert!(
            !stale(now + Duration::from_secs(5), now, every),
            "clock skew"
        );
    }

    #[test]
    fn a_link_is_looked_at_once_per_period() {
        let cache = RefreshCache::default();
        let link = StoragePath::new("/a/link").unwrap();
        let other = StoragePath::new("/b/link").unwrap();
        assert!(cache.due(&link, Duration::from_secs(60)));
        assert!(!cache.due(&link, Duration::from_secs(60)));
        assert!(cache.due(&other, Duration::from_secs(60)));
        assert!(cache.due(&link, Duration::ZERO), "period passed");
    }
}
