//! A small OCI Distribution client for the integration tests: raw requests plus the few
//! push helpers every test needs, so a test reads as the spec flow it checks.
//!
//! Helpers panic with the status and body when the server refuses, so a failing setup step names
//! itself instead of surfacing later as a confusing assertion.

use rand::RngCore;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha512};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type (also the referrers response type).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer media type.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The OCI empty descriptor's media type; its content is `{}`.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip layer.
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// An `Accept` header listing every manifest type the tests push, as real clients send.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// A registry client bound to one base URL; redirects are not followed so tests see them.
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the registry at `base_url` (e.g. `Wharf::url()`).
    pub fn new(base_url: &str) -> Client {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            // No keep-alive pool: tests restart servers, and a pooled connection to the killed
            // process would fail the next request.
            .pool_max_idle_per_host(0)
            .build()
            .expect("build reqwest client");
        Client {
            base: base_url.trim_end_matches('/').to_owned(),
            http,
        }
    }

    /// `path` made absolute: a path is joined to the base URL, an absolute URL is kept, because
    /// `Location` may be either (spec: "MAY be absolute ... or relative").
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    /// A request with any method to a path or absolute URL.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// `HEAD path`.
    pub fn head(&self, path: &str) -> RequestBuilder {
        self.request(Method::HEAD, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// `PUT path`.
    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    /// `PATCH path`.
    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }

    /// A request for `/v2/<repo>/manifests/<reference>` that accepts every manifest type.
    pub fn manifest(&self, method: Method, repo: &str, reference: &str) -> RequestBuilder {
        self.request(method, &format!("/v2/{repo}/manifests/{reference}"))
            .header("accept", ACCEPT_MANIFESTS)
    }

    /// The response's `Location`, made absolute.
    pub fn location(&self, resp: &Response) -> String {
        self.url(&header(resp, "location").expect("response has a Location header"))
    }

    /// Opens an upload session (end-4a) and returns its absolute location.
    pub async fn start_upload(&self, repo: &str) -> String {
        let resp = self
            .post(&format!("/v2/{repo}/blobs/uploads/"))
            .header("content-length", "0")
            .send()
            .await
            .expect("POST upload");
        let resp = expect_status(resp, StatusCode::ACCEPTED, "start upload").await;
        self.location(&resp)
    }

    /// Pushes `bytes` with POST then PUT (spec "POST then PUT") and returns the sha256 digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let location = self.start_upload(repo).await;
        let resp = self
            .put(&with_query(&location, &format!("digest={digest}")))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .expect("PUT upload");
        expect_status(resp, StatusCode::CREATED, "finish monolithic upload").await;
        digest
    }

    /// Pushes `bytes` as PATCH chunks of `chunk` bytes with `Content-Range`, closes with an empty
    /// PUT, and returns the sha256 digest. Each request uses the previous response's `Location`.
    pub async fn push_blob_chunked(&self, repo: &str, bytes: &[u8], chunk: usize) -> String {
        let digest = sha256(bytes);
        let mut location = self.start_upload(repo).await;
        for (i, part) in bytes.chunks(chunk.max(1)).enumerate() {
            let start = i * chunk.max(1);
            let resp = self
                .patch(&location)
                .header("content-type", "application/octet-stream")
                .header(
                    "content-range",
                    format!("{start}-{}", start + part.len() - 1),
                )
                .body(part.to_vec())
                .send()
                .await
                .expect("PATCH chunk");
            let resp = expect_status(resp, StatusCode::ACCEPTED, "upload chunk").await;
            location = self.location(&resp);
        }
        let resp = self
            .put(&with_query(&location, &format!("digest={digest}")))
            .send()
            .await
            .expect("PUT close upload");
        expect_status(resp, StatusCode::CREATED, "close chunked upload").await;
        digest
    }

    /// `PUT /v2/<repo>/manifests/<reference>` with `Content-Type: media_type`; the response is
    /// returned unchecked because many tests are about its failures.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Response {
        self.put(&format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(body.to_vec())
            .send()
            .await
            .expect("PUT manifest")
    }

    /// The tags of `repo` from `tags/list`, asserting 200 and the `name` field.
    pub async fn tags(&self, repo: &str) -> Vec<String> {
        let resp = self
            .get(&format!("/v2/{repo}/tags/list"))
            .send()
            .await
            .expect("GET tags/list");
        let resp = expect_status(resp, StatusCode::OK, "list tags").await;
        let body: Value = resp.json().await.expect("tags/list JSON");
        assert_eq!(body["name"], repo, "tags/list name in {body}");
        body["tags"]
            .as_array()
            .unwrap_or_else(|| panic!("tags/list without a \"tags\" array: {body}"))
            .iter()
            .map(|t| t.as_str().expect("tag is a string").to_owned())
            .collect()
    }

    /// Pushes a random config, `n_layers` random layers and an OCI manifest over them (by
    /// digest, untagged); returns the manifest bytes and digest.
    pub async fn random_image(&self, repo: &str, n_layers: usize) -> (Vec<u8>, String) {
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "wharf-test-nonce": hex::encode(random_bytes(16)),
        }))
        .expect("serialize config");
        self.push_blob(repo, &config).await;
        let mut layers = Vec::new();
        for _ in 0..n_layers {
            let layer = random_bytes(1024);
            self.push_blob(repo, &layer).await;
            layers.push(descriptor(OCI_LAYER, &layer));
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config),
            "layers": layers,
        }))
        .expect("serialize manifest");
        let digest = sha256(&manifest);
        let resp = self
            .push_manifest(repo, &digest, OCI_MANIFEST, &manifest)
            .await;
        expect_status(resp, StatusCode::CREATED, "push image manifest").await;
        (manifest, digest)
    }
}

/// `"sha256:<hex>"` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// `"sha512:<hex>"` of `bytes`.
pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

/// `n` random bytes, so tests never collide on content.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// An OCI descriptor (`mediaType`, `digest`, `size`) for `bytes`.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// `url` with `query` appended after `?` or `&`, keeping any query the server put in a
/// `Location` (spec: it "MAY contain critical query parameters").
pub fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
pub fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A response header as a string, if present and ASCII.
pub fn header(resp: &Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The error codes of an error response, asserting the spec's envelope
/// `{"errors":[{"code","message","detail"}]}` and a JSON content type.
pub async fn errors(resp: Response) -> Vec<String> {
    let status = resp.status();
    let content_type = header(&resp, "content-type").unwrap_or_default();
    let body = resp.text().await.expect("read error body");
    assert!(
        content_type.starts_with("application/json"),
        "{status}: error content type {content_type:?} is not JSON; body: {body}"
    );
    let value: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{status}: error body is not JSON ({e}): {body}"));
    let list = value["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{status}: no \"errors\" array in {body}"));
    assert!(!list.is_empty(), "{status}: empty \"errors\" in {body}");
    list.iter()
        .map(|e| {
            e["code"]
                .as_str()
                .unwrap_or_else(|| panic!("{status}: error without a string code in {body}"))
                .to_owned()
        })
        .collect()
}

/// Asserts `resp` has `status` and the error `code` (among possibly several) in a JSON envelope.
pub async fn assert_error(resp: Response, status: StatusCode, code: &str) {
    let got = resp.status();
    let url = resp.url().clone();
    let codes = errors(resp).await;
    assert!(
        got == status && codes.iter().any(|c| c == code),
        "{url}: expected {status} {code}, got {got} {codes:?}"
    );
}

/// Returns `resp` if it has `status`; otherwise panics with `what`, the status and the body.
pub async fn expect_status(resp: Response, status: StatusCode, what: &str) -> Response {
    if resp.status() == status {
        return resp;
    }
    let got = resp.status();
    let url = resp.url().clone();
    let body = resp.text().await.unwrap_or_default();
    panic!("{what}: {url} answered {got}, expected {status}; body: {body}");
}

/// The path and query of an upload location, to send the next request to another instance.
pub fn upload_path(location: &str) -> String {
    let at = location.find("/v2/").expect("location names a /v2/ path");
    location[at..].to_owned()
}

/// Sends `data` from its start as PATCHes of the given lengths, each to the next of `clients`
/// in turn, continuing the session at `location`; checks each 202 and its `Range`, and returns
/// the session's last path and the number of bytes sent (the rest may close the upload).
pub async fn patch_round_robin(
    clients: &[Client],
    mut location: String,
    data: &[u8],
    chunks: impl IntoIterator<Item = usize>,
) -> (String, usize) {
    let mut start = 0;
    for (i, len) in chunks.into_iter().enumerate() {
        let c = &clients[i % clients.len()];
        let end = start + len - 1;
        let resp = c
            .patch(&location)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{start}-{end}"))
            .body(data[start..=end].to_vec())
            .send()
            .await
            .expect("PATCH");
        let what = format!("PATCH {i} on instance {}", i % clients.len());
        let resp = expect_status(resp, StatusCode::ACCEPTED, &what).await;
        assert_eq!(
            header(&resp, "range").as_deref(),
            Some(format!("0-{end}").as_str()),
            "{what}"
        );
        location = upload_path(&c.location(&resp));
        start = end + 1;
    }
    (location, start)
}

/// The whole body of `GET /v2/<repo>/blobs/<digest>`, which must answer 200.
pub async fn get_blob(c: &Client, repo: &str, digest: &str) -> Vec<u8> {
    let resp = c
        .get(&format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("GET blob");
    let resp = expect_status(resp, StatusCode::OK, "get blob").await;
    resp.bytes().await.expect("blob body").to_vec()
}

/// The shared-storage workout of a backend: a blob of `len` random bytes uploaded in `chunks`
/// round-robin over `clients` (instances on one bucket), the rest with the closing PUT on the
/// second; then read back whole, an image pushed, its manifest seen by every instance, and 20
/// bytes at `range_at` read by a ranged GET. Returns the blob's digest.
pub async fn spread_upload_then_pull(
    clients: &[Client],
    repo: &str,
    len: usize,
    chunks: &[usize],
    range_at: usize,
) -> String {
    let data = random_bytes(len);
    let digest = sha256(&data);
    let location = upload_path(&clients[0].start_upload(repo).await);
    let (location, start) =
        patch_round_robin(clients, location, &data, chunks.iter().copied()).await;
    let resp = clients[1]
        .put(&with_query(&location, &format!("digest={digest}")))
        .header("content-type", "application/octet-stream")
        .body(data[start..].to_vec())
        .send()
        .await
        .expect("PUT");
    expect_status(resp, StatusCode::CREATED, "PUT closes the upload").await;
    assert!(get_blob(&clients[0], repo, &digest).await == data);

    let (manifest, manifest_digest) = clients[1].random_image(repo, 2).await;
    for c in clients {
        let got = c
            .get(&format!("/v2/{repo}/manifests/{manifest_digest}"))
            .header("accept", ACCEPT_MANIFESTS)
            .send()
            .await
            .expect("GET manifest");
        let got = expect_status(got, StatusCode::OK, "manifest").await;
        assert!(got.bytes().await.expect("manifest body") == manifest[..]);
    }
    let ranged = clients[0]
        .get(&format!("/v2/{repo}/blobs/{digest}"))
        .header("range", format!("bytes={range_at}-{}", range_at + 19))
        .send()
        .await
        .expect("ranged GET");
    let ranged = expect_status(ranged, StatusCode::PARTIAL_CONTENT, "ranged GET").await;
    assert!(ranged.bytes().await.expect("range body") == data[range_at..range_at + 20]);
    digest
}
