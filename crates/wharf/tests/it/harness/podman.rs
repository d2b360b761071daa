//! podman and buildah, each on a private vfs store in a temp dir, so tests never share image
//! storage with each other or with the machine.

use std::path::Path;
use std::process::Command;

use super::docker::{Outcome, run};
use super::require;

/// Global flags that point a containers/storage tool at a private store.
fn store_flags(cmd: &mut Command, dir: &Path) {
    cmd.arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .args(["--storage-driver", "vfs"]);
}

/// A podman with its own store, running as root without systemd.
pub struct Podman {
    dir: tempfile::TempDir,
}

impl Podman {
    /// `None` when podman is missing on a laptop (panics under CI).
    pub fn new() -> Option<Podman> {
        require("podman")?;
        Some(Podman {
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    /// Runs `podman <store flags> ARGS…`; pass `--tls-verify=false` for an HTTP registry.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let mut cmd = Command::new("podman");
        store_flags(&mut cmd, self.dir.path());
        cmd.arg("--tmpdir")
            .arg(self.dir.path().join("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"])
            .args(args);
        run(&mut cmd)
    }

    /// Runs podman and panics unless it succeeds.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Outcome {
        self.run(args).expect_ok()
    }
}

/// A buildah with its own store.
pub struct Buildah {
    dir: tempfile::TempDir,
}

impl Buildah {
    /// `None` when buildah is missing on a laptop (panics under CI).
    pub fn new() -> Option<Buildah> {
        require("buildah")?;
        Some(Buildah {
            dir: tempfile::tempdir().expect("tempdir"),
        })
    }

    /// A scratch dir next to the store, for build inputs and digest files.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `buildah <store flags> ARGS…`.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let mut cmd = Command::new("buildah");
        store_flags(&mut cmd, self.dir.path());
        cmd.args(args);
        run(&mut cmd)
    }

    /// Runs buildah and panics unless it succeeds.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Outcome {
        self.run(args).expect_ok()
    }
}
