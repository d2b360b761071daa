//! Interrupted writes: a client that vanishes mid-PATCH, and a server SIGKILLed mid-upload or
//! mid manifest PUT. Whatever was cut short must be resumable or cleanly unknown, and never
//! visible as content: no blob, manifest or tag made of a partial body, on the wire or on disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::harness::Wharf;
use crate::harness::oci::{
    self, Client, OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, descriptor, header, random_bytes, sha256,
};

/// Size of the blobs the upload tests send: several times the 1 MiB that a storage writer
/// may buffer, so an interrupted body has reached the disk in part.
const BLOB_SIZE: usize = 4 << 20;
/// How much of it arrives before the client disconnects or the server dies.
const SENT_BEFORE_CUT: usize = (5 << 20) / 2;

/// Opens a connection and sends a request head (with `Content-Length: content_length`) and
/// `body_part`, which may be shorter: the body is then left unfinished on an open connection.
async fn send_partial(
    host: &str,
    request_line: &str,
    headers: &[(&str, String)],
    content_length: usize,
    body_part: &[u8],
) -> TcpStream {
    let mut head = format!("{request_line} HTTP/1.1\r\nHost: {host}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {content_length}\r\n\r\n"));
    let mut stream = TcpStream::connect(host).await.expect("connect");
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body_part).await?;
        stream.flush().await
    };
    tokio::time::timeout(Duration::from_secs(20), write)
        .await
        .expect("server reads the partial body within 20s")
        .expect("write partial request");
    stream
}

/// The path and query of an absolute upload location, for a raw request line.
fn path_and_query(location: &str) -> String {
    let url = reqwest::Url::parse(location).expect("absolute location");
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Every regular file under `dir` (none if it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Total size of the files under `dir`.
fn bytes_under(dir: &Path) -> u64 {
    files_under(dir)
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Waits (up to 3 s) until the server has stored at least `at_least` bytes more than
/// `before` under its root, so a kill lands while data is on disk; returns whether it did.
async fn wait_for_stored(root: &Path, before: u64, at_least: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if bytes_under(root) >= before + at_least {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// `<root>/docker/registry/v2`, where distribution's layout starts.
fn v2(wharf: &Wharf) -> PathBuf {
    wharf.root().join("docker/registry/v2")
}

/// The upload's status (spec: GET on the location, 204 with `Range: 0-<last>`): the number of
/// bytes received and the location to continue at; `None` when the upload is unknown (404).
async fn upload_status(client: &Client, location: &str) -> Option<(usize, String)> {
    let resp = client
        .get(location)
        .send()
        .await
        .expect("GET upload status");
    if resp.status() == StatusCode::NOT_FOUND {
        oci::assert_error(resp, StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN").await;
        return None;
    }
    let resp = oci::expect_status(resp, StatusCode::NO_CONTENT, "upload status").await;
    let range = header(&resp, "range").expect("upload status has a Range header");
    let last: usize = range
        .strip_prefix("0-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("Range {range:?} is not 0-<last>"));
    // `0-0` is how distribution (and the spec's examples) describe an empty upload.
    let received = if last == 0 { 0 } else { last + 1 };
    let next = header(&resp, "location").map_or_else(|| location.to_owned(), |l| client.url(&l));
    Some((received, next))
}

/// [`upload_status`] once the server is done with the broken request: the same answer twice,
/// 200 ms apart (up to 5 s), so the resume cannot race the tail of the interrupted PATCH.
async fn settled_status(client: &Client, location: &str) -> Option<(usize, String)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = upload_status(client, location).await;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = upload_status(client, location).await;
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Sends `blob[from..]` as one PATCH at `location`, closes with PUT `?digest=`, and checks the
/// stored blob: 201, then GET returns exactly `blob`.
async fn finish_upload(client: &Client, repo: &str, location: &str, blob: &[u8], from: usize) {
    let digest = sha256(blob);
    let mut location = location.to_owned();
    if from < blob.len() {
        let resp = client
            .patch(&location)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{from}-{}", blob.len() - 1))
            .body(blob[from..].to_vec())
            .send()
            .await
            .expect("PATCH rest");
        let resp = oci::expect_status(resp, StatusCode::ACCEPTED, "PATCH the rest").await;
        assert_eq!(
            header(&resp, "range").as_deref(),
            Some(format!("0-{}", blob.len() - 1).as_str()),
            "Range after the last chunk covers the whole blob"
        );
        location = client.location(&resp);
    }
    let resp = client
        .put(&oci::with_query(&location, &format!("digest={digest}")))
        .send()
        .await
        .expect("PUT digest");
    oci::expect_status(resp, StatusCode::CREATED, "close resumed upload").await;
    let got = client
        .get(&format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("GET blob");
    let got = oci::expect_status(got, StatusCode::OK, "GET finished blob").await;
    assert!(
        got.bytes().await.expect("blob") == blob,
        "stored blob is exactly what was sent"
    );
}

/// Starts an upload and sends part of one PATCH body on a raw connection, leaving it open.
async fn interrupted_patch(
    client: &Client,
    host: &str,
    repo: &str,
    blob: &[u8],
) -> (String, TcpStream) {
    let location = client.start_upload(repo).await;
    let stream = send_partial(
        host,
        &format!("PATCH {}", path_and_query(&location)),
        &[
            ("Content-Type", "application/octet-stream".to_owned()),
            ("Content-Range", format!("0-{}", blob.len() - 1)),
        ],
        blob.len(),
        &blob[..SENT_BEFORE_CUT],
    )
    .await;
    (location, stream)
}

/// A client that disconnects mid-PATCH can resume where the server says it stopped.
#[tokio::test]
async fn client_disconnect_mid_patch_then_resume() {
    let wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let blob = random_bytes(BLOB_SIZE);

    let (location, stream) = interrupted_patch(&client, &wharf.host(), "crash/resume", &blob).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);

    let (received, next) = settled_status(&client, &location)
        .await
        .expect("an upload whose client went away is still known");
    eprintln!("upload kept {received} of {SENT_BEFORE_CUT} bytes sent");
    assert!(
        received <= SENT_BEFORE_CUT,
        "server claims {received} bytes but only {SENT_BEFORE_CUT} were sent"
    );
    finish_upload(&client, "crash/resume", &next, &blob, received).await;
}

/// A client that disconnects mid-PATCH can cancel the upload, which is then unknown.
#[tokio::test]
async fn client_disconnect_mid_patch_then_cancel() {
    let wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let blob = random_bytes(BLOB_SIZE);

    let (location, stream) = interrupted_patch(&client, &wharf.host(), "crash/cancel", &blob).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(stream);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let resp = client
        .delete(&location)
        .send()
        .await
        .expect("DELETE upload");
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "cancel answers 204");
    assert_eq!(
        upload_status(&client, &location).await,
        None,
        "cancelled upload is unknown"
    );
    let resp = client
        .head(&format!("/v2/crash/cancel/blobs/{}", sha256(&blob)))
        .send()
        .await
        .expect("HEAD blob");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// wharf SIGKILLed while a PATCH streams in: after a restart the upload resumes or is unknown,
/// and no blob made of the partial bytes exists, by digest or on disk.
#[tokio::test]
async fn server_killed_mid_patch_leaves_no_partial_blob() {
    let mut wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let blob = random_bytes(BLOB_SIZE);
    let repo = "crash/killed-patch";

    let before = bytes_under(&wharf.root());
    let (location, stream) = interrupted_patch(&client, &wharf.host(), repo, &blob).await;
    let stored = wait_for_stored(&wharf.root(), before, 1 << 20).await;
    eprintln!("partial PATCH data on disk before the kill: {stored}");
    wharf.kill();
    drop(stream);
    wharf.restart();
    no_blob_then_finish(&wharf, repo, &location, &blob).await;
}

/// wharf SIGKILLed while the closing `PUT ?digest=` of a monolithic upload streams in: the
/// digest is known from the start, and still no blob may exist before all bytes arrived.
#[tokio::test]
async fn server_killed_mid_closing_put_leaves_no_partial_blob() {
    let mut wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let blob = random_bytes(BLOB_SIZE);
    let repo = "crash/killed-put";

    let location = client.start_upload(repo).await;
    let closing = oci::with_query(&location, &format!("digest={}", sha256(&blob)));
    let before = bytes_under(&wharf.root());
    let stream = send_partial(
        &wharf.host(),
        &format!("PUT {}", path_and_query(&closing)),
        &[("Content-Type", "application/octet-stream".to_owned())],
        blob.len(),
        &blob[..SENT_BEFORE_CUT],
    )
    .await;
    let stored = wait_for_stored(&wharf.root(), before, 1 << 20).await;
    eprintln!("partial PUT data on disk before the kill: {stored}");
    wharf.kill();
    drop(stream);
    wharf.restart();
    no_blob_then_finish(&wharf, repo, &location, &blob).await;
}

/// After a crash mid-upload: neither the partial nor the whole content is a blob, on the wire
/// or on disk; then the upload resumes (or, if unknown, starts over) and yields exactly `blob`.
async fn no_blob_then_finish(wharf: &Wharf, repo: &str, location: &str, blob: &[u8]) {
    // A new client: the old one's pooled connections died with the server.
    let client = Client::new(&wharf.url());
    for (what, digest) in [
        ("partial content", sha256(&blob[..SENT_BEFORE_CUT])),
        ("whole content", sha256(blob)),
    ] {
        let resp = client
            .head(&format!("/v2/{repo}/blobs/{digest}"))
            .send()
            .await
            .expect("HEAD blob");
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{what} is no blob");
    }
    let blob_files = files_under(&v2(wharf).join("blobs"));
    assert!(blob_files.is_empty(), "blob store holds {blob_files:?}");

    match upload_status(&client, location).await {
        Some((received, next)) => {
            eprintln!("upload survived the kill with {received} bytes");
            assert!(received <= SENT_BEFORE_CUT, "{received} bytes claimed");
            finish_upload(&client, repo, &next, blob, received).await;
        }
        None => {
            eprintln!("upload is unknown after the kill");
            let digest = client.push_blob(repo, blob).await;
            assert_eq!(digest, sha256(blob));
        }
    }
    let blob_files = files_under(&v2(wharf).join("blobs"));
    assert_eq!(
        blob_files.len(),
        1,
        "exactly the finished blob: {blob_files:?}"
    );
    assert!(std::fs::read(&blob_files[0]).expect("read data") == blob);
}

/// wharf SIGKILLed while a manifest PUT body streams in: after a restart neither the manifest
/// nor its tag exist, and `_manifests` holds nothing half-written.
#[tokio::test]
async fn server_killed_mid_manifest_put_leaves_nothing() {
    let mut wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let repo = "crash/killed-manifest";
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .expect("config");
    let layer = random_bytes(2048);
    client.push_blob(repo, &config).await;
    client.push_blob(repo, &layer).await;
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": [descriptor(OCI_LAYER, &layer)],
        "annotations": {"padding": "x".repeat(4096)},
    }))
    .expect("manifest");
    let digest = sha256(&manifest);

    let stream = send_partial(
        &wharf.host(),
        &format!("PUT /v2/{repo}/manifests/v1"),
        &[("Content-Type", OCI_MANIFEST.to_owned())],
        manifest.len(),
        &manifest[..manifest.len() / 2],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    wharf.kill();
    drop(stream);
    wharf.restart();
    // A new client: the old one's pooled connections died with the server.
    let client = Client::new(&wharf.url());

    let resp = client
        .get(&format!("/v2/{repo}/manifests/v1"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("GET manifest");
    oci::assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    let resp = client
        .head(&format!("/v2/{repo}/manifests/{digest}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .expect("HEAD manifest");
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "no manifest by digest"
    );
    let manifests_dir = v2(&wharf)
        .join("repositories")
        .join(repo)
        .join("_manifests");
    let leftovers = files_under(&manifests_dir);
    assert!(leftovers.is_empty(), "_manifests holds {leftovers:?}");
    let hex = digest.trim_start_matches("sha256:");
    let data = v2(&wharf).join("blobs/sha256").join(&hex[..2]).join(hex);
    assert!(
        !data.exists(),
        "no blob for the manifest digest at {}",
        data.display()
    );

    let resp = client
        .push_manifest(repo, "v1", OCI_MANIFEST, &manifest)
        .await;
    let resp = oci::expect_status(resp, StatusCode::CREATED, "PUT after restart").await;
    assert_eq!(header(&resp, "docker-content-digest"), Some(digest));
}
