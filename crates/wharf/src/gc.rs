//! Garbage collection. Offline ([`collect`], `wharf garbage-collect`), compatible with
//! `registry garbage-collect`: mark every blob reachable from a kept manifest in any
//! repository, then sweep the rest; run it while no one pushes, as with distribution. Online
//! (`online.rs`, the `gc:` section): the same mark, then a sweep guarded by a grace period and
//! re-checks (`guarded.rs`) so it can run while the registry serves, one instance at a time
//! (`lease.rs`).
//!
//! With `delete_untagged`, a manifest is kept only if a tag points at it, it is a child of a
//! kept index, or it refers (`subject`) to a kept manifest; the others are removed first.

pub mod guarded;
pub mod lease;
pub mod mark;
pub mod online;
pub mod sweep;

use std::time::SystemTime;

use wharf_oci::Digest;

use crate::registry::{Registry, Result};

/// What a run did (or, with `dry_run`, would do).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// Blobs found reachable.
    pub blobs_marked: usize,
    /// `(repository, digest)` of manifests removed as untagged.
    pub manifests_deleted: Vec<(String, Digest)>,
    /// `(digest, size)` of blobs swept.
    pub blobs_deleted: Vec<(Digest, u64)>,
    /// Sum of swept blob sizes.
    pub bytes_freed: u64,
    /// Whether anything was actually deleted.
    pub dry_run: bool,
}

/// Options of one run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Report only.
    pub dry_run: bool,
    /// Remove manifests no tag keeps alive.
    pub delete_untagged: bool,
    /// Online: manifests whose revision link was written at or after this instant are kept
    /// like tagged ones (a multi-arch push uploads its children before the index).
    pub keep_after: Option<SystemTime>,
}

/// Told how far a run is, for `wharf garbage-collect`'s progress bar; silent by default.
pub trait Progress: Send + Sync {
    /// A phase starts with `total` steps.
    fn start(&self, _phase: &'static str, _total: u64) {}
    /// One more step of the current phase is done.
    fn advance(&self) {}
    /// The run is over.
    fn finish(&self) {}
}

/// No progress display (tests, logs, the online collector).
pub struct Silent;

impl Progress for Silent {}

/// Runs mark then sweep over the whole registry.
pub async fn collect(
    registry: &Registry,
    options: Options,
    progress: &dyn Progress,
) -> Result<Report> {
    let marked = mark::mark(registry, options, progress).await?;
    let mut report = Report {
        blobs_marked: marked.blobs.len(),
        manifests_deleted: marked.untagged.clone(),
        dry_run: options.dry_run,
        ..Report::default()
    };
    if !options.dry_run {
        for (repo, digest) in &marked.untagged {
            mark::remove_manifest(registry, repo, digest).await?;
        }
    }
    sweep::sweep(
        registry,
        &marked.blobs,
        options.dry_run,
        &mut report,
        progress,
    )
    .await?;
    progress.finish();
    Ok(report)
}
