//! In-process protocol checks over the in-memory driver: the push and pull paths end to end,
//! without a process or a socket.

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use tower::ServiceExt;
use wharf_oci::Digest;
use wharf_storage::backend::inmemory::InMemoryDriver;

use super::{Api, UrlPolicy, router};
use crate::registry::{Options, Registry};

fn app(options: Options) -> axum::Router {
    let api = Api {
        registry: Registry::new(Arc::new(InMemoryDriver::new()), options),
        urls: UrlPolicy::default(),
        extra_headers: Vec::new(),
        auth: None,
    };
    axum::Router::new()
        .fallback(router::handle)
        .with_state(Arc::new(api))
}

async fn send(
    app: &axum::Router,
    method: &str,
    uri: &str,
    body: Vec<u8>,
) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    send_with(app, method, uri, &[], body).await
}

async fn send_with(
    app: &axum::Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "reg.test");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    (parts.status, parts.headers, bytes.to_vec())
}

fn code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["errors"][0]["code"].as_str().unwrap().to_owned()
}

async fn push_blob(app: &axum::Router, repo: &str, data: &[u8]) -> Digest {
    let d = Digest::sha256(data);
    let (s, _, _) = send(
        app,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        data.to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    d
}

#[tokio::test]
async fn chunked_push_then_pull_by_tag_and_digest() {
    let app = app(Options {
        delete_enabled: true,
        ..Options::default()
    });
    let (s, h, _) = send(&app, "POST", "/v2/a/b/blobs/uploads/", vec![]).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let loc = h["location"].to_str().unwrap().to_owned();
    assert!(
        loc.starts_with("http://reg.test/v2/a/b/blobs/uploads/"),
        "{loc}"
    );
    let path = loc.trim_start_matches("http://reg.test").to_owned();
    let layer: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let (s, h, _) = send_with(
        &app,
        "PATCH",
        &path,
        &[("content-range", "0-59999")],
        layer[..60_000].to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(h["range"], "0-59999");
    // a repeated chunk is refused and the session survives
    let (s, _, b) = send_with(
        &app,
        "PATCH",
        &path,
        &[("content-range", "0-9")],
        vec![0; 10],
    )
    .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_INVALID")
    );
    let (s, h, _) = send(&app, "GET", &path, vec![]).await;
    assert_eq!(
        (s, h["range"].to_str().unwrap()),
        (StatusCode::NO_CONTENT, "0-59999")
    );
    let digest = Digest::sha256(&layer);
    let (s, h, _) = send(
        &app,
        "PUT",
        &format!("{path}?digest={digest}"),
        layer[60_000..].to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(h["docker-content-digest"], digest.to_string().as_str());

    let config = push_blob(&app, "a/b", b"{}").await;
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{digest}","size":{}}}]}}"#,
        layer.len()
    );
    let (s, h, _) = send_with(
        &app,
        "PUT",
        "/v2/a/b/manifests/v1",
        &[("content-type", "application/vnd.oci.image.manifest.v1+json")],
        manifest.clone().into_bytes(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let mdigest = Digest::sha256(manifest.as_bytes());
    assert_eq!(h["docker-content-digest"], mdigest.to_string().as_str());

    for r in ["v1".to_owned(), mdigest.to_string()] {
        let (s, h, b) = send(&app, "GET", &format!("/v2/a/b/manifests/{r}"), vec![]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, manifest.as_bytes());
        assert_eq!(
            h["content-type"],
            "application/vnd.oci.image.manifest.v1+json"
        );
    }
    let (s, h, b) = send_with(
        &app,
        "GET",
        &format!("/v2/a/b/blobs/{digest}"),
        &[("range", "bytes=10-19")],
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h["content-range"], "bytes 10-19/100000");
    assert_eq!(b, &layer[10..20]);
    let (_, _, b) = send(&app, "GET", "/v2/a/b/tags/list", vec![]).await;
    assert_eq!(
        String::from_utf8(b).unwrap(),
        "{\"name\":\"a/b\",\"tags\":[\"v1\"]}\n"
    );
    let (_, _, b) = send(&app, "GET", "/v2/_catalog", vec![]).await;
    assert_eq!(
        String::from_utf8(b).unwrap(),
        "{\"repositories\":[\"a/b\"]}\n"
    );

    let (s, _, _) = send(
        &app,
        "DELETE",
        &format!("/v2/a/b/manifests/{mdigest}"),
        vec![],
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let (s, _, b) = send(&app, "GET", "/v2/a/b/manifests/v1", vec![]).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
}

#[tokio::test]
async fn digest_mismatch_leaves_no_blob_and_no_session() {
    let app = app(Options::default());
    let (s, h, _) = send(&app, "POST", "/v2/r/blobs/uploads/", vec![]).await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let path = h["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("http://reg.test")
        .to_owned();
    let wrong = Digest::sha256(b"other");
    let (s, _, b) = send(
        &app,
        "PUT",
        &format!("{path}?digest={wrong}"),
        b"data".to_vec(),
    )
    .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::BAD_REQUEST, "DIGEST_INVALID")
    );
    let (s, _, _) = send(&app, "HEAD", &format!("/v2/r/blobs/{wrong}"), vec![]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let right = Digest::sha256(b"data");
    let (s, _, _) = send(&app, "HEAD", &format!("/v2/r/blobs/{right}"), vec![]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, b) = send(&app, "GET", &path, vec![]).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::NOT_FOUND, "BLOB_UPLOAD_UNKNOWN")
    );
}

#[tokio::test]
async fn manifest_with_missing_blob_is_refused_and_invisible() {
    let app = app(Options::default());
    let missing = Digest::sha256(b"missing");
    let m = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"x","digest":"{missing}","size":7}},"layers":[]}}"#
    );
    let (s, _, b) = send(&app, "PUT", "/v2/r/manifests/t", m.clone().into_bytes()).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN")
    );
    let (s, _, _) = send(&app, "GET", "/v2/r/manifests/t", vec![]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, b) = send(&app, "GET", "/v2/r/tags/list", vec![]).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );
}

#[tokio::test]
async fn deletes_refused_when_disabled_and_writes_refused_when_read_only() {
    let app = app(Options::default());
    let d = push_blob(&app, "r", b"x").await;
    let (s, _, b) = send(&app, "DELETE", &format!("/v2/r/blobs/{d}"), vec![]).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
    let ro = app_read_only();
    let (s, _, b) = send(&ro, "POST", "/v2/r/blobs/uploads/", vec![]).await;
    assert_eq!(
        (s, code(&b).as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED")
    );
    let (s, _, _) = send(&ro, "GET", "/v2/", vec![]).await;
    assert_eq!(s, StatusCode::OK);
}

fn app_read_only() -> axum::Router {
    app(Options {
        delete_enabled: true,
        read_only: true,
        ..Options::default()
    })
}

#[tokio::test]
async fn foreign_layer_urls_follow_validation_rules() {
    use crate::registry::UrlRules;
    let rules = UrlRules {
        allow: vec![regex::Regex::new(r"^https://mirror\.example/").unwrap()],
        deny: vec![regex::Regex::new(r"/blocked/").unwrap()],
    };
    let app = app(Options {
        layer_urls: Some(rules),
        ..Options::default()
    });
    let config = push_blob(&app, "r", b"{}").await;
    let foreign = Digest::sha256(b"foreign layer, never uploaded");
    let manifest = |url: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{config}","size":2}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{foreign}","size":5,"urls":["{url}"]}}]}}"#
        )
        .into_bytes()
    };
    let cases = [
        ("https://mirror.example/layer", StatusCode::CREATED),
        ("https://other.example/layer", StatusCode::BAD_REQUEST),
        (
            "https://mirror.example/blocked/layer",
            StatusCode::BAD_REQUEST,
        ),
        ("ftp://mirror.example/layer", StatusCode::BAD_REQUEST),
        ("https://mirror.example/layer#frag", StatusCode::BAD_REQUEST),
    ];
    for (url, want) in cases {
        let (s, _, b) = send(&app, "PUT", "/v2/r/manifests/t", manifest(url)).await;
        assert_eq!(s, want, "{url}: {}", String::from_utf8_lossy(&b));
        if want == StatusCode::BAD_REQUEST {
            assert_eq!(code(&b), "MANIFEST_INVALID");
        }
    }
}
