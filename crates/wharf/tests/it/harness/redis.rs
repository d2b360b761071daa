//! A redis-server of one test on a free port of 127.0.0.1, nothing persisted; killed when
//! dropped, and restartable on the same port to test a cache that comes back.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::certs::Pki;
use super::wharf::wait_for_port;
use super::{free_port, require};

/// A running `redis-server`.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// Server-side TLS arguments, empty for plain TCP.
    tls: Vec<String>,
    /// The same PKI's files for `redis-cli`.
    cli_tls: Vec<String>,
    /// `redis.tls` for wharf: the client certificate and the CA.
    tls_yaml: String,
}

impl Redis {
    /// Starts redis; `None` (after printing why) when `redis-server` is missing on a laptop.
    pub fn start() -> Option<Redis> {
        require("redis-server")?;
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
            tls: Vec::new(),
            cli_tls: Vec::new(),
            tls_yaml: String::new(),
        };
        r.spawn();
        Some(r)
    }

    /// Starts redis serving TLS only, with `pki`'s server certificate, and requiring a client
    /// certificate signed by its CA.
    pub fn start_tls(pki: &Pki) -> Option<Redis> {
        require("redis-server")?;
        let p = |name: &str| pki.path(name).display().to_string();
        let port = free_port();
        let mut r = Redis {
            child: None,
            port,
            dir: tempfile::tempdir().expect("tempdir"),
            tls: vec![
                "--port".into(),
                "0".into(),
                "--tls-port".into(),
                port.to_string(),
                "--tls-cert-file".into(),
                p("server.crt"),
                "--tls-key-file".into(),
                p("server.key"),
                "--tls-ca-cert-file".into(),
                p("ca.crt"),
                "--tls-auth-clients".into(),
                "yes".into(),
            ],
            cli_tls: vec![
                "--tls".into(),
                "--cacert".into(),
                p("ca.crt"),
                "--cert".into(),
                p("client.crt"),
                "--key".into(),
                p("client.key"),
            ],
            tls_yaml: format!(
                "  tls:\n    enabled: true\n    certificate: {}\n    key: {}\n    clientcas: [{}]\n",
                p("client.crt"),
                p("client.key"),
                p("ca.crt")
            ),
        };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("redis log");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            // with TLS, the later --port 0 turns the plain port off
            .args(&self.tls)
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(10), &self.log_path());
    }

    /// `127.0.0.1:<port>`, as `redis.addr` wants it.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The `redis:` section that makes wharf use this server (with `tls` when it serves TLS).
    pub fn redis_yaml(&self) -> String {
        format!(
            "redis:\n  addr: {}\n  dialtimeout: 1s\n  readtimeout: 1s\n  writetimeout: 1s\n{}",
            self.addr(),
            self.tls_yaml
        )
    }

    /// SIGKILLs the server, as a crash or a network cut would look to its clients.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Runs one command with `redis-cli` and returns its output, e.g. `["SMEMBERS", key]`.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(&self.cli_tls)
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
