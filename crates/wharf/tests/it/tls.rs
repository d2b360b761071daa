//! `http.tls`: HTTPS with a test CA for reqwest, skopeo (`--cert-dir`) and the Docker engine
//! (`certs.d`), plain HTTP on the TLS port, and mutual TLS.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use reqwest::StatusCode;

use crate::harness::Wharf;
use crate::harness::certs::Pki;
use crate::harness::docker::{Docker, pushed_digest};
use crate::harness::skopeo::{MultiArchLayout, Skopeo};

/// A wharf on `addr_host:{port}` serving TLS with `pki`, plus extra `http.tls` lines.
fn start_tls(pki: &Pki, addr_host: &str, tls_extra: &str) -> Wharf {
    Wharf::start_with_config(&format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr_host}:{{port}}\n{}{tls_extra}",
        pki.tls_yaml()
    ))
}

fn https_client(pki: &Pki, identity: bool) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(pki.pem("ca.crt").as_bytes()).expect("https client");
    let mut b = reqwest::Client::builder()
        .tls_certs_only([ca])
        .pool_max_idle_per_host(0);
    if identity {
        let pem = format!("{}{}", pki.pem("client.crt"), pki.pem("client.key"));
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("https client"));
    }
    b.build().expect("https client")
}

fn https(wharf: &Wharf, path: &str) -> String {
    format!("https://{}{path}", wharf.host())
}

#[tokio::test]
async fn https_with_h2_and_locations_that_say_https() {
    let pki = Pki::new(&["127.0.0.1", "localhost"]);
    let wharf = start_tls(&pki, "127.0.0.1", "");
    let client = https_client(&pki, false);
    let resp = client.get(https(&wharf, "/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2, "ALPN chose h2");
    let resp = client
        .post(https(&wharf, "/v2/tls/test/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with(&format!(
            "https://{}/v2/tls/test/blobs/uploads/",
            wharf.host()
        )),
        "{location}"
    );
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(pki.pem("other-ca.crt").as_bytes()).unwrap(),
        ])
        .build()
        .unwrap();
    assert!(untrusting.get(https(&wharf, "/v2/")).send().await.is_err());
}

#[test]
fn plain_http_to_the_tls_port_gets_400_and_a_closed_connection() {
    let pki = Pki::new(&["127.0.0.1"]);
    let wharf = start_tls(&pki, "127.0.0.1", "");
    let mut tcp = TcpStream::connect(wharf.host()).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    tcp.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    tcp.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.0 400 Bad Request"), "{reply}");
    assert!(
        reply.contains("Client sent an HTTP request to an HTTPS server"),
        "{reply}"
    );
    assert!(!wharf.log().contains("panicked"), "{}", wharf.log());
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate_and_accepts_one_with() {
    let pki = Pki::new(&["127.0.0.1"]);
    let clientcas = format!("    clientcas:\n      - {}\n", pki.path("ca.crt").display());
    let wharf = start_tls(&pki, "127.0.0.1", &clientcas);
    let anonymous = https_client(&pki, false);
    let refused = anonymous.get(https(&wharf, "/v2/")).send().await;
    assert!(
        refused.is_err(),
        "served a client without a certificate: {refused:?}"
    );
    let with_cert = https_client(&pki, true);
    let resp = with_cert.get(https(&wharf, "/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[test]
fn skopeo_trusts_the_ca_through_cert_dir_and_refuses_without_it() {
    let Some(skopeo) = Skopeo::get() else { return };
    let pki = Pki::new(&["127.0.0.1", "localhost"]);
    let wharf = start_tls(&pki, "127.0.0.1", "");
    let certs = tempfile::tempdir().unwrap();
    std::fs::copy(pki.path("ca.crt"), certs.path().join("ca.crt")).unwrap();
    let src = tempfile::tempdir().unwrap();
    let layout = MultiArchLayout::write(src.path(), "v1", "tls");
    let dest = format!("docker://{}/tls/skopeo:v1", wharf.host());
    let cert_dir = certs.path().to_string_lossy().into_owned();
    let refused = skopeo.run(&["copy", "--all", &layout.reference(), &dest]);
    assert!(
        !refused.success(),
        "copied without trusting the CA: {refused}"
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

/// The machine's first non-loopback IPv4 address: Docker treats loopback registries as
/// insecure (no certificate check), so the certs.d test needs another address.
fn outside_address() -> Option<String> {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .find(|a| {
            a.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !ip.is_loopback())
        })
        .map(str::to_owned)
}

/// `/etc/docker/certs.d/<host:port>/`, removed when dropped. dockerd reads certs.d from
/// this fixed path only; the port is this test's own, so nothing else is touched.
struct CertsD(PathBuf);

impl CertsD {
    fn install(host: &str, ca: &Path) -> CertsD {
        let dir = Path::new("/etc/docker/certs.d").join(host);
        std::fs::create_dir_all(&dir).expect("create certs.d dir (needs root)");
        std::fs::copy(ca, dir.join("ca.crt")).expect("install ca.crt");
        CertsD(dir)
    }
}

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        // the certs.d dir itself too, when this test created it and nothing else is in it
        if let Some(parent) = self.0.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[test]
fn docker_pushes_and_pulls_over_tls_trusting_the_ca_through_certs_d() {
    let Some(docker) = Docker::get() else { return };
    let Some(ip) = outside_address() else {
        assert!(
            !crate::harness::in_ci(),
            "no non-loopback IPv4 address for the certs.d test"
        );
        eprintln!("SKIP: no non-loopback IPv4 address");
        return;
    };
    let pki = Pki::new(&[&ip]);
    let wharf = start_tls(&pki, "0.0.0.0", "");
    let host = format!("{ip}:{}", wharf.host().rsplit(':').next().unwrap());
    let image = format!("{host}/tls/busybox:v1");
    docker.ok(&["tag", docker.busybox(), &image]);
    let untrusted = docker.run(&["push", &image]);
    assert!(
        !untrusted.success(),
        "pushed without trusting the CA: {untrusted}"
    );
    assert!(
        untrusted.all_output().contains("certificate"),
        "{untrusted}"
    );
    let _certs_d = CertsD::install(&host, &pki.path("ca.crt"));
    let push = docker.ok(&["push", &image]);
    let digest = pushed_digest(&push.stdout).unwrap_or_else(|| panic!("no digest in {push}"));
    docker.ok(&["rmi", &image]);
    let pull = docker.ok(&["pull", &image]);
    assert!(pull.stdout.contains(&digest), "{pull}");
    docker.ok(&["rmi", &image]);
}
