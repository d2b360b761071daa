//! Offline garbage collection, compatible with `registry garbage-collect`: mark every blob
//! reachable from a kept manifest in any repository, then sweep the rest.
//!
//! With `delete_untagged`, a manifest is kept only if a tag points at it, it is a child of a
//! kept index, or it refers (`subject`) to a kept manifest; the others are removed first.
//! Run it while no one pushes (read-only mode or stopped registry), as with distribution.

pub mod mark;
pub mod sweep;

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
}

/// Runs mark then sweep over the whole registry.
pub async fn collect(registry: &Registry, options: Options) -> Result<Report> {
    let marked = mark::mark(registry, options).await?;
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
    sweep::sweep(registry, &marked.blobs, options.dry_run, &mut report).await?;
    Ok(report)
}
