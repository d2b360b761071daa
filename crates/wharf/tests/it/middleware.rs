//! `middleware.storage`: blob GETs redirect to a signed CloudFront URL (or a plain `redirect`
//! base URL) whose path is the blob's place under the storage root.

use std::path::PathBuf;
use std::process::Command;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::Wharf;
use crate::harness::oci::{Client, header, random_bytes};

/// A static file server over `root` standing in for the CDN: `GET /p?q` answers the file
/// `root/p` (query ignored) or 404.
async fn static_server(root: PathBuf) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let root = root.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                let target = req.split(' ').nth(1).unwrap_or("/").to_owned();
                let path = target.split('?').next().unwrap_or("/").to_owned();
                let file = (!path.contains(".."))
                    .then(|| std::fs::read(root.join(path.trim_start_matches('/'))).ok())
                    .flatten();
                let (status, body) = match file {
                    Some(b) => ("200 OK", b),
                    None => ("404 Not Found", Vec::new()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    });
    format!("http://{addr}/")
}

/// Writes a fresh 2048-bit RSA key as PEM; `None` (after a SKIP) without openssl.
fn rsa_key(dir: &std::path::Path) -> Option<PathBuf> {
    let key = dir.join("cf.pem");
    let ok = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is required"
        );
        eprintln!("SKIP: openssl is not installed");
        return None;
    }
    Some(key)
}

const CONFIG: &str = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\n{redirect}http:\n  addr: 127.0.0.1:{port}\nmiddleware:\n  storage:\n    - name: cloudfront\n      options:\n        baseurl: {base}\n        privatekey: {key}\n        keypairid: APKATESTKEYPAIR\n        duration: 5m\n";

#[tokio::test]
async fn cloudfront_blob_get_redirects_to_signed_url_that_serves_the_blob() {
    let keys = tempfile::tempdir().unwrap();
    let Some(key) = rsa_key(keys.path()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // The wharf root is only known once started: serve its parent's `root` (set below).
    let root_holder = tmp.path().join("cdn");
    let base = static_server(root_holder.clone()).await;
    let cfg = CONFIG
        .replace("{redirect}", "")
        .replace("{base}", &base)
        .replace("{key}", &key.display().to_string());
    let w = Wharf::start_with_config(&cfg);
    std::os::unix::fs::symlink(w.root(), &root_holder).unwrap();

    let c = Client::new(&w.url());
    let bytes = random_bytes(4321);
    let digest = c.push_blob("mw/cf", &bytes).await;
    let resp = c
        .get(&format!("/v2/mw/cf/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = header(&resp, "location").expect("Location");
    let hex = digest.strip_prefix("sha256:").unwrap();
    let want = format!(
        "{base}docker/registry/v2/blobs/sha256/{}/{hex}/data?Expires=",
        &hex[..2]
    );
    assert!(location.starts_with(&want), "{location}");
    assert!(location.contains("&Signature="), "{location}");
    assert!(
        location.ends_with("&Key-Pair-Id=APKATESTKEYPAIR"),
        "{location}"
    );

    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap(), bytes);

    // HEAD is answered by wharf itself.
    let head = c
        .head(&format!("/v2/mw/cf/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
}

#[tokio::test]
async fn redirect_disable_serves_blobs_directly_despite_cloudfront() {
    let keys = tempfile::tempdir().unwrap();
    let Some(key) = rsa_key(keys.path()) else {
        return;
    };
    let cfg = CONFIG
        .replace("{redirect}", "  redirect:\n    disable: true\n")
        .replace("{base}", "https://d111.cloudfront.net/")
        .replace("{key}", &key.display().to_string());
    let w = Wharf::start_with_config(&cfg);
    let c = Client::new(&w.url());
    let bytes = random_bytes(777);
    let digest = c.push_blob("mw/direct", &bytes).await;
    let resp = c
        .get(&format!("/v2/mw/direct/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), bytes);
}

#[tokio::test]
async fn redirect_middleware_sends_blob_gets_to_base_url() {
    let cfg = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  addr: 127.0.0.1:{port}\nmiddleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: https://cdn.example.com/reg/\n";
    let w = Wharf::start_with_config(cfg);
    let c = Client::new(&w.url());
    let digest = c.push_blob("mw/plain", &random_bytes(100)).await;
    let resp = c
        .get(&format!("/v2/mw/plain/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
    let hex = digest.strip_prefix("sha256:").unwrap();
    assert_eq!(
        header(&resp, "location").as_deref(),
        Some(&*format!(
            "https://cdn.example.com/reg/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    );
}
