//! The online sweep: delete unmarked blobs only when nothing could be about to reference them.
//!
//! A blob is a candidate when the mark phase did not reach it and its data and every
//! repository link to it were last written before the cutoff (`now - grace`): a push that
//! uploaded it recently, or a client just told "it exists" (the link is refreshed then, see
//! `registry/refresh.rs`), keeps it. Deletion then goes links first, a rescan second, data
//! last, each step re-checked just before it acts; ARCHITECTURE.md gives the argument.

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use bytes::Bytes;
use wharf_oci::{Digest, Manifest, Reference, RepoName};
use wharf_storage::StoragePath;

use super::Report;
use super::sweep::{blob_prefixes, layer_links};
use crate::registry::layout::PathSpec;
use crate::registry::{Registry, Result};

/// A blob the mark phase did not reach, with the links that claim it.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The blob.
    pub digest: Digest,
    /// Its size, for the report.
    pub size: u64,
    /// `_layers/<alg>/<hex>/link` of every repository linking it.
    pub links: Vec<(RepoName, StoragePath)>,
}

/// The grace rule: collectable only when the data and every link were written before `cutoff`.
pub fn old_enough(data: SystemTime, links: &[SystemTime], cutoff: SystemTime) -> bool {
    data < cutoff && links.iter().all(|m| *m < cutoff)
}

/// The rescan rule, after the candidate's links are gone: it must stay when a manifest written
/// since the cutoff names it, or when a link appeared meanwhile (a mount, a finished upload).
pub fn must_stay(
    digest: &Digest,
    referenced: &BTreeSet<Digest>,
    linked_now: &BTreeSet<Digest>,
) -> bool {
    referenced.contains(digest) || linked_now.contains(digest)
}

/// Unmarked blobs that pass the grace rule.
pub async fn candidates(
    registry: &Registry,
    marked: &BTreeSet<Digest>,
    cutoff: SystemTime,
) -> Result<Vec<Candidate>> {
    type Found = (u64, SystemTime, Vec<(RepoName, StoragePath, SystemTime)>);
    let mut found: BTreeMap<Digest, Found> = BTreeMap::new();
    for (alg, dir) in blob_prefixes(registry).await? {
        for hex in registry.child_names(&dir).await? {
            let Ok(digest) = format!("{alg}:{hex}").parse::<Digest>() else {
                continue;
            };
            if marked.contains(&digest) {
                continue;
            }
            let data = PathSpec::BlobData { digest: &digest }.path();
            match registry.driver().stat(&data).await {
                Ok(info) if info.modified < cutoff => {
                    found.insert(digest, (info.size, info.modified, Vec::new()));
                }
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for (repo, digest, link) in layer_links(registry, |d| found.contains_key(d)).await? {
        if let (Some(modified), Some(entry)) =
            (registry.modified(&link).await?, found.get_mut(&digest))
        {
            entry.2.push((repo, link, modified));
        }
    }
    Ok(found
        .into_iter()
        .filter(|(_, (_, data, links))| {
            let times: Vec<SystemTime> = links.iter().map(|(_, _, m)| *m).collect();
            old_enough(*data, &times, cutoff)
        })
        .map(|(digest, (size, _, links))| Candidate {
            digest,
            size,
            links: links.into_iter().map(|(r, l, _)| (r, l)).collect(),
        })
        .collect())
}

/// Deletes candidates: links (re-checked), rescan, data (re-checked). Returns what was deleted.
pub async fn sweep(
    registry: &Registry,
    candidates: Vec<Candidate>,
    cutoff: SystemTime,
    report: &mut Report,
) -> Result<()> {
    let mut unlinked = Vec::new();
    'candidates: for c in candidates {
        for (_, link) in &c.links {
            if registry.modified(link).await?.is_some_and(|m| m >= cutoff) {
                continue 'candidates;
            }
        }
        for (repo, link) in &c.links {
            registry.forget_link(repo, &c.digest).await;
            if let Some(dir) = link.parent() {
                registry.remove(&dir).await?;
            }
            registry.forget_link(repo, &c.digest).await;
        }
        unlinked.push(c);
    }
    if unlinked.is_empty() {
        return Ok(());
    }
    let referenced = recent_references(registry, cutoff).await?;
    let wanted: BTreeSet<&Digest> = unlinked.iter().map(|c| &c.digest).collect();
    let linked_now: BTreeSet<Digest> = layer_links(registry, |d| wanted.contains(d))
        .await?
        .into_iter()
        .map(|(_, d, _)| d)
        .collect();
    for c in unlinked {
        if must_stay(&c.digest, &referenced, &linked_now) {
            tracing::info!(blob = %c.digest, "gc: candidate referenced by a concurrent push, kept");
            for (_, link) in &c.links {
                let body = Bytes::from(c.digest.to_string());
                registry.driver().put_content(link, body).await?;
            }
            continue;
        }
        let data = PathSpec::BlobData { digest: &c.digest }.path();
        if registry.modified(&data).await?.is_none_or(|m| m >= cutoff) {
            continue;
        }
        registry.forget_blob(&c.digest).await;
        registry
            .remove(&PathSpec::Blob { digest: &c.digest }.path())
            .await?;
        registry.forget_blob(&c.digest).await;
        report.bytes_freed += c.size;
        report.blobs_deleted.push((c.digest, c.size));
    }
    Ok(())
}

/// Every blob named by a manifest whose revision link was written at or after `since`
/// (including the manifest itself): what pushes that raced with the mark phase reference.
pub(crate) async fn recent_references(
    registry: &Registry,
    since: SystemTime,
) -> Result<BTreeSet<Digest>> {
    let mut out = BTreeSet::new();
    for name in registry.list_repositories().await? {
        let Ok(repo) = name.parse::<RepoName>() else {
            continue;
        };
        for digest in registry.list_revisions(&repo).await? {
            let link = PathSpec::ManifestRevisionLink {
                repo: &repo,
                digest: &digest,
            };
            if registry
                .modified(&link.path())
                .await?
                .is_none_or(|m| m < since)
            {
                continue;
            }
            out.insert(digest.clone());
            let Ok(stored) = registry
                .get_manifest(&repo, &Reference::Digest(digest))
                .await
            else {
                continue;
            };
            if let Ok(m) = Manifest::parse(None, &stored.bytes) {
                out.extend(m.required_blobs().map(|b| b.digest.clone()));
                out.extend(m.manifests.iter().map(|c| c.digest.clone()));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn grace_rule_needs_data_and_every_link_older_than_the_cutoff() {
        let now = SystemTime::now();
        let cutoff = now - Duration::from_secs(60);
        let old = now - Duration::from_secs(120);
        let young = now - Duration::from_secs(10);
        assert!(old_enough(old, &[], cutoff), "unlinked old data");
        assert!(old_enough(old, &[old, old], cutoff));
        assert!(!old_enough(young, &[old], cutoff), "slow push: fresh data");
        assert!(
            !old_enough(old, &[old, young], cutoff),
            "fresh link (mount)"
        );
        assert!(
            !old_enough(old, &[cutoff], cutoff),
            "at the cutoff is young"
        );
    }

    #[test]
    fn rescan_rule_keeps_what_a_concurrent_push_named_or_linked() {
        let d = |c: char| -> Digest {
            format!("sha256:{}", c.to_string().repeat(64))
                .parse()
                .unwrap()
        };
        let referenced = BTreeSet::from([d('a')]);
        let linked = BTreeSet::from([d('b')]);
        assert!(must_stay(&d('a'), &referenced, &linked));
        assert!(must_stay(&d('b'), &referenced, &linked));
        assert!(!must_stay(&d('c'), &referenced, &linked));
    }
}
