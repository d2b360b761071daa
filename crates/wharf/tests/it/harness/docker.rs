//! A private Docker engine shared by every test of one run, and a CLI handle that talks to it.
//!
//! The engine gets its own data root, exec root, socket and managed containerd under a temp
//! dir, so it never touches a system dockerd. It is tied to this test process by a pipe: a
//! small `sh` watchdog starts dockerd and stops it (SIGTERM) when its stdin reaches EOF, which
//! happens when the test process exits for any reason, SIGKILL included. A run also removes the
//! directories that earlier runs left behind once their engine is gone.
//!
//! Also home of [`run`] and [`Outcome`], which every CLI wrapper in the harness uses.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::require;

/// How long one CLI command may run before it is killed and the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Name of the base image every Docker test builds on: static busybox, imported from a tar.
pub const BUSYBOX: &str = "wharf-it/busybox-base:latest";

/// What a finished command printed and how it ended.
#[derive(Debug)]
pub struct Outcome {
    /// The command line, for failure messages.
    pub command: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Outcome {
    /// Whether the command exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics with both streams unless the command exited 0; returns self for chaining.
    #[track_caller]
    pub fn expect_ok(self) -> Outcome {
        assert!(self.success(), "command failed: {self}");
        self
    }

    /// Panics with both streams if the command exited 0; returns self for chaining.
    #[track_caller]
    pub fn expect_failure(self) -> Outcome {
        assert!(!self.success(), "command unexpectedly succeeded: {self}");
        self
    }

    /// Standard output and standard error together, for matching progress lines that a
    /// client may print on either stream.
    pub fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` ({})\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` to completion with no stdin, capturing both streams; kills it and panics when it
/// outlives [`COMMAND_TIMEOUT`], so a client retrying forever cannot hang the suite.
pub fn run(cmd: &mut Command) -> Outcome {
    let command = describe(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn `{command}`: {e}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for command") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`{command}` still running after {COMMAND_TIMEOUT:?}; killed. stdout:\n{}\nstderr:\n{}",
                stdout.join().unwrap_or_default(),
                stderr.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        command,
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stream.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|s| s.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The engine of this test run: its directory and the watchdog whose stdin keeps it alive.
struct Engine {
    dir: PathBuf,
    _watchdog: Child,
    _lifeline: ChildStdin,
}

/// A handle on the shared engine; cheap to copy around, all state lives in the engine.
#[derive(Clone, Copy)]
pub struct Docker {
    dir: &'static Path,
}

static ENGINE: OnceLock<Option<Engine>> = OnceLock::new();
static BUSYBOX_IMPORTED: OnceLock<()> = OnceLock::new();

/// Directory prefix of every engine dir, so a later run can find and clean them.
const DIR_PREFIX: &str = "wharf-it-dockerd-";

impl Docker {
    /// The shared engine, started on first use; `None` (after printing why) when `dockerd` or
    /// `docker` is missing on a laptop. Panics under CI when they are missing or do not start.
    pub fn get() -> Option<Docker> {
        let engine = ENGINE.get_or_init(|| {
            require("dockerd")?;
            require("docker")?;
            Some(Engine::start())
        });
        engine.as_ref().map(|engine| Docker { dir: &engine.dir })
    }

    /// The engine's API socket, as `DOCKER_HOST` wants it.
    pub fn host(&self) -> String {
        socket_url(self.dir)
    }

    /// A `docker` command bound to the private engine and a private client config, so neither
    /// the machine's engine nor its credential helpers are involved.
    pub fn command(&self) -> Command {
        cli(self.dir)
    }

    /// Runs `docker ARGS…` and returns what happened, success or not.
    pub fn run(&self, args: &[&str]) -> Outcome {
        run(self.command().args(args))
    }

    /// Runs `docker ARGS…` and panics unless it succeeds.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Outcome {
        self.run(args).expect_ok()
    }

    /// Ensures [`BUSYBOX`] exists in the engine: a single-layer image holding the static
    /// busybox and a few applet links, imported once per run.
    pub fn busybox(&self) -> &'static str {
        BUSYBOX_IMPORTED.get_or_init(|| {
            let tar = self.dir.join("busybox-rootfs.tar");
            write_busybox_rootfs(&tar);
            self.ok(&["import", &tar.to_string_lossy(), BUSYBOX]);
        });
        BUSYBOX
    }

    /// Builds `tag` from a context dir holding `dockerfile` and the given files (legacy
    /// builder, no network); returns the build output.
    pub fn build(&self, tag: &str, dockerfile: &str, files: &[(&str, &[u8])]) -> Outcome {
        let ctx = tempfile::tempdir_in(self.dir).expect("build context dir");
        std::fs::write(ctx.path().join("Dockerfile"), dockerfile).expect("write Dockerfile");
        for (name, content) in files {
            std::fs::write(ctx.path().join(name), content).expect("write context file");
        }
        self.ok(&[
            "build",
            "--network",
            "none",
            "-t",
            tag,
            &ctx.path().to_string_lossy(),
        ])
    }

    /// The image ID (config digest) of a local image.
    pub fn image_id(&self, image: &str) -> String {
        self.ok(&["image", "inspect", "--format", "{{.Id}}", image])
            .stdout
            .trim()
            .to_owned()
    }

    /// The `repo@sha256:…` digests the engine recorded for a local image.
    pub fn repo_digests(&self, image: &str) -> Vec<String> {
        let out = self.ok(&[
            "image",
            "inspect",
            "--format",
            "{{range .RepoDigests}}{{println .}}{{end}}",
            image,
        ]);
        out.stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// Extracts `sha256:…` from the `TAG: digest: sha256:… size: N` line `docker push` prints.
pub fn pushed_digest(push_output: &str) -> Option<String> {
    push_output.lines().find_map(|line| {
        let (_, rest) = line.split_once(" digest: ")?;
        let digest = rest.split_whitespace().next()?;
        digest.starts_with("sha256:").then(|| digest.to_owned())
    })
}

fn socket_url(dir: &Path) -> String {
    format!("unix://{}", dir.join("docker.sock").display())
}

fn cli(dir: &Path) -> Command {
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_HOST", socket_url(dir))
        .env("DOCKER_CONFIG", dir.join("client"))
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CLI_HINTS", "false");
    cmd
}

impl Engine {
    fn start() -> Engine {
        clean_stale_dirs();
        let dir = tempfile::Builder::new()
            .prefix(DIR_PREFIX)
            .tempdir()
            .expect("engine dir")
            .keep();
        std::fs::create_dir_all(dir.join("client")).expect("client config dir");
        std::fs::write(dir.join("owner.pid"), std::process::id().to_string())
            .expect("write owner pid");
        let d = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("dockerd log");
        // An empty config file, so a machine's /etc/docker/daemon.json cannot clash with ours.
        std::fs::write(dir.join("daemon.json"), "{}").expect("write daemon.json");
        // The watchdog: start dockerd, wait for stdin to close (our exit), then stop it, wait
        // (its managed containerd goes with it) and remove the engine dir.
        let script = r#"
            dir=$1
            shift
            "$@" &
            pid=$!
            cat >/dev/null
            kill -TERM "$pid" 2>/dev/null
            wait "$pid"
            rm -rf "$dir"
        "#;
        let mut watchdog = Command::new("sh")
            .args(["-c", script, "wharf-it-dockerd-watchdog"])
            .arg(&dir)
            .arg("dockerd")
            .args(["--config-file", &d("daemon.json")])
            .args([
                "--storage-driver=vfs",
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--userland-proxy=false",
            ])
            .args(["--data-root", &d("data")])
            .args(["--exec-root", &d("exec")])
            .args(["--pidfile", &d("docker.pid")])
            .args(["--host", &socket_url(&dir)])
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn dockerd watchdog");
        let lifeline = watchdog.stdin.take().expect("piped stdin");
        wait_ready(&dir);
        // Registries on loopback are spoken to over plain HTTP without configuration; the
        // tests' registries listen on 127.0.0.1 and rely on it.
        let info = run(cli(&dir).arg("info")).expect_ok();
        assert!(
            info.stdout.contains("127.0.0.0/8"),
            "dockerd does not list 127.0.0.0/8 as an insecure registry: {info}"
        );
        Engine {
            dir,
            _watchdog: watchdog,
            _lifeline: lifeline,
        }
    }
}

fn wait_ready(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(cli(dir).args(["version", "--format", "{{.Server.Version}}"]));
        if out.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "dockerd did not answer within 60s: {out}\n--- dockerd.log\n{}",
            std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Removes engine dirs of earlier runs whose test process is gone, stopping a dockerd that
/// somehow outlived its watchdog.
fn clean_stale_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let is_engine_dir = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(DIR_PREFIX));
        if !is_engine_dir || read_pid(&path.join("owner.pid")).is_some_and(alive) {
            continue;
        }
        if let Some(pid) = read_pid(&path.join("docker.pid")).filter(|&p| alive(p)) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while alive(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // vfs layers can hold read-only dirs; a failed removal is retried by the next run.
        let _ = std::fs::remove_dir_all(&path);
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Writes a tar of a minimal root filesystem: `/bin/busybox` (static) and applet symlinks.
fn write_busybox_rootfs(tar: &Path) {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .expect("busybox-static is installed (/bin/busybox)");
    let root = tar.with_extension("d");
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).expect("rootfs bin");
    std::fs::create_dir_all(root.join("tmp")).expect("rootfs tmp");
    std::fs::copy(busybox, bin.join("busybox")).expect("copy busybox");
    for applet in ["sh", "cat", "echo", "ls", "sleep", "true", "wc"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet symlink");
    }
    run(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(tar)
        .arg("."))
    .expect_ok();
}
