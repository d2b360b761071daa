//! The mark phase: which manifests survive, and every blob they reach.

use std::collections::{BTreeMap, BTreeSet};

use wharf_oci::{Digest, Manifest, Reference, RepoName, Tag};

use super::{Options, Progress};
use crate::registry::layout::PathSpec;
use crate::registry::{Registry, Result};

/// Result of marking.
#[derive(Debug, Default)]
pub struct Marked {
    /// Every blob (including manifest blobs) that must stay.
    pub blobs: BTreeSet<Digest>,
    /// Manifests to remove because nothing keeps them alive (only with `delete_untagged`).
    pub untagged: Vec<(String, Digest)>,
}

/// Walks every repository and marks what its kept manifests reference.
pub async fn mark(
    registry: &Registry,
    options: Options,
    progress: &dyn Progress,
) -> Result<Marked> {
    let mut marked = Marked::default();
    let repositories = registry.list_repositories().await?;
    progress.start("mark", repositories.len() as u64);
    for name in repositories {
        progress.advance();
        let Ok(repo) = name.parse::<RepoName>() else {
            continue;
        };
        let revisions = registry.list_revisions(&repo).await?;
        let mut parsed: BTreeMap<Digest, Option<Manifest>> = BTreeMap::new();
        for d in &revisions {
            let m = registry
                .get_manifest(&repo, &Reference::Digest(d.clone()))
                .await
                .ok()
                .and_then(|s| Manifest::parse(None, &s.bytes).ok());
            parsed.insert(d.clone(), m);
        }
        let keep = if options.delete_untagged {
            kept(registry, &repo, &parsed, options).await?
        } else {
            parsed.keys().cloned().collect()
        };
        for (digest, manifest) in &parsed {
            if !keep.contains(digest) {
                marked.untagged.push((name.clone(), digest.clone()));
                continue;
            }
            marked.blobs.insert(digest.clone());
            if let Some(m) = manifest {
                for b in m.required_blobs() {
                    marked.blobs.insert(b.digest.clone());
                }
            }
        }
    }
    Ok(marked)
}

/// Manifests kept alive: tagged ones (and, online, recent ones), children of kept indexes,
/// referrers of kept subjects.
async fn kept(
    registry: &Registry,
    repo: &RepoName,
    parsed: &BTreeMap<Digest, Option<Manifest>>,
    options: Options,
) -> Result<BTreeSet<Digest>> {
    let mut keep: BTreeSet<Digest> = registry
        .tag_targets(repo)
        .await?
        .into_iter()
        .map(|(_, d)| d)
        .filter(|d| parsed.contains_key(d))
        .collect();
    if let Some(after) = options.keep_after {
        for digest in parsed.keys() {
            if keep.contains(digest) {
                continue;
            }
            let link = PathSpec::ManifestRevisionLink { repo, digest }.path();
            if registry.modified(&link).await?.is_none_or(|m| m >= after) {
                keep.insert(digest.clone());
            }
        }
    }
    loop {
        let before = keep.len();
        for (digest, manifest) in parsed {
            let Some(m) = manifest else { continue };
            if keep.contains(digest) {
                let children: Vec<Digest> = m.manifests.iter().map(|c| c.digest.clone()).collect();
                keep.extend(children.into_iter().filter(|c| parsed.contains_key(c)));
            } else if m.subject.as_ref().is_some_and(|s| keep.contains(&s.digest)) {
                keep.insert(digest.clone());
            }
        }
        if keep.len() == before {
            return Ok(keep);
        }
    }
}

/// Removes an untagged manifest's revision, any referrer link it left, and the tag history
/// entries naming it (as distribution's `RemoveManifest` does), so no link outlives its blob.
pub async fn remove_manifest(registry: &Registry, repo: &str, digest: &Digest) -> Result<()> {
    let Ok(repo) = repo.parse::<RepoName>() else {
        return Ok(());
    };
    for tag in registry.list_tags(&repo).await.unwrap_or_default() {
        let Ok(tag) = tag.parse::<Tag>() else {
            continue;
        };
        let link = PathSpec::TagIndexLink {
            repo: &repo,
            tag: &tag,
            digest,
        };
        if let Some(dir) = link.path().parent() {
            registry.remove(&dir).await?;
        }
    }
    registry.remove_revision(&repo, digest).await
}

impl Registry {
    /// When a file was last written; `None` when it does not exist.
    pub(crate) async fn modified(
        &self,
        path: &wharf_storage::StoragePath,
    ) -> Result<Option<std::time::SystemTime>> {
        match self.driver().stat(path).await {
            Ok(info) => Ok(Some(info.modified)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every manifest revision of a repository.
    pub async fn list_revisions(&self, repo: &RepoName) -> Result<Vec<Digest>> {
        let dir = PathSpec::Repository { repo }
            .path()
            .join("_manifests/revisions")?;
        let mut out = Vec::new();
        for alg in self.child_names(&dir).await? {
            for hex in self.child_names(&dir.join(&alg)?).await? {
                if let Ok(d) = format!("{alg}:{hex}").parse() {
                    out.push(d);
                }
            }
        }
        Ok(out)
    }

    /// What every tag of a repository points at.
    pub async fn tag_targets(&self, repo: &RepoName) -> Result<Vec<(Tag, Digest)>> {
        let mut out = Vec::new();
        for t in self.list_tags(repo).await.unwrap_or_default() {
            let Ok(tag) = t.parse::<Tag>() else { continue };
            if let Some(d) = self
                .read_link(PathSpec::TagCurrentLink { repo, tag: &tag })
                .await?
            {
                out.push((tag, d));
            }
        }
        Ok(out)
    }
}
