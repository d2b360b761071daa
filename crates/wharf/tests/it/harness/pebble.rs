//! pebble, Let's Encrypt's test ACME server, on free 127.0.0.1 ports with a TLS certificate
//! of a test PKI; it validates TLS-ALPN-01 challenges for real against `tls_port`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::certs::Pki;
use super::wharf::wait_for_port;
use super::{free_port, require};

/// A running `pebble`; killed when dropped.
pub struct Pebble {
    child: Option<Child>,
    port: u16,
    management_port: u16,
    tls_port: u16,
    pki: Pki,
    dir: tempfile::TempDir,
    validity: Option<Duration>,
}

impl Pebble {
    /// Starts pebble validating TLS-ALPN-01 (and HTTP-01) on 127.0.0.1-resolving names at
    /// `tls_port`; `None` when pebble is missing on a laptop (panics under CI).
    pub fn start(tls_port: u16) -> Option<Pebble> {
        Self::start_with_validity(tls_port, None)
    }

    /// Like [`Pebble::start`], issuing certificates valid for `validity` (pebble's
    /// `certificateValidityPeriod`; its default is five years) to exercise renewal.
    pub fn start_with_validity(tls_port: u16, validity: Option<Duration>) -> Option<Pebble> {
        require("pebble")?;
        let mut p = Pebble {
            child: None,
            port: free_port(),
            management_port: free_port(),
            tls_port,
            pki: Pki::new(&["127.0.0.1", "localhost"]),
            dir: tempfile::tempdir().expect("tempdir"),
            validity,
        };
        p.spawn();
        Some(p)
    }

    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.port)
    }

    /// The CA certificate of pebble's own HTTPS listeners (what `SSL_CERT_FILE` must trust).
    pub fn listener_ca(&self) -> PathBuf {
        self.pki.path("ca.crt")
    }

    /// The root that issues the certificates (regenerated at each pebble start), from the
    /// management API's `/roots/0`.
    pub async fn issuing_root(&self) -> String {
        let ca =
            reqwest::Certificate::from_pem(self.pki.pem("ca.crt").as_bytes()).expect("pebble ca");
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .build()
            .expect("client");
        let resp = client
            .get(format!(
                "https://127.0.0.1:{}/roots/0",
                self.management_port
            ))
            .send()
            .await
            .expect("pebble management API");
        assert!(resp.status().is_success(), "{}", resp.status());
        resp.text().await.expect("root PEM")
    }

    /// pebble's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops pebble.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("pebble.log")
    }

    fn spawn(&mut self) {
        let mut config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{}", self.port),
                "managementListenAddress": format!("127.0.0.1:{}", self.management_port),
                "certificate": self.pki.path("server.crt"),
                "privateKey": self.pki.path("server.key"),
                "httpPort": self.tls_port,
                "tlsPort": self.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }
        });
        if let Some(validity) = self.validity {
            config["pebble"]["certificateValidityPeriod"] = validity.as_secs().into();
        }
        let config_path = self.dir.path().join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble config");
        let log = std::fs::File::create(self.log_path()).expect("pebble log");
        let child = Command::new("pebble")
            .arg("-config")
            .arg(&config_path)
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env_remove("PEBBLE_VA_ALWAYS_VALID")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn pebble");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(20), &self.log_path());
        wait_for_port(
            self.management_port,
            Duration::from_secs(20),
            &self.log_path(),
        );
    }

    /// The directory pebble runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}
