//! Blob upload sessions (spec end-4a, end-4b, end-5, end-6, end-11, end-13, end-14): every
//! answer's headers, every refusal's code, and that a refused upload leaves nothing visible.

mod mount;
mod races;

use reqwest::{Response, StatusCode};

use crate::harness::Wharf;
use crate::harness::oci::{
    Client, assert_error, expect_status, header, random_bytes, sha256, with_query,
};

/// `PATCH` of `body` to `location`, with `Content-Range` when given.
async fn patch(c: &Client, location: &str, range: Option<&str>, body: &[u8]) -> Response {
    let mut req = c
        .patch(location)
        .header("content-type", "application/octet-stream")
        .body(body.to_vec());
    if let Some(range) = range {
        req = req.header("content-range", range);
    }
    req.send().await.expect("PATCH")
}

/// `PUT` closing `location` with `digest`, sending `body` as the final chunk.
async fn finish(c: &Client, location: &str, digest: &str, body: &[u8]) -> Response {
    c.put(&with_query(location, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
        .expect("PUT")
}

/// Whether the filesystem layout holds blob data for `digest` (distribution's
/// `docker/registry/v2/blobs/<algo>/<2 hex>/<hex>`).
fn blob_data_exists(w: &Wharf, digest: &str) -> bool {
    let (algo, hex) = digest.split_once(':').expect("digest has a colon");
    w.root()
        .join("docker/registry/v2/blobs")
        .join(algo)
        .join(&hex[..2])
        .join(hex)
        .exists()
}

/// Asserts the blob at `/v2/<repo>/blobs/<digest>` is exactly `bytes`.
async fn assert_blob(c: &Client, repo: &str, digest: &str, bytes: &[u8]) {
    let resp = c
        .get(&format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("GET blob");
    assert_eq!(resp.status(), StatusCode::OK, "GET {repo} {digest}");
    assert_eq!(resp.bytes().await.expect("blob body"), bytes);
}

#[tokio::test]
async fn post_upload_returns_202_with_location_uuid_and_empty_range() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let resp = c
        .post("/v2/up/start/blobs/uploads/")
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = header(&resp, "location").expect("Location");
    let uuid = header(&resp, "docker-upload-uuid").expect("Docker-Upload-UUID");
    assert!(!uuid.is_empty());
    assert!(
        location.contains("/v2/up/start/blobs/uploads/"),
        "{location}"
    );
    assert!(location.contains(&uuid), "{location} lacks {uuid}");
    // distribution reports an empty upload as `0-0`; clients rely on the header being there.
    assert_eq!(header(&resp, "range").as_deref(), Some("0-0"));
}

#[tokio::test]
async fn single_post_with_digest_creates_blob_with_201() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(500);
    let digest = sha256(&bytes);

    // spec end-4b: registries MAY take the whole blob in the POST; wharf does (distribution
    // 2.8.2 does not, and answers 202 with a session as the spec allows).
    let resp = c
        .post(&format!("/v2/up/single/blobs/uploads/?digest={digest}"))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let location = header(&resp, "location").expect("Location");
    assert!(
        location.ends_with(&format!("/v2/up/single/blobs/{digest}")),
        "{location}"
    );
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(&*digest)
    );
    assert_blob(&c, "up/single", &digest, &bytes).await;
}

#[tokio::test]
async fn single_post_with_wrong_digest_returns_400_digest_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(500);
    let claimed = sha256(b"something else");

    let resp = c
        .post(&format!("/v2/up/singlebad/blobs/uploads/?digest={claimed}"))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    assert!(!blob_data_exists(&w, &claimed));
    assert!(!blob_data_exists(&w, &sha256(&bytes)));
}

#[tokio::test]
async fn patch_without_content_range_streams_and_returns_202_with_range() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let location = c.start_upload("up/stream").await;

    let resp = patch(&c, &location, None, &[7; 10]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-9"));
    assert!(header(&resp, "docker-upload-uuid").is_some());
    let location = c.location(&resp);

    let resp = patch(&c, &location, None, &[8; 5]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-14"));
    let location = c.location(&resp);

    let mut whole = vec![7; 10];
    whole.extend([8; 5]);
    let digest = sha256(&whole);
    let resp = finish(&c, &location, &digest, b"").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/stream", &digest, &whole).await;
}

#[tokio::test]
async fn chunked_patches_in_order_complete_the_upload() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(10_000);
    let digest = c.push_blob_chunked("up/chunked", &bytes, 3000).await;
    assert_blob(&c, "up/chunked", &digest, &bytes).await;
}

#[tokio::test]
async fn put_after_patches_returns_201_with_location_and_digest() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(64);
    let digest = sha256(&bytes);
    let location = c.start_upload("up/close").await;
    let resp = patch(&c, &location, Some("0-63"), &bytes).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-63"));

    let resp = c
        .put(&with_query(&c.location(&resp), &format!("digest={digest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let blob_location = header(&resp, "location").expect("Location");
    assert!(
        blob_location.ends_with(&format!("/v2/up/close/blobs/{digest}")),
        "{blob_location}"
    );
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(&*digest)
    );
    // spec: the Location is "a pullable blob URL".
    let resp = c.get(&blob_location).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn put_with_final_chunk_completes_upload() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(100);
    let digest = sha256(&bytes);
    let location = c.start_upload("up/finalchunk").await;
    let resp = patch(&c, &location, Some("0-59"), &bytes[..60]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    let resp = finish(&c, &c.location(&resp), &digest, &bytes[60..]).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(&*digest)
    );
    assert_blob(&c, "up/finalchunk", &digest, &bytes).await;
}

#[tokio::test]
async fn patch_out_of_order_chunk_returns_416_range_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(15);
    let digest = sha256(&bytes);
    let location = c.start_upload("up/outoforder").await;
    let resp = patch(&c, &location, Some("0-4"), &bytes[..5]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = c.location(&resp);

    // spec: "If a chunk is uploaded out of order, the registry MUST respond with a 416".
    // distribution 2.8.2 appends the chunk regardless and answers 202 `Range: 0-9`.
    let resp = patch(&c, &location, Some("10-14"), &bytes[10..]).await;
    assert_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID").await;

    // spec: "A GET request may be used to retrieve the current valid offset and upload location."
    let resp = c.get(&location).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-4"));
    let resp = patch(&c, &c.location(&resp), Some("5-14"), &bytes[5..]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-14"));
    let resp = finish(&c, &c.location(&resp), &digest, b"").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/outoforder", &digest, &bytes).await;
}

#[tokio::test]
async fn patch_repeated_chunk_returns_416_range_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(10);
    let digest = sha256(&bytes);
    let location = c.start_upload("up/repeat").await;
    let resp = patch(&c, &location, Some("0-4"), &bytes[..5]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = c.location(&resp);

    let resp = patch(&c, &location, Some("0-4"), &bytes[..5]).await;
    assert_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID").await;

    // The refused chunk left no trace: the upload continues from byte 5.
    let resp = patch(&c, &location, Some("5-9"), &bytes[5..]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-9"));
    let resp = finish(&c, &c.location(&resp), &digest, b"").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/repeat", &digest, &bytes).await;
}

#[tokio::test]
async fn patch_first_chunk_not_at_zero_returns_416_range_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let location = c.start_upload("up/notzero").await;

    // spec: "The first chunk's range MUST begin with 0".
    let resp = patch(&c, &location, Some("1-5"), &[1; 5]).await;
    assert_error(resp, StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID").await;
}

#[tokio::test]
async fn get_upload_status_returns_204_with_range_and_location() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let location = c.start_upload("up/status").await;
    let resp = patch(&c, &location, None, &[1; 7]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = c.location(&resp);

    let resp = c.get(&location).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-6"));
    assert!(header(&resp, "location").is_some(), "no Location");
    assert!(header(&resp, "docker-upload-uuid").is_some());
    assert!(resp.bytes().await.unwrap().is_empty());
}

#[tokio::test]
async fn put_with_mismatched_digest_returns_400_digest_invalid_and_stores_nothing() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(200);
    let real = sha256(&bytes);
    let claimed = sha256(b"not these bytes");
    let location = c.start_upload("up/mismatch").await;

    let resp = finish(&c, &location, &claimed, &bytes).await;
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;

    for digest in [&real, &claimed] {
        let resp = c
            .head(&format!("/v2/up/mismatch/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{digest}");
        assert!(
            !blob_data_exists(&w, digest),
            "blob data for {digest} on disk"
        );
    }
}

#[tokio::test]
async fn put_without_digest_returns_400_digest_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let location = c.start_upload("up/nodigest").await;
    let resp = patch(&c, &location, None, b"hello").await;
    let location = c.location(&resp);

    let resp = c.put(&location).send().await.unwrap();
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    let resp = finish(&c, &location, "sha256:nothex", b"").await;
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
}

#[tokio::test]
async fn deleted_upload_returns_204_then_404_blob_upload_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let location = c.start_upload("up/cancel").await;
    let resp = patch(&c, &location, None, b"partial").await;
    let location = c.location(&resp);

    let resp = c.delete(&location).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let resp = c.get(&location).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let resp = patch(&c, &location, None, b"more").await;
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let resp = finish(&c, &location, &sha256(b"partial"), b"").await;
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let resp = c.delete(&location).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    assert!(!blob_data_exists(&w, &sha256(b"partial")));
}

#[tokio::test]
async fn unknown_upload_id_returns_404_blob_upload_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.start_upload("up/unknownid").await;
    let location = "/v2/up/unknownid/blobs/uploads/0b7d3bde-2f4c-4a8e-9c41-5bb1d3f0a9e2";

    // distribution 2.8.2 answers 400 BLOB_UPLOAD_INVALID (its upload URL needs a signed
    // `_state` query); the spec lists 404 for end-5/6/13/14 and code-3 BLOB_UPLOAD_UNKNOWN.
    let resp = c.get(location).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let resp = patch(&c, location, None, b"data").await;
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let resp = finish(&c, location, &sha256(b"data"), b"data").await;
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let resp = c.delete(location).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

#[tokio::test]
async fn upload_of_another_repository_returns_404_blob_upload_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = b"belongs to up/a".to_vec();
    let digest = sha256(&bytes);
    let location = c.start_upload("up/a").await;
    let foreign = location.replace("/v2/up/a/blobs/uploads/", "/v2/up/b/blobs/uploads/");
    assert_ne!(foreign, location);
    c.start_upload("up/b").await;

    // distribution 2.8.2 answers 400 BLOB_UPLOAD_INVALID (the `_state` names another
    // repository); for repository b this upload does not exist, which the spec reports as 404.
    let resp = c.get(&foreign).send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let resp = finish(&c, &foreign, &digest, &bytes).await;
    assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
    let resp = c
        .head(&format!("/v2/up/b/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let resp = finish(&c, &location, &digest, &bytes).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/a", &digest, &bytes).await;
}

#[tokio::test]
async fn upload_resumes_after_server_restart() {
    let mut w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(2000);
    let digest = sha256(&bytes);
    let location = c.start_upload("up/restart").await;
    let resp = patch(&c, &location, Some("0-999"), &bytes[..1000]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = c.location(&resp);

    // Upload state lives in storage, so another instance (here: the next process) can resume.
    // distribution needs a shared `http.secret` for this; the harness config sets none.
    w.restart();
    let resp = c.get(&location).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&resp, "range").as_deref(), Some("0-999"));
    let resp = patch(&c, &c.location(&resp), Some("1000-1999"), &bytes[1000..]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = finish(&c, &c.location(&resp), &digest, b"").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/restart", &digest, &bytes).await;
}

#[tokio::test]
async fn blob_is_not_visible_until_its_upload_completes() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(100);
    let digest = sha256(&bytes);
    let location = c.start_upload("up/pending").await;
    let resp = patch(&c, &location, None, &bytes).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = c.location(&resp);

    let resp = c
        .head(&format!("/v2/up/pending/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(!blob_data_exists(&w, &digest));

    let resp = finish(&c, &location, &digest, b"").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/pending", &digest, &bytes).await;
}

#[tokio::test]
async fn pushing_an_existing_blob_again_returns_201() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(100);
    let digest = c.push_blob("up/twice", &bytes).await;

    assert_eq!(c.push_blob("up/twice", &bytes).await, digest);
    assert_eq!(c.push_blob_chunked("up/twice", &bytes, 30).await, digest);
    assert_blob(&c, "up/twice", &digest, &bytes).await;
}

#[tokio::test]
async fn put_with_content_range_on_final_chunk_completes_upload() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(100);
    let digest = sha256(&bytes);
    let location = c.start_upload("up/putrange").await;
    let resp = patch(&c, &location, Some("0-59"), &bytes[..60]).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);

    // spec: the closing PUT carries "Content-Range: <range of chunk, if present>".
    let resp = c
        .put(&with_query(&c.location(&resp), &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .header("content-range", "60-99")
        .body(bytes[60..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/putrange", &digest, &bytes).await;
}

#[tokio::test]
async fn patch_with_chunked_transfer_encoding_streams() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let parts: Vec<Vec<u8>> = (0..4).map(|_| random_bytes(40_000)).collect();
    let whole = parts.concat();
    let digest = sha256(&whole);
    let location = c.start_upload("up/chunkedte").await;

    // No Content-Length: the body goes out with `Transfer-Encoding: chunked`, as docker's
    // client streams layers.
    let stream = futures::stream::iter(
        parts
            .into_iter()
            .map(|p| Ok::<_, std::io::Error>(bytes::Bytes::from(p))),
    );
    let resp = c
        .patch(&location)
        .header("content-type", "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(
        header(&resp, "range"),
        Some(format!("0-{}", whole.len() - 1))
    );
    let resp = finish(&c, &c.location(&resp), &digest, b"").await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_blob(&c, "up/chunkedte", &digest, &whole).await;
}

#[tokio::test]
async fn large_blob_round_trips_monolithic_and_chunked() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(9 << 20);

    let digest = c.push_blob("up/large", &bytes).await;
    assert_blob(&c, "up/large", &digest, &bytes).await;
    let digest = c.push_blob_chunked("up/large2", &bytes, 2 << 20).await;
    assert_blob(&c, "up/large2", &digest, &bytes).await;
}
