//! Typed view of the manifests a registry must accept: Docker schema 2 and manifest list, OCI
//! image manifest and index, and OCI artifacts. Manifests are stored and served as the exact bytes
//! received (the digest is over bytes); this view exists to validate them and to find what they
//! reference.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::media_type as mt;

/// The four manifest families wharf understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// Docker image manifest schema 2.
    DockerV2,
    /// Docker manifest list.
    DockerList,
    /// OCI image manifest (also used by artifacts).
    OciManifest,
    /// OCI image index.
    OciIndex,
}

impl ManifestKind {
    /// The kind for a media type string, if it names a manifest wharf accepts.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        match media_type {
            mt::DOCKER_MANIFEST_V2 => Some(Self::DockerV2),
            mt::DOCKER_MANIFEST_LIST => Some(Self::DockerList),
            mt::OCI_MANIFEST => Some(Self::OciManifest),
            mt::OCI_INDEX => Some(Self::OciIndex),
            _ => None,
        }
    }

    /// The canonical media type served for this kind.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::DockerV2 => mt::DOCKER_MANIFEST_V2,
            Self::DockerList => mt::DOCKER_MANIFEST_LIST,
            Self::OciManifest => mt::OCI_MANIFEST,
            Self::OciIndex => mt::OCI_INDEX,
        }
    }

    /// Whether this kind lists child manifests rather than blobs.
    pub fn is_index(self) -> bool {
        matches!(self, Self::DockerList | Self::OciIndex)
    }
}

/// Why a manifest was refused; every variant is MANIFEST_INVALID on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Not a JSON object.
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    /// A field is missing or of the wrong shape.
    #[error("invalid manifest: {0}")]
    Invalid(String),
    /// Docker schema 1, which distribution 2.8 also refuses by default.
    #[error("schema 1 manifests are not supported")]
    Schema1,
    /// Content-Type and the body's mediaType disagree.
    #[error("media type {body:?} in the manifest does not match Content-Type {header:?}")]
    MediaTypeMismatch {
        /// From the body.
        body: String,
        /// From the request.
        header: String,
    },
}

/// A descriptor inside a manifest (config, layer, child manifest or subject).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestDescriptor {
    /// The referenced content's media type.
    pub media_type: String,
    /// The referenced content's digest.
    pub digest: Digest,
    /// The referenced content's size in bytes.
    pub size: u64,
    /// OCI 1.1: the artifact type of a child manifest.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Free-form annotations.
    #[serde(default)]
    pub annotations: Option<Map<String, Value>>,
    /// Foreign layers: content served from elsewhere, not required to be in the registry.
    #[serde(default)]
    pub urls: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<i64>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<ManifestDescriptor>,
    layers: Option<Vec<ManifestDescriptor>>,
    manifests: Option<Vec<ManifestDescriptor>>,
    subject: Option<ManifestDescriptor>,
    annotations: Option<Map<String, Value>>,
}

/// A parsed manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Family, which decides what references must exist.
    pub kind: ManifestKind,
    /// The Content-Type to serve it with.
    pub media_type: String,
    /// OCI 1.1 `artifactType`.
    pub artifact_type: Option<String>,
    /// Image config (manifests only).
    pub config: Option<ManifestDescriptor>,
    /// Layers (manifests only).
    pub layers: Vec<ManifestDescriptor>,
    /// Child manifests (indexes only).
    pub manifests: Vec<ManifestDescriptor>,
    /// OCI 1.1 `subject`: the manifest this one refers to.
    pub subject: Option<ManifestDescriptor>,
    /// Top-level annotations, copied into referrers responses.
    pub annotations: Option<Map<String, Value>>,
}

fn strip_params(ct: &str) -> &str {
    ct.split(';').next().unwrap_or("").trim()
}

impl Manifest {
    /// Parses and validates a manifest body, using the request's Content-Type when it names one.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ManifestError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ManifestError::Json(e.to_string()))?;
        if !value.is_object() {
            return Err(ManifestError::Json("expected a JSON object".into()));
        }
        let header = content_type.map(strip_params).filter(|s| !s.is_empty());
        let body_mt = value.get("mediaType").and_then(Value::as_str);
        let is_v1 = |s: &str| s == mt::DOCKER_MANIFEST_V1 || s == mt::DOCKER_MANIFEST_V1_SIGNED;
        if value.get("schemaVersion").and_then(Value::as_i64) == Some(1)
            || header.is_some_and(is_v1)
            || body_mt.is_some_and(is_v1)
        {
            return Err(ManifestError::Schema1);
        }
        let raw: Raw =
            serde_json::from_value(value).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        if raw.schema_version != Some(2) {
            return Err(ManifestError::Invalid("schemaVersion must be 2".into()));
        }
        let header_kind = header.and_then(ManifestKind::from_media_type);
        let body_kind = raw
            .media_type
            .as_deref()
            .and_then(ManifestKind::from_media_type);
        let kind = match (header_kind, raw.media_type.as_deref()) {
            (Some(h), Some(b)) if h.media_type() != b => {
                return Err(ManifestError::MediaTypeMismatch {
                    body: b.to_owned(),
                    header: h.media_type().to_owned(),
                });
            }
            (Some(h), _) => h,
            (None, Some(b)) => body_kind.ok_or_else(|| {
                ManifestError::Invalid(format!("unsupported manifest media type {b:?}"))
            })?,
            (None, None) if raw.manifests.is_some() => ManifestKind::OciIndex,
            (None, None) if raw.config.is_some() => ManifestKind::OciManifest,
            (None, None) => {
                return Err(ManifestError::Invalid(
                    "cannot tell the manifest type".into(),
                ));
            }
        };
        if matches!(kind, ManifestKind::DockerV2 | ManifestKind::DockerList)
            && raw.media_type.is_none()
        {
            return Err(ManifestError::Invalid("mediaType is required".into()));
        }
        let (config, layers, manifests) = if kind.is_index() {
            let manifests = raw
                .manifests
                .ok_or_else(|| ManifestError::Invalid("manifests is required".into()))?;
            (None, Vec::new(), manifests)
        } else {
            let config = raw
                .config
                .ok_or_else(|| ManifestError::Invalid("config is required".into()))?;
            (Some(config), raw.layers.unwrap_or_default(), Vec::new())
        };
        Ok(Manifest {
            kind,
            media_type: kind.media_type().to_owned(),
            artifact_type: raw.artifact_type,
            config,
            layers,
            manifests,
            subject: raw.subject,
            annotations: raw.annotations,
        })
    }

    /// The artifact type a referrers response reports (spec: artifactType, else config mediaType).
    pub fn effective_artifact_type(&self) -> Option<&str> {
        self.artifact_type
            .as_deref()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.as_str()))
    }

    /// Blobs that must exist in the repository before this manifest is accepted.
    pub fn required_blobs(&self) -> impl Iterator<Item = &ManifestDescriptor> {
        self.config
            .iter()
            .chain(self.layers.iter().filter(|l| l.urls.is_none()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn image(media_type: Option<&str>) -> String {
        let mt_field = media_type
            .map(|m| format!("\"mediaType\":\"{m}\","))
            .unwrap_or_default();
        format!(
            r#"{{"schemaVersion":2,{mt_field}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[{{"mediaType":"x","digest":"{}","size":3}},{{"mediaType":"x","digest":"{}","size":3,"urls":["http://x"]}}]}}"#,
            d('a'),
            d('b'),
            d('c')
        )
    }

    #[test]
    fn kind_from_header_body_or_shape() {
        let m = Manifest::parse(Some(mt::OCI_MANIFEST), image(None).as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::OciManifest);
        let m = Manifest::parse(None, image(Some(mt::DOCKER_MANIFEST_V2)).as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::DockerV2);
        let m = Manifest::parse(Some("application/json"), image(None).as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::OciManifest);
        let idx = r#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            Manifest::parse(None, idx.as_bytes()).unwrap().kind,
            ManifestKind::OciIndex
        );
    }

    #[test]
    fn foreign_layers_are_not_required() {
        let m = Manifest::parse(Some(mt::OCI_MANIFEST), image(None).as_bytes()).unwrap();
        let req: Vec<_> = m.required_blobs().map(|x| x.digest.to_string()).collect();
        assert_eq!(req, vec![d('a'), d('b')]);
        assert_eq!(
            m.effective_artifact_type(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn refusals() {
        let cases: &[(Option<&str>, String)] = &[
            (None, "not json".into()),
            (None, "[]".into()),
            (None, r#"{"schemaVersion":1,"name":"x"}"#.into()),
            (None, r#"{"schemaVersion":3,"config":{}}"#.into()),
            (Some(mt::OCI_INDEX), image(Some(mt::OCI_MANIFEST))),
            (Some(mt::DOCKER_MANIFEST_V2), image(None)),
            (None, r#"{"schemaVersion":2}"#.into()),
            (
                None,
                r#"{"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:1","size":1}}"#
                    .into(),
            ),
            (Some(mt::OCI_INDEX), r#"{"schemaVersion":2}"#.into()),
        ];
        for (ct, body) in cases {
            assert!(
                Manifest::parse(*ct, body.as_bytes()).is_err(),
                "{ct:?} {body}"
            );
        }
    }
}
