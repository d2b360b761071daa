//! Notifications (`notifications.endpoints`): the registry layer reports what it did to a
//! [`Listener`]; the [`Notifier`] turns each report into distribution's event, filters it per
//! endpoint, appends it to that endpoint's durable queue and returns, and one task per endpoint
//! delivers the queue in order with retries. A slow endpoint therefore never slows a push, and a
//! crash loses no event that a client saw succeed.
//!
//! The request an event belongs to reaches the registry without changing its signatures: the API
//! runs each request inside [`scope`], and the listener reads it from there. Reports made outside
//! a request (garbage collection, internal reads) carry no request and are not sent.
//!
//! Depends on `config` and `wharf_oci`; knows nothing of the registry's storage or of HTTP routing.

pub mod endpoint;
pub mod event;
pub mod https;
pub mod queue;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tokio::sync::Notify;
use wharf_oci::{Digest, RepoName};

use crate::config::Config;

/// What the registry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A manifest or blob was stored.
    Push,
    /// A manifest or blob was served.
    Pull,
    /// A manifest or blob link was removed.
    Delete,
    /// A blob was linked from another repository.
    Mount,
}

impl Action {
    /// The name events carry and `ignore.actions` lists.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Push => "push",
            Action::Pull => "pull",
            Action::Delete => "delete",
            Action::Mount => "mount",
        }
    }
}

/// Whether the content is a manifest (URLs under `manifests/`) or a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A manifest.
    Manifest,
    /// A blob (layer, config).
    Blob,
}

/// The registry's report of one action, in its own types.
#[derive(Debug, Clone)]
pub struct Report {
    /// What happened.
    pub action: Action,
    /// Manifest or blob.
    pub kind: Kind,
    /// Repository acted on.
    pub repo: RepoName,
    /// Content digest.
    pub digest: Digest,
    /// Media type (`application/octet-stream` for blobs).
    pub media_type: String,
    /// Size in bytes (0 when unknown, e.g. deletes).
    pub size: u64,
    /// Tag the request named, if any.
    pub tag: Option<String>,
    /// Mount source.
    pub from: Option<RepoName>,
    /// Descriptors the manifest references, for `includereferences`.
    pub references: Vec<event::Reference>,
}

/// Receives the registry's reports; must return quickly, as it runs inside the request.
pub trait Listener: Send + Sync {
    /// One action the registry completed.
    fn report(&self, report: Report);
}

/// The request being served, as events describe it.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    /// `request` of the event.
    pub request: event::Request,
    /// Base URL of the API as the client sees it (scheme, host, `http.prefix`).
    pub base_url: String,
    /// The authenticated user, set once access control has let the request in.
    actor: std::sync::OnceLock<String>,
}

tokio::task_local! {
    static REQUEST: RequestInfo;
}

/// Records who the request is authenticated as (htpasswd user, token `sub`), for `actor.name`;
/// a no-op outside [`scope`].
pub fn set_actor(name: String) {
    let _ = REQUEST.try_with(|i| i.actor.set(name));
}

/// Runs one API request with `info` visible to the listener.
pub async fn scope<F: Future>(info: RequestInfo, f: F) -> F::Output {
    REQUEST.scope(info, f).await
}

impl RequestInfo {
    /// Reads what events need from the request head; `peer` is the client's socket address,
    /// used for `request.addr` unless `X-Forwarded-For` or `X-Real-IP` names the client, as in
    /// distribution.
    pub fn from_headers(
        method: &http::Method,
        headers: &http::HeaderMap,
        peer: Option<std::net::SocketAddr>,
        base_url: String,
    ) -> Self {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let id = Some(get("x-request-id"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let forwarded = get("x-forwarded-for");
        let addr = match forwarded.split(',').next().map(str::trim) {
            Some(a) if !a.is_empty() => a.to_owned(),
            _ => Some(get("x-real-ip"))
                .filter(|a| !a.is_empty())
                .or_else(|| peer.map(|p| p.to_string()))
                .unwrap_or_default(),
        };
        RequestInfo {
            request: event::Request {
                id,
                addr,
                host: get("host"),
                method: method.as_str().to_owned(),
                useragent: get("user-agent"),
            },
            base_url,
            actor: std::sync::OnceLock::new(),
        }
    }

    /// Whether a report belongs to this request: pulls only count on GET (and HEAD of a
    /// manifest, as distribution), so internal reads made by a PUT or DELETE are not pulls.
    fn wants(&self, report: &Report) -> bool {
        match (report.action, self.request.method.as_str(), report.kind) {
            (Action::Pull, "GET", _) => true,
            (Action::Pull, "HEAD", Kind::Manifest) => true,
            (Action::Pull, _, _) => false,
            _ => true,
        }
    }
}

/// One endpoint's filter and queue.
struct Route {
    name: String,
    ignored_media_types: Vec<String>,
    ignored_actions: Vec<String>,
    queue: Arc<queue::Queue>,
    wake: Arc<Notify>,
    stats: Arc<endpoint::Stats>,
}

/// One endpoint's delivery state, as metrics report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointState {
    /// `name` of the endpoint.
    pub name: String,
    /// Events queued, not yet delivered.
    pub pending: u64,
    /// Events delivered since start.
    pub delivered: u64,
    /// Failed delivery attempts since start.
    pub failures: u64,
    /// Events dropped because they could not be queued.
    pub dropped: u64,
}

/// The [`Listener`] that feeds every configured endpoint.
pub struct Notifier {
    routes: Vec<Route>,
    include_references: bool,
    source: event::Source,
}

/// Why notifications cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An endpoint's configuration is unusable.
    #[error(transparent)]
    Endpoint(#[from] endpoint::Error),
    /// The queue directory cannot be used.
    #[error(transparent)]
    Queue(#[from] queue::Error),
}

/// This machine's name, as distribution's `source.addr` uses it; also keeps the queues of
/// instances sharing one storage root apart.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Where queues live: `wharf/notifications/<hostname>/` inside a filesystem storage root
/// (distribution only reads `docker/` there), else under the system temporary directory,
/// which survives a restart of the process but maybe not of the machine.
fn queue_dir(config: &Config) -> PathBuf {
    let host: String = hostname()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    match &config.storage.driver {
        wharf_storage::DriverConfig::Filesystem(p) => p
            .root_directory
            .join("wharf")
            .join("notifications")
            .join(host),
        _ => std::env::temp_dir().join("wharf-notifications").join(host),
    }
}

impl Notifier {
    /// Opens every enabled endpoint's queue and spawns its delivery task; `None` when no
    /// endpoint is enabled.
    pub fn start(config: &Config) -> Result<Option<Arc<Notifier>>, Error> {
        let n = &config.notifications;
        let dir = queue_dir(config);
        let mut routes = Vec::new();
        for (i, ep) in n.endpoints.iter().enumerate().filter(|(_, e)| !e.disabled) {
            let target = endpoint::Target::from_config(ep)?;
            let file: String = format!("{i}-{}", ep.name)
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let queue = Arc::new(queue::Queue::open(&dir, &file)?);
            let wake = Arc::new(Notify::new());
            let stats = Arc::new(endpoint::Stats::default());
            tokio::spawn(endpoint::deliver(
                target,
                queue.clone(),
                wake.clone(),
                stats.clone(),
            ));
            let mut ignored_media_types = ep.ignored_media_types.clone();
            ignored_media_types.extend(ep.ignore.media_types.iter().cloned());
            routes.push(Route {
                name: ep.name.clone(),
                ignored_media_types,
                ignored_actions: ep.ignore.actions.clone(),
                queue,
                wake,
                stats,
            });
        }
        if routes.is_empty() {
            return Ok(None);
        }
        tracing::info!(endpoints = routes.len(), queue = %dir.display(), "notifications enabled");
        let host = hostname();
        let port = config.http.addr.rsplit(':').next().unwrap_or("5000");
        Ok(Some(Arc::new(Notifier {
            routes,
            include_references: n.events.include_references,
            source: event::Source {
                addr: format!("{host}:{port}"),
                instance_id: uuid::Uuid::new_v4().to_string(),
            },
        })))
    }

    fn event(&self, info: &RequestInfo, r: Report) -> event::Event {
        let segment = match r.kind {
            Kind::Manifest => "manifests",
            Kind::Blob => "blobs",
        };
        event::Event {
            id: uuid::Uuid::new_v4().to_string(),
            timestamp: event::timestamp(SystemTime::now()),
            action: r.action.as_str().to_owned(),
            target: event::Target {
                media_type: r.media_type,
                size: r.size,
                digest: r.digest.to_string(),
                length: r.size,
                repository: r.repo.to_string(),
                url: format!("{}/v2/{}/{segment}/{}", info.base_url, r.repo, r.digest),
                tag: r.tag.unwrap_or_default(),
                from_repository: r.from.map(|f| f.to_string()).unwrap_or_default(),
                references: if self.include_references {
                    r.references
                } else {
                    Vec::new()
                },
            },
            request: info.request.clone(),
            actor: event::Actor {
                name: info.actor.get().cloned().unwrap_or_default(),
            },
            source: self.source.clone(),
        }
    }
}

impl Listener for Notifier {
    fn report(&self, report: Report) {
        let Ok(Some(info)) = REQUEST.try_with(|i| i.wants(&report).then(|| i.clone())) else {
            return;
        };
        let event = self.event(&info, report);
        let Ok(line) = serde_json::to_vec(&event) else {
            return;
        };
        for route in &self.routes {
            if route.ignored_actions.iter().any(|a| a == &event.action)
                || route.ignored_media_types.contains(&event.target.media_type)
            {
                continue;
            }
            match route.queue.append(&line) {
                Ok(()) => route.wake.notify_one(),
                Err(e) => {
                    route.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::error!(endpoint = %route.name, error = %e, "event not queued");
                }
            }
        }
    }
}

/// Attaches a [`Notifier`] to `registry` when an endpoint is enabled, and returns it too (for
/// its metrics).
pub fn attach(
    registry: crate::registry::Registry,
    config: &Config,
) -> Result<(crate::registry::Registry, Option<Arc<Notifier>>), Error> {
    Ok(match Notifier::start(config)? {
        Some(notifier) => (registry.with_listener(notifier.clone()), Some(notifier)),
        None => (registry, None),
    })
}

impl Notifier {
    /// Every enabled endpoint's delivery state, in configuration order.
    pub fn endpoints(&self) -> Vec<EndpointState> {
        self.routes
            .iter()
            .map(|r| EndpointState {
                name: r.name.clone(),
                pending: r.queue.pending(),
                delivered: r.stats.delivered.load(Ordering::Relaxed),
                failures: r.stats.failures.load(Ordering::Relaxed),
                dropped: r.stats.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

/// The report of a manifest action; `bytes` are the stored manifest.
pub fn manifest_report(
    action: Action,
    repo: &RepoName,
    digest: &Digest,
    bytes: &[u8],
    reference: &wharf_oci::Reference,
) -> Report {
    let parsed = wharf_oci::Manifest::parse(None, bytes).ok();
    let references = parsed
        .iter()
        .flat_map(|m| m.config.iter().chain(&m.layers).chain(&m.manifests))
        .map(|d| event::Reference {
            media_type: d.media_type.clone(),
            size: d.size,
            digest: d.digest.to_string(),
        })
        .collect();
    Report {
        action,
        kind: Kind::Manifest,
        repo: repo.clone(),
        digest: digest.clone(),
        media_type: crate::registry::manifests::served_media_type(bytes),
        size: bytes.len() as u64,
        tag: match reference {
            wharf_oci::Reference::Tag(t) => Some(t.to_string()),
            wharf_oci::Reference::Digest(_) => None,
        },
        from: None,
        references,
    }
}

/// The report of a blob action (`size` 0 when not known, e.g. deletes).
pub fn blob_report(action: Action, repo: &RepoName, digest: &Digest, size: u64) -> Report {
    Report {
        action,
        kind: Kind::Blob,
        repo: repo.clone(),
        digest: digest.clone(),
        media_type: BLOB_MEDIA_TYPE.to_owned(),
        size,
        tag: None,
        from: None,
        references: Vec::new(),
    }
}

/// Media type of blob events: the registry does not know what a blob holds.
pub const BLOB_MEDIA_TYPE: &str = "application/octet-stream";

/// The report of a manifest delete, by digest or (OCI 1.1) by tag.
pub fn manifest_deleted(
    repo: &RepoName,
    digest: &Digest,
    reference: &wharf_oci::Reference,
) -> Report {
    let mut report = blob_report(Action::Delete, repo, digest, 0);
    report.kind = Kind::Manifest;
    report.media_type = String::new();
    if let wharf_oci::Reference::Tag(t) = reference {
        report.tag = Some(t.to_string());
    }
    report
}
