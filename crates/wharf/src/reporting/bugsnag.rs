//! `reporting.bugsnag`: errors posted to Bugsnag's Error Reporting API (payload version 5):
//! ERROR-level log events, panics (through a panic hook) and 5xx responses.
//!
//! One POST per event to `endpoint` (default `https://notify.bugsnag.com`) with the
//! `Bugsnag-Api-Key`, `Bugsnag-Payload-Version` and `Bugsnag-Sent-At` headers, from a bounded
//! queue drained by one sender task.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tracing::Level;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::{Layer, Registry};

use super::fields::Captured;
use super::{BoxedLayer, Outbox, SELF_TARGET, is_own};
use crate::config::Bugsnag as BugsnagConfig;

/// Bugsnag's hosted notify endpoint.
pub(crate) const DEFAULT_ENDPOINT: &str = "https://notify.bugsnag.com";

/// How long one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(15);

/// One error to report.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// Bugsnag groups by this: the log message, `panic`, or `HTTP 500`.
    error_class: String,
    /// The detail.
    message: String,
    /// Where: the request or the module.
    context: String,
    /// `unhandledPanic` for panics, `log` otherwise (Bugsnag's `severityReason.type`).
    reason: &'static str,
    /// Source location for panics: (file, line).
    location: Option<(String, u32)>,
    /// Extra fields, shown as metadata.
    fields: serde_json::Map<String, Value>,
    time: SystemTime,
}

/// The shared side: where to post and the queue to the sender.
pub(crate) struct Notifier {
    outbox: Outbox<Report>,
}

/// What the sender task needs.
struct Target {
    client: reqwest::Client,
    url: String,
    api_key: String,
    release_stage: String,
    hostname: String,
}

impl Notifier {
    /// Checks the config and spawns the sender task on `rt`.
    pub(crate) fn start(
        cfg: &BugsnagConfig,
        rt: &tokio::runtime::Handle,
    ) -> Result<Arc<Notifier>, String> {
        let api_key = cfg
            .api_key
            .as_ref()
            .map(|k| k.expose().to_owned())
            .ok_or("apikey is required")?;
        let url = match cfg.endpoint.trim() {
            "" => DEFAULT_ENDPOINT.to_owned(),
            e if e.starts_with("http://") || e.starts_with("https://") => e.to_owned(),
            e => return Err(format!("endpoint: expected an http(s) URL, got {e:?}")),
        };
        let client = reqwest::Client::builder()
            .timeout(POST_TIMEOUT)
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let release_stage = match cfg.release_stage.trim() {
            "" => "production".to_owned(),
            s => s.to_owned(),
        };
        let target = Target {
            client,
            url,
            api_key,
            release_stage,
            hostname: super::hostname(),
        };
        let (outbox, rx) = Outbox::new("bugsnag");
        rt.spawn(send_all(rx, target));
        Ok(Arc::new(Notifier { outbox }))
    }

    /// Reports a 5xx response.
    pub(crate) fn notify_response(&self, method: &str, path: &str, status: http::StatusCode) {
        let mut fields = serde_json::Map::new();
        fields.insert("method".into(), method.into());
        fields.insert("path".into(), path.into());
        fields.insert("status".into(), status.as_u16().into());
        self.outbox.push(Report {
            error_class: format!("HTTP {}", status.as_u16()),
            message: format!("{method} {path}: {status}"),
            context: format!("{method} {path}"),
            reason: "log",
            location: None,
            fields,
            time: SystemTime::now(),
        });
    }

    fn notify_event(&self, event: Captured) {
        let message = event
            .fields
            .get("error")
            .cloned()
            .unwrap_or_else(|| event.message.clone());
        let fields = event
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        self.outbox.push(Report {
            error_class: event.message,
            message,
            context: event.target,
            reason: "log",
            location: None,
            fields,
            time: event.time,
        });
    }

    fn notify_panic(&self, info: &std::panic::PanicHookInfo<'_>) {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_owned());
        let location = info.location().map(|l| (l.file().to_owned(), l.line()));
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned();
        let mut fields = serde_json::Map::new();
        fields.insert("thread".into(), thread.clone().into());
        self.outbox.push(Report {
            error_class: "panic".to_owned(),
            message,
            context: thread,
            reason: "unhandledPanic",
            location,
            fields,
            time: SystemTime::now(),
        });
    }
}

/// The layer reporting ERROR-level events.
struct ErrorLayer(Arc<Notifier>);

impl Layer<Registry> for ErrorLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, Registry>) {
        let meta = event.metadata();
        if *meta.level() == Level::ERROR && !is_own(meta) {
            self.0.notify_event(Captured::from_event(event));
        }
    }
}

/// ERROR events to Bugsnag.
pub(crate) fn layer(n: Arc<Notifier>) -> BoxedLayer {
    ErrorLayer(n).with_filter(LevelFilter::ERROR).boxed()
}

/// Reports every panic, then runs the hook that was there before (which prints it).
pub(crate) fn install_panic_hook(n: Arc<Notifier>) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        n.notify_panic(info);
        previous(info);
    }));
}

/// The notify payload (version 5) for one report.
fn payload(t: &Target, r: &Report) -> Value {
    let stacktrace: Vec<Value> = r
        .location
        .iter()
        .map(|(file, line)| json!({ "file": file, "lineNumber": line, "method": "panic", "inProject": true }))
        .collect();
    json!({
        "apiKey": t.api_key,
        "payloadVersion": "5",
        "notifier": {
            "name": "wharf",
            "version": env!("CARGO_PKG_VERSION"),
            "url": env!("CARGO_PKG_REPOSITORY"),
        },
        "events": [{
            "exceptions": [{
                "errorClass": r.error_class,
                "message": r.message,
                "stacktrace": stacktrace,
                "type": "rust",
            }],
            "context": r.context,
            "severity": "error",
            "unhandled": r.reason == "unhandledPanic",
            "severityReason": { "type": r.reason },
            "app": {
                "releaseStage": t.release_stage,
                "version": env!("CARGO_PKG_VERSION"),
                "type": "wharf",
            },
            "device": {
                "hostname": t.hostname,
                "time": crate::rfc3339::seconds(r.time),
            },
            "metaData": { "fields": r.fields },
        }],
    })
}

/// The sender task: one POST per report, in order; failures are logged and dropped.
async fn send_all(mut rx: tokio::sync::mpsc::Receiver<Report>, t: Target) {
    while let Some(report) = rx.recv().await {
        let body = payload(&t, &report);
        let sent = t
            .client
            .post(&t.url)
            .header("Bugsnag-Api-Key", &t.api_key)
            .header("Bugsnag-Payload-Version", "5")
            .header(
                "Bugsnag-Sent-At",
                crate::rfc3339::seconds(SystemTime::now()),
            )
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => {
                tracing::warn!(target: SELF_TARGET, status = resp.status().as_u16(), "bugsnag: report refused");
            }
            Err(e) => {
                tracing::warn!(target: SELF_TARGET, error = %e.without_url(), "bugsnag: report not sent");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_has_the_fields_bugsnag_requires() {
        let t = Target {
            client: reqwest::Client::new(),
            url: DEFAULT_ENDPOINT.to_owned(),
            api_key: "k".to_owned(),
            release_stage: "staging".to_owned(),
            hostname: "h".to_owned(),
        };
        let r = Report {
            error_class: "storage failure".to_owned(),
            message: "disk gone".to_owned(),
            context: "wharf::api".to_owned(),
            reason: "log",
            location: None,
            fields: serde_json::Map::new(),
            time: SystemTime::UNIX_EPOCH,
        };
        let p = payload(&t, &r);
        assert_eq!(p["payloadVersion"], "5");
        assert_eq!(p["notifier"]["name"], "wharf");
        let e = &p["events"][0];
        assert_eq!(e["exceptions"][0]["errorClass"], "storage failure");
        assert_eq!(e["exceptions"][0]["stacktrace"], json!([]));
        assert_eq!(e["app"]["releaseStage"], "staging");
        assert_eq!(e["device"]["hostname"], "h");
        assert_eq!(e["device"]["time"], "1970-01-01T00:00:00Z");
    }

    #[test]
    fn panics_are_queued_with_their_location_and_still_reach_the_old_hook() {
        let (outbox, mut rx) = Outbox::new("test");
        install_panic_hook(Arc::new(Notifier { outbox }));
        let caught = std::panic::catch_unwind(|| panic!("boom {}", 42));
        let _ = std::panic::take_hook();
        assert!(caught.is_err());
        // other tests may panic meanwhile: look for ours
        let mut mine = None;
        while let Ok(r) = rx.try_recv() {
            if r.message == "boom 42" {
                mine = Some(r);
            }
        }
        let r = mine.expect("the panic was queued");
        assert_eq!(r.error_class, "panic");
        assert_eq!(r.reason, "unhandledPanic");
        let (file, line) = r.location.expect("a location");
        assert!(file.ends_with("bugsnag.rs") && line > 0, "{file}:{line}");
    }
}
