//! Cross-repository mounts (spec end-11): 201 when the blob is in `from`, otherwise a fresh
//! upload session (202).

use reqwest::StatusCode;

use super::{assert_blob, finish};
use crate::harness::Wharf;
use crate::harness::oci::{Client, assert_error, header, random_bytes, sha256};

#[tokio::test]
async fn mount_of_existing_blob_returns_201_with_location_and_digest() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(300);
    let digest = c.push_blob("up/source", &bytes).await;

    let resp = c
        .post(&format!(
            "/v2/up/target/blobs/uploads/?mount={digest}&from=up/source"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = header(&resp, "location").expect("Location");
    assert!(
        location.ends_with(&format!("/v2/up/target/blobs/{digest}")),
        "{location}"
    );
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(&*digest)
    );
    assert_blob(&c, "up/target", &digest, &bytes).await;
}

#[tokio::test]
async fn mount_of_blob_missing_from_source_starts_an_upload_with_202() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(300);
    // The blob exists in the registry, but not in the repository named by `from`.
    let digest = c.push_blob("up/elsewhere", &bytes).await;
    c.push_blob("up/emptysource", b"unrelated").await;

    let resp = c
        .post(&format!(
            "/v2/up/mounted/blobs/uploads/?mount={digest}&from=up/emptysource"
        ))
        .send()
        .await
        .unwrap();
    // spec: "if a registry ... is unable to mount the requested blob, it SHOULD return a 202".
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(header(&resp, "docker-upload-uuid").is_some());
    let location = c.location(&resp);
    let resp = c
        .head(&format!("/v2/up/mounted/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // The 202 is a real upload session.
    let resp = finish(&c, &location, &digest, &bytes).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/mounted", &digest, &bytes).await;
}

#[tokio::test]
async fn mount_of_unknown_blob_starts_an_upload_with_202() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.push_blob("up/src2", b"something").await;
    let digest = sha256(b"nowhere");

    let resp = c
        .post(&format!(
            "/v2/up/dst2/blobs/uploads/?mount={digest}&from=up/src2"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(header(&resp, "location").is_some());
}

#[tokio::test]
async fn mount_with_invalid_digest_returns_400_digest_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.push_blob("up/src3", b"something").await;

    // The spec is silent; distribution 2.8.2 ignores the bad `mount` and answers 202 with a
    // fresh session. wharf names the client's mistake instead.
    let resp = c
        .post("/v2/up/dst3/blobs/uploads/?mount=sha256:zz&from=up/src3")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn mount_without_from_is_201_or_202() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let digest = c.push_blob("up/src4", b"mount me").await;

    // spec: "The registry MAY treat the from parameter as optional, and it MAY cross-mount the
    // blob if it can be found"; otherwise it opens a session.
    let resp = c
        .post(&format!("/v2/up/dst4/blobs/uploads/?mount={digest}"))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert!(
        status == StatusCode::CREATED || status == StatusCode::ACCEPTED,
        "{status}"
    );
    assert!(header(&resp, "location").is_some());
}
