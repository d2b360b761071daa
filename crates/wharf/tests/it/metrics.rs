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
