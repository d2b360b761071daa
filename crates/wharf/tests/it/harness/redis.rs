//! A redis-server of one test on a free port of 127.0.0.1, nothing persisted; killed when
//! dropped, and restartable on the same port to test a cache that comes back.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wharf::wait_for_port;
use super::{free_port, require};

/// A running `redis-server`.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts redis; `None` (after printing why) when `redis-server` is missing on a laptop.
    pub fn start() -> Option<Redis> {
        require("redis-server")?;
        let mut r = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
        };
        r.spawn();
        Some(r)
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.log_path()).expect("redis log");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
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

    /// The `redis:` section and `storage.cache` keys that make wharf use this server; append
    /// the first to a config and put the second under `storage:`.
    pub fn redis_yaml(&self) -> String {
        format!(
            "redis:\n  addr: {}\n  dialtimeout: 1s\n  readtimeout: 1s\n  writetimeout: 1s\n",
            self.addr()
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
