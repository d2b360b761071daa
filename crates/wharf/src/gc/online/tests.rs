//! Online GC on a real filesystem root with back-dated modification times: the grace rule, the
//! re-checks, and the rescan that keeps what a push names after the candidates were listed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::json;
use wharf_oci::{Digest, Reference, RepoName};
use wharf_storage::Driver;
use wharf_storage::backend::filesystem::FilesystemDriver;
use wharf_storage::factory::FilesystemParams;

use super::round;
use crate::config::GcConfig;
use crate::gc::{Report, guarded};
use crate::registry::layout::PathSpec;
use crate::registry::{Options, Registry};

const GRACE: Duration = Duration::from_secs(60);

async fn driver(root: &Path) -> Arc<dyn Driver> {
    let params = FilesystemParams {
        root_directory: root.to_owned(),
        ..FilesystemParams::default()
    };
    Arc::new(FilesystemDriver::new(params).await.unwrap())
}

/// A registry as `wharf serve` builds it with `gc.enabled` (`refresh: true`), or as an instance
/// that does not refresh links (to stage a push that raced the collector).
async fn registry(root: &Path, refresh: bool) -> Registry {
    Registry::new(
        driver(root).await,
        Options {
            delete_enabled: true,
            link_refresh: refresh.then_some(GRACE / 2),
            ..Options::default()
        },
    )
}

fn repo(name: &str) -> RepoName {
    name.parse().unwrap()
}

async fn push_blob(reg: &Registry, name: &str, bytes: &[u8]) -> Digest {
    let digest = Digest::sha256(bytes);
    let id = reg.start_upload(&repo(name)).await.unwrap();
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::copy_from_slice(bytes))]);
    reg.finish_upload(&repo(name), &id, &digest, body)
        .await
        .unwrap();
    digest
}

/// Pushes a config and one layer (already pushed or not) and an OCI manifest over them.
async fn push_image(reg: &Registry, name: &str, layer: &Digest, tag: Option<&str>) -> Digest {
    let config = format!("{{\"nonce\":\"{}\"}}", rand::random::<u64>());
    let config_digest = push_blob(reg, name, config.as_bytes()).await;
    let size = reg.stat_blob(&repo(name), layer).await.unwrap();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer.to_string(), "size": size}],
    }))
    .unwrap();
    let digest = Digest::sha256(&manifest);
    let reference = match tag {
        Some(t) => Reference::Tag(t.parse().unwrap()),
        None => Reference::Digest(digest.clone()),
    };
    reg.put_manifest(&repo(name), &reference, None, Bytes::from(manifest))
        .await
        .unwrap();
    digest
}

/// Sets every file under `root` back by `by`, as if all of it had been written that long ago.
fn age_all(root: &Path, by: Duration) {
    let when = SystemTime::now() - by;
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                let f = std::fs::File::options()
                    .write(true)
                    .open(entry.path())
                    .unwrap();
                f.set_modified(when).unwrap();
            }
        }
    }
}

fn data(root: &Path, d: &Digest) -> std::path::PathBuf {
    root.join(&PathSpec::BlobData { digest: d }.path().as_str()[1..])
}

fn link(root: &Path, name: &str, d: &Digest) -> std::path::PathBuf {
    let r = repo(name);
    root.join(
        &PathSpec::LayerLink {
            repo: &r,
            digest: d,
        }
        .path()
        .as_str()[1..],
    )
}

fn config(delete_untagged: bool) -> GcConfig {
    GcConfig {
        enabled: true,
        grace: GRACE,
        delete_untagged,
        ..GcConfig::default()
    }
}

#[tokio::test]
async fn a_round_deletes_only_garbage_older_than_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let reg = registry(root, true).await;
    let old_orphan = push_blob(&reg, "a/app", b"old orphan").await;
    let shared = push_blob(&reg, "a/app", b"old, linked again elsewhere").await;
    let layer = push_blob(&reg, "a/app", b"layer of the tagged image").await;
    let tagged = push_image(&reg, "a/app", &layer, Some("v1")).await;
    let untagged_layer = push_blob(&reg, "a/app", b"layer of an untagged image").await;
    let untagged = push_image(&reg, "a/app", &untagged_layer, None).await;
    age_all(root, GRACE * 2);
    let young_orphan = push_blob(&reg, "a/app", b"young orphan").await;
    push_blob(&reg, "b/other", b"old, linked again elsewhere").await;

    let report = round(&reg, &config(true)).await.unwrap();
    let deleted: Vec<&Digest> = report.blobs_deleted.iter().map(|(d, _)| d).collect();
    assert!(deleted.contains(&&old_orphan) && deleted.contains(&&untagged_layer));
    assert!(
        deleted.contains(&&untagged),
        "the untagged manifest's own bytes"
    );
    assert_eq!(report.manifests_deleted, [("a/app".to_owned(), untagged)]);
    assert!(!data(root, &old_orphan).exists() && !link(root, "a/app", &old_orphan).exists());
    for kept in [&young_orphan, &shared, &layer, &tagged] {
        assert!(data(root, kept).exists(), "{kept} kept");
    }
    assert!(reg.stat_blob(&repo("b/other"), &shared).await.is_ok());
    assert!(
        reg.get_manifest(&repo("a/app"), &Reference::Digest(tagged))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_served_blob_gets_its_link_refreshed_and_survives() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let reg = registry(root, true).await;
    let blob = push_blob(&reg, "a/app", b"exists, unreferenced").await;
    age_all(root, GRACE * 2);
    reg.stat_blob(&repo("a/app"), &blob).await.unwrap(); // a client's HEAD
    let report = round(&reg, &config(false)).await.unwrap();
    assert!(report.blobs_deleted.is_empty(), "{report:?}");
    push_image(&reg, "a/app", &blob, Some("v1")).await;
}

#[tokio::test]
async fn the_rescan_keeps_a_candidate_that_a_manifest_or_a_mount_claims_after_listing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let reg = registry(root, true).await;
    let racer = registry(root, false).await;
    let named = push_blob(&reg, "a/app", b"named by a racing manifest").await;
    let mounted = push_blob(&reg, "a/app", b"mounted by a racing client").await;
    let garbage = push_blob(&reg, "a/app", b"nobody wants this").await;
    age_all(root, GRACE * 2);
    let cutoff = SystemTime::now() - GRACE;
    let candidates = guarded::candidates(&reg, &Default::default(), cutoff)
        .await
        .unwrap();
    assert_eq!(candidates.len(), 3);

    // pushes land after the listing, through an instance that leaves the old links old
    let manifest = push_image(&racer, "a/app", &named, Some("v1")).await;
    assert!(
        racer
            .mount_blob(&repo("b/dst"), &repo("a/app"), &mounted)
            .await
            .unwrap()
            .is_some()
    );

    let mut report = Report::default();
    guarded::sweep(&reg, candidates, cutoff, &mut report)
        .await
        .unwrap();
    let deleted: Vec<&Digest> = report.blobs_deleted.iter().map(|(d, _)| d).collect();
    assert_eq!(deleted, [&garbage]);
    assert!(link(root, "a/app", &named).exists(), "link restored");
    assert!(reg.stat_blob(&repo("a/app"), &named).await.is_ok());
    assert!(
        reg.get_manifest(&repo("a/app"), &Reference::Digest(manifest))
            .await
            .is_ok()
    );
    assert!(reg.stat_blob(&repo("b/dst"), &mounted).await.is_ok());
}

#[tokio::test]
async fn a_link_refreshed_after_listing_stops_the_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let reg = registry(root, true).await;
    let blob = push_blob(&reg, "a/app", b"served between listing and sweep").await;
    age_all(root, GRACE * 2);
    let cutoff = SystemTime::now() - GRACE;
    let candidates = guarded::candidates(&reg, &Default::default(), cutoff)
        .await
        .unwrap();
    reg.stat_blob(&repo("a/app"), &blob).await.unwrap();
    let mut report = Report::default();
    guarded::sweep(&reg, candidates, cutoff, &mut report)
        .await
        .unwrap();
    assert!(report.blobs_deleted.is_empty());
    assert!(data(root, &blob).exists() && link(root, "a/app", &blob).exists());
}
