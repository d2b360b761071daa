//! Log output as `log:` asks: level, text, json or logstash (json with `@timestamp` and
//! `@version`, as logrus' logstash formatter writes it), and the static `log.fields` on every
//! line, as distribution adds them.

use std::io::Write;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::{LogConfig, LogFormatter, LogLevel};
use crate::reporting::BoxedLayer;

/// Installs the global subscriber; `RUST_LOG` overrides `log.level` for debugging. `hooks` are
/// the reporting layers (mail, Bugsnag), each filtered by its own levels, not by `log.level`.
pub fn init(log: &LogConfig, hooks: Vec<BoxedLayer>) -> anyhow::Result<()> {
    let level = match log.level {
        LogLevel::Error => "error",
        LogLevel::Warn => "warn",
        LogLevel::Info => "info",
        LogLevel::Debug => "debug",
        LogLevel::Trace => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let json = matches!(log.formatter, LogFormatter::Json | LogFormatter::Logstash);
    let logstash = log.formatter == LogFormatter::Logstash;
    let writer = FieldsWriter::new(&log.fields, json, logstash);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let fmt: BoxedLayer = if json {
        fmt.json().flatten_event(true).boxed()
    } else {
        fmt.boxed()
    };
    let mut layers = vec![fmt.with_filter(filter).boxed()];
    layers.extend(hooks);
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
}

/// Writes each formatted event to stderr with `log.fields` added: as leading keys of the JSON
/// object (after logstash's `@version`, its timestamp key renamed `@timestamp`), or as trailing
/// `key=value` pairs of a text line. The formatter hands over one whole
/// event per write, which is what makes the splice safe.
#[derive(Clone)]
struct FieldsWriter {
    /// Pre-rendered fields: `"k":"v",` for JSON, ` k=v` for text; empty when none.
    rendered: std::sync::Arc<Vec<u8>>,
    json: bool,
    /// Rename the formatter's leading `"timestamp"` key to logstash's `"@timestamp"`.
    logstash: bool,
}

impl FieldsWriter {
    fn new(
        fields: &std::collections::BTreeMap<String, String>,
        json: bool,
        logstash: bool,
    ) -> Self {
        let mut rendered = Vec::new();
        if logstash {
            rendered.extend_from_slice(br#""@version":"1","#);
        }
        for (k, v) in fields {
            if json {
                let pair = format!("{}:{},", serde_json::json!(k), serde_json::json!(v));
                rendered.extend_from_slice(pair.as_bytes());
            } else {
                rendered.extend_from_slice(format!(" {k}={v}").as_bytes());
            }
        }
        FieldsWriter {
            rendered: std::sync::Arc::new(rendered),
            json,
            logstash,
        }
    }

    /// The event with the fields spliced in; unchanged when there are none or it has no shape
    /// the splice understands.
    fn splice(&self, event: &[u8]) -> Vec<u8> {
        let r = self.rendered.as_slice();
        if r.is_empty() {
            return event.to_vec();
        }
        let mut out = Vec::with_capacity(event.len() + r.len());
        if self.json {
            match event.split_first() {
                Some((b'{', rest)) => {
                    out.push(b'{');
                    out.extend_from_slice(r);
                    match rest.strip_prefix(br#""timestamp":"#) {
                        Some(after) if self.logstash => {
                            out.extend_from_slice(br#""@timestamp":"#);
                            out.extend_from_slice(after);
                        }
                        _ => out.extend_from_slice(rest),
                    }
                }
                _ => out.extend_from_slice(event),
            }
        } else {
            let body = event.strip_suffix(b"\n").unwrap_or(event);
            out.extend_from_slice(body);
            out.extend_from_slice(r);
            if body.len() != event.len() {
                out.push(b'\n');
            }
        }
        out
    }
}

impl<'a> MakeWriter<'a> for FieldsWriter {
    type Writer = FieldsLine;

    fn make_writer(&'a self) -> Self::Writer {
        FieldsLine(self.clone())
    }
}

/// One event's writer.
struct FieldsLine(FieldsWriter);

impl Write for FieldsLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().lock().write_all(&self.0.splice(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> std::collections::BTreeMap<String, String> {
        [("environment", "staging"), ("service", "registry")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn json_lines_gain_the_fields_as_keys() {
        let w = FieldsWriter::new(&fields(), true, false);
        let line = w.splice(b"{\"level\":\"INFO\",\"message\":\"hi\"}\n");
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["environment"], "staging");
        assert_eq!(v["service"], "registry");
        assert_eq!(v["message"], "hi");
    }

    #[test]
    fn text_lines_gain_trailing_pairs() {
        let w = FieldsWriter::new(&fields(), false, false);
        let line = w.splice(b"2026-11-24T00:00:00Z INFO wharf: hi\n");
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "2026-11-24T00:00:00Z INFO wharf: hi environment=staging service=registry\n"
        );
        let none = FieldsWriter::new(&Default::default(), false, false);
        assert_eq!(none.splice(b"x\n"), b"x\n");
    }

    #[test]
    fn logstash_lines_carry_version_and_at_timestamp() {
        let w = FieldsWriter::new(&fields(), true, true);
        let line = w.splice(
            b"{\"timestamp\":\"2026-11-24T00:00:00Z\",\"level\":\"INFO\",\"message\":\"hi\"}\n",
        );
        let v: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(v["@version"], "1");
        assert_eq!(v["@timestamp"], "2026-11-24T00:00:00Z");
        assert!(v.get("timestamp").is_none(), "{v}");
        assert_eq!(v["environment"], "staging");
        let bare = FieldsWriter::new(&Default::default(), true, true);
        let v: serde_json::Value =
            serde_json::from_slice(&bare.splice(b"{\"timestamp\":\"t\",\"message\":\"m\"}\n"))
                .unwrap();
        assert_eq!(
            (v["@version"].as_str(), v["@timestamp"].as_str()),
            (Some("1"), Some("t"))
        );
    }
}
