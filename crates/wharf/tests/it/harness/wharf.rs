//! A wharf server process on a free port with its own storage root.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A running `wharf serve`; killed when dropped.
pub struct Wharf {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra_yaml: String,
    /// A whole config with `{root}` and `{port}` placeholders, replacing the default one.
    config_template: Option<String>,
    /// Extra environment of the server process (e.g. `STORAGE_EMULATOR_HOST`).
    envs: Vec<(String, String)>,
    /// Soft and hard limits on open files the server process starts with (`prlimit`).
    open_files: Option<(u64, u64)>,
}

impl Wharf {
    /// Starts wharf with filesystem storage, deletes enabled.
    pub fn start() -> Wharf {
        Self::start_with("")
    }

    /// Starts wharf with extra top-level YAML appended to the default config (e.g. `validation:`).
    /// The default config has `storage.filesystem.rootdirectory` pointing into a temp dir and
    /// `storage.delete.enabled: true`; pass a full `storage:` section in `extra_yaml` only via
    /// [`Wharf::start_with_config`].
    pub fn start_with(extra_yaml: &str) -> Wharf {
        let mut w = Self::unstarted(free_port());
        w.extra_yaml = extra_yaml.to_owned();
        w.spawn();
        w
    }

    /// [`Wharf::start`] with the process's limits on open files set to `soft` and `hard`, as a
    /// service manager would set them.
    pub fn start_with_open_files(soft: u64, hard: u64) -> Wharf {
        let mut w = Self::unstarted(free_port());
        w.open_files = Some((soft, hard));
        w.spawn();
        w
    }

    /// Starts wharf with a whole config of its own, for tests that need a different `storage:`
    /// section (e.g. deletes disabled); `{root}` and `{port}` are replaced by the storage root
    /// and the listen port.
    pub fn start_with_config(template: &str) -> Wharf {
        Self::start_with_config_env(template, &[])
    }

    /// [`Wharf::start_with_config`] with extra environment variables for the server process.
    pub fn start_with_config_env(template: &str, envs: &[(&str, &str)]) -> Wharf {
        Self::start_on(free_port(), template, envs)
    }

    /// Like [`Wharf::start_with_config`] on a given port (chosen with [`super::free_port`]
    /// before a peer that must know it, e.g. pebble) and with extra environment variables.
    pub fn start_on(port: u16, template: &str, envs: &[(&str, &str)]) -> Wharf {
        let mut w = Self::unstarted(port);
        w.config_template = Some(template.to_owned());
        w.envs = envs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        w.spawn();
        w
    }

    /// The default server on `port`, not yet spawned.
    fn unstarted(port: u16) -> Wharf {
        Wharf {
            child: None,
            port,
            dir: tempfile::tempdir().expect("tempdir"),
            extra_yaml: String::new(),
            config_template: None,
            envs: Vec::new(),
            open_files: None,
        }
    }

    /// The storage root (the `rootdirectory` of the filesystem driver).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// Base URL, e.g. `http://127.0.0.1:12345`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `host:port`, as docker and skopeo want it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's process id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    /// The config file this server was started with.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    fn write_config(&self) {
        if let Some(template) = &self.config_template {
            let yaml = template
                .replace("{root}", &self.root().display().to_string())
                .replace("{port}", &self.port.to_string());
            std::fs::write(self.config_path(), yaml).expect("write config");
            return;
        }
        let yaml = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {root}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra}\n",
            root = self.root().display(),
            port = self.port,
            extra = self.extra_yaml,
        );
        std::fs::write(self.config_path(), yaml).expect("write config");
    }

    fn spawn(&mut self) {
        self.write_config();
        let log = std::fs::File::create(self.dir.path().join("wharf.log")).expect("log file");
        let mut command = match self.open_files {
            Some((soft, hard)) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={soft}:{hard}"))
                    .arg("--")
                    .arg(server_program());
                c
            }
            None => Command::new(server_program()),
        };
        let child = command
            .arg("serve")
            .arg(self.config_path())
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn wharf");
        self.child = Some(child);
        wait_for_port(
            self.port,
            Duration::from_secs(20),
            &self.dir.path().join("wharf.log"),
        );
    }

    /// Kills the server with SIGKILL (no draining), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same port and storage root.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The server's log so far, for assertions and failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("wharf.log")).unwrap_or_default()
    }
}

impl Drop for Wharf {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server under test: wharf, or the program named by `WHARF_IT_SERVER` (e.g.
/// `docker-registry`, which takes the same `serve CONFIG`) to check the tests' expectations
/// against distribution.
pub fn server_program() -> std::ffi::OsString {
    std::env::var_os("WHARF_IT_SERVER").unwrap_or_else(|| env!("CARGO_BIN_EXE_wharf").into())
}

/// Waits until something accepts connections on `port`, or panics with the server's log.
pub fn wait_for_port(port: u16, timeout: Duration, log: &Path) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "server did not listen on {port} within {timeout:?}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}
