//! wharf on GCS (fake-gcs-server started by the tests, reached through
//! `STORAGE_EMULATOR_HOST` as distribution reaches it): an upload continued by another instance
//! sharing the bucket, pulls of blobs and manifests, signed-URL redirects when a service-account
//! key is configured, and the Docker engine.

use reqwest::StatusCode;

use crate::harness::docker::{Docker, pushed_digest};
use crate::harness::gcs::{self, FakeGcs};
use crate::harness::oci::{
    ACCEPT_MANIFESTS, Client, expect_status, get_blob, header, random_bytes,
    spread_upload_then_pull,
};

/// fake-gcs-server and a fresh bucket on it; `None` (after printing why) when not installed.
async fn bucket() -> Option<(&'static FakeGcs, String)> {
    let gcs = gcs::fake_gcs()?;
    Some((gcs, gcs.bucket().await))
}

#[tokio::test]
async fn gcs_upload_spread_over_two_instances_then_pull() {
    let Some((fake, bucket)) = bucket().await else {
        return;
    };
    let (a, b) = (
        gcs::wharf_on(fake, &bucket, None),
        gcs::wharf_on(fake, &bucket, None),
    );
    let clients = [Client::new(&a.url()), Client::new(&b.url())];
    // chunks below and above the 1 MiB chunksize, alternating instances, the rest with the PUT
    spread_upload_then_pull(
        &clients,
        "gcs/spread",
        (9 << 20) + 17,
        &[300 << 10, 3 << 20, 1, (2 << 20) + 5, 1 << 20],
        5242880,
    )
    .await;
    // nothing of the upload session is left in the bucket
    let listed = reqwest::get(format!(
        "{}/storage/v1/b/{bucket}/o?prefix=registry/docker/registry/v2/repositories/gcs/spread/_uploads",
        fake.endpoint
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(!listed.contains("\"name\""), "{listed}");
}

#[tokio::test]
async fn gcs_blob_get_redirects_to_a_signed_url_only_with_a_key() {
    let Some((fake, bucket)) = bucket().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keyfile = gcs::service_account_keyfile(dir.path());
    let w = gcs::wharf_on(fake, &bucket, Some(&keyfile));
    let c = Client::new(&w.url());
    let big = random_bytes((3 << 20) + 99);
    let digest = c.push_blob_chunked("gcs/app", &big, 1 << 20).await;
    let resp = c
        .get(&format!("/v2/gcs/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT, "{}", w.log());
    let location = header(&resp, "location").expect("Location");
    assert!(location.starts_with(&fake.endpoint), "{location}");
    assert!(location.contains("X-Goog-Signature="), "{location}");
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert!(
        fetched.bytes().await.unwrap() == big[..],
        "signed URL bytes"
    );
    drop(w);

    // no key: nothing to sign with, so wharf serves the blob itself
    let w = gcs::wharf_on(fake, &bucket, None);
    let c = Client::new(&w.url());
    assert!(get_blob(&c, "gcs/app", &digest).await == big);
}

#[tokio::test]
async fn gcs_docker_pushes_and_pulls() {
    let Some(docker) = Docker::get() else {
        return;
    };
    let Some((fake, bucket)) = bucket().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let keyfile = gcs::service_account_keyfile(dir.path());
    for signed in [false, true] {
        let w = gcs::wharf_on(fake, &bucket, signed.then_some(keyfile.as_path()));
        let image = format!("{}/gcs/docker:signed-{signed}", w.host());
        docker.ok(&["tag", docker.busybox(), &image]);
        let push = docker.ok(&["push", &image]);
        let digest = pushed_digest(&push.all_output()).expect("push prints a digest");
        docker.ok(&["rmi", &image]);
        docker.ok(&["pull", &image]);
        let ran = docker.ok(&["run", "--rm", "--network", "none", &image, "echo", "on-gcs"]);
        assert!(ran.stdout.contains("on-gcs"), "{ran}");
        docker.ok(&["rmi", &image]);
        let c = Client::new(&w.url());
        let got = c
            .get(&format!("/v2/gcs/docker/manifests/{digest}"))
            .header("accept", ACCEPT_MANIFESTS)
            .send()
            .await
            .unwrap();
        expect_status(got, StatusCode::OK, "manifest pushed by docker").await;
    }
}
