//! GCS for the integration tests: fake-gcs-server from `wharf-storage`'s test peers (one per
//! test process), reached the way distribution reaches an emulator: `STORAGE_EMULATOR_HOST`.

pub use wharf_storage::testsuite::peers::{FakeGcs, fake_gcs};

use super::Wharf;

/// A whole wharf config on `bucket`, with `{port}` left for the harness; `keyfile` adds a
/// service-account key, which makes blob GETs redirect to signed URLs.
pub fn config_template(bucket: &str, keyfile: Option<&std::path::Path>) -> String {
    let keyfile = keyfile
        .map(|k| format!("    keyfile: {}\n", k.display()))
        .unwrap_or_default();
    format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  gcs:\n    bucket: {bucket}\n    rootdirectory: /registry\n    chunksize: 1048576\n{keyfile}  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{{port}}\n",
    )
}

/// wharf on `bucket` of `gcs`.
pub fn wharf_on(gcs: &FakeGcs, bucket: &str, keyfile: Option<&std::path::Path>) -> Wharf {
    let host = gcs.endpoint.trim_start_matches("http://");
    Wharf::start_with_config_env(
        &config_template(bucket, keyfile),
        &[("STORAGE_EMULATOR_HOST", host)],
    )
}

/// A service-account key file with a fresh RSA key (made by `openssl`; no key is committed).
pub fn service_account_keyfile(dir: &std::path::Path) -> std::path::PathBuf {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl makes the test's RSA key");
    assert!(out.status.success(), "openssl genpkey failed");
    let key = serde_json::json!({
        "type": "service_account",
        "project_id": "wharf-test",
        "private_key_id": "0123",
        "private_key": String::from_utf8(out.stdout).expect("PEM is text"),
        "client_email": "wharf@wharf-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    });
    let path = dir.join("gcs-key.json");
    std::fs::write(&path, key.to_string()).expect("write keyfile");
    path
}
