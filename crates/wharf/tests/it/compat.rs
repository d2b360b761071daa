//! Drop-in compatibility with CNCF distribution: each reads the storage the other wrote, and
//! both answer the same requests the same way, except where wharf follows the OCI
//! distribution spec on purpose (each such case says so).

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::Wharf;
use crate::harness::distribution::Distribution;
use crate::harness::docker::{Docker, pushed_digest};
use crate::harness::oci::{
    self, Client, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor,
    header,
};
use crate::harness::skopeo::{MultiArchLayout, Skopeo, layout_blob, layout_digest};

/// What one server wrote and the other must serve.
struct Pushed {
    layout: MultiArchLayout,
    /// `(repo:tag, digest)` of a Docker-engine push, when dockerd is available.
    docker: Option<(String, String)>,
    _scratch: tempfile::TempDir,
}

/// Pushes a multi-arch OCI index with skopeo (as `compat/multi:v1`) and, with a Docker engine,
/// a busybox image (as `compat/docker:v1`) to the registry at `host`.
fn push_content(skopeo: Skopeo, docker: Option<Docker>, host: &str) -> Pushed {
    let scratch = tempfile::tempdir().expect("tempdir");
    let layout = MultiArchLayout::write(&scratch.path().join("src"), "v1", host);
    skopeo.copy_all(
        &layout.reference(),
        &format!("docker://{host}/compat/multi:v1"),
    );
    let docker = docker.map(|docker| {
        let image = format!("{host}/compat/docker:v1");
        docker.ok(&["tag", docker.busybox(), &image]);
        let push = docker.ok(&["push", &image]);
        let digest = pushed_digest(&push.stdout).unwrap_or_else(|| panic!("digest in {push}"));
        docker.ok(&["rmi", &image]);
        ("compat/docker:v1".to_owned(), digest)
    });
    Pushed {
        layout,
        docker,
        _scratch: scratch,
    }
}

/// Checks that the registry at `host` serves everything in `pushed`, byte for byte, and can add
/// to it: a new tag on the old index, pulled back.
async fn check_content(skopeo: Skopeo, docker: Option<Docker>, host: &str, pushed: &Pushed) {
    let client = Client::new(&format!("http://{host}"));
    let resp = client
        .head("/v2/compat/multi/manifests/v1")
        .header("accept", OCI_INDEX)
        .send()
        .await
        .expect("HEAD index");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "docker-content-digest"),
        Some(pushed.layout.index.clone())
    );

    let back = tempfile::tempdir().expect("tempdir");
    let remote = format!("docker://{host}/compat/multi");
    skopeo.copy_all(
        &format!("{remote}:v1"),
        &format!("oci:{}:back", back.path().display()),
    );
    assert_eq!(
        layout_digest(back.path(), "back"),
        Some(pushed.layout.index.clone())
    );
    for p in &pushed.layout.platforms {
        for digest in [&p.manifest, &p.config, &p.layer] {
            assert!(
                layout_blob(back.path(), digest) == layout_blob(&pushed.layout.dir, digest),
                "{digest} round-trips byte for byte"
            );
        }
    }

    // Writing into the other server's layout: a second tag, then both tags listed.
    skopeo.copy_all(&format!("{remote}:v1"), &format!("{remote}:v2"));
    let tags: Value = client
        .get("/v2/compat/multi/tags/list")
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("tags JSON");
    assert_eq!(tags["tags"], json!(["v1", "v2"]));

    if let (Some(docker), Some((reference, digest))) = (docker, &pushed.docker) {
        let image = format!("{host}/{reference}");
        let pull = docker.ok(&["pull", &image]);
        assert!(pull.stdout.contains(digest.as_str()), "same digest: {pull}");
        let ran = docker.ok(&["run", "--rm", "--network", "none", &image, "echo", "compat"]);
        assert_eq!(ran.stdout, "compat\n");
        docker.ok(&["rmi", &image]);
    }
}

/// distribution writes, wharf serves the same root.
#[tokio::test]
async fn wharf_serves_what_distribution_wrote() {
    let Some(skopeo) = Skopeo::get() else { return };
    let docker = Docker::get();
    let mut wharf = Wharf::start();
    wharf.kill();
    let Some(mut distribution) = Distribution::start_at(&wharf.root()) else {
        return;
    };
    let pushed = push_content(skopeo, docker, &distribution.host());
    distribution.stop();
    wharf.restart();
    check_content(skopeo, docker, &wharf.host(), &pushed).await;
}

/// wharf writes, distribution serves the same root.
#[tokio::test]
async fn distribution_serves_what_wharf_wrote() {
    let Some(skopeo) = Skopeo::get() else { return };
    let docker = Docker::get();
    let mut wharf = Wharf::start();
    let pushed = push_content(skopeo, docker, &wharf.host());
    wharf.kill();
    let Some(distribution) = Distribution::start_at(&wharf.root()) else {
        return;
    };
    check_content(skopeo, docker, &distribution.host(), &pushed).await;
    drop(distribution);
}

/// Deterministic content pushed identically to both servers: the same blobs and manifest give
/// the same digests, so responses can be compared field by field.
async fn seed(client: &Client) -> (String, String) {
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .expect("config");
    let layer = b"compat layer bytes, identical on both servers".to_vec();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER, &layer)],
    }))
    .expect("manifest");
    for repo in ["compat/a", "compat/b", "compat/c"] {
        client.push_blob(repo, &config).await;
        client.push_blob(repo, &layer).await;
        let resp = client
            .push_manifest(repo, "v1", OCI_MANIFEST, &manifest)
            .await;
        oci::expect_status(resp, StatusCode::CREATED, "seed manifest").await;
    }
    (oci::sha256(&layer), oci::sha256(&manifest))
}

/// Status, selected headers, error codes (if any) and body of one response.
#[derive(Debug, PartialEq)]
struct Seen {
    status: StatusCode,
    headers: Vec<(&'static str, Option<String>)>,
    codes: Option<Vec<String>>,
    body: Vec<u8>,
}

/// Headers whose values both servers must agree on, on every response.
const KEY_HEADERS: [&str; 3] = [
    "docker-distribution-api-version",
    "docker-content-digest",
    "range",
];
/// Headers compared on successes only: error bodies differ in their free-form `detail`, and
/// so in length, and a JSON content type may or may not carry a charset.
const SUCCESS_HEADERS: [&str; 2] = ["content-length", "content-type"];

async fn seen(resp: Response) -> Seen {
    let status = resp.status();
    let is_json = header(&resp, "content-type").is_some_and(|t| t.starts_with("application/json"));
    let mut headers: Vec<_> = KEY_HEADERS.iter().map(|h| (*h, header(&resp, h))).collect();
    if status.is_success() {
        headers.extend(SUCCESS_HEADERS.iter().map(|h| {
            let value = match *h {
                // distribution's Go encoder ends JSON documents with a newline; the length of
                // an API document (not of a manifest or blob) is no part of the contract.
                "content-length" if is_json => None,
                _ => header(&resp, h).map(|v| v.split(';').next().unwrap_or("").trim().to_owned()),
            };
            (*h, value)
        }));
    }
    let mut body = resp.bytes().await.expect("body").to_vec();
    let codes = (is_json && !status.is_success() && !body.is_empty()).then(|| {
        let value: Value = serde_json::from_slice(&body).expect("JSON error body");
        value["errors"]
            .as_array()
            .expect("errors array")
            .iter()
            .map(|e| e["code"].as_str().expect("code").to_owned())
            .collect()
    });
    if is_json && status.is_success() && !body.is_empty() {
        // Compared as JSON values, for the same reason.
        let value: Value = serde_json::from_slice(&body).expect("JSON body");
        body = serde_json::to_vec(&value).expect("re-encode");
    }
    Seen {
        status,
        headers,
        codes,
        body,
    }
}

async fn both(
    wharf: &Client,
    distribution: &Client,
    method: Method,
    path: &str,
    accept: &str,
) -> (Seen, Seen) {
    let send = |c: &Client| {
        c.request(method.clone(), path)
            .header("accept", accept)
            .send()
    };
    let w = seen(send(wharf).await.expect("wharf request")).await;
    let d = seen(send(distribution).await.expect("distribution request")).await;
    (w, d)
}

/// Same request, same answer: status, key headers, error codes, and (for successes) body.
async fn assert_same(wharf: &Client, distribution: &Client, method: Method, path: &str) {
    let accept = format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}");
    let (w, d) = both(wharf, distribution, method.clone(), path, &accept).await;
    assert_eq!(w.status, d.status, "{method} {path}: status");
    assert_eq!(w.headers, d.headers, "{method} {path}: key headers");
    assert_eq!(w.codes, d.codes, "{method} {path}: error codes");
    if w.status.is_success() {
        assert_eq!(w.body, d.body, "{method} {path}: body");
    }
}

/// The `Link: <url>; rel="next"` target as (path, sorted query pairs), or None.
fn next_link(resp: &Response) -> Option<(String, Vec<(String, String)>)> {
    let link = header(resp, "link")?;
    let target = link.split_once('<')?.1.split_once('>')?.0;
    assert!(link.contains(r#"rel="next""#), "Link {link:?} is rel=next");
    let url = reqwest::Url::parse("http://x")
        .expect("base")
        .join(target)
        .expect("link");
    let mut query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    query.sort();
    Some((url.path().to_owned(), query))
}

/// A parsed `Link` target back as a path and query to request.
fn link_path(link: &Option<(String, Vec<(String, String)>)>) -> String {
    let (path, query) = link.as_ref().expect("a next link");
    let query: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", oci::escape(v)))
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Both servers page the catalog alike; the `Link` targets may order their query
/// parameters differently (the spec fixes neither order nor encoding), so they are compared
/// parsed, then followed.
async fn assert_same_catalog_pages(wharf: &Client, distribution: &Client, n: usize) {
    let mut paths = (format!("/v2/_catalog?n={n}"), format!("/v2/_catalog?n={n}"));
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages < 10, "catalog paging does not end");
        let w = wharf.get(&paths.0).send().await.expect("wharf catalog");
        let d = distribution
            .get(&paths.1)
            .send()
            .await
            .expect("distribution catalog");
        assert_eq!(w.status(), StatusCode::OK);
        assert_eq!(d.status(), StatusCode::OK);
        let (wl, dl) = (next_link(&w), next_link(&d));
        assert_eq!(wl, dl, "n={n} page {pages}: Link");
        let wb: Value = w.json().await.expect("wharf catalog JSON");
        let db: Value = d.json().await.expect("distribution catalog JSON");
        assert_eq!(wb, db, "n={n} page {pages}: body");
        let (Some(_), Some(_)) = (&wl, &dl) else {
            break;
        };
        paths = (link_path(&wl), link_path(&dl));
    }
}

/// The same requests to wharf and distribution side by side.
#[tokio::test]
async fn responses_match_distribution_side_by_side() {
    let Some(distribution) = Distribution::start() else {
        return;
    };
    let wharf = Wharf::start();
    let (w, d) = (Client::new(&wharf.url()), Client::new(&distribution.url()));
    let (layer, manifest) = seed(&w).await;
    assert_eq!(seed(&d).await, (layer.clone(), manifest.clone()));
    let zeros = format!("sha256:{}", "0".repeat(64));

    for (method, path) in [
        (Method::GET, "/v2/".to_owned()),
        (Method::GET, format!("/v2/compat/a/blobs/{zeros}")),
        (Method::HEAD, format!("/v2/compat/a/blobs/{zeros}")),
        (Method::GET, format!("/v2/compat/a/blobs/{layer}")),
        (Method::HEAD, format!("/v2/compat/a/blobs/{layer}")),
        (Method::GET, "/v2/compat/a/manifests/nope".to_owned()),
        (Method::GET, format!("/v2/compat/a/manifests/{zeros}")),
        (Method::DELETE, format!("/v2/compat/a/manifests/{zeros}")),
        (Method::GET, "/v2/compat/a/manifests/v1".to_owned()),
        (Method::HEAD, "/v2/compat/a/manifests/v1".to_owned()),
        (Method::GET, format!("/v2/compat/a/manifests/{manifest}")),
        (Method::GET, "/v2/compat/a/tags/list".to_owned()),
        (Method::GET, "/v2/compat/unknown/tags/list".to_owned()),
        (Method::GET, "/v2/_catalog".to_owned()),
    ] {
        assert_same(&w, &d, method, &path).await;
    }
    for n in [1, 2, 3, 5] {
        assert_same_catalog_pages(&w, &d, n).await;
    }

    // Starting an upload: both 202 with a Location, an upload UUID and `Range: 0-0`.
    for c in [&w, &d] {
        let resp = c
            .post("/v2/compat/a/blobs/uploads/")
            .send()
            .await
            .expect("POST upload");
        assert_eq!(resp.status(), StatusCode::ACCEPTED);
        assert!(header(&resp, "location").is_some());
        assert!(header(&resp, "docker-upload-uuid").is_some());
        assert_eq!(header(&resp, "range").as_deref(), Some("0-0"));
        let location = c.location(&resp);
        let wrong = oci::with_query(&location, &format!("digest={zeros}"));
        let resp = c
            .put(&wrong)
            .body("x")
            .send()
            .await
            .expect("PUT wrong digest");
        oci::assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    }
}

/// Requests where distribution departs from the OCI distribution spec and wharf follows the
/// spec; distribution's answer is asserted too, so a change on either side is noticed.
#[tokio::test]
async fn wharf_follows_the_spec_where_distribution_departs() {
    let Some(distribution) = Distribution::start() else {
        return;
    };
    let wharf = Wharf::start();
    let (w, d) = (Client::new(&wharf.url()), Client::new(&distribution.url()));

    // An invalid repository name: distribution's router matches nothing and answers a plain
    // text 404; the spec has NAME_INVALID for it, in the JSON error envelope.
    for path in ["/v2/UPPER/tags/list", "/v2/a..b/manifests/latest"] {
        let resp = d.get(path).send().await.expect("distribution");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            header(&resp, "content-type").as_deref(),
            Some("text/plain; charset=utf-8")
        );
        let resp = w.get(path).send().await.expect("wharf");
        let status = resp.status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
            "{path}: wharf answered {status}"
        );
        let codes = oci::errors(resp).await;
        assert!(
            codes.iter().any(|c| c == "NAME_INVALID"),
            "{path}: {codes:?}"
        );
    }

    // A reference that is neither a tag nor a digest: distribution answers 500 UNKNOWN (it
    // looks for a tag named `sha256:abc`); the spec's answer to a bad request is a 4xx.
    let resp = d
        .get("/v2/compat/a/manifests/sha256:abc")
        .send()
        .await
        .expect("distribution");
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let resp = w
        .get("/v2/compat/a/manifests/sha256:abc")
        .send()
        .await
        .expect("wharf");
    let status = resp.status();
    assert!(
        status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND,
        "wharf answered {status} to a malformed reference"
    );
    oci::errors(resp).await;

    // An upload id the server never issued: distribution wants its `_state` token and says
    // BLOB_UPLOAD_INVALID; the spec's code for an unknown upload is BLOB_UPLOAD_UNKNOWN.
    let path = "/v2/compat/a/blobs/uploads/0b8e7f3c-1111-4444-8888-123456789abc";
    let resp = d.get(path).send().await.expect("distribution");
    oci::assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_INVALID").await;
    let resp = w.get(path).send().await.expect("wharf");
    oci::assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
}

/// The digest wharf serves for `repo:tag`, checked against the body it sends.
async fn served_digest(client: &Client, repo: &str, tag: &str) -> String {
    let resp = client
        .manifest(Method::GET, repo, tag)
        .send()
        .await
        .expect("GET");
    let resp = oci::expect_status(resp, StatusCode::OK, "manifest GET").await;
    let digest = header(&resp, "docker-content-digest").expect("digest header");
    let body = resp.bytes().await.expect("body");
    assert_eq!(
        oci::sha256(&body),
        digest,
        "body and digest header disagree"
    );
    digest
}

/// wharf's filesystem driver keeps settled links in memory while a `stat` shows them unchanged;
/// distribution moving a tag on the same root rewrites the link in place (same inode, same
/// length), and wharf serves the new target on its next request.
#[tokio::test]
async fn a_tag_distribution_moves_on_the_shared_root_is_served_at_once() {
    use std::os::unix::fs::MetadataExt;

    let wharf = Wharf::start();
    let Some(distribution) = Distribution::start_at(&wharf.root()) else {
        return;
    };
    let (w, d) = (Client::new(&wharf.url()), Client::new(&distribution.url()));
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = b"a layer both servers link".to_vec();
    let manifest = |note: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, &layer)],
            "annotations": {"note": note},
        }))
        .expect("manifest")
    };
    let (first, second) = (manifest("first"), manifest("second"));
    let repo = "shared/tag";
    w.push_blob(repo, config).await;
    w.push_blob(repo, &layer).await;
    let pushed = w.push_manifest(repo, "moving", OCI_MANIFEST, &first).await;
    oci::expect_status(pushed, StatusCode::CREATED, "first manifest").await;

    // Once the link's ctime has settled, a read keeps it and the next one comes from memory.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    for _ in 0..3 {
        assert_eq!(served_digest(&w, repo, "moving").await, oci::sha256(&first));
    }
    let link = wharf
        .root()
        .join("docker/registry/v2/repositories/shared/tag/_manifests/tags/moving/current/link");
    let ino = std::fs::metadata(&link).expect("tag link").ino();
    let moved = d.push_manifest(repo, "moving", OCI_MANIFEST, &second).await;
    oci::expect_status(moved, StatusCode::CREATED, "second manifest").await;
    assert_eq!(
        std::fs::metadata(&link).expect("tag link").ino(),
        ino,
        "distribution rewrote the link in place"
    );
    assert_eq!(
        served_digest(&w, repo, "moving").await,
        oci::sha256(&second)
    );
}
