//! `http.debug` with Prometheus: the debug listener's metrics move as the API is used.

use crate::harness::oci::Client;
use crate::harness::{Wharf, free_port};

/// A config with the debug server on `debug_port` and Prometheus at `/metrics`.
fn config(debug_port: u16) -> String {
    format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\n  debug:\n    addr: 127.0.0.1:{debug_port}\n    prometheus:\n      enabled: true\n      path: /metrics\n"
    )
}

/// The value of the series whose line starts with `series` (name and labels), 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(url: &str) -> String {
    let resp = reqwest::get(url).await.expect("scrape");
    assert_eq!(resp.status(), 200, "scrape {url}");
    let ct = resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        ct.starts_with("text/plain"),
        "exposition content type: {ct}"
    );
    resp.text().await.expect("metrics text")
}

#[tokio::test]
async fn a_push_moves_request_latency_and_byte_counters() {
    let debug_port = free_port();
    let wharf = Wharf::start_with_config(&config(debug_port));
    let metrics = format!("http://127.0.0.1:{debug_port}/metrics");
    let health = reqwest::get(format!("http://127.0.0.1:{debug_port}/debug/health"))
        .await
        .expect("GET /debug/health");
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("body"), "{}");

    let before = scrape(&metrics).await;
    let client = Client::new(&wharf.url());
    let (manifest, _) = client.random_image("metrics/app", 2).await;
    let after = scrape(&metrics).await;

    let put = "wharf_http_requests_total{route=\"manifest\",method=\"PUT\",code=\"201\"}";
    assert_eq!(value(&after, put) - value(&before, put), 1.0, "{after}");
    let posts = "wharf_http_requests_total{route=\"upload_start\",method=\"POST\",code=\"202\"}";
    assert_eq!(
        value(&after, posts) - value(&before, posts),
        3.0,
        "config + 2 layers"
    );
    let count = "wharf_http_request_duration_seconds_count{route=\"manifest\"}";
    assert_eq!(value(&after, count) - value(&before, count), 1.0);
    let inf = "wharf_http_request_duration_seconds_bucket{route=\"manifest\",le=\"+Inf\"}";
    assert_eq!(
        value(&after, inf),
        value(&after, count),
        "+Inf bucket holds every request"
    );
    let bytes_in = value(&after, "wharf_http_request_bytes_total")
        - value(&before, "wharf_http_request_bytes_total");
    assert!(
        bytes_in >= (2 * 1024 + manifest.len()) as f64,
        "request bytes counted: {bytes_in}"
    );
    assert_eq!(
        value(&after, "wharf_uploads_in_flight"),
        0.0,
        "no upload left open"
    );

    client
        .get("/v2/metrics/app/manifests/nope")
        .send()
        .await
        .expect("GET unknown manifest");
    let later = scrape(&metrics).await;
    let miss = "wharf_http_requests_total{route=\"manifest\",method=\"GET\",code=\"404\"}";
    assert_eq!(value(&later, miss), 1.0, "errors are counted by status");
}

#[tokio::test]
async fn a_push_shows_storage_calls_by_driver_and_operation() {
    let debug_port = free_port();
    let wharf = Wharf::start_with_config(&config(debug_port));
    let metrics = format!("http://127.0.0.1:{debug_port}/metrics");
    let before = scrape(&metrics).await;
    let client = Client::new(&wharf.url());
    client.random_image("metrics/storage", 1).await;
    let after = scrape(&metrics).await;
    for op in ["put_content", "writer", "writer_commit", "stat", "rename"] {
        let labels = format!("{{driver=\"filesystem\",operation=\"{op}\"}}");
        let count = format!("wharf_storage_operation_duration_seconds_count{labels}");
        assert!(
            value(&after, &count) > value(&before, &count),
            "{count} moved: {after}"
        );
        let inf = format!(
            "wharf_storage_operation_duration_seconds_bucket{{driver=\"filesystem\",operation=\"{op}\",le=\"+Inf\"}}"
        );
        assert_eq!(value(&after, &inf), value(&after, &count), "{op}");
        assert_eq!(
            value(&after, &format!("wharf_storage_errors_total{labels}")),
            0.0,
            "a clean push has no storage errors"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_blob_heads_are_answered_by_the_descriptor_cache() {
    let debug_port = free_port();
    let wharf = Wharf::start_with_config(&config(debug_port));
    let metrics = format!("http://127.0.0.1:{debug_port}/metrics");
    let (manifest, _) = Client::new(&wharf.url())
        .random_image("metrics/cache", 1)
        .await;
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest json");
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer digest");
    let series = |kind: &str, result: &str| {
        format!(
            "wharf_blob_descriptor_cache_lookups_total{{cache=\"inmemory\",kind=\"{kind}\",result=\"{result}\"}}"
        )
    };
    let before = scrape(&metrics).await;
    let http = reqwest::Client::new();
    for _ in 0..5 {
        let resp = http
            .head(format!("{}/v2/metrics/cache/blobs/{layer}", wharf.url()))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(resp.status(), 200);
    }
    let after = scrape(&metrics).await;
    for kind in ["size", "membership"] {
        let hits = value(&after, &series(kind, "hit")) - value(&before, &series(kind, "hit"));
        assert_eq!(hits, 5.0, "{kind} hits: {after}");
        assert_eq!(
            value(&after, &series(kind, "error")),
            0.0,
            "no cache errors: {after}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_shows_its_queue_depth_and_failures() {
    let debug_port = free_port();
    let dead = free_port();
    let wharf = Wharf::start_with_config(&format!(
        "{}notifications:\n  endpoints:\n    - name: dead\n      url: http://127.0.0.1:{dead}/hook\n      timeout: 1s\n      threshold: 100\n",
        config(debug_port)
    ));
    let metrics = format!("http://127.0.0.1:{debug_port}/metrics");
    let pending = "wharf_notifications_pending{endpoint=\"dead\"}";
    let failures = "wharf_notifications_failures_total{endpoint=\"dead\"}";
    let first = scrape(&metrics).await;
    assert!(
        first.contains(pending),
        "the gauge exists at start: {first}"
    );
    assert_eq!(value(&first, pending), 0.0);

    let client = Client::new(&wharf.url());
    client.random_image("metrics/notify", 1).await;
    let after = scrape(&metrics).await;
    assert_eq!(
        value(&after, pending),
        3.0,
        "config, layer and manifest pushes wait: {after}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = scrape(&metrics).await;
        if value(&now, failures) >= 2.0 {
            assert_eq!(value(&now, pending), 3.0, "nothing was delivered");
            assert_eq!(
                value(
                    &now,
                    "wharf_notifications_delivered_total{endpoint=\"dead\"}"
                ),
                0.0
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "failures never counted: {now}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
