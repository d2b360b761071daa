//! Starting and stopping the servers and clients the integration tests talk to.

#![allow(dead_code)]

pub mod azurite;
pub mod certs;
pub mod distribution;
pub mod docker;
pub mod garbage;
pub mod gcs;
pub mod moto;
pub mod nginx;
pub mod oci;
pub mod pebble;
pub mod podman;
pub mod redis;
pub mod skopeo;
pub mod swift;
pub mod wharf;

pub use self::wharf::Wharf;

use std::net::TcpListener;

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// Whether a missing outside program must fail the test (CI) or only skip it (a laptop).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Finds `program` on PATH; when absent, panics under CI and otherwise prints why and returns None.
pub fn require(program: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !in_ci(),
            "{program} is required when CI=true but is not on PATH"
        );
        eprintln!("SKIP: {program} not found on PATH");
    }
    found
}
