//! Notifications end to end: a wharf with `notifications.endpoints` posting to HTTP sinks run
//! by the test, checking distribution's envelope field by field, per-endpoint filters, and
//! in-order delivery through endpoint failures and a wharf crash.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::Value;

use crate::harness::Wharf;
use crate::harness::certs::Pki;
use crate::harness::oci::{Client, OCI_MANIFEST, expect_status, sha256};

/// An HTTP endpoint that records every event it accepts, refusing the first `fail_first`
/// requests with 500.
struct Sink {
    port: u16,
    scheme: &'static str,
    state: Arc<SinkState>,
}

#[derive(Default)]
struct SinkState {
    fail_first: usize,
    attempts: AtomicUsize,
    received: Mutex<Vec<(HeaderMap, Value)>>,
}

async fn record(State(s): State<Arc<SinkState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    if s.attempts.fetch_add(1, Ordering::SeqCst) < s.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let envelope: Value = serde_json::from_slice(&body).expect("envelope is JSON");
    let mut received = s.received.lock().expect("sink lock");
    for event in envelope["events"].as_array().expect("events array") {
        received.push((headers.clone(), event.clone()));
    }
    StatusCode::OK
}

impl Sink {
    async fn start(fail_first: usize) -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let port = listener.local_addr().expect("sink addr").port();
        let state = Arc::new(SinkState {
            fail_first,
            ..SinkState::default()
        });
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Sink {
            port,
            scheme: "http",
            state,
        }
    }

    /// The same sink behind TLS, with `pki`'s server certificate.
    async fn start_tls(pki: &Pki) -> Sink {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let port = listener.local_addr().expect("sink addr").port();
        let state = Arc::new(SinkState::default());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let certs = CertificateDer::pem_file_iter(pki.path("server.crt"))
            .expect("server.crt")
            .collect::<Result<Vec<_>, _>>()
            .expect("server cert");
        let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).expect("server key");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
                });
            }
        });
        Sink {
            port,
            scheme: "https",
            state,
        }
    }

    fn url(&self) -> String {
        format!("{}://127.0.0.1:{}/hook", self.scheme, self.port)
    }

    fn events(&self) -> Vec<Value> {
        let received = self.state.received.lock().expect("sink lock");
        received.iter().map(|(_, e)| e.clone()).collect()
    }

    /// Waits until `n` events arrived (or fails after 30 s), then a little longer to catch any
    /// event that should not have come.
    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.events().len() < n {
            assert!(
                Instant::now() < deadline,
                "sink got {} events, expected {n}: {:#?}",
                self.events().len(),
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.events()
    }
}

/// `(action, target.digest)` of each event, for order checks.
fn actions(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
            (s(&e["action"]), s(&e["target"]["digest"]))
        })
        .collect()
}

fn pair(action: &str, digest: &str) -> (String, String) {
    (action.to_owned(), digest.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_mount_delete_send_distribution_events_to_each_endpoint() {
    let all = Sink::start(0).await;
    let filtered = Sink::start(0).await;
    let wharf = Wharf::start_with(&format!(
        "notifications:\n  events:\n    includereferences: true\n  endpoints:\n    - name: all\n      url: {}\n      headers:\n        X-Wharf-Test: [yes]\n      timeout: 2s\n    - name: manifests\n      url: {}\n      ignoredmediatypes: [application/octet-stream]\n      ignore:\n        actions: [pull]\n    - name: off\n      disabled: true\n      url: http://127.0.0.1:1/never\n",
        all.url(),
        filtered.url()
    ));
    let client = Client::new(&wharf.url());
    let (repo, other) = ("notify/app", "notify/other");

    let (manifest, digest) = client.random_image(repo, 1).await;
    let parsed: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    let config = parsed["config"]["digest"]
        .as_str()
        .expect("config")
        .to_owned();
    let layer = parsed["layers"][0]["digest"]
        .as_str()
        .expect("layer")
        .to_owned();
    let resp = client
        .push_manifest(repo, "v1", OCI_MANIFEST, &manifest)
        .await;
    expect_status(resp, reqwest::StatusCode::CREATED, "tag v1").await;
    let resp = client
        .manifest(Method::GET, repo, "v1")
        .header("user-agent", "notify-test/1.0")
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .expect("GET manifest");
    expect_status(resp, reqwest::StatusCode::OK, "pull v1").await;
    let blob = format!("/v2/{repo}/blobs/{layer}");
    let resp = client.get(&blob).send().await.expect("GET blob");
    expect_status(resp, reqwest::StatusCode::OK, "pull layer").await;
    let resp = client.head(&blob).send().await.expect("HEAD blob");
    expect_status(resp, reqwest::StatusCode::OK, "HEAD layer (no event)").await;
    let mount = format!("/v2/{other}/blobs/uploads/?mount={layer}&from={repo}");
    let resp = client.post(&mount).send().await.expect("mount");
    expect_status(resp, reqwest::StatusCode::CREATED, "mount").await;
    let resp = client
        .delete(&format!("/v2/{repo}/manifests/{digest}"))
        .send()
        .await
        .expect("DELETE manifest");
    expect_status(resp, reqwest::StatusCode::ACCEPTED, "delete").await;

    let events = all.wait_for(8).await;
    assert_eq!(
        actions(&events),
        [
            pair("push", &config),
            pair("push", &layer),
            pair("push", &digest),
            pair("push", &digest),
            pair("pull", &digest),
            pair("pull", &layer),
            pair("mount", &layer),
            pair("delete", &digest),
        ],
        "every action once, in order"
    );
    let tagged = &events[3];
    let target = &tagged["target"];
    assert_eq!(target["mediaType"], OCI_MANIFEST);
    assert_eq!(target["size"], manifest.len());
    assert_eq!(target["length"], manifest.len());
    assert_eq!(target["repository"], repo);
    assert_eq!(target["tag"], "v1");
    assert_eq!(
        target["url"],
        format!("{}/v2/{repo}/manifests/{digest}", wharf.url())
    );
    assert_eq!(
        target["references"].as_array().map(Vec::len),
        Some(2),
        "includereferences lists config and layer: {target}"
    );
    assert_eq!(tagged["request"]["method"], "PUT");
    assert_eq!(tagged["request"]["host"], wharf.host());
    assert!(
        tagged["request"]["id"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        tagged["source"]["instanceID"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(
        tagged["timestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(tagged["actor"].is_object());

    let pull = &events[4];
    assert_eq!(pull["request"]["useragent"], "notify-test/1.0");
    assert_eq!(pull["request"]["addr"], "203.0.113.9");
    assert_eq!(pull["request"]["method"], "GET");
    assert_eq!(pull["target"]["tag"], "v1");
    let layer_push = &events[1]["target"];
    assert_eq!(layer_push["mediaType"], "application/octet-stream");
    assert_eq!(layer_push["url"], format!("{}{blob}", wharf.url()));
    assert_eq!(layer_push["size"], 1024);
    let mounted = &events[6]["target"];
    assert_eq!(mounted["repository"], other);
    assert_eq!(mounted["fromRepository"], repo);
    assert_eq!(events[7]["target"]["repository"], repo);

    let ids: std::collections::BTreeSet<&str> =
        events.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), events.len(), "event ids are unique");
    let headers = all.state.received.lock().expect("sink lock")[0].0.clone();
    assert_eq!(
        headers["content-type"],
        "application/vnd.docker.distribution.events.v1+json"
    );
    assert_eq!(headers["x-wharf-test"], "yes");

    let only_manifests = filtered.wait_for(3).await;
    assert_eq!(
        actions(&only_manifests),
        [
            pair("push", &digest),
            pair("push", &digest),
            pair("delete", &digest)
        ],
        "ignoredmediatypes drops blob events, ignore.actions drops pulls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_endpoint_gets_every_event_in_order_across_a_crash() {
    let sink = Sink::start(5).await;
    let mut wharf = Wharf::start_with(&format!(
        "notifications:\n  endpoints:\n    - name: flaky\n      url: {}\n      timeout: 1s\n      threshold: 2\n      backoff: 300ms\n",
        sink.url()
    ));
    let repo = "notify/flaky";
    let mut expected = Vec::new();
    let mut push = async |wharf: &Wharf| {
        let client = Client::new(&wharf.url());
        let (manifest, digest) = client.random_image(repo, 1).await;
        let parsed: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
        for d in [&parsed["config"]["digest"], &parsed["layers"][0]["digest"]] {
            expected.push(pair("push", d.as_str().expect("digest")));
        }
        expected.push(pair("push", &digest));
        assert_eq!(sha256(&manifest), digest);
    };

    push(&wharf).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while sink.state.attempts.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "wharf never tried the endpoint");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        sink.events().is_empty(),
        "nothing delivered before the crash"
    );
    wharf.kill();
    wharf.restart();
    push(&wharf).await;

    let events = sink.wait_for(6).await;
    assert_eq!(
        actions(&events),
        expected,
        "all six events, in push order, once"
    );
    assert!(
        sink.state.attempts.load(Ordering::SeqCst) >= 11,
        "five refusals then six deliveries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_trusted_through_ssl_cert_file_gets_the_push_events() {
    let pki = Pki::new(&["127.0.0.1"]);
    let sink = Sink::start_tls(&pki).await;
    let ca = pki.path("ca.crt");
    let wharf = Wharf::start_with_config_env(
        &format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\nnotifications:\n  endpoints:\n    - name: tls\n      url: {}\n      timeout: 2s\n",
            sink.url()
        ),
        &[("SSL_CERT_FILE", ca.to_str().expect("utf-8 path"))],
    );
    let client = Client::new(&wharf.url());
    let (_, digest) = client.random_image("notify/tls", 1).await;
    let events = sink.wait_for(3).await;
    assert_eq!(actions(&events)[2], pair("push", &digest), "{events:#?}");
    assert!(
        sink.url().starts_with("https://"),
        "the sink only speaks TLS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_with_an_untrusted_certificate_gets_nothing() {
    let pki = Pki::new(&["127.0.0.1"]);
    let sink = Sink::start_tls(&pki).await;
    let other = pki.path("other-ca.crt");
    let wharf = Wharf::start_with_config_env(
        &format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\nnotifications:\n  endpoints:\n    - name: tls\n      url: {}\n      timeout: 1s\n      backoff: 100ms\n",
            sink.url()
        ),
        &[("SSL_CERT_FILE", other.to_str().expect("utf-8 path"))],
    );
    let client = Client::new(&wharf.url());
    client.random_image("notify/untrusted", 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(sink.events().is_empty(), "delivered despite a bad chain");
    assert!(
        wharf.log().contains("TLS handshake"),
        "the failure is logged: {}",
        wharf.log()
    );
}

/// An htpasswd line made by `wharf htpasswd -Bbn`.
fn htpasswd_line(user: &str, password: &str) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["htpasswd", "-Bbn", user, password])
        .output()
        .expect("wharf htpasswd");
    assert!(out.status.success(), "wharf htpasswd failed");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_name_the_authenticated_user_and_the_client_socket() {
    use base64::Engine as _;
    let sink = Sink::start(0).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, htpasswd_line("alice", "s3cret")).expect("write htpasswd");
    let wharf = Wharf::start_with(&format!(
        "auth:\n  htpasswd:\n    realm: r\n    path: {}\nnotifications:\n  endpoints:\n    - name: all\n      url: {}\n",
        file.display(),
        sink.url()
    ));
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("alice:s3cret")
    );
    let client = Client::new(&wharf.url());
    let blob = b"hello actor".to_vec();
    let digest = sha256(&blob);
    let resp = client
        .post("/v2/notify/actor/blobs/uploads/")
        .header("authorization", &auth)
        .send()
        .await
        .expect("POST upload");
    let resp = expect_status(resp, reqwest::StatusCode::ACCEPTED, "start upload").await;
    let location = client.location(&resp);
    let resp = client
        .put(&crate::harness::oci::with_query(
            &location,
            &format!("digest={digest}"),
        ))
        .header("authorization", &auth)
        .body(blob)
        .send()
        .await
        .expect("PUT upload");
    expect_status(resp, reqwest::StatusCode::CREATED, "finish upload").await;
    let resp = client
        .get(&format!("/v2/notify/actor/blobs/{digest}"))
        .header("authorization", &auth)
        .header("x-real-ip", "198.51.100.7")
        .send()
        .await
        .expect("GET blob");
    expect_status(resp, reqwest::StatusCode::OK, "pull").await;

    let events = sink.wait_for(2).await;
    assert_eq!(
        actions(&events),
        [pair("push", &digest), pair("pull", &digest)]
    );
    assert_eq!(events[0]["actor"]["name"], "alice", "{:#?}", events[0]);
    let addr = events[0]["request"]["addr"].as_str().unwrap_or_default();
    let peer: std::net::SocketAddr = addr.parse().expect("addr is ip:port");
    assert!(peer.ip().is_loopback() && peer.port() != 0, "{addr}");
    assert_eq!(
        events[1]["request"]["addr"], "198.51.100.7",
        "X-Real-IP wins"
    );
    assert_eq!(events[1]["actor"]["name"], "alice");
}

/// On an `http.tls` listener too, `request.addr` is the client's socket.
#[tokio::test]
async fn events_over_tls_name_the_client_socket() {
    let sink = Sink::start(0).await;
    let pki = Pki::new(&["127.0.0.1"]);
    let wharf = Wharf::start_with_config(&format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\n{}notifications:\n  endpoints:\n    - name: all\n      url: {}\n",
        pki.tls_yaml(),
        sink.url()
    ));
    let ca = reqwest::Certificate::from_pem(pki.pem("ca.crt").as_bytes()).expect("CA");
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .expect("https client");
    let base = format!("https://{}", wharf.host());
    let blob = b"hello over tls".to_vec();
    let digest = sha256(&blob);
    let resp = http
        .post(format!("{base}/v2/notify/tls/blobs/uploads/"))
        .send()
        .await
        .expect("POST upload");
    let resp = expect_status(resp, reqwest::StatusCode::ACCEPTED, "start upload").await;
    let location = resp.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let resp = http
        .put(crate::harness::oci::with_query(
            &location,
            &format!("digest={digest}"),
        ))
        .body(blob)
        .send()
        .await
        .expect("PUT upload");
    expect_status(resp, reqwest::StatusCode::CREATED, "finish upload").await;
    let events = sink.wait_for(1).await;
    assert_eq!(actions(&events), [pair("push", &digest)]);
    let addr = events[0]["request"]["addr"].as_str().unwrap_or_default();
    let peer: std::net::SocketAddr = addr.parse().expect("addr is ip:port");
    assert!(peer.ip().is_loopback() && peer.port() != 0, "{addr}");
}
