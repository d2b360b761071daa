//! The sweep phase: delete unmarked blobs and the repository links that pointed at them.

use std::collections::BTreeSet;

use wharf_oci::{Digest, RepoName};
use wharf_storage::StoragePath;

use super::{Progress, Report};
use crate::registry::layout::{PathSpec, ROOT};
use crate::registry::{Registry, Result};

/// Deletes (or, with `dry_run`, lists) every blob not in `marked`.
pub async fn sweep(
    registry: &Registry,
    marked: &BTreeSet<Digest>,
    dry_run: bool,
    report: &mut Report,
    progress: &dyn Progress,
) -> Result<()> {
    let prefixes = blob_prefixes(registry).await?;
    progress.start("sweep", prefixes.len() as u64);
    for (alg, prefix_dir) in prefixes {
        progress.advance();
        for hex in registry.child_names(&prefix_dir).await? {
            let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>() else {
                continue;
            };
            if marked.contains(&digest) {
                continue;
            }
            let size = registry.blob_size(&digest).await?.unwrap_or(0);
            if !dry_run {
                registry.forget_blob(&digest).await;
                registry
                    .remove(&PathSpec::Blob { digest: &digest }.path())
                    .await?;
                registry.forget_blob(&digest).await;
            }
            report.bytes_freed += size;
            report.blobs_deleted.push((digest, size));
        }
    }
    if !dry_run {
        let swept: BTreeSet<&Digest> = report.blobs_deleted.iter().map(|(d, _)| d).collect();
        for (repo, digest, link) in layer_links(registry, |d| swept.contains(d)).await? {
            registry.forget_link(&repo, &digest).await;
            if let Some(dir) = link.parent() {
                registry.remove(&dir).await?;
            }
            registry.forget_link(&repo, &digest).await;
        }
    }
    Ok(())
}

/// Every `blobs/<alg>/<xx>` directory with its algorithm, listed up front so progress has a
/// total.
pub(crate) async fn blob_prefixes(registry: &Registry) -> Result<Vec<(String, StoragePath)>> {
    let blobs = StoragePath::new(format!("{ROOT}/blobs"))?;
    let mut out = Vec::new();
    for alg in registry.child_names(&blobs).await? {
        let alg_dir = blobs.join(&alg)?;
        for prefix in registry.child_names(&alg_dir).await? {
            out.push((alg.clone(), alg_dir.join(&prefix)?));
        }
    }
    Ok(out)
}

/// Every `(repository, digest, link path)` under the repositories' `_layers` whose digest
/// `wanted` accepts.
pub(crate) async fn layer_links(
    registry: &Registry,
    wanted: impl Fn(&Digest) -> bool,
) -> Result<Vec<(RepoName, Digest, StoragePath)>> {
    let mut out = Vec::new();
    for name in registry.list_repositories().await? {
        let Ok(repo) = name.parse::<RepoName>() else {
            continue;
        };
        let layers = PathSpec::Repository { repo: &repo }
            .path()
            .join("_layers")?;
        for alg in registry.child_names(&layers).await? {
            for hex in registry.child_names(&layers.join(&alg)?).await? {
                let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>() else {
                    continue;
                };
                if wanted(&digest) {
                    let link = PathSpec::LayerLink {
                        repo: &repo,
                        digest: &digest,
                    }
                    .path();
                    out.push((repo.clone(), digest, link));
                }
            }
        }
    }
    Ok(out)
}
