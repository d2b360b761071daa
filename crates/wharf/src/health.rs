//! Health checks (`health:`): background probes of the storage driver, files, TCP addresses and
//! HTTP URLs, each with distribution's interval/threshold rule (unhealthy after `threshold`
//! consecutive failures, healthy again after one success). The status is served on
//! `/debug/health` and, while any check fails, the API answers 503 UNAVAILABLE.
//!
//! Depends on `config` and the storage `Driver`; knows nothing of the content model.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use wharf_oci::ErrorCode;
use wharf_storage::{Driver, StoragePath};

use crate::api::ApiError;
use crate::config::HealthConfig;

/// distribution's default interval.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Used when a probe has no `timeout`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Current failures by check name; empty when healthy.
#[derive(Default)]
pub struct Health {
    failing: Mutex<BTreeMap<String, String>>,
}

impl Health {
    /// Failing checks and why, as `/debug/health` shows them.
    pub fn failures(&self) -> BTreeMap<String, String> {
        self.failing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, name: &str, error: Option<String>) {
        let mut failing = self.failing.lock().unwrap_or_else(|p| p.into_inner());
        match error {
            Some(e) => failing.insert(name.to_owned(), e),
            None => failing.remove(name),
        };
    }

    /// Starts every configured check; `None` when none is configured.
    pub fn start(config: &HealthConfig, driver: Arc<dyn Driver>) -> Option<Arc<Health>> {
        let health = Arc::new(Health::default());
        let mut any = false;
        let sd = &config.storage_driver;
        if sd.enabled {
            any = true;
            let name = format!("storagedriver_{}", driver.name());
            spawn(&health, name, sd.interval, sd.threshold, move || {
                probe_storage(driver.clone())
            });
        }
        for f in &config.file {
            any = true;
            let path = f.file.clone();
            spawn(
                &health,
                f.file.clone(),
                f.interval,
                f.threshold,
                move || {
                    let path = path.clone();
                    async move {
                        match tokio::fs::metadata(&path).await {
                            Ok(_) => Err(format!("file exists: {path}")),
                            Err(_) => Ok(()),
                        }
                    }
                },
            );
        }
        for t in &config.tcp {
            any = true;
            let (addr, timeout) = (t.addr.clone(), or(t.timeout, DEFAULT_TIMEOUT));
            spawn(
                &health,
                t.addr.clone(),
                t.interval,
                t.threshold,
                move || {
                    let addr = addr.clone();
                    async move {
                        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr))
                            .await
                        {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(format!("connect {addr}: {e}")),
                            Err(_) => Err(format!("connect {addr}: timed out")),
                        }
                    }
                },
            );
        }
        for h in &config.http {
            any = true;
            let check = HttpProbe::new(h);
            spawn(&health, h.uri.clone(), h.interval, h.threshold, move || {
                let check = check.clone();
                async move { check.run().await }
            });
        }
        any.then_some(health)
    }
}

fn or(d: Duration, default: Duration) -> Duration {
    if d.is_zero() { default } else { d }
}

/// Runs `probe` every `interval`, recording the outcome under `name`.
fn spawn<F, Fut>(health: &Arc<Health>, name: String, interval: Duration, threshold: u64, probe: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let health = health.clone();
    let interval = or(interval, DEFAULT_INTERVAL);
    let threshold = threshold.max(1);
    tokio::spawn(async move {
        let mut failures = 0u64;
        loop {
            match probe().await {
                Ok(()) => {
                    failures = 0;
                    health.set(&name, None);
                }
                Err(e) => {
                    failures += 1;
                    if failures >= threshold {
                        tracing::warn!(check = %name, error = %e, "health check failing");
                        health.set(&name, Some(e));
                    }
                }
            }
            tokio::time::sleep(interval).await;
        }
    });
}

/// `health.http`: a HEAD request that must answer `statuscode` (200 by default).
#[derive(Clone)]
struct HttpProbe {
    uri: String,
    target: Option<(String, String)>,
    headers: String,
    status: u16,
    timeout: Duration,
}

impl HttpProbe {
    fn new(h: &crate::config::HttpCheck) -> Self {
        let headers = h
            .headers
            .0
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| format!("{k}: {v}\r\n")))
            .collect();
        HttpProbe {
            uri: h.uri.clone(),
            target: crate::notify::endpoint::split_http_url(&h.uri),
            headers,
            status: if h.status_code == 0 {
                200
            } else {
                h.status_code
            },
            timeout: or(h.timeout, DEFAULT_TIMEOUT),
        }
    }

    async fn run(&self) -> Result<(), String> {
        let Some((authority, path)) = &self.target else {
            return Err(format!(
                "unsupported uri {:?} (only http:// is probed)",
                self.uri
            ));
        };
        let request = format!(
            "HEAD {path} HTTP/1.1\r\nHost: {authority}\r\n{}Connection: close\r\n\r\n",
            self.headers
        );
        let timeout = self.timeout;
        match crate::notify::endpoint::exchange(authority, request.as_bytes(), timeout).await? {
            s if s == self.status => Ok(()),
            s => Err(format!(
                "{} answered {s}, expected {}",
                self.uri, self.status
            )),
        }
    }
}

/// Writes and removes a small file outside distribution's `docker/` tree: a storage that can be
/// read but not written cannot take pushes, so it is not healthy.
async fn probe_storage(driver: Arc<dyn Driver>) -> Result<(), String> {
    let path = StoragePath::new(format!("/wharf/health/{}", uuid::Uuid::new_v4()))
        .map_err(|e| e.to_string())?;
    let probe = async {
        driver.put_content(&path, Bytes::from_static(b"ok")).await?;
        driver.delete(&path).await
    };
    match tokio::time::timeout(DEFAULT_TIMEOUT, probe).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err("storage driver did not answer in time".into()),
    }
}

/// Middleware on the API: 503 UNAVAILABLE while any check fails, as distribution does.
pub async fn gate(State(h): State<Arc<Health>>, req: Request, next: Next) -> Response {
    let failing = h.failures();
    if failing.is_empty() {
        return next.run(req).await;
    }
    let detail: serde_json::Map<String, Value> = failing
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    ApiError::new(ErrorCode::Unavailable, Value::Object(detail))
        .message("service unavailable: health checks failing")
        .into_response()
}

/// `/debug/health`: `{}` and 200 when healthy, else 503 and the failing checks.
pub fn status(health: Option<&Health>) -> Response {
    let failing = health.map(Health::failures).unwrap_or_default();
    let code = if failing.is_empty() {
        http::StatusCode::OK
    } else {
        http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_string(&failing).unwrap_or_else(|_| "{}".into());
    (
        code,
        [(http::header::CONTENT_TYPE, wharf_oci::media_type::JSON)],
        body,
    )
        .into_response()
}
