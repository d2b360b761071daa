//! Runs the HTTP API: listener (TCP or Unix socket), access log, background maintenance, and a
//! graceful drain on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use http::{HeaderName, HeaderValue};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tower::ServiceExt;

use crate::api::{Api, UrlPolicy, router};
use crate::config::{Config, Net};
use crate::registry::cache::{self, DescriptorCache, memory::MemoryCache, redis::RedisCache};
use crate::registry::{Options, Registry};

/// Builds the registry described by `config` (storage driver and options).
pub async fn build_registry(config: &Config) -> anyhow::Result<Registry> {
    build_registry_with(config, None).await
}

/// [`build_registry`], with storage calls and cache lookups counted in `instruments` when given
/// (metrics).
pub async fn build_registry_with(
    config: &Config,
    instruments: Option<&crate::metrics::Instruments>,
) -> anyhow::Result<Registry> {
    let mut driver = config
        .storage
        .driver
        .build()
        .await
        .context("starting the storage driver")?;
    if let Some(i) = instruments {
        driver = crate::metrics::storage::instrument(driver, i.storage.clone());
    }
    let driver = crate::middleware::wrap_storage(driver, config)?;
    let registry = Registry::new(
        driver,
        Options {
            delete_enabled: config.storage.delete_enabled,
            read_only: config.storage.readonly,
            layer_urls: layer_url_rules(config)?,
            link_refresh: config.gc.enabled.then(|| config.gc.grace / 2),
        },
    );
    let mut cache = descriptor_cache(config)?;
    if let Some(i) = instruments {
        cache = crate::metrics::cache::instrument(cache, i.cache.clone());
    }
    Ok(registry.with_cache(cache))
}

/// `storage.cache.blobdescriptor`: `redis` shares one cache between instances; `inmemory`, the
/// default when nothing is set, keeps `blobdescriptorsize` entries in this process.
fn descriptor_cache(config: &Config) -> anyhow::Result<Arc<dyn DescriptorCache>> {
    Ok(match config.storage.blob_descriptor_cache.as_deref() {
        Some("redis") => Arc::new(RedisCache::new(&config.redis)?),
        _ => {
            let size = config
                .storage
                .blob_descriptor_size
                .filter(|&n| n > 0)
                .map_or(cache::DEFAULT_SIZE, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                });
            Arc::new(MemoryCache::new(size))
        }
    })
}

/// Compiles `validation.manifests.urls`; `None` when `validation.disabled` is set.
fn layer_url_rules(config: &Config) -> anyhow::Result<Option<crate::registry::UrlRules>> {
    let v = &config.validation;
    if v.disabled {
        return Ok(None);
    }
    let compile = |key: &str, patterns: &[String]| -> anyhow::Result<Vec<regex::Regex>> {
        patterns
            .iter()
            .map(|p| {
                regex::Regex::new(p).with_context(|| {
                    format!("validation.manifests.urls.{key}: invalid pattern {p:?}")
                })
            })
            .collect()
    };
    Ok(Some(crate::registry::UrlRules {
        allow: compile("allow", &v.manifests.urls.allow)?,
        deny: compile("deny", &v.manifests.urls.deny)?,
    }))
}

/// The axum application for a registry, with `http.*` URL and header settings applied.
pub fn app(registry: Registry, config: &Config) -> anyhow::Result<axum::Router> {
    let mut extra_headers = Vec::new();
    for (name, values) in &config.http.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .with_context(|| format!("http.headers: invalid header name {name:?}"))?;
        for v in values {
            let v = HeaderValue::from_str(v)
                .with_context(|| format!("http.headers.{name}: invalid value {v:?}"))?;
            extra_headers.push((name.clone(), v));
        }
    }
    let api = Api {
        registry,
        urls: UrlPolicy {
            prefix: config.http.prefix.trim_end_matches('/').to_owned(),
            host: config.http.host.clone(),
            relative: config.http.relative_urls,
            tls: config.http.tls.is_requested(),
        },
        extra_headers,
        auth: crate::auth::configured(config)?,
    };
    if let Some(warning) = crate::auth::token_section_warning(config) {
        tracing::warn!("{warning}");
    }
    let mut app = axum::Router::new();
    if let Some(token) = &config.token {
        let secret = config.http.secret.as_ref().map(|s| s.expose());
        let server = crate::auth::token_server::TokenServer::new(token, secret)?;
        app = app.merge(Arc::new(server).routes(&config.http.prefix));
    }
    let mut app = app.fallback(router::handle).with_state(Arc::new(api));
    if !config.log.access_log_disabled {
        app = app.layer(middleware::from_fn(access_log));
    }
    Ok(app)
}

/// One line per request, as distribution's access log has.
async fn access_log(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let agent = req
        .headers()
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let resp = next.run(req).await;
    tracing::info!(
        target: "access",
        method = %method,
        uri = %uri,
        status = resp.status().as_u16(),
        duration_ms = start.elapsed().as_secs_f64() * 1000.0,
        user_agent = %agent,
        "request"
    );
    resp
}

/// The largest read buffer hyper grows per HTTP/1 connection. Its default, about 408 KiB, held
/// 24 MiB over 32 uploads at once; at 64 KiB one upload cost a quarter more CPU per GiB.
const CONNECTION_READ_BUFFER: usize = 128 * 1024;

/// The cap for connections opened while `ROOMY_CONNECTIONS` others are open: 256 uploads at
/// once peaked at 76-78 MiB instead of 125, as fast. It also caps a request head, as nginx's
/// default buffers do (16 KiB peaked at 60 MiB, but would refuse heads nginx takes).
const CROWDED_READ_BUFFER: usize = 32 * 1024;

/// How many open connections get the large read buffer: the bench's 32 concurrent uploads.
const ROOMY_CONNECTIONS: usize = 32;

/// Connections open on every listener (TCP and unix), counted by [`OpenConnection`].
static OPEN_CONNECTIONS: AtomicUsize = AtomicUsize::new(0);

/// One connection in [`OPEN_CONNECTIONS`], for as long as this lives.
struct OpenConnection;

impl OpenConnection {
    /// Counts a connection in, with how many others were open already.
    fn enter() -> (Self, usize) {
        let others = OPEN_CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        (OpenConnection, others)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        OPEN_CONNECTIONS.fetch_sub(1, Ordering::Relaxed);
    }
}

/// hyper's builder for a connection opened while `others` were open: a buffer grown once stays
/// with its connection, so only the first `ROOMY_CONNECTIONS` get a large one and memory per
/// connection shrinks as connections pile up.
fn connection_builder(others: usize) -> Builder<TokioExecutor> {
    let read_buffer = if others < ROOMY_CONNECTIONS {
        CONNECTION_READ_BUFFER
    } else {
        CROWDED_READ_BUFFER
    };
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(read_buffer);
    builder
}

/// A socket the accept loop takes connections from, so TCP (plain and TLS) and unix sockets
/// share one loop, one drain and one count of open connections.
pub(crate) trait Listener {
    /// A connection's stream.
    type Io;
    /// A connection's peer address.
    type Addr;
    /// The next connection; errors (mostly out of descriptors) are retried by the loop.
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Io, Self::Addr)>> + Send;
}

impl Listener for TcpListener {
    type Io = TcpStream;
    type Addr = SocketAddr;
    async fn accept(&self) -> std::io::Result<(TcpStream, SocketAddr)> {
        let (tcp, peer) = TcpListener::accept(self).await?;
        if let Err(e) = keep_alive(&tcp) {
            tracing::debug!(%peer, error = %e, "cannot turn on TCP keep-alive");
        }
        Ok((tcp, peer))
    }
}

/// How long a connection may be silent before the kernel probes its peer, and then between
/// probes: distribution's listener uses 3 minutes. Without probes a client that vanished (a
/// laptop closed mid-push, a dropped route) would hold its connection and upload buffers for
/// good, since hyper has no idle timeout.
const KEEP_ALIVE: Duration = Duration::from_secs(180);

/// Turns on TCP keep-alive probes at [`KEEP_ALIVE`] (the count is the kernel's, 9 by default).
fn keep_alive(tcp: &TcpStream) -> std::io::Result<()> {
    use rustix::net::sockopt;
    sockopt::set_socket_keepalive(tcp, true)?;
    sockopt::set_tcp_keepidle(tcp, KEEP_ALIVE)?;
    sockopt::set_tcp_keepintvl(tcp, KEEP_ALIVE)?;
    Ok(())
}

impl Listener for UnixListener {
    type Io = UnixStream;
    type Addr = tokio::net::unix::SocketAddr;
    fn accept(&self) -> impl Future<Output = std::io::Result<(Self::Io, Self::Addr)>> + Send {
        UnixListener::accept(self)
    }
}

/// Accepts connections until `shutdown`, each served by `serve` on its own task with the hyper
/// builder its moment calls for, then waits for the connections `serve` gave the watcher to
/// drain.
pub(crate) async fn accept_loop<L, S, F>(
    listener: L,
    shutdown: impl Future<Output = ()> + Send + 'static,
    serve: S,
) -> std::io::Result<()>
where
    L: Listener,
    S: Fn(L::Io, L::Addr, Builder<TokioExecutor>, Watcher) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // out of descriptors, mostly: wait for some to close rather than spin
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let (open, others) = OpenConnection::enter();
        let conn = serve(io, peer, connection_builder(others), graceful.watcher());
        tokio::spawn(async move {
            let _open = open;
            conn.await;
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Serves `app` on a unix socket until `shutdown`, with the TCP listeners' connection rules
/// (read buffers, request-head limit, drain); bodies stream as on TLS, without sendfile.
async fn serve_unix(
    listener: UnixListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    accept_loop(
        listener,
        shutdown,
        move |stream, _peer, builder, watcher| {
            let service = TowerToHyperService::new(
                app.clone()
                    .map_request(|req: Request<Incoming>| req.map(axum::body::Body::new)),
            );
            async move {
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                if let Err(e) = watcher.watch(conn.into_owned()).await {
                    tracing::debug!(error = %e, "unix socket connection ended with an error");
                }
            }
        },
    )
    .await
}

/// `:5000` means every interface, as in Go.
fn tcp_addr(addr: &str) -> String {
    if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_owned()
    }
}

/// Binds `addr` with the listen backlog the kernel allows (`net.core.somaxconn`), as Go's
/// listeners do: tokio's default of 128 drops the SYNs of a burst of pulls (a cluster roll-out)
/// that arrives while the loop is busy, and those clients wait a second or more to retry.
async fn listen_tcp(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr) {
            Ok(()) => return socket.listen(listen_backlog()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("the address resolved to nothing")))
}

/// [`listen_tcp`] for a unix socket at `path`: the same backlog (std's and tokio's is 128).
fn listen_unix(path: &str) -> std::io::Result<UnixListener> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let fd = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::bind(&fd, &SocketAddrUnix::new(path)?)?;
    let backlog = i32::try_from(listen_backlog()).unwrap_or(i32::MAX);
    rustix::net::listen(&fd, backlog)?;
    UnixListener::from_std(std::os::unix::net::UnixListener::from(fd))
}

/// The kernel's ceiling on a listen backlog (a larger request is cut to it).
fn listen_backlog() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096)
}

/// Serves until SIGTERM or SIGINT, then drains in-flight requests for up to `http.draintimeout`.
/// `requests` adds the per-request reporting (OTLP spans, Bugsnag on 5xx) when configured.
pub async fn serve(
    config: Config,
    requests: Option<Arc<crate::reporting::Requests>>,
) -> anyhow::Result<()> {
    raise_open_file_limit();
    let instruments = crate::metrics::enabled(&config).then(crate::metrics::Instruments::default);
    let registry = build_registry_with(&config, instruments.as_ref()).await?;
    let (registry, notifier) = crate::notify::attach(registry, &config)?;
    spawn_upload_purging(&registry, &config);
    let mut sources: Vec<Arc<dyn crate::metrics::Source>> = Vec::new();
    if let Some(i) = instruments {
        sources.push(i.storage);
        sources.push(i.cache);
    }
    sources.extend(notifier.map(|n| n as Arc<dyn crate::metrics::Source>));
    if config.gc.enabled {
        let stats = Arc::new(crate::gc::online::Stats::default());
        crate::gc::online::spawn(registry.clone(), config.gc, stats.clone());
        sources.push(stats);
    }
    let api = app(registry.clone(), &config)?;
    let mut app = crate::debug_server::start(api, &registry, &config, sources).await?;
    if let Some(r) = requests {
        app = app.layer(middleware::from_fn_with_state(r, crate::reporting::track));
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut wait_rx = stop_rx.clone();
    let shutdown = async move {
        let _ = wait_rx.wait_for(|s| *s).await;
    };
    let server = match config.http.net {
        Net::Tcp => {
            let addr = tcp_addr(&config.http.addr);
            let listener = listen_tcp(&addr)
                .await
                .with_context(|| format!("http.addr: cannot listen on {addr}"))?;
            let tls = crate::tls::acceptor(&config.http)?;
            tracing::info!(addr = %listener.local_addr()?, tls = tls.is_some(), "listening");
            match tls {
                Some(acceptor) => {
                    tokio::spawn(crate::tls::serve(listener, acceptor, app, shutdown))
                }
                None => tokio::spawn(crate::sendfile::serve(listener, app, shutdown)),
            }
        }
        Net::Unix => {
            let path = &config.http.addr;
            anyhow::ensure!(
                !config.http.tls.is_requested(),
                "http.tls: TLS is served on tcp listeners only, not on the unix socket {path}"
            );
            let _ = std::fs::remove_file(path);
            let listener = listen_unix(path)
                .with_context(|| format!("http.addr: cannot listen on unix socket {path}"))?;
            tracing::info!(socket = %path, "listening");
            tokio::spawn(serve_unix(listener, app, shutdown))
        }
    };
    wait_for_signal().await;
    tracing::info!("shutting down, draining in-flight requests");
    let _ = stop_tx.send(true);
    drop(stop_rx);
    let drain = config.http.drain_timeout;
    if drain.is_zero() {
        server.await??;
    } else if let Ok(r) = tokio::time::timeout(drain, server).await {
        r??;
    } else {
        tracing::warn!(timeout = ?drain, "drain timeout passed, closing remaining connections");
    }
    Ok(())
}

/// Lifts the soft limit on open files to the hard one, as every Go program (distribution among
/// them) does at start-up: a service started with systemd's default soft limit of 1024 would
/// otherwise stop accepting connections at about a thousand, where registry:2 goes on.
fn raise_open_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit is refused by setrlimit; the kernel's own ceiling stands for it.
    let ceiling = limit.maximum.or_else(|| {
        std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse().ok())
    });
    let Some(ceiling) = ceiling else { return };
    if limit.current.is_none_or(|soft| soft >= ceiling) {
        return;
    }
    let raised = rustix::process::Rlimit {
        current: Some(ceiling),
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            tracing::debug!(from = ?limit.current, to = ceiling, "raised the open-file limit")
        }
        Err(e) => {
            tracing::warn!(error = %e, soft = ?limit.current, "cannot raise the open-file limit")
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `storage.maintenance.uploadpurging`: removes abandoned uploads in the background.
fn spawn_upload_purging(registry: &Registry, config: &Config) {
    let p = config.storage.upload_purging;
    if !p.enabled || config.storage.readonly {
        return;
    }
    let registry = registry.clone();
    tokio::spawn(async move {
        // a random first delay keeps a fleet sharing storage from purging all at once
        let jitter = Duration::from_secs(rand::random_range(0..60));
        tokio::time::sleep(jitter).await;
        loop {
            match registry.purge_uploads(p.age, p.dry_run).await {
                Ok(found) if p.dry_run => {
                    for u in found {
                        tracing::info!(upload = %u, "upload purging (dry run): would remove");
                    }
                }
                Ok(found) => tracing::info!(removed = found.len(), "upload purging done"),
                Err(e) => tracing::warn!(error = %e, "upload purging failed"),
            }
            tokio::time::sleep(p.interval.max(Duration::from_secs(1))).await;
        }
    });
}
