//! Manifests: stored as the exact bytes received (the digest is over bytes), linked into the
//! repository only after everything they reference is known to be there.

use bytes::Bytes;
use serde_json::Value;
use wharf_oci::{Digest, Manifest, ManifestKind, Reference, RepoName, Tag, media_type as mt};

use super::layout::PathSpec;
use super::manifest_cache::Cached;
use super::{Error, Registry, Result};
use crate::notify::{Action, manifest_report};

/// A manifest as served.
#[derive(Debug, Clone)]
pub struct StoredManifest {
    /// Digest of the bytes.
    pub digest: Digest,
    /// The exact bytes pushed.
    pub bytes: Bytes,
    /// Content-Type to serve.
    pub media_type: String,
}

/// What a successful PUT reports back.
#[derive(Debug, Clone)]
pub struct PutManifest {
    /// Digest of the stored bytes.
    pub digest: Digest,
    /// The subject, echoed in `OCI-Subject`.
    pub subject: Option<Digest>,
}

/// The media type to serve stored bytes with, including ones wharf would not accept today
/// (schema 1 written by an older registry into a root wharf now serves).
pub fn served_media_type(bytes: &[u8]) -> String {
    // Fast path for every GET: a top-level `mediaType` string is what the full parse below
    // would answer too (its kind is named by that string, or the parse fails and the string is
    // taken as is), and reading one field skips building and validating the whole document.
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    if let Ok(Probe {
        media_type: Some(m),
    }) = serde_json::from_slice::<Probe>(bytes)
    {
        return m;
    }
    if let Ok(m) = Manifest::parse(None, bytes) {
        return m.media_type;
    }
    let value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    if let Some(m) = value.get("mediaType").and_then(Value::as_str) {
        return m.to_owned();
    }
    if value.get("schemaVersion").and_then(Value::as_i64) == Some(1) {
        return if value.get("signatures").is_some() {
            mt::DOCKER_MANIFEST_V1_SIGNED
        } else {
            mt::DOCKER_MANIFEST_V1
        }
        .to_owned();
    }
    mt::OCI_MANIFEST.to_owned()
}

impl Registry {
    /// The digest a reference points at in this repository.
    pub async fn resolve(&self, repo: &RepoName, reference: &Reference) -> Result<Digest> {
        let unknown = || Error::ManifestUnknown(reference.clone());
        let digest = match reference {
            Reference::Tag(tag) => self
                .read_link(PathSpec::TagCurrentLink { repo, tag })
                .await?
                .ok_or_else(unknown)?,
            Reference::Digest(d) => d.clone(),
        };
        let revision = PathSpec::ManifestRevisionLink {
            repo,
            digest: &digest,
        };
        match self.read_link(revision).await? {
            Some(linked) if linked == digest => Ok(digest),
            _ => Err(unknown()),
        }
    }

    /// A manifest by tag or digest.
    pub async fn get_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
    ) -> Result<StoredManifest> {
        let digest = self.resolve(repo, reference).await?;
        let Cached { bytes, media_type } = match self.manifests.get(&digest) {
            Some(hit) => hit,
            None => {
                let data = PathSpec::BlobData { digest: &digest }.path();
                let bytes = match self.driver.get_content(&data).await {
                    Ok(b) => b,
                    Err(e) if e.is_not_found() => {
                        return Err(Error::ManifestUnknown(reference.clone()));
                    }
                    Err(e) => return Err(e.into()),
                };
                let media_type = served_media_type(&bytes);
                let read = Cached { bytes, media_type };
                self.manifests.insert(&digest, read.clone());
                read
            }
        };
        self.emit(|| manifest_report(Action::Pull, repo, &digest, &bytes, reference));
        Ok(StoredManifest {
            digest,
            bytes,
            media_type,
        })
    }

    /// Validates and stores a manifest, then points the tag at it when the reference is a tag.
    /// Nothing is visible until every check has passed; the tag moves last.
    pub async fn put_manifest(
        &self,
        repo: &RepoName,
        reference: &Reference,
        content_type: Option<&str>,
        bytes: Bytes,
    ) -> Result<PutManifest> {
        self.check_writable()?;
        let manifest = Manifest::parse(content_type, &bytes)
            .map_err(|e| Error::ManifestInvalid(e.to_string()))?;
        let digest = match reference {
            Reference::Digest(want) => {
                let got = Digest::of(want.algorithm(), &bytes);
                if &got != want {
                    return Err(Error::DigestInvalid(format!(
                        "manifest digest {got} does not match {want}"
                    )));
                }
                got
            }
            Reference::Tag(_) => Digest::sha256(&bytes),
        };
        self.check_references(repo, &manifest).await?;
        let stored = bytes.clone();

        // Three groups, each visible only once the one before is durable, so a crash leaves
        // data before any link to it and the revision link before the tag: first the bytes,
        // then the revision link (with the referrer link), then the tag. The tag's history
        // entry names the digest but makes nothing reachable and nothing reads it back, so it
        // is written atomically but not synced: a device flush fewer on every tagged push.
        let gc_on = self.options.link_refresh.is_some();
        let link = |spec: PathSpec<'_>| (spec.path(), Bytes::from(digest.to_string()));
        let data = PathSpec::BlobData { digest: &digest }.path();
        // Existing bytes are put again too (after a crash the file may hold less): a driver
        // may keep a file that holds them, with a fresh modification time, which keeps online
        // GC's last re-check from deleting data a new revision names.
        let first = vec![(data, bytes)];
        let tag = match reference {
            Reference::Tag(tag) => Some(tag),
            Reference::Digest(_) => None,
        };
        let history = tag.map(|tag| {
            link(PathSpec::TagIndexLink {
                repo,
                tag,
                digest: &digest,
            })
        });
        // written alongside the groups, as it needs no order with anything; both run to the
        // end (a failed one does not cut the other short, which could leave temp files)
        let history = async {
            match history {
                Some((path, content)) => self.driver.put_scratch(&path, content).await,
                None => Ok(()),
            }
        };
        let mut second = vec![link(PathSpec::ManifestRevisionLink {
            repo,
            digest: &digest,
        })];
        if let Some(subject) = &manifest.subject {
            second.push(link(PathSpec::ReferrerLink {
                repo,
                subject: &subject.digest,
                referrer: &digest,
            }));
        }
        let current = tag.map(|tag| vec![link(PathSpec::TagCurrentLink { repo, tag })]);
        if !gc_on {
            let groups = [first, second].into_iter().chain(current).collect();
            let (history, published) = futures::join!(history, self.driver.put_contents(groups));
            published.and(history)?;
        } else {
            let first_two = self.driver.put_contents(vec![first, second]);
            let (history, published) = futures::join!(history, first_two);
            published.and(history)?;
            // Online GC deletes links first, then rescans revisions written since it marked:
            // with our revision visible, checking again means either GC sees our manifest or
            // we see its deletion and refuse, never an accepted manifest with a swept blob.
            if let Err(e) = self.check_blobs(repo, &manifest, false).await {
                self.remove_revision(repo, &digest).await?;
                return Err(e);
            }
            if let Some(current) = current {
                self.driver.put_contents(vec![current]).await?;
            }
        }
        if gc_on {
            // online GC removes an old untagged revision, then looks at the tags again and
            // restores it if one appeared; a revision removed after that look is put back here
            let revision = PathSpec::ManifestRevisionLink {
                repo,
                digest: &digest,
            };
            if self.read_link(revision).await?.as_ref() != Some(&digest) {
                self.write_link(revision, &digest).await?;
            }
        }
        self.emit(|| manifest_report(Action::Push, repo, &digest, &stored, reference));
        Ok(PutManifest {
            digest,
            subject: manifest.subject.map(|s| s.digest),
        })
    }

    async fn check_references(&self, repo: &RepoName, manifest: &Manifest) -> Result<()> {
        if let Some(rules) = &self.options.layer_urls {
            let urls = manifest.layers.iter().flat_map(|l| l.urls.iter().flatten());
            for url in urls {
                if !rules.accepts(url) {
                    return Err(Error::ManifestInvalid(format!(
                        "layer URL {url:?} is not allowed (validation.manifests.urls)"
                    )));
                }
            }
        }
        self.check_blobs(repo, manifest, true).await
    }

    /// Every config/layer linked in the repository and every index child a revision of it;
    /// `refresh` (the first check) also refreshes their links for online GC.
    async fn check_blobs(&self, repo: &RepoName, manifest: &Manifest, refresh: bool) -> Result<()> {
        for blob in manifest.required_blobs() {
            let found = if refresh {
                self.stat_blob(repo, &blob.digest).await
            } else {
                self.linked_blob_size(repo, &blob.digest).await
            };
            match found {
                Ok(_) => {}
                Err(Error::BlobUnknown(d)) => return Err(Error::ManifestBlobUnknown(d)),
                Err(e) => return Err(e),
            }
        }
        if matches!(
            manifest.kind,
            ManifestKind::DockerList | ManifestKind::OciIndex
        ) {
            for child in &manifest.manifests {
                let child_ref = Reference::Digest(child.digest.clone());
                match self.resolve(repo, &child_ref).await {
                    Ok(_) if refresh => {
                        let digest = &child.digest;
                        let link = PathSpec::ManifestRevisionLink { repo, digest };
                        self.refresh_link(&link.path()).await?;
                    }
                    Ok(_) => {}
                    Err(Error::ManifestUnknown(_)) => {
                        return Err(Error::ManifestBlobUnknown(child.digest.clone()));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// Points `tag` at `digest`, keeping distribution's tag history index.
    pub async fn tag_manifest(&self, repo: &RepoName, tag: &Tag, digest: &Digest) -> Result<()> {
        self.write_link(PathSpec::TagIndexLink { repo, tag, digest }, digest)
            .await?;
        self.write_link(PathSpec::TagCurrentLink { repo, tag }, digest)
            .await
    }

    /// By digest: removes the manifest from the repository with every tag pointing at it.
    /// By tag: removes only the tag (OCI 1.1; the manifest stays reachable by digest).
    pub async fn delete_manifest(&self, repo: &RepoName, reference: &Reference) -> Result<()> {
        self.check_deletable()?;
        let digest = self.resolve(repo, reference).await?;
        self.delete_manifest_links(repo, reference, digest.clone())
            .await?;
        self.emit(|| crate::notify::manifest_deleted(repo, &digest, reference));
        Ok(())
    }

    async fn delete_manifest_links(
        &self,
        repo: &RepoName,
        reference: &Reference,
        digest: Digest,
    ) -> Result<()> {
        match reference {
            Reference::Tag(tag) => self.remove(&PathSpec::Tag { repo, tag }.path()).await,
            Reference::Digest(_) => {
                for tag in self.list_tags(repo).await.unwrap_or_default() {
                    let Ok(tag) = tag.parse::<Tag>() else {
                        continue;
                    };
                    let current = self.read_link(PathSpec::TagCurrentLink { repo, tag: &tag });
                    if current.await?.as_ref() == Some(&digest) {
                        self.remove(&PathSpec::Tag { repo, tag: &tag }.path())
                            .await?;
                    }
                }
                self.remove_revision(repo, &digest).await
            }
        }
    }

    /// Removes a manifest revision from a repository, with the referrer link it created.
    pub(crate) async fn remove_revision(&self, repo: &RepoName, digest: &Digest) -> Result<()> {
        let reference = Reference::Digest(digest.clone());
        if let Ok(stored) = self.get_manifest(repo, &reference).await
            && let Ok(m) = Manifest::parse(None, &stored.bytes)
            && let Some(subject) = m.subject
        {
            let link = PathSpec::ReferrerLink {
                repo,
                subject: &subject.digest,
                referrer: digest,
            };
            if let Some(dir) = link.path().parent() {
                self.remove(&dir).await?;
            }
        }
        self.remove(&PathSpec::ManifestRevision { repo, digest }.path())
            .await
    }
}
