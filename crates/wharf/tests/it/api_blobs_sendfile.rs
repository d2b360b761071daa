//! Blob GETs above the small-blob size on plain HTTP/1 go out with sendfile: the bytes, ranges,
//! keep-alive and pipelined requests must come back exactly as stored, HTTP/2 and TLS must
//! still get ordinary bodies, and a blob file shorter than its size must fail the transfer
//! rather than be padded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::Wharf;
use crate::harness::certs::Pki;
use crate::harness::oci::{Client, header, random_bytes, sha256};

/// Larger than one sendfile call (1 MiB) and not a multiple of any buffer size.
const BIG: usize = 3 * 1024 * 1024 + 4321;

#[tokio::test]
async fn big_blob_get_returns_exact_bytes_and_ranges() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(BIG);
    let digest = c.push_blob("zc/big", &bytes).await;
    let path = format!("/v2/zc/big/blobs/{digest}");

    let resp = c.get(&path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(header(&resp, "content-length"), Some(BIG.to_string()));
    let got = resp.bytes().await.unwrap();
    assert!(got == bytes, "GET returned other bytes");

    for (range, start, end) in [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-2999999", 1000, 2_999_999),
        ("bytes=1048575-1048576", 1_048_575, 1_048_576),
        (&*format!("bytes={}-", BIG - 70_000), BIG - 70_000, BIG - 1),
        ("bytes=-100000", BIG - 100_000, BIG - 1),
    ] {
        let resp = c.get(&path).header("range", range).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&resp, "content-range"),
            Some(format!("bytes {start}-{end}/{BIG}")),
            "{range}"
        );
        let got = resp.bytes().await.unwrap();
        assert!(got == bytes[start..=end], "{range}: other bytes");
    }

    let resp = c.head(&path).send().await.unwrap();
    assert_eq!(header(&resp, "content-length"), Some(BIG.to_string()));
    assert!(resp.bytes().await.unwrap().is_empty());
}

/// One keep-alive connection: blob, HEAD, manifest-sized answers and blobs again, so the
/// connection's queue of files must stay in step with the bodies.
#[tokio::test]
async fn one_connection_mixes_big_blobs_heads_and_small_answers() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let a = random_bytes(200_000);
    let b = random_bytes(BIG);
    let da = c.push_blob("zc/mix", &a).await;
    let db = c.push_blob("zc/mix", &b).await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let url = |d: &str| format!("{}/v2/zc/mix/blobs/{d}", w.url());
    for round in 0..3 {
        let got = http.get(url(&db)).send().await.unwrap().bytes().await;
        assert!(got.unwrap() == b, "round {round}: big blob");
        let head = http.head(url(&da)).send().await.unwrap();
        assert_eq!(head.status(), StatusCode::OK);
        let v2 = http.get(format!("{}/v2/", w.url())).send().await.unwrap();
        assert_eq!(v2.status(), StatusCode::OK);
        let resp = http
            .get(url(&da))
            .header("range", "bytes=100-")
            .send()
            .await
            .unwrap();
        assert!(
            resp.bytes().await.unwrap() == a[100..],
            "round {round}: range"
        );
    }
}

/// Two GETs written in one go on a raw connection (HTTP/1.1 pipelining): both answers come back
/// whole and in order.
#[tokio::test]
async fn pipelined_gets_come_back_whole_and_in_order() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let a = random_bytes(700_000);
    let b = random_bytes(BIG);
    let da = c.push_blob("zc/pipe", &a).await;
    let db = c.push_blob("zc/pipe", &b).await;
    let host = w.host();
    let raw = tokio::task::spawn_blocking(move || {
        let mut tcp = TcpStream::connect(&host).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let req = |d: &str, extra: &str| {
            format!("GET /v2/zc/pipe/blobs/{d} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n")
        };
        let both = req(&da, "") + &req(&db, "Connection: close\r\n");
        tcp.write_all(both.as_bytes()).unwrap();
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).unwrap();
        raw
    })
    .await
    .unwrap();
    let (first, rest) = split_response(&raw);
    let (second, tail) = split_response(rest);
    assert!(first == a, "first answer: other bytes");
    assert!(second == b, "second answer: other bytes");
    assert!(
        tail.is_empty(),
        "{} bytes after the second answer",
        tail.len()
    );
}

/// The body of the first HTTP/1.1 response in `raw` (status 200, `Content-Length` framing) and
/// what follows it.
fn split_response(raw: &[u8]) -> (&[u8], &[u8]) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .expect("content-length")
        .trim()
        .parse()
        .expect("a numeric content-length");
    let body = end + 4;
    assert!(
        raw.len() >= body + len,
        "short body: {} of {len}",
        raw.len() - body
    );
    raw[body..].split_at(len)
}

#[tokio::test]
async fn many_concurrent_big_gets_are_exact() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(BIG);
    let digest = c.push_blob("zc/many", &bytes).await;
    let want = sha256(&bytes);
    let gets = (0..16).map(|_| {
        let url = format!("{}/v2/zc/many/blobs/{digest}", w.url());
        async move {
            let http = reqwest::Client::new();
            sha256(&http.get(url).send().await.unwrap().bytes().await.unwrap())
        }
    });
    for got in futures::future::join_all(gets).await {
        assert_eq!(got, want);
    }
}

/// h2c (prior knowledge) on the plain port: HTTP/2 frames its own bodies, so it must get the
/// ordinary copy path and the real bytes.
#[tokio::test]
async fn http2_on_the_plain_port_gets_the_real_bytes() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(BIG);
    let digest = c.push_blob("zc/h2", &bytes).await;
    let http = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}/v2/zc/h2/blobs/{digest}", w.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert!(resp.bytes().await.unwrap() == bytes, "h2: other bytes");
}

#[tokio::test]
async fn tls_gets_the_real_bytes() {
    let pki = Pki::new(&["127.0.0.1"]);
    let w = Wharf::start_with_config(&format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\n{}",
        pki.tls_yaml()
    ));
    let ca = reqwest::Certificate::from_pem(pki.pem("ca.crt").as_bytes()).unwrap();
    let bytes = random_bytes(BIG);
    let digest = sha256(&bytes);
    std::fs::create_dir_all(w.root()).unwrap();
    plant_blob(&w, &digest, &bytes);
    for h2 in [false, true] {
        let mut b = reqwest::Client::builder().tls_certs_only([ca.clone()]);
        if !h2 {
            b = b.http1_only();
        }
        let resp = b
            .build()
            .unwrap()
            .get(format!("https://{}/v2/zc/tls/blobs/{digest}", w.host()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "h2={h2}");
        assert!(resp.bytes().await.unwrap() == bytes, "h2={h2}: other bytes");
    }
}

/// A blob file cut short behind the registry's back: the answer fails; it is never filled up
/// to the promised length.
#[tokio::test]
async fn a_truncated_blob_file_fails_the_transfer() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let bytes = random_bytes(BIG);
    let digest = c.push_blob("zc/cut", &bytes).await;
    let data = blob_data_path(&w, &digest);
    let file = std::fs::OpenOptions::new().write(true).open(&data).unwrap();
    file.set_len(BIG as u64 / 2).unwrap();
    let resp = c
        .get(&format!("/v2/zc/cut/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    match resp.bytes().await {
        Err(_) => {}
        Ok(got) => assert!(
            got.len() < BIG && bytes.starts_with(&got),
            "a cut file came back as {} bytes",
            got.len()
        ),
    }
    assert!(!w.log().contains("panicked"), "{}", w.log());
}

fn blob_data_path(w: &Wharf, digest: &str) -> std::path::PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    w.root()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data")
}

/// Writes a blob and its link for repository `zc/tls` straight into the storage layout (the
/// TLS test has no plain client to push with).
fn plant_blob(w: &Wharf, digest: &str, bytes: &[u8]) {
    let data = blob_data_path(w, digest);
    std::fs::create_dir_all(data.parent().expect("a blob directory")).expect("blob directory");
    std::fs::write(&data, bytes).expect("blob data");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let link = w
        .root()
        .join("docker/registry/v2/repositories/zc/tls/_layers/sha256")
        .join(hex)
        .join("link");
    std::fs::create_dir_all(link.parent().expect("a link directory")).expect("link directory");
    std::fs::write(&link, digest).expect("blob link");
}
