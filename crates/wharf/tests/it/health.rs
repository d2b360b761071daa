//! `health:` checks: `/debug/health` and the API turn to 503 while a check fails, and back.

use std::time::{Duration, Instant};

use crate::harness::oci::{Client, errors};
use crate::harness::{Wharf, free_port};

/// Polls `/debug/health` until it answers `want`, returning the body; panics after 10 s.
async fn wait_for_health(debug_port: u16, want: u16) -> String {
    let url = format!("http://127.0.0.1:{debug_port}/debug/health");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let resp = reqwest::get(&url).await.expect("GET /debug/health");
        let status = resp.status().as_u16();
        let body = resp.text().await.expect("health body");
        if status == want {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "health stayed {status} ({body}), expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn base_status(wharf: &Wharf) -> reqwest::Response {
    Client::new(&wharf.url())
        .get("/v2/")
        .send()
        .await
        .expect("GET /v2/")
}

#[tokio::test]
async fn unwritable_storage_root_turns_health_and_api_to_503_until_it_recovers() {
    let debug_port = free_port();
    let wharf = Wharf::start_with_config(&format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\n  debug:\n    addr: 127.0.0.1:{debug_port}\nhealth:\n  storagedriver:\n    enabled: true\n    interval: 100ms\n    threshold: 2\n"
    ));
    wait_for_health(debug_port, 200).await;
    assert_eq!(base_status(&wharf).await.status(), 200);

    // Tests run as root, for whom permission bits do not bind: a file where the root directory
    // was makes every write under it fail, as a read-only or vanished volume would.
    let root = wharf.root();
    let moved = root.with_extension("moved");
    std::fs::rename(&root, &moved).expect("move storage root away");
    std::fs::write(&root, b"not a directory").expect("file in its place");

    let body = wait_for_health(debug_port, 503).await;
    assert!(
        body.contains("storagedriver_filesystem"),
        "names the check: {body}"
    );
    let resp = base_status(&wharf).await;
    assert_eq!(resp.status(), 503);
    assert_eq!(errors(resp).await, ["UNAVAILABLE"]);

    std::fs::remove_file(&root).expect("remove the file");
    std::fs::rename(&moved, &root).expect("restore storage root");
    assert_eq!(wait_for_health(debug_port, 200).await, "{}");
    assert_eq!(base_status(&wharf).await.status(), 200);
}

#[tokio::test]
async fn a_present_drain_file_marks_the_registry_unhealthy() {
    let debug_port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let drain = dir.path().join("drain");
    let wharf = Wharf::start_with_config(&format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\n  debug:\n    addr: 127.0.0.1:{debug_port}\nhealth:\n  file:\n    - file: {}\n      interval: 100ms\n",
        drain.display()
    ));
    wait_for_health(debug_port, 200).await;
    std::fs::write(&drain, b"").expect("create drain file");
    let body = wait_for_health(debug_port, 503).await;
    assert!(body.contains("file exists"), "{body}");
    assert_eq!(base_status(&wharf).await.status(), 503);
    std::fs::remove_file(&drain).expect("remove drain file");
    wait_for_health(debug_port, 200).await;
    assert_eq!(base_status(&wharf).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_tcp_checks_follow_the_probed_service() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let up = Arc::new(AtomicBool::new(true));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind probe target");
    let target = listener.local_addr().expect("addr");
    let flag = up.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let flag = flag.clone();
        async move {
            assert_eq!(
                req.method(),
                http::Method::HEAD,
                "distribution probes with HEAD"
            );
            assert_eq!(req.headers()["x-probe"], "wharf");
            if flag.load(Ordering::SeqCst) {
                http::StatusCode::NO_CONTENT
            } else {
                http::StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });

    let debug_port = free_port();
    let _wharf = Wharf::start_with_config(&format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\n  debug:\n    addr: 127.0.0.1:{debug_port}\nhealth:\n  http:\n    - uri: http://{target}/ping\n      headers:\n        X-Probe: [wharf]\n      statuscode: 204\n      timeout: 1s\n      interval: 100ms\n  tcp:\n    - addr: {target}\n      timeout: 1s\n      interval: 100ms\n"
    ));
    wait_for_health(debug_port, 200).await;
    up.store(false, Ordering::SeqCst);
    let body = wait_for_health(debug_port, 503).await;
    assert!(body.contains("answered 500, expected 204"), "{body}");
    assert!(
        !body.contains(&format!("\"{target}\"")),
        "tcp still connects: {body}"
    );
    up.store(true, Ordering::SeqCst);
    wait_for_health(debug_port, 200).await;
}
