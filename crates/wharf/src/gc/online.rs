//! Online garbage collection: a background task of `wharf serve` that, every `gc.interval`,
//! takes the lease, marks, removes old untagged manifests (re-checked) and sweeps blobs through
//! the grace-period rules of `guarded.rs`, without read-only mode.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use wharf_oci::{Manifest, Reference, RepoName};

use super::lease::{Lease, StorageLease};
use super::{Options, Report, Silent, guarded, mark};
use crate::config::GcConfig;
use crate::registry::layout::PathSpec;
use crate::registry::{Registry, Result};

/// Counters of the background collector, rendered by `metrics.rs`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Rounds run by this instance.
    pub runs: AtomicU64,
    /// Rounds skipped because another instance holds the lease.
    pub skipped: AtomicU64,
    /// Rounds that failed.
    pub failures: AtomicU64,
    /// Blobs deleted.
    pub blobs_deleted: AtomicU64,
    /// Bytes of the deleted blobs.
    pub bytes_freed: AtomicU64,
    /// Untagged manifests removed.
    pub manifests_deleted: AtomicU64,
    /// Blobs the last round found eligible (deleted, or listed in a dry run).
    pub last_eligible: AtomicU64,
    /// Duration of the last round in microseconds.
    pub last_duration_us: AtomicU64,
}

impl Stats {
    fn record(&self, report: &Report, took: Duration) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.last_eligible
            .store(report.blobs_deleted.len() as u64, Ordering::Relaxed);
        self.last_duration_us
            .store(took.as_micros() as u64, Ordering::Relaxed);
        if !report.dry_run {
            let n = report.blobs_deleted.len() as u64;
            self.blobs_deleted.fetch_add(n, Ordering::Relaxed);
            self.bytes_freed
                .fetch_add(report.bytes_freed, Ordering::Relaxed);
            let m = report.manifests_deleted.len() as u64;
            self.manifests_deleted.fetch_add(m, Ordering::Relaxed);
        }
    }
}

/// One round: mark with recent manifests kept, remove old untagged manifests, sweep.
pub async fn round(registry: &Registry, config: &GcConfig) -> Result<Report> {
    let cutoff = SystemTime::now()
        .checked_sub(config.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let options = Options {
        dry_run: config.dry_run,
        delete_untagged: config.delete_untagged,
        keep_after: Some(cutoff),
    };
    let mut marked = mark::mark(registry, options, &Silent).await?;
    let mut report = Report {
        blobs_marked: marked.blobs.len(),
        dry_run: config.dry_run,
        ..Report::default()
    };
    remove_untagged(registry, &mut marked, cutoff, config.dry_run, &mut report).await?;
    let candidates = guarded::candidates(registry, &marked.blobs, cutoff).await?;
    if config.dry_run {
        for c in candidates {
            report.bytes_freed += c.size;
            report.blobs_deleted.push((c.digest, c.size));
        }
        return Ok(report);
    }
    guarded::sweep(registry, candidates, cutoff, &mut report).await?;
    Ok(report)
}

/// Removes the untagged manifests the mark found, each re-checked just before. After removing,
/// the tags and the manifests pushed since the cutoff are looked at again (a tag or an index
/// naming it may have arrived meanwhile): those are put back, and whatever a kept manifest
/// references joins `marked`.
async fn remove_untagged(
    registry: &Registry,
    marked: &mut mark::Marked,
    cutoff: SystemTime,
    dry_run: bool,
    report: &mut Report,
) -> Result<()> {
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for (name, digest) in std::mem::take(&mut marked.untagged) {
        let Ok(repo) = name.parse::<RepoName>() else {
            continue;
        };
        if !still_unkept(registry, &repo, &digest, cutoff).await? {
            kept.push((repo, digest));
            continue;
        }
        if !dry_run {
            mark::remove_manifest(registry, &name, &digest).await?;
        }
        removed.push((repo, digest));
    }
    if !dry_run && !removed.is_empty() {
        let named = guarded::recent_references(registry, cutoff).await?;
        let mut gone = Vec::new();
        for (repo, digest) in removed {
            if named.contains(&digest) || tagged(registry, &repo, &digest).await? {
                let link = PathSpec::ManifestRevisionLink {
                    repo: &repo,
                    digest: &digest,
                };
                registry.write_link(link, &digest).await?;
                kept.push((repo, digest));
            } else {
                gone.push((repo, digest));
            }
        }
        removed = gone;
    }
    report
        .manifests_deleted
        .extend(removed.into_iter().map(|(r, d)| (r.to_string(), d)));
    for (repo, digest) in kept {
        marked.blobs.insert(digest.clone());
        if let Ok(stored) = registry
            .get_manifest(&repo, &Reference::Digest(digest))
            .await
            && let Ok(m) = Manifest::parse(None, &stored.bytes)
        {
            marked
                .blobs
                .extend(m.required_blobs().map(|b| b.digest.clone()));
        }
    }
    Ok(())
}

/// The re-check before removing an untagged manifest: its revision is still older than the
/// cutoff and no tag points at it now.
async fn still_unkept(
    registry: &Registry,
    repo: &RepoName,
    digest: &wharf_oci::Digest,
    cutoff: SystemTime,
) -> Result<bool> {
    let link = PathSpec::ManifestRevisionLink { repo, digest }.path();
    if registry.modified(&link).await?.is_none_or(|m| m >= cutoff) {
        return Ok(false);
    }
    Ok(!tagged(registry, repo, digest).await?)
}

/// Whether a tag of `repo` points at `digest` now.
async fn tagged(registry: &Registry, repo: &RepoName, digest: &wharf_oci::Digest) -> Result<bool> {
    Ok(registry
        .tag_targets(repo)
        .await?
        .into_iter()
        .any(|(_, d)| &d == digest))
}

/// How long a lease lasts: two intervals, so a holder renewing every round keeps it, and a
/// dead holder is replaced within about two rounds.
fn lease_ttl(interval: Duration) -> Duration {
    (interval * 2).max(Duration::from_secs(5))
}

/// Starts the collector when `gc.enabled` (and the registry is writable).
pub fn spawn(registry: Registry, config: GcConfig, stats: Arc<Stats>) {
    if !config.enabled || registry.options().read_only {
        return;
    }
    let lease = StorageLease::new(registry.driver().clone(), lease_ttl(config.interval));
    tokio::spawn(async move {
        tracing::info!(
            owner = lease.owner(),
            interval = ?config.interval,
            grace = ?config.grace,
            delete_untagged = config.delete_untagged,
            dry_run = config.dry_run,
            "gc: online garbage collection enabled"
        );
        // a random first delay keeps a fleet sharing storage from contending at once
        let first = config.interval.min(Duration::from_secs(60));
        let jitter = Duration::from_millis(rand::random_range(0..=first.as_millis() as u64));
        tokio::time::sleep(jitter).await;
        loop {
            let started = Instant::now();
            run_once(&registry, &config, &lease, &stats).await;
            tokio::time::sleep(config.interval.saturating_sub(started.elapsed())).await;
        }
    });
}

async fn run_once(registry: &Registry, config: &GcConfig, lease: &dyn Lease, stats: &Stats) {
    match lease.acquire().await {
        Ok(true) => {}
        Ok(false) => {
            stats.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                owner = lease.owner(),
                "gc: lease held by another instance, round skipped"
            );
            return;
        }
        Err(e) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "gc: cannot read or write the lease");
            return;
        }
    }
    let started = Instant::now();
    let renew = async {
        loop {
            tokio::time::sleep(lease_ttl(config.interval) / 3).await;
            if !matches!(lease.acquire().await, Ok(true)) {
                return;
            }
        }
    };
    let result = tokio::select! {
        r = round(registry, config) => Some(r),
        () = renew => None,
    };
    let took = started.elapsed();
    match result {
        Some(Ok(report)) => {
            stats.record(&report, took);
            if report.dry_run {
                for (digest, size) in &report.blobs_deleted {
                    tracing::info!(blob = %digest, size, "gc (dry run): blob eligible for deletion");
                }
                for (repo, digest) in &report.manifests_deleted {
                    tracing::info!(repository = %repo, manifest = %digest, "gc (dry run): manifest eligible for deletion");
                }
            }
            tracing::info!(
                owner = lease.owner(),
                marked = report.blobs_marked,
                blobs = report.blobs_deleted.len(),
                manifests = report.manifests_deleted.len(),
                bytes = report.bytes_freed,
                dry_run = report.dry_run,
                duration_ms = took.as_secs_f64() * 1000.0,
                "gc round done"
            );
        }
        Some(Err(e)) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "gc round failed");
        }
        None => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("gc: lease lost during the round, stopped");
        }
    }
}

#[cfg(test)]
mod tests;
