//! Swift for the integration tests: the single-node Swift from `wharf-storage`'s test peers (one
//! per test process), logged into with tempauth (v1) as `test:tester`.

pub use wharf_storage::testsuite::peers::{Saio, saio};

use super::Wharf;

/// A whole wharf config on a fresh `container`, with `{port}` left for the harness;
/// `secretkey` makes blob GETs redirect to TempURLs.
pub fn config_template(saio: &Saio, container: &str, secret_key: Option<&str>) -> String {
    let secret = secret_key
        .map(|k| format!("    secretkey: {k}\n"))
        .unwrap_or_default();
    format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\nstorage:\n  swift:\n    authurl: {}\n    username: test:tester\n    password: testing\n    container: {container}\n    prefix: /registry\n    chunksize: 1048576\n{secret}  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{{port}}\n",
        saio.auth_url
    )
}

/// wharf on `container` of `saio`.
pub fn wharf_on(saio: &Saio, container: &str, secret_key: Option<&str>) -> Wharf {
    Wharf::start_with_config(&config_template(saio, container, secret_key))
}

/// A fresh container name (the driver creates it).
pub fn container() -> String {
    format!("wharf-it-{}", uuid::Uuid::new_v4().simple())
}
