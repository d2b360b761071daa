//! One configured endpoint: which events it wants, and the task that delivers its queue in order,
//! one envelope per event, retrying with distribution's threshold/backoff rule (retry at once
//! until `threshold` consecutive failures, then wait `backoff` before each further attempt).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use super::event::ENVELOPE_MEDIA_TYPE;
use super::queue::Queue;
use crate::config::Endpoint as EndpointConfig;

/// Used when `timeout` is not set (distribution would wait forever).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Used when `backoff` is not set.
const DEFAULT_BACKOFF: Duration = Duration::from_secs(1);
/// Pause between attempts below the threshold, so a refusing endpoint is not spun on.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Why an endpoint cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Only `http://` and `https://host[:port]/path` URLs are delivered to.
    #[error(
        "notifications endpoint {name}: unsupported url {url:?} (only http:// and https:// are supported)"
    )]
    Url {
        /// Endpoint name.
        name: String,
        /// The configured URL.
        url: String,
    },
    /// An `https://` endpoint whose TLS client cannot be set up.
    #[error("notifications endpoint {name}: {reason}")]
    Tls {
        /// Endpoint name.
        name: String,
        /// Why (no trusted roots, a host that is not a valid server name).
        reason: String,
    },
}

/// Where and how to POST.
#[derive(Debug, Clone)]
pub struct Target {
    name: String,
    authority: String,
    path: String,
    tls: Option<super::https::Tls>,
    headers: Vec<(String, String)>,
    timeout: Duration,
    threshold: u64,
    backoff: Duration,
}

impl Target {
    /// Checks an endpoint's config once, at start-up.
    pub fn from_config(cfg: &EndpointConfig) -> Result<Target, Error> {
        let bad = || Error::Url {
            name: cfg.name.clone(),
            url: cfg.url.clone(),
        };
        let (authority, path, tls) = match cfg.url.strip_prefix("https://") {
            Some(rest) => {
                let (authority, path) = split_authority(rest, 443).ok_or_else(bad)?;
                let tls = super::https::Tls::new(&authority).map_err(|reason| Error::Tls {
                    name: cfg.name.clone(),
                    reason,
                })?;
                (authority, path, Some(tls))
            }
            None => {
                let (authority, path) = split_http_url(&cfg.url).ok_or_else(bad)?;
                (authority, path, None)
            }
        };
        let headers = cfg
            .headers
            .0
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect();
        let or = |d: Duration, default| if d.is_zero() { default } else { d };
        Ok(Target {
            name: cfg.name.clone(),
            authority,
            path,
            tls,
            headers,
            timeout: or(cfg.timeout, DEFAULT_TIMEOUT),
            threshold: cfg.threshold.max(1),
            backoff: or(cfg.backoff, DEFAULT_BACKOFF),
        })
    }

    /// One POST of `body`; `Ok` on a 2xx or 3xx answer, as distribution's HTTP sink.
    async fn post(&self, body: &[u8]) -> Result<(), String> {
        let mut request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {ENVELOPE_MEDIA_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.path,
            self.authority,
            body.len()
        );
        for (k, v) in &self.headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        let mut request = request.into_bytes();
        request.extend_from_slice(body);
        let status = match &self.tls {
            None => exchange(&self.authority, &request, self.timeout).await?,
            Some(tls) => exchange_tls(&self.authority, tls, &request, self.timeout).await?,
        };
        match status {
            status if (200..400).contains(&status) => Ok(()),
            status => Err(format!("status {status}")),
        }
    }
}

/// `http://host[:port]/path` split into `host:port` (port 80 by default) and the path.
pub(crate) fn split_http_url(url: &str) -> Option<(String, String)> {
    split_authority(url.strip_prefix("http://")?, 80)
}

/// `host[:port]/path` (the URL after its scheme) split into `host:port` and the path.
fn split_authority(rest: &str, default_port: u16) -> Option<(String, String)> {
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return None;
    }
    let authority = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_owned()
    } else {
        format!("{authority}:{default_port}")
    };
    Some((authority, path.to_owned()))
}

/// Sends one complete HTTP/1.1 request (with `Connection: close`) and returns the status code.
/// The only HTTP client wharf needs (webhooks, health probes): plain HTTP, no body read.
pub(crate) async fn exchange(
    authority: &str,
    request: &[u8],
    timeout: Duration,
) -> Result<u16, String> {
    let attempt = async { status_of(connect(authority).await?, request).await };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")))
}

/// [`exchange`] over TLS (`https://` endpoints).
async fn exchange_tls(
    authority: &str,
    tls: &super::https::Tls,
    request: &[u8],
    timeout: Duration,
) -> Result<u16, String> {
    let attempt = async {
        let conn = tls
            .connect(connect(authority).await?)
            .await
            .map_err(|e| format!("TLS handshake with {authority}: {e}"))?;
        status_of(conn, request).await
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("timed out after {timeout:?}")))
}

async fn connect(authority: &str) -> Result<tokio::net::TcpStream, String> {
    tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))
}

/// Writes `request` and reads the status code of the answer's first line.
async fn status_of<S>(mut conn: S, request: &[u8]) -> Result<u16, String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    conn.write_all(request).await.map_err(|e| e.to_string())?;
    conn.flush().await.map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 256];
    while !answer.windows(2).any(|w| w == b"\r\n") {
        let n = conn.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {line:?}"))
}

/// Delivery counters of one endpoint, for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Events the endpoint accepted.
    pub delivered: AtomicU64,
    /// Failed attempts (each retry counts).
    pub failures: AtomicU64,
    /// Events that could not be queued (queue full or unwritable).
    pub dropped: AtomicU64,
}

/// Delivers `queue` to `target` forever, oldest first; `wake` is signalled on every append.
pub async fn deliver(target: Target, queue: Arc<Queue>, wake: Arc<Notify>, stats: Arc<Stats>) {
    let mut failures: u64 = 0;
    loop {
        let next = match queue.peek() {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(endpoint = %target.name, error = %e, "reading notification queue");
                tokio::time::sleep(target.backoff).await;
                continue;
            }
        };
        let Some((event, offset)) = next else {
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.notified()).await;
            continue;
        };
        let mut body = Vec::with_capacity(event.len() + 16);
        body.extend_from_slice(b"{\"events\":[");
        body.extend_from_slice(&event);
        body.extend_from_slice(b"]}");
        match target.post(&body).await {
            Ok(()) => {
                failures = 0;
                stats.delivered.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = queue.ack(offset) {
                    tracing::error!(endpoint = %target.name, error = %e, "acknowledging notification");
                }
            }
            Err(e) => {
                failures += 1;
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(endpoint = %target.name, failures, error = %e, "notification not delivered; will retry");
                let pause = if failures >= target.threshold {
                    target.backoff
                } else {
                    RETRY_PAUSE
                };
                tokio::time::sleep(pause).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> EndpointConfig {
        EndpointConfig {
            name: "e".into(),
            url: url.into(),
            ..EndpointConfig::default()
        }
    }

    #[test]
    fn urls_split_into_authority_and_path_with_defaults() {
        let t = Target::from_config(&cfg("http://sink:8080/hook?x=1")).unwrap();
        assert_eq!(
            (t.authority.as_str(), t.path.as_str()),
            ("sink:8080", "/hook?x=1")
        );
        let t = Target::from_config(&cfg("http://sink")).unwrap();
        assert_eq!((t.authority.as_str(), t.path.as_str()), ("sink:80", "/"));
        assert_eq!((t.timeout, t.threshold), (DEFAULT_TIMEOUT, 1));
        let (authority, path) = split_authority("[::1]/x", 443).unwrap();
        assert_eq!((authority.as_str(), path.as_str()), ("[::1]:443", "/x"));
    }

    #[test]
    fn garbage_urls_are_refused_at_start() {
        for url in [
            "ftp://sink/hook",
            "sink/hook",
            "http:///x",
            "https:///x",
            "",
        ] {
            assert!(Target::from_config(&cfg(url)).is_err(), "{url}");
        }
    }
}
