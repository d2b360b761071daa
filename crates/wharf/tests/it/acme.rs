//! `http.tls.letsencrypt` against pebble: a certificate ordered with a real TLS-ALPN-01
//! validation on wharf's own listener, served only for `hosts`, and reused from `cachefile`
//! after a restart without a new order.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::pebble::Pebble;
use crate::harness::skopeo::{MultiArchLayout, Skopeo};
use crate::harness::{Wharf, free_port};

/// The name ordered: pebble resolves it with the system resolver to 127.0.0.1.
const HOST: &str = "localhost";

fn acme_config(pebble: &Pebble, cache: &Path) -> String {
    format!(
        "version: 0.1\nlog:\n  level: debug\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\n  tls:\n    letsencrypt:\n      cachefile: {cache}\n      email: ops@example.com\n      hosts: [{HOST}]\n      directoryurl: {dir}\n",
        cache = cache.display(),
        dir = pebble.directory_url(),
    )
}

fn start_wharf(port: u16, pebble: &Pebble, cache: &Path) -> Wharf {
    let ca = pebble.listener_ca().display().to_string();
    Wharf::start_on(
        port,
        &acme_config(pebble, cache),
        &[("SSL_CERT_FILE", ca.as_str())],
    )
}

/// A client that trusts only `root` and sends every name to wharf's port.
fn client(root: &str, name: &str, port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root.as_bytes()).expect("root")])
        .resolve(name, SocketAddr::from(([127, 0, 0, 1], port)))
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Retries `GET /v2/` until the certificate is there, returning the served leaf (DER).
async fn served_leaf(
    client: &reqwest::Client,
    port: u16,
    wait: Duration,
    log: &dyn Fn() -> String,
) -> Vec<u8> {
    let deadline = Instant::now() + wait;
    loop {
        match client
            .get(format!("https://{HOST}:{port}/v2/"))
            .send()
            .await
        {
            Ok(resp) => {
                assert_eq!(resp.status(), StatusCode::OK);
                let info = resp
                    .extensions()
                    .get::<reqwest::tls::TlsInfo>()
                    .expect("tls info");
                return info.peer_certificate().expect("leaf").to_vec();
            }
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!(
                "no certificate within {wait:?}: {e:?}\nwharf log:\n{}",
                log()
            ),
        }
    }
}

/// Issuer CN, DNS names and serial of a DER certificate.
fn describe(der: &[u8]) -> (String, Vec<String>, Vec<u8>) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("x509");
    let issuer = cert
        .issuer()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .map(|n| n.to_string())
                .collect()
        })
        .unwrap_or_default();
    (issuer, names, cert.raw_serial().to_vec())
}

#[tokio::test]
async fn acme_tls_alpn_certificate_from_pebble_served_for_hosts_only() {
    let port = free_port();
    let Some(pebble) = Pebble::start(port) else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let wharf = start_wharf(port, &pebble, cache.path());
    let root = pebble.issuing_root().await;
    let log = || format!("{}\npebble log:\n{}", wharf.log(), pebble.log());
    let leaf = served_leaf(
        &client(&root, HOST, port),
        port,
        Duration::from_secs(60),
        &log,
    )
    .await;
    let (issuer, names, _) = describe(&leaf);
    assert!(issuer.starts_with("Pebble Intermediate CA"), "{issuer}");
    assert_eq!(names, [format!("DNSName({HOST})")]);
    // pebble really validated: it connected with ALPN acme-tls/1 and got the challenge answer.
    assert!(
        wharf
            .log()
            .contains("ACME tls-alpn-01 validation handshake"),
        "{}",
        log()
    );
    assert!(
        pebble.log().contains("set VALID by completed challenge"),
        "{}",
        log()
    );
    assert!(cache.path().join(HOST).is_file(), "certificate cached");
    assert!(
        cache.path().join("acme_account+key").is_file(),
        "account key cached"
    );

    // A name outside `hosts` gets no certificate: the handshake fails.
    let other = client(&root, "other.localhost", port)
        .get(format!("https://other.localhost:{port}/v2/"))
        .send()
        .await;
    assert!(other.is_err(), "{other:?}");
    assert!(
        !pebble.log().contains("other.localhost"),
        "no order for a name outside hosts"
    );
}

#[tokio::test]
async fn acme_restart_serves_the_cached_certificate_without_a_new_order() {
    let port = free_port();
    let Some(mut pebble) = Pebble::start(port) else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let mut wharf = start_wharf(port, &pebble, cache.path());
    let root = pebble.issuing_root().await;
    let log = || String::new();
    let first = served_leaf(
        &client(&root, HOST, port),
        port,
        Duration::from_secs(60),
        &log,
    )
    .await;
    let (_, _, serial) = describe(&first);

    // With the CA gone, the only way to serve is from the cache.
    pebble.stop();
    wharf.restart();
    let again = served_leaf(
        &client(&root, HOST, port),
        port,
        Duration::from_secs(10),
        &log,
    )
    .await;
    assert_eq!(
        describe(&again).2,
        serial,
        "same certificate after the restart"
    );
    assert!(
        wharf.log().contains("serving the cached certificate"),
        "{}",
        wharf.log()
    );
    assert!(!wharf.log().contains("could not obtain"), "{}", wharf.log());
}

#[tokio::test]
async fn acme_renews_in_the_background_and_serves_the_old_certificate_meanwhile() {
    let port = free_port();
    // 30 s certificates: renewal is due when a third of the lifetime (10 s) remains.
    let Some(pebble) = Pebble::start_with_validity(port, Some(Duration::from_secs(30))) else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let wharf = start_wharf(port, &pebble, cache.path());
    let root = pebble.issuing_root().await;
    let log = || format!("{}\npebble log:\n{}", wharf.log(), pebble.log());
    let client = client(&root, HOST, port);
    let first = describe(&served_leaf(&client, port, Duration::from_secs(60), &log).await).2;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Every request in between is served, by the old certificate or the new one (a new
        // client each time: a resumed TLS session would report the certificate it began with).
        let client = self::client(&root, HOST, port);
        let serial = describe(&served_leaf(&client, port, Duration::ZERO, &log).await).2;
        if serial != first {
            break;
        }
        assert!(Instant::now() < deadline, "not renewed in time:\n{}", log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(wharf.log().contains("renewed=true"), "{}", log());
}

#[tokio::test]
async fn acme_skopeo_pushes_and_pulls_trusting_only_the_pebble_root() {
    let Some(skopeo) = Skopeo::get() else { return };
    let port = free_port();
    let Some(pebble) = Pebble::start(port) else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let wharf = start_wharf(port, &pebble, cache.path());
    let root = pebble.issuing_root().await;
    let log = || format!("{}\npebble log:\n{}", wharf.log(), pebble.log());
    served_leaf(
        &client(&root, HOST, port),
        port,
        Duration::from_secs(60),
        &log,
    )
    .await;
    let certs = tempfile::tempdir().unwrap();
    std::fs::write(certs.path().join("ca.crt"), &root).unwrap();
    let cert_dir = certs.path().to_string_lossy().into_owned();
    let src = tempfile::tempdir().unwrap();
    let layout = MultiArchLayout::write(src.path(), "v1", "acme");
    let dest = format!("docker://{HOST}:{port}/acme/skopeo:v1");
    let refused = skopeo.run(&["copy", "--all", &layout.reference(), &dest]);
    assert!(
        !refused.success(),
        "copied without trusting pebble: {refused}"
    );
    assert!(refused.all_output().contains("certificate"), "{refused}");
    skopeo.ok(&[
        "copy",
        "--all",
        "--dest-cert-dir",
        &cert_dir,
        &layout.reference(),
        &dest,
    ]);
    let raw = skopeo.ok(&["inspect", "--raw", "--cert-dir", &cert_dir, &dest]);
    assert!(raw.stdout.contains(&layout.platforms[0].manifest), "{raw}");
}

#[tokio::test]
async fn acme_unreachable_ca_is_logged_and_retried_with_backoff() {
    let port = free_port();
    let closed = free_port();
    let cache = tempfile::tempdir().unwrap();
    let wharf = Wharf::start_on(
        port,
        &format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\n  tls:\n    letsencrypt:\n      cachefile: {}\n      hosts: [{HOST}]\n      directoryurl: https://127.0.0.1:{closed}/dir\n",
            cache.path().display()
        ),
        &[],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while wharf
        .log()
        .matches("could not obtain a certificate")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no retry:\n{}", wharf.log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let log = wharf.log();
    assert!(
        log.contains("retry_in=5s") && log.contains("retry_in=10s"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
    // Still up, and without a certificate the handshake fails instead of serving plain HTTP.
    let no_cert = reqwest::Client::builder()
        .resolve(HOST, SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap()
        .get(format!("https://{HOST}:{port}/v2/"))
        .send()
        .await;
    assert!(no_cert.is_err(), "{no_cert:?}");
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}
