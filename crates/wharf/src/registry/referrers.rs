//! The referrers API: manifests whose `subject` is a given digest, as index descriptors.

use serde_json::{Map, Value, json};
use wharf_oci::{Digest, Manifest, Reference, RepoName};

use super::layout::{PathSpec, parse_link};
use super::{Error, Registry, Result};

impl Registry {
    /// Descriptors of every manifest in `repo` that refers to `subject`, optionally only those
    /// of one artifact type. An unknown subject has no referrers, which is not an error.
    pub async fn list_referrers(
        &self,
        repo: &RepoName,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Value>> {
        let dir = PathSpec::Referrers { repo, subject }.path();
        let mut out = Vec::new();
        for alg in self.child_names(&dir).await? {
            let alg_dir = dir.join(&alg)?;
            for hex in self.child_names(&alg_dir).await? {
                let link = alg_dir.join(&format!("{hex}/link"))?;
                let Some(digest) = (match self.driver.get_content(&link).await {
                    Ok(b) => parse_link(&b),
                    Err(e) if e.is_not_found() => None,
                    Err(e) => return Err(e.into()),
                }) else {
                    continue;
                };
                let stored = match self
                    .get_manifest(repo, &Reference::Digest(digest.clone()))
                    .await
                {
                    Ok(s) => s,
                    Err(Error::ManifestUnknown(_)) => continue,
                    Err(e) => return Err(e),
                };
                let Ok(manifest) = Manifest::parse(None, &stored.bytes) else {
                    continue;
                };
                let kind = manifest.effective_artifact_type();
                if artifact_type.is_some_and(|want| kind != Some(want)) {
                    continue;
                }
                let mut d = Map::new();
                d.insert("mediaType".into(), json!(stored.media_type));
                d.insert("digest".into(), json!(digest.to_string()));
                d.insert("size".into(), json!(stored.bytes.len()));
                if let Some(kind) = kind {
                    d.insert("artifactType".into(), json!(kind));
                }
                if let Some(a) = manifest.annotations {
                    d.insert("annotations".into(), Value::Object(a));
                }
                out.push(Value::Object(d));
            }
        }
        Ok(out)
    }
}
