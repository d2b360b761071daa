//! Notification metrics: per-endpoint queue depth and delivery counters, read from the
//! [`Notifier`] at scrape time.

use std::fmt::Write as _;

use crate::notify::{EndpointState, Notifier};

/// A label value escaped as the text format requires (endpoint names come from the config).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Appends the notification series for `endpoints`.
fn render(endpoints: &[EndpointState], out: &mut String) {
    type Field = fn(&EndpointState) -> u64;
    let families: [(&str, &str, &str, Field); 4] = [
        (
            "wharf_notifications_pending",
            "gauge",
            "Events queued for an endpoint and not yet delivered.",
            |e| e.pending,
        ),
        (
            "wharf_notifications_delivered_total",
            "counter",
            "Events an endpoint accepted.",
            |e| e.delivered,
        ),
        (
            "wharf_notifications_failures_total",
            "counter",
            "Failed delivery attempts (each retry counts).",
            |e| e.failures,
        ),
        (
            "wharf_notifications_dropped_total",
            "counter",
            "Events dropped because the endpoint's queue was full or unwritable.",
            |e| e.dropped,
        ),
    ];
    for (name, kind, help, field) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for e in endpoints {
            let _ = writeln!(
                out,
                "{name}{{endpoint=\"{}\"}} {}",
                escape(&e.name),
                field(e)
            );
        }
    }
}

impl super::Source for Notifier {
    fn render(&self, out: &mut String) {
        render(&self.endpoints(), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_endpoint_gets_its_series_with_an_escaped_label() {
        let mut out = String::new();
        render(
            &[EndpointState {
                name: "a\"b".into(),
                pending: 3,
                delivered: 1,
                failures: 7,
                dropped: 0,
            }],
            &mut out,
        );
        assert!(
            out.contains("wharf_notifications_pending{endpoint=\"a\\\"b\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("wharf_notifications_failures_total{endpoint=\"a\\\"b\"} 7\n"));
        assert!(out.contains("# TYPE wharf_notifications_pending gauge\n"));
    }
}
