//! One log event as the hooks see it: level, target, message and the other fields as text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use tracing::field::{Field, Visit};

/// A log event copied out of the subscriber, to be sent later by a sender task.
#[derive(Debug, Clone)]
pub(crate) struct Captured {
    /// `ERROR`, `WARN`…
    pub(crate) level: tracing::Level,
    /// The module that logged it.
    pub(crate) target: String,
    /// The event's message.
    pub(crate) message: String,
    /// The other fields, rendered.
    pub(crate) fields: BTreeMap<String, String>,
    /// When it happened.
    pub(crate) time: std::time::SystemTime,
}

impl Captured {
    /// Copies `event` (called from a layer's `on_event`).
    pub(crate) fn from_event(event: &tracing::Event<'_>) -> Captured {
        let mut v = Visitor::default();
        event.record(&mut v);
        let meta = event.metadata();
        Captured {
            level: *meta.level(),
            target: meta.target().to_owned(),
            message: v.message,
            fields: v.fields,
            time: std::time::SystemTime::now(),
        }
    }

    /// `key: value` lines of the fields, target included.
    pub(crate) fn field_lines(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "target: {}", self.target);
        for (k, v) in &self.fields {
            let _ = writeln!(out, "{k}: {v}");
        }
        out
    }
}

#[derive(Default)]
struct Visitor {
    message: String,
    fields: BTreeMap<String, String>,
}

impl Visit for Visitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Visitor {
    fn put(&mut self, field: &Field, text: String) {
        if field.name() == "message" {
            self.message = text;
        } else {
            self.fields.insert(field.name().to_owned(), text);
        }
    }
}
