//! wharf on OpenStack Swift (a single-node Swift started by the tests, tempauth v1 login): an
//! upload in chunks continued by another instance sharing the container, pulls of blobs and
//! manifests, nothing of the upload left behind, TempURL redirects with `secretkey`, and the
//! Docker engine.

use reqwest::StatusCode;

use crate::harness::docker::{Docker, pushed_digest};
use crate::harness::oci::{
    ACCEPT_MANIFESTS, Client, expect_status, get_blob, header, patch_round_robin, random_bytes,
    sha256, upload_path, with_query,
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
    let data = random_bytes((5 << 20) + 17);
    let digest = sha256(&data);
    let location = upload_path(&clients[0].start_upload("swift/spread").await);
    // chunks below and above the 1 MiB chunksize, alternating instances
    let chunks = [300 << 10, (2 << 20) + 5, 1, 1 << 20];
    let (location, start) = patch_round_robin(&clients, location, &data, chunks).await;
    let resp = clients[1]
        .put(&with_query(&location, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(data[start..].to_vec())
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::CREATED, "PUT closes the upload").await;
    assert!(get_blob(&clients[0], "swift/spread", &digest).await == data);

    let (manifest, manifest_digest) = clients[1].random_image("swift/spread", 2).await;
    for c in &clients {
        let got = c
            .get(&format!("/v2/swift/spread/manifests/{manifest_digest}"))
            .header("accept", ACCEPT_MANIFESTS)
            .send()
            .await
            .unwrap();
        let got = expect_status(got, StatusCode::OK, "manifest").await;
        assert!(got.bytes().await.unwrap() == manifest[..]);
    }
    let ranged = clients[0]
        .get(&format!("/v2/swift/spread/blobs/{digest}"))
        .header("range", "bytes=4194304-4194323")
        .send()
        .await
        .unwrap();
    let ranged = expect_status(ranged, StatusCode::PARTIAL_CONTENT, "ranged GET").await;
    assert!(ranged.bytes().await.unwrap() == data[4 << 20..(4 << 20) + 20]);
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
