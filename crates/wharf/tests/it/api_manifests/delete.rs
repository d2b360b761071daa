//! Manifest deletion (spec end-9): by digest, by tag, unknown, and with deletes disabled.

use reqwest::{Method, StatusCode};

use super::image;
use crate::api_blobs::DELETE_DISABLED;
use crate::harness::Wharf;
use crate::harness::oci::{Client, OCI_MANIFEST, assert_error, sha256};

#[tokio::test]
async fn delete_manifest_by_digest_removes_it_and_its_tags() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/del", OCI_MANIFEST).await;
    let digest = sha256(&body);
    for tag in ["one", "two"] {
        let resp = c.push_manifest("man/del", tag, OCI_MANIFEST, &body).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }
    let other = image(&c, "man/del", OCI_MANIFEST).await;
    let resp = c
        .push_manifest("man/del", "other", OCI_MANIFEST, &other)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    let resp = c
        .manifest(Method::DELETE, "man/del", &digest)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // spec: "a GET to /v2/<name>/manifests/<digest> and any tag pointing to that digest will
    // return a 404".
    for reference in [digest.as_str(), "one", "two"] {
        let resp = c
            .manifest(Method::GET, "man/del", reference)
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }
    assert_eq!(c.tags("man/del").await, ["other"]);
    let resp = c
        .manifest(Method::GET, "man/del", "other")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn delete_manifest_by_tag_removes_only_the_tag() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/deltag", OCI_MANIFEST).await;
    let digest = sha256(&body);
    for tag in ["gone", "kept"] {
        let resp = c
            .push_manifest("man/deltag", tag, OCI_MANIFEST, &body)
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    // spec: a registry MAY implement tag deletion, answering 202. distribution 2.8.2 does not
    // (400 DIGEST_INVALID); wharf does, like distribution 3.
    let resp = c
        .manifest(Method::DELETE, "man/deltag", "gone")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = c
        .manifest(Method::GET, "man/deltag", "gone")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    for reference in [digest.as_str(), "kept"] {
        let resp = c
            .manifest(Method::GET, "man/deltag", reference)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{reference}");
        assert_eq!(resp.bytes().await.unwrap(), body);
    }
    assert_eq!(c.tags("man/deltag").await, ["kept"]);
}

#[tokio::test]
async fn delete_unknown_manifest_returns_404_manifest_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.random_image("man/delunknown", 1).await;

    // distribution 2.8.2 answers 400 DIGEST_INVALID for the tag (it cannot delete tags).

    for reference in [sha256(b"never pushed"), "notag".to_owned()] {
        let resp = c
            .manifest(Method::DELETE, "man/delunknown", &reference)
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }
}

#[tokio::test]
async fn delete_manifest_when_deletes_disabled_returns_405_unsupported() {
    let w = Wharf::start_with_config(DELETE_DISABLED);
    let c = Client::new(&w.url());
    let body = image(&c, "man/nodelete", OCI_MANIFEST).await;
    let resp = c
        .push_manifest("man/nodelete", "v1", OCI_MANIFEST, &body)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    // spec: "If manifest deletion is disabled, the registry MUST respond with either a 400 Bad
    // Request or a 405 Method Not Allowed"; distribution answers 405 UNSUPPORTED.
    for reference in [sha256(&body), "v1".to_owned()] {
        let resp = c
            .manifest(Method::DELETE, "man/nodelete", &reference)
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    }
    let resp = c
        .manifest(Method::GET, "man/nodelete", "v1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
