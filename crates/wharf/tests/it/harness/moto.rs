//! S3 for the integration tests: the moto server from `wharf-storage`'s test peers (one per
//! test process), configs pointing wharf at a bucket on it, and CNCF distribution on the same
//! bucket.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use wharf_storage::testsuite::peers::{Moto, moto};

use super::wharf::wait_for_port;
use super::{free_port, require};

/// Where both registries keep the tree in the bucket, as deployments with a prefix do.
pub const ROOT: &str = "/registry";

/// The `storage:` section for `bucket` on `moto`, in distribution's keys (both servers read it).
pub fn storage_yaml(moto: &Moto, bucket: &str, redirect: bool) -> String {
    let p = moto.params(bucket);
    format!(
        "storage:\n  s3:\n    region: {region}\n    regionendpoint: {endpoint}\n    bucket: {bucket}\n    accesskey: {ak}\n    secretkey: {sk}\n    secure: false\n    rootdirectory: {ROOT}\n  delete:\n    enabled: true\n  redirect:\n    disable: {disable}\n",
        region = p.region,
        endpoint = moto.endpoint,
        ak = p.access_key.unwrap_or_default(),
        sk = p.secret_key.unwrap_or_default(),
        disable = !redirect,
    )
}

/// A whole registry config on `bucket` with `{port}` left for the harness to fill in.
pub fn config_template(moto: &Moto, bucket: &str, redirect: bool) -> String {
    format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n{}http:\n  addr: 127.0.0.1:{{port}}\n",
        storage_yaml(moto, bucket, redirect)
    )
}

/// `docker-registry` (distribution 2.8.2) serving a bucket on moto; killed when dropped.
pub struct S3Distribution {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl S3Distribution {
    /// Starts distribution on `bucket`; `None` when `docker-registry` is missing on a laptop.
    pub fn start(moto: &Moto, bucket: &str) -> Option<S3Distribution> {
        require("docker-registry")?;
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let config = config_template(moto, bucket, false).replace("{port}", &port.to_string());
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            // distribution 2.8.2's S3 driver refuses to start with AWS_CA_BUNDLE set.
            .env_remove("AWS_CA_BUNDLE")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn docker-registry");
        let d = S3Distribution {
            child: Some(child),
            port,
            dir,
        };
        wait_for_port(port, Duration::from_secs(20), &d.log_path());
        Some(d)
    }

    /// Base URL, e.g. `http://127.0.0.1:12345`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `host:port`, as docker wants it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }
}

impl Drop for S3Distribution {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
