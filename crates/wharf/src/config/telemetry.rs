//! `tracing:`: wharf's own section (not a distribution key) for OpenTelemetry traces over
//! OTLP/HTTP protobuf, one span per API request. distribution 3 is configured only by the
//! standard `OTEL_*` variables, which wharf honours too (`crate::reporting::otlp`); this section
//! makes the same settings reachable from `config.yml` and `REGISTRY_TRACING_*`.
//!
//! Being wharf's own section it uses `deny_unknown_fields`, like `token:`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::tree::Node;
use super::typed::Ctx;

/// `tracing:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// `enabled`: export spans (default true once the section exists).
    pub enabled: bool,
    /// `endpoint`: the collector's base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT`
    /// (`/v1/traces` is appended); empty means the `OTEL_*` variables or `http://localhost:4318`.
    pub endpoint: String,
    /// `headers`: extra request headers (often an API key), masked everywhere.
    pub headers: BTreeMap<String, Secret>,
    /// `servicename`: `service.name` of the spans; empty means `OTEL_SERVICE_NAME` or `wharf`.
    #[serde(rename = "servicename")]
    pub service_name: String,
    /// `samplingratio`: fraction of requests traced, 0.0 to 1.0 (default 1.0).
    #[serde(rename = "samplingratio")]
    pub sampling_ratio: f64,
}

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            enabled: true,
            endpoint: String::new(),
            headers: BTreeMap::new(),
            service_name: String::new(),
            sampling_ratio: 1.0,
        }
    }
}

/// Reads `tracing:`; `Some(None)` when the section is absent.
pub(crate) fn from_node(node: &Node, ctx: &mut Ctx) -> Option<Option<TracingConfig>> {
    if matches!(node, Node::Null) {
        return Some(None);
    }
    let t: TracingConfig = ctx.typed(node, "tracing")?;
    if !(0.0..=1.0).contains(&t.sampling_ratio) {
        ctx.error(format!(
            "tracing.samplingratio: expected a fraction from 0.0 to 1.0, got {}",
            t.sampling_ratio
        ));
        return None;
    }
    let endpoint = t.endpoint.trim();
    if !endpoint.is_empty() && !endpoint.starts_with("http://") && !endpoint.starts_with("https://")
    {
        ctx.error(format!(
            "tracing.endpoint: expected an http:// or https:// URL, got {endpoint:?}"
        ));
        return None;
    }
    Some(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;

    fn read(yaml: &str) -> (Option<Option<TracingConfig>>, Vec<String>) {
        let mut ctx = Ctx::default();
        let t = from_node(&parse_yaml(yaml).unwrap(), &mut ctx);
        (t, ctx.errors)
    }

    #[test]
    fn a_section_enables_tracing_with_defaults() {
        let (t, errors) = read("endpoint: http://collector:4318\nheaders:\n  x-token: s3cret\n");
        assert!(errors.is_empty(), "{errors:?}");
        let t = t.unwrap().unwrap();
        assert!(t.enabled);
        assert_eq!(t.sampling_ratio, 1.0);
        assert_eq!(t.headers["x-token"].expose(), "s3cret");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(read("").0, Some(None));
    }

    #[test]
    fn bad_ratio_endpoint_and_unknown_keys_are_errors() {
        let (t, errors) = read("samplingratio: 1.5\n");
        assert!(t.is_none());
        assert_eq!(
            errors,
            ["tracing.samplingratio: expected a fraction from 0.0 to 1.0, got 1.5"]
        );
        let (_, errors) = read("endpoint: collector:4318\n");
        assert!(
            errors[0].starts_with("tracing.endpoint: expected"),
            "{errors:?}"
        );
        let (_, errors) = read("servicenme: x\n");
        assert!(errors[0].contains("servicenme"), "{errors:?}");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn registry_variables_reach_tracing_and_newrelic() {
        use crate::config::Config;
        let yaml = "version: 0.1\nstorage: inmemory\n";
        let c = Config::parse(yaml, &[]).unwrap().config;
        assert_eq!(c.tracing, None);
        let loaded = Config::parse(
            yaml,
            &env(&[
                ("REGISTRY_TRACING_ENDPOINT", "http://collector:4318"),
                ("REGISTRY_TRACING_SERVICENAME", "registry-eu"),
                ("REGISTRY_TRACING_SAMPLINGRATIO", "0.25"),
                ("REGISTRY_TRACING_HEADERS_AUTHORIZATION", "Bearer tok3n"),
                ("REGISTRY_REPORTING_NEWRELIC_LICENSEKEY", "nr-l1cense"),
                (
                    "REGISTRY_REPORTING_NEWRELIC_ENDPOINT",
                    "https://otlp.eu01.nr-data.net:4318",
                ),
            ]),
        )
        .unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let c = loaded.config;
        let t = c.tracing.as_ref().unwrap();
        assert!(t.enabled);
        assert_eq!(t.endpoint, "http://collector:4318");
        assert_eq!(t.service_name, "registry-eu");
        assert_eq!(t.sampling_ratio, 0.25);
        assert_eq!(t.headers["authorization"].expose(), "Bearer tok3n");
        let nr = &c.reporting.new_relic;
        assert_eq!(nr.endpoint, "https://otlp.eu01.nr-data.net:4318");
        assert!(c.unsupported().is_empty(), "{:?}", c.unsupported());
        let shown = format!("{}{c:?}", c.redacted_yaml());
        assert!(
            !shown.contains("tok3n") && !shown.contains("nr-l1cense"),
            "{shown}"
        );
        assert!(c.redacted_yaml().contains("samplingratio: 0.25"));
        let off = Config::parse(&format!("{yaml}tracing:\n  enabled: false\n"), &[]).unwrap();
        assert!(!off.config.tracing.unwrap().enabled);
    }
}
