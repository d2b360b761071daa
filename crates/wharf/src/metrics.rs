//! Prometheus metrics for `http.debug.prometheus`: a tiny registry of counters, one latency
//! histogram and gauges, rendered in the text exposition format. Hand-rolled because six series
//! do not justify a metrics facade and its exporter in the build.
//!
//! Filled by one middleware on the API router ([`track`]); knows the API only through
//! `Route::parse`, for the route label.

pub mod cache;
pub mod notify;
pub mod storage;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::api::route::Route;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Latency of one route: cumulative bucket counts, sum and count.
#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

/// Every series wharf exports. Cheap to share: one mutex for the labelled maps, atomics for the
/// rest.
#[derive(Default)]
pub struct Metrics {
    /// `http.prefix`, stripped before the route is parsed.
    prefix: String,
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    uploads_in_flight: AtomicI64,
    /// Series owned by other subsystems (storage, notifications), rendered after these.
    sources: Vec<Arc<dyn Source>>,
}

/// The route label: the spec endpoint, never the repository name (unbounded cardinality).
pub(crate) fn route_label(path: &str) -> &'static str {
    match Route::parse(path) {
        Ok(Route::Base) => "base",
        Ok(Route::Catalog) => "catalog",
        Ok(Route::Blob { .. }) => "blob",
        Ok(Route::UploadStart { .. }) => "upload_start",
        Ok(Route::Upload { .. }) => "upload",
        Ok(Route::Manifest { .. }) => "manifest",
        Ok(Route::Tags { .. }) => "tags",
        Ok(Route::Referrers { .. }) => "referrers",
        Err(_) => "unknown",
    }
}

fn content_length(headers: &http::HeaderMap) -> u64 {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl Metrics {
    /// Metrics for an API served under `prefix` (`http.prefix`).
    pub fn new(prefix: &str) -> Self {
        Metrics {
            prefix: prefix.trim_end_matches('/').to_owned(),
            ..Metrics::default()
        }
    }

    fn observe(&self, route: &'static str, method: String, status: u16, seconds: f64) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *requests.entry((route, method, status)).or_default() += 1;
        drop(requests);
        let mut latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = latency.entry(route).or_default();
        for (bucket, bound) in h.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        h.sum += seconds;
        h.count += 1;
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP wharf_http_requests_total API requests by route, method and status.\n# TYPE wharf_http_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((route, method, status), n) in requests.iter() {
            let _ = writeln!(
                out,
                "wharf_http_requests_total{{route=\"{route}\",method=\"{method}\",code=\"{status}\"}} {n}"
            );
        }
        drop(requests);
        out.push_str("# HELP wharf_http_request_duration_seconds API request latency by route.\n# TYPE wharf_http_request_duration_seconds histogram\n");
        let latency = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (route, h) in latency.iter() {
            let name = "wharf_http_request_duration_seconds";
            for (n, bound) in h.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", h.sum);
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", h.count);
        }
        drop(latency);
        let scalars = [
            (
                "wharf_http_request_bytes_total",
                "counter",
                "Request body bytes (by Content-Length).",
                self.bytes_in.load(Ordering::Relaxed) as i64,
            ),
            (
                "wharf_http_response_bytes_total",
                "counter",
                "Response body bytes (by Content-Length).",
                self.bytes_out.load(Ordering::Relaxed) as i64,
            ),
            (
                "wharf_uploads_in_flight",
                "gauge",
                "Upload requests (PATCH/PUT/POST) being received.",
                self.uploads_in_flight.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in scalars {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        for source in &self.sources {
            source.render(&mut out);
        }
        out
    }
}

/// Online GC's series: rounds, what they freed, how long the last one took.
fn render_gc(out: &mut String, gc: &crate::gc::online::Stats) {
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let counters = [
        (
            "wharf_gc_runs_total",
            "Online GC rounds run by this instance.",
            load(&gc.runs),
        ),
        (
            "wharf_gc_skipped_total",
            "Rounds skipped: another instance held the lease.",
            load(&gc.skipped),
        ),
        (
            "wharf_gc_failures_total",
            "Rounds that failed or lost the lease.",
            load(&gc.failures),
        ),
        (
            "wharf_gc_blobs_deleted_total",
            "Blobs deleted by online GC.",
            load(&gc.blobs_deleted),
        ),
        (
            "wharf_gc_bytes_freed_total",
            "Bytes of blobs deleted by online GC.",
            load(&gc.bytes_freed),
        ),
        (
            "wharf_gc_manifests_deleted_total",
            "Untagged manifests removed by online GC.",
            load(&gc.manifests_deleted),
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    }
    let eligible = load(&gc.last_eligible);
    let seconds = load(&gc.last_duration_us) as f64 / 1e6;
    let _ = writeln!(
        out,
        "# HELP wharf_gc_last_run_eligible_blobs Blobs the last round deleted or, in a dry run, would delete.\n# TYPE wharf_gc_last_run_eligible_blobs gauge\nwharf_gc_last_run_eligible_blobs {eligible}\n\
         # HELP wharf_gc_last_run_duration_seconds Duration of the last online GC round.\n# TYPE wharf_gc_last_run_duration_seconds gauge\nwharf_gc_last_run_duration_seconds {seconds}"
    );
}

impl Source for crate::gc::online::Stats {
    fn render(&self, out: &mut String) {
        render_gc(out, self);
    }
}

/// A subsystem that keeps its own series and renders them into the scrape.
pub trait Source: Send + Sync {
    /// Appends complete `# HELP`/`# TYPE` families in the text exposition format.
    fn render(&self, out: &mut String);
}

/// The decorators' counters of one registry: storage calls and descriptor cache lookups.
#[derive(Default)]
pub struct Instruments {
    /// Every storage driver call, by driver and operation.
    pub storage: Arc<storage::StorageOps>,
    /// Every blob descriptor cache lookup, by kind and result.
    pub cache: Arc<cache::CacheStats>,
}

/// Whether `config` turns Prometheus on (`http.debug.prometheus.enabled` with a debug address).
pub fn enabled(config: &crate::config::Config) -> bool {
    let debug = &config.http.debug;
    debug.prometheus.enabled && !debug.addr.is_empty()
}

impl Metrics {
    /// The same metrics, also rendering `sources` on every scrape.
    pub fn with_sources(mut self, sources: Vec<Arc<dyn Source>>) -> Self {
        self.sources = sources;
        self
    }
}

/// Decrements the in-flight gauge however the request ends (including a dropped future).
struct InFlight<'a>(Option<&'a AtomicI64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(g) = self.0 {
            g.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Middleware: counts, times and sizes every API request.
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req.uri().path();
    let route = route_label(path.strip_prefix(m.prefix.as_str()).unwrap_or(path));
    let method = req.method().as_str().to_owned();
    m.bytes_in
        .fetch_add(content_length(req.headers()), Ordering::Relaxed);
    let uploading = matches!(route, "upload" | "upload_start") && method != "GET";
    let _guard = InFlight(uploading.then(|| {
        m.uploads_in_flight.fetch_add(1, Ordering::Relaxed);
        &m.uploads_in_flight
    }));
    let resp = next.run(req).await;
    if method != "HEAD" {
        m.bytes_out
            .fetch_add(content_length(resp.headers()), Ordering::Relaxed);
    }
    m.observe(
        route,
        method,
        resp.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_labelled_by_endpoint_not_by_name() {
        for (path, label) in [
            ("/v2/", "base"),
            ("/v2/_catalog", "catalog"),
            ("/v2/a/b/manifests/latest", "manifest"),
            ("/v2/a/blobs/uploads/", "upload_start"),
            ("/v2/a/tags/list", "tags"),
            ("/nope", "unknown"),
        ] {
            assert_eq!(route_label(path), label, "{path}");
        }
    }

    #[test]
    fn gc_series_appear_only_with_online_gc() {
        assert!(!Metrics::new("").render().contains("wharf_gc_"));
        let stats = Arc::new(crate::gc::online::Stats::default());
        stats.runs.store(3, Ordering::Relaxed);
        stats.bytes_freed.store(4096, Ordering::Relaxed);
        stats.last_duration_us.store(1_500_000, Ordering::Relaxed);
        let text = Metrics::new("").with_sources(vec![stats]).render();
        assert!(text.contains("\nwharf_gc_runs_total 3\n"), "{text}");
        assert!(
            text.contains("\nwharf_gc_bytes_freed_total 4096\n"),
            "{text}"
        );
        assert!(
            text.contains("\nwharf_gc_last_run_duration_seconds 1.5\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE wharf_gc_blobs_deleted_total counter"),
            "{text}"
        );
    }

    #[test]
    fn render_shows_counters_and_cumulative_buckets() {
        let m = Metrics::new("");
        m.observe("manifest", "PUT".into(), 201, 0.02);
        m.observe("manifest", "PUT".into(), 201, 3.0);
        let text = m.render();
        assert!(text.contains(
            "wharf_http_requests_total{route=\"manifest\",method=\"PUT\",code=\"201\"} 2"
        ));
        assert!(text.contains("le=\"0.01\"} 0"), "{text}");
        assert!(text.contains("le=\"0.025\"} 1"), "{text}");
        assert!(text.contains("le=\"5\"} 2"), "{text}");
        assert!(text.contains("wharf_http_request_duration_seconds_count{route=\"manifest\"} 2"));
    }
}
