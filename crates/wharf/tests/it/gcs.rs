//! wharf on GCS (fake-gcs-server started by the tests, reached through
//! `STORAGE_EMULATOR_HOST` as distribution reaches it): an upload continued by another instance
//! sharing the bucket, pulls of blobs and manifests, signed-URL redirects when a service-account
//! key is configured, and the Docker engine.

use reqwest::StatusCode;

use crate::harness::docker::{Docker, pushed_digest};
use crate::harness::gcs::{self, FakeGcs};
use crate::harness::oci::{
    ACCEPT_MANIFESTS, Client, expect_status, get_blob, header, patch_round_robin, random_bytes,
    sha256, upload_path, with_query,
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
    let data = random_bytes((9 << 20) + 17);
    let digest = sha256(&data);
    let location = upload_path(&clients[0].start_upload("gcs/spread").await);
    // chunks below and above the 1 MiB chunksize, alternating instances
    let chunks = [300 << 10, 3 << 20, 1, (2 << 20) + 5, 1 << 20];
    let (location, start) = patch_round_robin(&clients, location, &data, chunks).await;
    // the last bytes come with the closing PUT, on the other instance
    let tail = &data[start..];
    let resp = clients[1]
        .put(&with_query(&location, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(tail.to_vec())
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::CREATED, "PUT closes the upload").await;
    assert!(get_blob(&clients[0], "gcs/spread", &digest).await == data);

    let (manifest, manifest_digest) = clients[1].random_image("gcs/spread", 2).await;
    for c in &clients {
        let got = c
            .get(&format!("/v2/gcs/spread/manifests/{manifest_digest}"))
            .header("accept", ACCEPT_MANIFESTS)
            .send()
            .await
            .unwrap();
        let got = expect_status(got, StatusCode::OK, "manifest").await;
        assert!(got.bytes().await.unwrap() == manifest[..]);
    }
    let ranged = clients[0]
        .get(&format!("/v2/gcs/spread/blobs/{digest}"))
        .header("range", "bytes=5242880-5242899")
        .send()
        .await
        .unwrap();
    let ranged = expect_status(ranged, StatusCode::PARTIAL_CONTENT, "ranged GET").await;
    assert!(ranged.bytes().await.unwrap() == data[5 << 20..(5 << 20) + 20]);
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
