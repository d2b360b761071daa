//! Blob reads and deletes (spec end-2, end-10): headers, ranges, digests and repository scope.

use reqwest::StatusCode;

use crate::harness::Wharf;
use crate::harness::oci::{
    Client, assert_error, errors, header, random_bytes, sha256, sha512, with_query,
};

/// The default config without `storage.delete`, so deletes are disabled.
pub const DELETE_DISABLED: &str = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:{port}\n";

#[tokio::test]
async fn get_blob_returns_exact_bytes_with_length_digest_etag_and_accept_ranges() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(3000);
    let digest = c.push_blob("blobs/get", &bytes).await;

    let resp = c
        .get(&format!("/v2/blobs/get/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-length").as_deref(), Some("3000"));
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(&*digest)
    );
    assert!(header(&resp, "etag").is_some(), "no ETag");
    assert_eq!(header(&resp, "accept-ranges").as_deref(), Some("bytes"));
    assert_eq!(resp.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn head_blob_returns_headers_without_body() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(1234);
    let digest = c.push_blob("blobs/head", &bytes).await;

    let resp = c
        .head(&format!("/v2/blobs/head/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // spec: HEAD carries Content-Length "the exact size of the stored object".
    assert_eq!(header(&resp, "content-length").as_deref(), Some("1234"));
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(&*digest)
    );
    assert!(header(&resp, "etag").is_some(), "no ETag");
    assert_eq!(header(&resp, "accept-ranges").as_deref(), Some("bytes"));
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn get_blob_range_returns_206_with_content_range_and_exact_bytes() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(100);
    let digest = c.push_blob("blobs/range", &bytes).await;
    let path = format!("/v2/blobs/range/blobs/{digest}");

    for (range, content_range, want) in [
        ("bytes=0-9", "bytes 0-9/100", &bytes[0..10]),
        ("bytes=5-", "bytes 5-99/100", &bytes[5..]),
        ("bytes=-4", "bytes 96-99/100", &bytes[96..]),
        ("bytes=90-200", "bytes 90-99/100", &bytes[90..]),
        ("bytes=0-0", "bytes 0-0/100", &bytes[0..1]),
    ] {
        let resp = c.get(&path).header("range", range).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&resp, "content-range").as_deref(),
            Some(content_range),
            "{range}"
        );
        assert_eq!(
            header(&resp, "content-length"),
            Some(want.len().to_string()),
            "{range}"
        );
        assert_eq!(resp.bytes().await.unwrap(), want, "{range}");
    }
}

#[tokio::test]
async fn get_blob_range_starting_at_or_past_end_returns_416() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let digest = c.push_blob("blobs/range416", &random_bytes(100)).await;
    let path = format!("/v2/blobs/range416/blobs/{digest}");

    for range in ["bytes=100-", "bytes=100-200", "bytes=500-600"] {
        let resp = c.get(&path).header("range", range).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        // RFC 9110 §15.5.17: a 416 to a byte range SHOULD carry the current length.
        assert_eq!(
            header(&resp, "content-range").as_deref(),
            Some("bytes */100"),
            "{range}"
        );
    }
}

#[tokio::test]
async fn unknown_blob_returns_404_blob_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.push_blob("blobs/unknown", b"something else").await;
    let path = format!("/v2/blobs/unknown/blobs/{}", sha256(b"never pushed"));

    let resp = c.get(&path).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let resp = c.head(&path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn blob_of_another_repository_is_not_visible() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let digest = c.push_blob("blobs/owner", b"private to owner").await;

    let resp = c
        .get(&format!("/v2/blobs/stranger/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = c
        .head(&format!("/v2/blobs/owner/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn blob_with_invalid_digest_returns_400_digest_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.push_blob("blobs/baddigest", b"x").await;

    for digest in [
        "sha256:zz",
        "sha256:abc",
        "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
        "sha512:0123",
    ] {
        let path = format!("/v2/blobs/baddigest/blobs/{digest}");
        let resp = c.get(&path).send().await.unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
        let resp = c.delete(&path).send().await.unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    }
}

#[tokio::test]
async fn blob_digest_without_algorithm_returns_400_digest_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.push_blob("blobs/noalgo", b"x").await;

    // distribution 2.8.2 answers 404 with a text body (its route needs `algo:hex`); the spec
    // defines DIGEST_INVALID for a malformed digest, and this one names a blob route.
    let resp = c
        .get("/v2/blobs/noalgo/blobs/notadigest")
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn sha512_blob_round_trips() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(2048);
    let digest = sha512(&bytes);

    let location = c.start_upload("blobs/sha512").await;
    let resp = c
        .put(&with_query(&location, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    // spec: Docker-Content-Digest "MAY differ from the provided digest" when the registry hashes
    // with another algorithm (distribution 2.8.2 answers the sha256), but it names these bytes.
    let answered = header(&resp, "docker-content-digest");
    assert!(
        answered == Some(digest.clone()) || answered == Some(sha256(&bytes)),
        "{answered:?}"
    );

    let path = format!("/v2/blobs/sha512/blobs/{digest}");
    let resp = c.head(&path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-length").as_deref(), Some("2048"));
    let resp = c.get(&path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn delete_blob_returns_202_then_blob_is_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let digest = c.push_blob("blobs/delete", &random_bytes(64)).await;
    let path = format!("/v2/blobs/delete/blobs/{digest}");

    let resp = c.delete(&path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = c.head(&path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = c.get(&path).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
    let resp = c.delete(&path).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn delete_blob_in_one_repository_keeps_it_in_another() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(64);
    let digest = c.push_blob("blobs/one", &bytes).await;
    c.push_blob("blobs/two", &bytes).await;

    let resp = c
        .delete(&format!("/v2/blobs/one/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = c
        .get(&format!("/v2/blobs/two/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn delete_unknown_blob_returns_404_blob_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.push_blob("blobs/delunknown", b"present").await;

    let resp = c
        .delete(&format!("/v2/blobs/delunknown/blobs/{}", sha256(b"absent")))
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UNKNOWN").await;
}

#[tokio::test]
async fn delete_blob_when_deletes_disabled_returns_405_unsupported() {
    let w = Wharf::start_with_config(DELETE_DISABLED);
    let c = Client::new(&w.url());
    let digest = c.push_blob("blobs/nodelete", b"keep me").await;
    let path = format!("/v2/blobs/nodelete/blobs/{digest}");

    // spec: "If blob deletion is disabled, the registry MUST respond with either a 400 Bad
    // Request or a 405 Method Not Allowed"; distribution answers 405 UNSUPPORTED.
    let resp = c.delete(&path).send().await.unwrap();
    assert_error(resp, StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED").await;
    let resp = c.head(&path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn blob_error_bodies_are_json_envelopes() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let resp = c
        .get(&format!("/v2/blobs/none/blobs/{}", sha256(b"none")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let codes = errors(resp).await;
    // an unknown repository has no blobs: either code tells the client what happened.
    assert!(
        codes == ["BLOB_UNKNOWN"] || codes == ["NAME_UNKNOWN"],
        "{codes:?}"
    );
}

#[tokio::test]
async fn empty_blob_round_trips() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let digest = c.push_blob("blobs/empty", b"").await;
    assert_eq!(
        digest,
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );

    let resp = c
        .get(&format!("/v2/blobs/empty/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-length").as_deref(), Some("0"));
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(&*digest)
    );
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn get_blob_with_matching_if_none_match_returns_304() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let digest = c.push_blob("blobs/etag", &random_bytes(50)).await;
    let path = format!("/v2/blobs/etag/blobs/{digest}");
    let resp = c.head(&path).send().await.unwrap();
    let etag = header(&resp, "etag").expect("ETag");

    // RFC 9110 §13.1.2; distribution serves blobs through Go's ServeContent, which does this.
    let resp = c
        .get(&path)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn blob_survives_server_restart() {
    let mut w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(700);
    let digest = c.push_blob("blobs/restart", &bytes).await;

    w.restart();
    let resp = c
        .get(&format!("/v2/blobs/restart/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn deleted_blob_can_be_pushed_again() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(80);
    let digest = c.push_blob("blobs/again", &bytes).await;
    let path = format!("/v2/blobs/again/blobs/{digest}");
    let resp = c.delete(&path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    c.push_blob("blobs/again", &bytes).await;
    let resp = c.get(&path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), bytes);
}
