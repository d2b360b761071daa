//! A registry with every kind of content garbage collection must tell apart: tagged and
//! retagged images, untagged images, a multi-arch index over untagged children, referrers
//! (signature, SBOM) of kept and of unkept manifests, a layer shared across repositories, a
//! manifest deleted through the API and a blob nothing references.
//!
//! The scenario records which blobs every manifest reaches, so tests compute what must survive
//! from the content itself, not from the collector under test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::oci::{
    self, Client, OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor,
    random_bytes, sha256,
};

/// The application repository.
pub const APP: &str = "gc/app";
/// A second repository sharing a layer with [`APP`].
pub const OTHER: &str = "gc/other";

/// One pushed manifest and every blob it reaches (itself, config, layers, children).
#[derive(Debug, Clone)]
pub struct Pushed {
    /// Repository it was pushed to.
    pub repo: &'static str,
    /// Manifest digest.
    pub digest: String,
    /// Digests of the manifest blob and everything it references.
    pub blobs: BTreeSet<String>,
}

/// What [`build`] pushed, by role.
pub struct Scenario {
    /// Manifests by role name (`v1`, `old`, `latest`, `untagged`, `amd64`, `arm64`, `multi`,
    /// `signature`, `sbom`, `orphan_signature`, `b`, `b_untagged`, `deleted`).
    pub manifests: BTreeMap<&'static str, Pushed>,
    /// `(repo, tag)` of every tag left in place.
    pub tags: Vec<(&'static str, &'static str)>,
    /// A blob pushed but never referenced.
    pub orphan_blob: String,
}

/// Roles that survive a collection without `--delete-untagged`: all but the deleted one.
pub const KEPT_BY_DEFAULT: &[&str] = &[
    "v1",
    "old",
    "latest",
    "untagged",
    "amd64",
    "arm64",
    "multi",
    "signature",
    "sbom",
    "orphan_signature",
    "b",
    "b_untagged",
];

/// Roles that survive `--delete-untagged`: tagged ones, children of a tagged index, and
/// referrers whose subject is kept.
pub const KEPT_TAGGED: &[&str] = &[
    "v1",
    "latest",
    "amd64",
    "arm64",
    "multi",
    "signature",
    "sbom",
    "b",
];

impl Scenario {
    /// The manifest pushed in `role`.
    pub fn get(&self, role: &str) -> &Pushed {
        self.manifests
            .get(role)
            .unwrap_or_else(|| panic!("no manifest with role {role}"))
    }

    /// Every blob reachable from the manifests in `roles`.
    pub fn reachable(&self, roles: &[&str]) -> BTreeSet<String> {
        roles
            .iter()
            .flat_map(|r| self.get(r).blobs.iter().cloned())
            .collect()
    }

    /// Every blob the scenario put in storage.
    pub fn all_blobs(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self
            .manifests
            .values()
            .flat_map(|p| p.blobs.iter().cloned())
            .collect();
        all.insert(self.orphan_blob.clone());
        all
    }
}

/// Pushes the whole scenario through the registry API.
pub async fn build(client: &Client) -> Scenario {
    let mut manifests = BTreeMap::new();
    let shared = random_bytes(2048);
    let image = |repo, layers, tag| push_image(client, repo, layers, tag);

    manifests.insert(
        "v1",
        image(APP, vec![shared.clone(), random_bytes(900)], Some("v1")).await,
    );
    manifests.insert(
        "old",
        image(APP, vec![shared.clone(), random_bytes(700)], Some("latest")).await,
    );
    manifests.insert(
        "latest",
        image(APP, vec![shared.clone(), random_bytes(800)], Some("latest")).await,
    );
    manifests.insert("untagged", image(APP, vec![random_bytes(600)], None).await);
    manifests.insert("amd64", image(APP, vec![random_bytes(500)], None).await);
    manifests.insert(
        "arm64",
        image(APP, vec![shared.clone(), random_bytes(400)], None).await,
    );
    manifests.insert(
        "b",
        image(OTHER, vec![shared.clone(), random_bytes(300)], Some("b")).await,
    );
    manifests.insert(
        "b_untagged",
        image(OTHER, vec![random_bytes(200)], None).await,
    );
    let deleted = image(APP, vec![random_bytes(100)], Some("gone")).await;
    let multi = push_index(
        client,
        APP,
        &[&manifests["amd64"], &manifests["arm64"]],
        "multi",
    )
    .await;
    manifests.insert("multi", multi);
    for (role, subject, kind) in [
        ("signature", "v1", "application/vnd.example.signature"),
        ("sbom", "amd64", "application/vnd.example.sbom"),
        (
            "orphan_signature",
            "untagged",
            "application/vnd.example.signature",
        ),
    ] {
        let referrer = push_referrer(client, APP, &manifests[subject], kind).await;
        manifests.insert(role, referrer);
    }
    let resp = client
        .delete(&format!("/v2/{APP}/manifests/{}", deleted.digest))
        .send()
        .await
        .expect("DELETE manifest");
    oci::expect_status(resp, StatusCode::ACCEPTED, "delete manifest").await;
    manifests.insert("deleted", deleted);
    let orphan_blob = client.push_blob(APP, &random_bytes(1500)).await;
    Scenario {
        manifests,
        tags: vec![(APP, "v1"), (APP, "latest"), (APP, "multi"), (OTHER, "b")],
        orphan_blob,
    }
}

/// Pushes a config, `layers` and an OCI image manifest (by tag or by digest).
pub async fn push_image(
    client: &Client,
    repo: &'static str,
    layers: Vec<Vec<u8>>,
    tag: Option<&str>,
) -> Pushed {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
        "nonce": hex::encode(random_bytes(8)),
    }))
    .expect("config JSON");
    let mut blobs = BTreeSet::from([client.push_blob(repo, &config).await]);
    let mut descriptors = Vec::new();
    for layer in &layers {
        blobs.insert(client.push_blob(repo, layer).await);
        descriptors.push(descriptor(OCI_LAYER, layer));
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": descriptors,
    });
    push(client, repo, tag, OCI_MANIFEST, &manifest, blobs).await
}

/// Pushes an OCI index over `children` (already pushed to `repo`) under `tag`.
async fn push_index(
    client: &Client,
    repo: &'static str,
    children: &[&Pushed],
    tag: &str,
) -> Pushed {
    let mut blobs = BTreeSet::new();
    let mut descriptors = Vec::new();
    for (child, arch) in children.iter().zip(["amd64", "arm64"]) {
        let bytes = manifest_bytes(client, repo, &child.digest).await;
        let mut d = descriptor(OCI_MANIFEST, &bytes);
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        descriptors.push(d);
        blobs.extend(child.blobs.iter().cloned());
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors});
    push(client, repo, Some(tag), OCI_INDEX, &index, blobs).await
}

/// Pushes an artifact manifest whose `subject` is `subject`, untagged, as signers do.
async fn push_referrer(
    client: &Client,
    repo: &'static str,
    subject: &Pushed,
    artifact_type: &str,
) -> Pushed {
    let empty = b"{}";
    let payload = random_bytes(256);
    let blobs = BTreeSet::from([
        client.push_blob(repo, empty).await,
        client.push_blob(repo, &payload).await,
    ]);
    let subject_bytes = manifest_bytes(client, repo, &subject.digest).await;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": descriptor(OCI_EMPTY, empty),
        "layers": [descriptor("application/octet-stream", &payload)],
        "subject": descriptor(OCI_MANIFEST, &subject_bytes),
    });
    push(client, repo, None, OCI_MANIFEST, &manifest, blobs).await
}

async fn push(
    client: &Client,
    repo: &'static str,
    tag: Option<&str>,
    media_type: &str,
    manifest: &Value,
    mut blobs: BTreeSet<String>,
) -> Pushed {
    let bytes = serde_json::to_vec(manifest).expect("manifest JSON");
    let digest = sha256(&bytes);
    let reference = tag.unwrap_or(&digest);
    let resp = client
        .push_manifest(repo, reference, media_type, &bytes)
        .await;
    oci::expect_status(resp, StatusCode::CREATED, "push manifest").await;
    blobs.insert(digest.clone());
    Pushed {
        repo,
        digest,
        blobs,
    }
}

/// The stored bytes of a manifest, asserting 200.
pub async fn manifest_bytes(client: &Client, repo: &str, reference: &str) -> Vec<u8> {
    let resp = client
        .manifest(reqwest::Method::GET, repo, reference)
        .send()
        .await
        .expect("GET manifest");
    let resp = oci::expect_status(resp, StatusCode::OK, "get manifest").await;
    resp.bytes().await.expect("manifest body").to_vec()
}

/// Pulls `reference` like a client: the manifest, every child of an index, every blob, checking
/// each digest. Panics on the first thing that does not pull.
pub async fn pull_all(client: &Client, repo: &str, reference: &str) {
    let bytes = manifest_bytes(client, repo, reference).await;
    let manifest: Value = serde_json::from_slice(&bytes).expect("manifest is JSON");
    if let Some(children) = manifest["manifests"].as_array() {
        for child in children {
            let digest = child["digest"].as_str().expect("child digest");
            Box::pin(pull_all(client, repo, digest)).await;
        }
    }
    let layers = manifest["layers"].as_array().cloned().unwrap_or_default();
    for d in std::iter::once(&manifest["config"]).chain(&layers) {
        let Some(digest) = d["digest"].as_str() else {
            continue;
        };
        let resp = client
            .get(&format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .expect("GET blob");
        let resp = oci::expect_status(resp, StatusCode::OK, "pull blob").await;
        let body = resp.bytes().await.expect("blob body");
        assert_eq!(
            sha256(&body),
            digest,
            "{repo}: blob content matches its digest"
        );
    }
}

/// Digests of every blob with data under a filesystem storage root.
pub fn blobs_on_disk(root: &Path) -> BTreeSet<String> {
    let dir = root.join("docker/registry/v2/blobs/sha256");
    let mut out = BTreeSet::new();
    for prefix in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        for blob in std::fs::read_dir(prefix.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            if blob.path().join("data").is_file() {
                out.insert(format!("sha256:{}", blob.file_name().to_string_lossy()));
            }
        }
    }
    out
}

/// Digests of the blobs with data in a [`tree`] listing.
pub fn blobs_on_disk_from_tree(tree: &BTreeMap<String, u64>) -> BTreeSet<String> {
    tree.keys()
        .filter_map(|p| p.strip_prefix("docker/registry/v2/blobs/sha256/"))
        .filter_map(|p| p.strip_suffix("/data"))
        .filter_map(|p| p.split_once('/'))
        .map(|(_, hex)| format!("sha256:{hex}"))
        .collect()
}

/// Link files under `repositories/` naming a blob that has no data: what a collector must not
/// leave behind.
pub fn dangling_links(root: &Path) -> Vec<String> {
    let blobs = blobs_on_disk(root);
    tree(root)
        .into_keys()
        .filter(|p| p.starts_with("docker/registry/v2/repositories/") && p.ends_with("/link"))
        .filter(|p| {
            let target = std::fs::read_to_string(root.join(p)).unwrap_or_default();
            !blobs.contains(target.trim())
        })
        .collect()
}

/// Every file under `root` with its length, to prove a run changed nothing.
pub fn tree(root: &Path) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                out.insert(rel.display().to_string(), meta.len());
            }
        }
    }
    out
}
