//! OTLP/HTTP (protobuf) trace export: one server span per API request, batched by the
//! OpenTelemetry SDK on a thread of its own.
//!
//! Two sources can ask for it, each getting its own exporter: the `tracing:` section or the
//! standard `OTEL_*` variables (distribution 3's only switch), and `reporting.newrelic`, sent to
//! New Relic's OTLP endpoint with the license key as `api-key` instead of through a Go agent.

use std::collections::HashMap;
use std::time::SystemTime;

use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::runtime::TokioCurrentThread;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

use super::{Error, SELF_TARGET};
use crate::api::route::Route;
use crate::config::Config;

/// New Relic's US OTLP endpoint (`reporting.newrelic.endpoint` overrides it).
pub const NEW_RELIC_ENDPOINT: &str = "https://otlp.nr-data.net:4318";

/// The standard variables wharf reads (they are not `REGISTRY_*`, so `config` ignores them).
pub const OTEL_VARS: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SERVICE_NAME",
];

/// True when the `OTEL_*` variables ask for OTLP traces: `OTEL_TRACES_EXPORTER=otlp`, or an
/// OTLP endpoint set (unless `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`).
pub fn otel_requested(env: &[(String, String)]) -> bool {
    let get = |key: &str| {
        env.iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    };
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return false;
    }
    if let Some(exporters) = get("OTEL_TRACES_EXPORTER") {
        return exporters
            .split(',')
            .any(|e| e.trim().eq_ignore_ascii_case("otlp"));
    }
    get("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
}

/// One configured exporter and its provider (flushed at shutdown).
pub(crate) struct Exporter {
    key: &'static str,
    provider: SdkTracerProvider,
}

/// What the middleware records spans with.
pub(crate) struct Tracer(SdkTracer);

/// One finished request, as the span describes it.
pub(crate) struct RequestInfo<'a> {
    pub(crate) start: SystemTime,
    pub(crate) method: &'a str,
    /// The path with `http.prefix` stripped.
    pub(crate) path: &'a str,
    pub(crate) status: u16,
    pub(crate) request_bytes: Option<u64>,
    pub(crate) response_bytes: Option<u64>,
    /// The caller's span from a W3C `traceparent` header, if any.
    pub(crate) parent: &'a Context,
}

/// The caller's trace context (W3C `traceparent`/`tracestate`), so wharf's span joins the
/// client's trace; an empty context when the headers are absent or malformed.
pub(crate) fn parent_context(headers: &http::HeaderMap) -> Context {
    TraceContextPropagator::new().extract_with_context(&Context::new(), &Headers(headers))
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The exporters `config` and `env` ask for.
pub(crate) fn start(config: &Config, env: &[(String, String)]) -> Result<Vec<Exporter>, Error> {
    let mut out = Vec::new();
    let env_service = env
        .iter()
        .any(|(k, v)| k == "OTEL_SERVICE_NAME" && !v.trim().is_empty());
    match &config.tracing {
        Some(t) if t.enabled => {
            let endpoint = t.endpoint.trim();
            let service = match t.service_name.trim() {
                "" if env_service => None,
                "" => Some("wharf".to_owned()),
                s => Some(s.to_owned()),
            };
            let headers = t
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.expose().to_owned()))
                .collect();
            let endpoint = (!endpoint.is_empty()).then(|| traces_url(endpoint));
            out.push(exporter(
                "tracing",
                endpoint,
                headers,
                service,
                t.sampling_ratio,
            )?);
        }
        Some(_) => {}
        None if otel_requested(env) => {
            let service = (!env_service).then(|| "wharf".to_owned());
            out.push(exporter("tracing", None, HashMap::new(), service, 1.0)?);
        }
        None => {}
    }
    let nr = &config.reporting.new_relic;
    if let Some(key) = &nr.license_key {
        let base = match nr.endpoint.trim() {
            "" => NEW_RELIC_ENDPOINT,
            e => e,
        };
        let service = match nr.name.trim() {
            "" => "wharf",
            n => n,
        };
        let headers = HashMap::from([("api-key".to_owned(), key.expose().to_owned())]);
        let url = traces_url(base);
        if nr.verbose {
            tracing::info!(target: SELF_TARGET, endpoint = %url, service, "newrelic: exporting request spans over OTLP");
        }
        out.push(exporter(
            "reporting.newrelic",
            Some(url),
            headers,
            Some(service.to_owned()),
            1.0,
        )?);
    }
    Ok(out)
}

/// `base` + `/v1/traces`, as the OTLP spec builds a signal URL from a base endpoint.
fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

fn exporter(
    key: &'static str,
    url: Option<String>,
    headers: HashMap<String, String>,
    service: Option<String>,
    ratio: f64,
) -> Result<Exporter, Error> {
    let fail = |reason: String| Error::Otlp { key, reason };
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    if let Some(url) = url {
        builder = builder.with_endpoint(url);
    }
    if !headers.is_empty() {
        builder = builder.with_headers(headers);
    }
    let exporter = builder.build().map_err(|e| fail(e.to_string()))?;
    let processor = BatchSpanProcessor::builder(exporter, TokioCurrentThread).build();
    let mut resource = Resource::builder();
    if let Some(s) = service {
        resource = resource.with_service_name(s);
    }
    let sampler = if ratio >= 1.0 {
        Sampler::AlwaysOn
    } else {
        Sampler::TraceIdRatioBased(ratio)
    };
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_sampler(sampler)
        .with_resource(resource.build())
        .build();
    Ok(Exporter { key, provider })
}

impl Exporter {
    /// A tracer of this exporter, for the middleware.
    pub(crate) fn tracer(&self) -> Tracer {
        Tracer(self.provider.tracer("wharf"))
    }

    /// `tracing` or `reporting.newrelic`.
    pub(crate) fn key(&self) -> &'static str {
        self.key
    }

    /// Exports what is still batched.
    pub(crate) fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(target: SELF_TARGET, exporter = self.key, error = %e, "OTLP: flushing spans at shutdown");
        }
    }
}

impl Tracer {
    /// Records one server span for a finished request: name `METHOD route`, the semantic
    /// convention's HTTP attributes, and the repository.
    pub(crate) fn record(&self, r: &RequestInfo<'_>) {
        let route = Route::parse(r.path).ok();
        let label = crate::metrics::route_label(r.path);
        let mut attrs = vec![
            KeyValue::new("http.request.method", r.method.to_owned()),
            KeyValue::new("http.route", label),
            KeyValue::new("url.path", r.path.to_owned()),
            KeyValue::new("http.response.status_code", i64::from(r.status)),
        ];
        if let Some(name) = route.as_ref().and_then(Route::name) {
            attrs.push(KeyValue::new("wharf.repository", name.to_string()));
        }
        if let Some(n) = r.request_bytes {
            attrs.push(KeyValue::new("http.request.body.size", n as i64));
        }
        if let Some(n) = r.response_bytes {
            attrs.push(KeyValue::new("http.response.body.size", n as i64));
        }
        let mut span = self
            .0
            .span_builder(format!("{} {label}", r.method))
            .with_kind(SpanKind::Server)
            .with_start_time(r.start)
            .with_attributes(attrs)
            .start_with_context(&self.0, r.parent);
        if r.status >= 500 {
            span.set_status(Status::error(format!("HTTP {}", r.status)));
        }
        span.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn otel_variables_switch_export_on_and_off() {
        assert!(!otel_requested(&env(&[])));
        assert!(otel_requested(&env(&[("OTEL_TRACES_EXPORTER", "otlp")])));
        assert!(otel_requested(&env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://c:4318"
        )])));
        assert!(otel_requested(&env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces"
        )])));
        assert!(!otel_requested(&env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ])));
        assert!(!otel_requested(&env(&[
            ("OTEL_TRACES_EXPORTER", "otlp"),
            ("OTEL_SDK_DISABLED", "true"),
        ])));
    }

    #[test]
    fn signal_url_from_a_base() {
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url(NEW_RELIC_ENDPOINT),
            "https://otlp.nr-data.net:4318/v1/traces"
        );
    }
}
