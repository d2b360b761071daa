//! Where operators hear about wharf beyond its log: mail on chosen log levels (`log.hooks`),
//! error reports to Bugsnag (`reporting.bugsnag`), and one OpenTelemetry span per API request
//! over OTLP/HTTP (`tracing:`, the `OTEL_*` variables, and `reporting.newrelic`, which is New
//! Relic's OTLP endpoint).
//!
//! Nothing here may slow a request: log events and errors go into bounded queues
//! (`Outbox`) that one sender task each drains on a runtime of its own (one thread,
//! `wharf-reporting`); a full queue drops and counts. Spans are batched by the OpenTelemetry
//! SDK on its own thread. Depends on `config` and the API's `Route` (for span names) only.

mod bugsnag;
mod fields;
mod mail;
mod otlp;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use tracing_subscriber::Layer;

use crate::config::Config;

pub use otlp::{OTEL_VARS, otel_requested};

/// What the tracing subscriber stack is made of (`cli::logging`).
pub type BoxedLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync>;

/// Why reporting cannot start as configured.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A `log.hooks` entry is unusable.
    #[error("log.hooks[{index}]: {reason}")]
    Hook {
        /// Position in `log.hooks`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// `reporting.bugsnag` is unusable.
    #[error("reporting.bugsnag: {0}")]
    Bugsnag(String),
    /// An OTLP exporter could not be built.
    #[error("{key}: cannot build the OTLP exporter: {reason}")]
    Otlp {
        /// `tracing` or `reporting.newrelic`.
        key: &'static str,
        /// The exporter's complaint.
        reason: String,
    },
    /// The reporting thread could not start.
    #[error("starting the reporting thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// Everything started from the configuration; kept by `cli` for the life of the process.
pub struct Reporting {
    layers: Vec<BoxedLayer>,
    requests: Option<Arc<Requests>>,
    tracers: Vec<otlp::Exporter>,
    notes: Vec<String>,
}

/// The per-request side: spans and 5xx reports, used by [`track`].
pub struct Requests {
    prefix: String,
    tracers: Vec<otlp::Tracer>,
    bugsnag: Option<Arc<bugsnag::Notifier>>,
}

impl Reporting {
    /// Starts the sender tasks and exporters `config` asks for; `env` is the process's
    /// environment (for the `OTEL_*` variables).
    pub fn start(config: &Config, env: &[(String, String)]) -> Result<Reporting, Error> {
        let mut runtime = None;
        let mut handle = || -> Result<tokio::runtime::Handle, Error> {
            if let Some(h) = &runtime {
                return Ok(Clone::clone(h));
            }
            let h = background_runtime()?;
            runtime = Some(h.clone());
            Ok(h)
        };
        let mut layers: Vec<BoxedLayer> = Vec::new();
        let mut notes = Vec::new();
        for (index, hook) in config.log.hooks.iter().enumerate() {
            if hook.disabled || hook.kind != "mail" {
                continue;
            }
            let layer = mail::MailHook::start(hook, &handle()?)
                .map_err(|reason| Error::Hook { index, reason })?;
            layers.push(layer);
            notes.push(format!(
                "log.hooks[{index}]: mail on {:?} via {}",
                hook.levels, hook.options.smtp.addr
            ));
        }
        let bugsnag = match &config.reporting.bugsnag.api_key {
            Some(_) => {
                let n = bugsnag::Notifier::start(&config.reporting.bugsnag, &handle()?)
                    .map_err(Error::Bugsnag)?;
                bugsnag::install_panic_hook(n.clone());
                layers.push(bugsnag::layer(n.clone()));
                notes.push("reporting.bugsnag: errors, panics and 5xx responses".to_owned());
                Some(n)
            }
            None => None,
        };
        let tracers = otlp::start(config, env)?;
        notes.extend(
            tracers
                .iter()
                .map(|t| format!("{}: OTLP request spans", t.key())),
        );
        let requests = (bugsnag.is_some() || !tracers.is_empty()).then(|| {
            Arc::new(Requests {
                prefix: config.http.prefix.trim_end_matches('/').to_owned(),
                tracers: tracers.iter().map(otlp::Exporter::tracer).collect(),
                bugsnag,
            })
        });
        Ok(Reporting {
            layers,
            requests,
            tracers,
            notes,
        })
    }

    /// The tracing layers (mail hooks, Bugsnag), each with its own level filter; taken once.
    pub fn take_layers(&mut self) -> Vec<BoxedLayer> {
        std::mem::take(&mut self.layers)
    }

    /// The state of the [`track`] middleware; `None` when nothing per-request is configured.
    pub fn requests(&self) -> Option<Arc<Requests>> {
        self.requests.clone()
    }

    /// One line per active reporter, for the start-up log (no secrets).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Exports the spans still batched; called once the server has drained.
    pub fn shutdown(&self) {
        for t in &self.tracers {
            t.shutdown();
        }
    }
}

/// One thread running a current-thread runtime for the sender tasks, so a slow relay or
/// collector never takes a worker from requests and logging works before `serve` starts.
fn background_runtime() -> Result<tokio::runtime::Handle, Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Thread)?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("wharf-reporting".to_owned())
        .spawn(move || rt.block_on(std::future::pending::<()>()))
        .map_err(Error::Thread)?;
    Ok(handle)
}

/// A bounded queue to one sender task: [`Outbox::push`] never waits; when the queue is full
/// the item is dropped and counted (logged at the first drop and every 100th after).
pub(crate) struct Outbox<T> {
    what: &'static str,
    tx: tokio::sync::mpsc::Sender<T>,
    dropped: AtomicU64,
}

/// How many items wait for a sender before new ones are dropped.
pub(crate) const QUEUE_CAPACITY: usize = 256;

impl<T> Outbox<T> {
    /// A queue and its receiving end, for the sender task.
    pub(crate) fn new(what: &'static str) -> (Outbox<T>, tokio::sync::mpsc::Receiver<T>) {
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE_CAPACITY);
        let outbox = Outbox {
            what,
            tx,
            dropped: AtomicU64::new(0),
        };
        (outbox, rx)
    }

    /// Queues `item` unless the queue is full (or the sender is gone).
    pub(crate) fn push(&self, item: T) {
        if self.tx.try_send(item).is_err() {
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(100) {
                tracing::warn!(target: SELF_TARGET, queue = self.what, dropped = n, "reporting queue full; dropping");
            }
        }
    }
}

/// The log target of this module; its own events are never reported, or a failing relay
/// would mail about itself forever.
pub(crate) const SELF_TARGET: &str = "wharf::reporting";

/// True for events the hooks must skip (this module's own).
pub(crate) fn is_own(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with(SELF_TARGET)
}

/// Middleware on the API router: a span per request for each OTLP exporter, and a Bugsnag
/// report for each 5xx response.
pub async fn track(State(r): State<Arc<Requests>>, req: Request, next: Next) -> Response {
    let start = SystemTime::now();
    let method = req.method().clone();
    let full = req.uri().path().to_owned();
    let path = full
        .strip_prefix(r.prefix.as_str())
        .unwrap_or(&full)
        .to_owned();
    let request_bytes = content_length(req.headers());
    let parent = if r.tracers.is_empty() {
        opentelemetry::Context::new()
    } else {
        otlp::parent_context(req.headers())
    };
    let resp = next.run(req).await;
    let status = resp.status();
    let info = otlp::RequestInfo {
        start,
        method: method.as_str(),
        path: &path,
        status: status.as_u16(),
        request_bytes,
        response_bytes: content_length(resp.headers()),
        parent: &parent,
    };
    for t in &r.tracers {
        t.record(&info);
    }
    if status.is_server_error()
        && let Some(b) = &r.bugsnag
    {
        b.notify_response(method.as_str(), &full, status);
    }
    resp
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// This machine's name, for mail subjects and Bugsnag's `device.hostname`.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_owned())
}
