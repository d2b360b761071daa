//! CNCF distribution (`docker-registry serve`, registry:2) on a free port, as the reference that
//! wharf must match byte for byte on disk and closely on the wire.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::wharf::wait_for_port;
use super::{free_port, require};

/// A running `docker-registry`; killed when dropped. Its storage root may be shared with a
/// [`super::Wharf`] (one server at a time) to check that both read what the other wrote.
pub struct Distribution {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Distribution {
    /// Starts distribution on a fresh storage root; `None` when `docker-registry` is missing
    /// on a laptop (panics under CI).
    pub fn start() -> Option<Distribution> {
        Self::start_inner(None)
    }

    /// Starts distribution serving an existing filesystem storage root (deletes enabled).
    pub fn start_at(root: &Path) -> Option<Distribution> {
        Self::start_inner(Some(root.to_owned()))
    }

    fn start_inner(root: Option<PathBuf>) -> Option<Distribution> {
        require("docker-registry")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = root.unwrap_or_else(|| dir.path().join("root"));
        let mut d = Distribution {
            child: None,
            port: free_port(),
            dir,
            root,
        };
        d.spawn();
        Some(d)
    }

    /// Base URL, e.g. `http://127.0.0.1:12345`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `host:port`, as docker and skopeo want it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The filesystem storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Stops the registry (SIGKILL: distribution keeps no state that a clean stop would save).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    fn spawn(&mut self) {
        // No cache section: the in-memory blob descriptor cache would only hide what is on disk.
        let config = format!(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            root = self.root.display(),
            port = self.port,
        );
        let config_path = self.dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(self.log_path()).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn docker-registry");
        self.child = Some(child);
        wait_for_port(self.port, Duration::from_secs(20), &self.log_path());
    }
}

impl Drop for Distribution {
    fn drop(&mut self) {
        self.stop();
    }
}
