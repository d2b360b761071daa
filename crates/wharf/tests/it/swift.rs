//! wharf on OpenStack Swift (a single-node Swift started by the tests, tempauth v1 login): an
//! upload in chunks continued by another instance sharing the container, pulls of blobs and
//! manifests, nothing of the upload left behind, TempURL redirects with `secretkey`, and the
//! Docker engine.

use reqwest::StatusCode;

use crate::harness::docker::{Docker, pushed_digest};
use crate::harness::oci::{
    ACCEPT_MANIFESTS, Client, expect_status, get_blob, header, random_bytes,
    spread_upload_then_pull,
};
use crate::harness::swift;

#[tokio::test]
async fn swift_chunked_upload_over_two_instances_then_pull() {
    let Some(saio) = swift::saio() else {
        return;
    };
    let container = swift::container();
    let (a, b) = (
        swift::wharf_on(saio, &container, None),
        swift::wharf_on(saio, &container, None),
    );
    let clients = [Client::new(&a.url()), Client::new(&b.url())];
    // chunks below and above the 1 MiB chunksize, alternating instances, the rest with the PUT
    let digest = spread_upload_then_pull(
        &clients,
        "swift/spread",
        (5 << 20) + 17,
        &[300 << 10, (2 << 20) + 5, 1, 1 << 20],
        4194304,
    )
    .await;
    // the blob is one plain object, and nothing of the upload session (parts, segments, SLO
    // manifests) is left in the container
    let names = saio.object_names(&container).await;
    let hex = digest.trim_start_matches("sha256:");
    assert!(
        names.contains(&format!(
            "registry/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        )),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("_uploads") || n.contains('~')),
        "{names:?}"
    );
}

#[tokio::test]
async fn swift_blob_get_redirects_to_a_temp_url_only_with_a_secret_key() {
    let Some(saio) = swift::saio() else {
        return;
    };
    let container = swift::container();
    let w = swift::wharf_on(saio, &container, Some("wharf-temp-url-key"));
    let c = Client::new(&w.url());
    let big = random_bytes((2 << 20) + 99);
    let digest = c.push_blob_chunked("swift/app", &big, 1 << 20).await;
    let resp = c
        .get(&format!("/v2/swift/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT, "{}", w.log());
    let location = header(&resp, "location").expect("Location");
    assert!(location.starts_with(&saio.endpoint), "{location}");
    assert!(location.contains("temp_url_sig="), "{location}");
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert!(fetched.bytes().await.unwrap() == big[..], "TempURL bytes");
    drop(w);

    // no secret key: nothing to sign with, so wharf serves the blob itself
    let w = swift::wharf_on(saio, &container, None);
    let c = Client::new(&w.url());
    assert!(get_blob(&c, "swift/app", &digest).await == big);
}

#[tokio::test]
async fn swift_docker_pushes_and_pulls() {
    let Some(docker) = Docker::get() else {
        return;
    };
    let Some(saio) = swift::saio() else {
        return;
    };
    let container = swift::container();
    for signed in [false, true] {
        let w = swift::wharf_on(saio, &container, signed.then_some("wharf-temp-url-key"));
        let image = format!("{}/swift/docker:temp-url-{signed}", w.host());
        docker.ok(&["tag", docker.busybox(), &image]);
        let push = docker.ok(&["push", &image]);
        let digest = pushed_digest(&push.all_output()).expect("push prints a digest");
        docker.ok(&["rmi", &image]);
        docker.ok(&["pull", &image]);
        let ran = docker.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            &image,
            "echo",
            "on-swift",
        ]);
        assert!(ran.stdout.contains("on-swift"), "{ran}");
        docker.ok(&["rmi", &image]);
        let c = Client::new(&w.url());
        let got = c
            .get(&format!("/v2/swift/docker/manifests/{digest}"))
            .header("accept", ACCEPT_MANIFESTS)
            .send()
            .await
            .unwrap();
        expect_status(got, StatusCode::OK, "manifest pushed by docker").await;
    }
}
