//! The token every Swift request carries, kept fresh: OpenDAL's Swift service holds one static
//! token, so wharf's HTTP transport sets `X-Auth-Token` on each request from the current
//! session, logs in again shortly before the server-announced expiry, and on a `401` logs in
//! once more and repeats the request (bodies are in-memory buffers, so a retry resends them).
//! The same transport joins part objects: an SLO manifest of the parts, copied server-side into
//! one plain object.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use opendal::{Buffer, HttpBody, HttpTransport};
use opendal_http_transport_reqwest::ReqwestTransport;
use tokio::sync::{Mutex, RwLock};

use super::SwiftParams;
use super::auth::{self, AuthError, Session};
use crate::backend::object::Join;
use crate::driver::{Error, Result};

/// Log in again this long before the token expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// A logged-in Swift account: the session plus what is needed to renew it.
pub struct Account {
    client: reqwest::Client,
    params: SwiftParams,
    session: RwLock<Session>,
    /// Serialises logins so a burst of 401s logs in once.
    login: Mutex<()>,
    logins: std::sync::atomic::AtomicU64,
}

impl Account {
    /// Logs in with `params`.
    pub async fn login(
        client: reqwest::Client,
        params: SwiftParams,
    ) -> Result<Arc<Self>, AuthError> {
        let session = auth::login(&client, &params).await?;
        Ok(Arc::new(Account {
            client,
            params,
            session: RwLock::new(session),
            login: Mutex::new(()),
            logins: 1.into(),
        }))
    }

    /// The account URL the login returned.
    pub async fn storage_url(&self) -> String {
        self.session.read().await.storage_url.clone()
    }

    /// How many logins this account made (tests check refreshes).
    pub fn logins(&self) -> u64 {
        self.logins.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A token to use now: the current one, or a new one when it is about to expire.
    async fn token(&self) -> std::result::Result<String, AuthError> {
        let current = self.session.read().await.clone();
        match current.expires {
            Some(at) if at <= Instant::now() + REFRESH_MARGIN => self.renew(&current.token).await,
            _ => Ok(current.token),
        }
    }

    /// Logs in again unless another task already replaced `stale`.
    async fn renew(&self, stale: &str) -> std::result::Result<String, AuthError> {
        let _one = self.login.lock().await;
        {
            let session = self.session.read().await;
            if session.token != stale {
                return Ok(session.token.clone());
            }
        }
        let fresh = auth::login(&self.client, &self.params).await?;
        self.logins
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!("swift: logged in again");
        let token = fresh.token.clone();
        *self.session.write().await = fresh;
        Ok(token)
    }

    /// Drops the current token so the next request logs in (tests of the 401 path).
    #[cfg(test)]
    pub async fn spoil_token(&self) {
        self.session.write().await.token = "AUTH_tk-spoiled".to_owned();
    }
}

/// OpenDAL's HTTP transport for Swift: reqwest plus the account's token (see module docs).
#[derive(Clone)]
pub struct TokenTransport {
    inner: ReqwestTransport,
    account: Arc<Account>,
}

impl TokenTransport {
    /// A transport sending through `client` with `account`'s token.
    pub fn new(client: reqwest::Client, account: Arc<Account>) -> Self {
        TokenTransport {
            inner: ReqwestTransport::new(client),
            account,
        }
    }
}

fn auth_failed(e: AuthError) -> opendal::Error {
    opendal::Error::new(opendal::ErrorKind::PermissionDenied, "swift login failed").set_source(e)
}

fn with_token(mut req: Request<Buffer>, token: &str) -> opendal::Result<Request<Buffer>> {
    let value = http::HeaderValue::from_str(token).map_err(|e| {
        opendal::Error::new(
            opendal::ErrorKind::Unexpected,
            "token is not a header value",
        )
        .set_source(e)
    })?;
    req.headers_mut().insert("x-auth-token", value);
    Ok(req)
}

/// A copy of `req` to send again (its body is an in-memory buffer).
fn duplicate(req: &Request<Buffer>) -> Request<Buffer> {
    let mut again = Request::new(req.body().clone());
    *again.method_mut() = req.method().clone();
    *again.uri_mut() = req.uri().clone();
    *again.version_mut() = req.version();
    *again.headers_mut() = req.headers().clone();
    *again.extensions_mut() = req.extensions().clone();
    again
}

impl HttpTransport for TokenTransport {
    async fn fetch(&self, req: Request<Buffer>) -> opendal::Result<Response<HttpBody>> {
        let token = self.account.token().await.map_err(auth_failed)?;
        let again = duplicate(&req);
        let resp = self.inner.fetch(with_token(req, &token)?).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        drop(resp);
        let token = self.account.renew(&token).await.map_err(auth_failed)?;
        self.inner.fetch(with_token(again, &token)?).await
    }
}

/// Percent-encodes an object name for a URL path (`/` kept).
pub fn encode_path(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Joins objects of one container through an SLO manifest copied into a plain object.
pub struct SloJoin {
    transport: TokenTransport,
    /// `<storage url>/<container>`.
    container_url: String,
    container: String,
    /// The operator's root as an object-name prefix (`""` or `a/b/`).
    prefix: String,
}

/// Swift's default `max_manifest_segments`.
const MAX_MANIFEST_SEGMENTS: usize = 1000;

impl SloJoin {
    /// Joins in `container` of `account`, below `prefix` (the driver's `prefix`).
    pub fn new(
        transport: TokenTransport,
        storage_url: &str,
        container: &str,
        prefix: &str,
    ) -> Self {
        let prefix = prefix.trim_matches('/');
        SloJoin {
            transport,
            container_url: format!("{storage_url}/{}", encode_path(container)),
            container: container.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    fn url(&self, key: &str, query: &str) -> String {
        format!(
            "{}/{}{query}",
            self.container_url,
            encode_path(&format!("{}{key}", self.prefix))
        )
    }

    async fn send(&self, req: http::request::Builder, body: Buffer, what: &str) -> Result<()> {
        let req = req.body(body).map_err(|e| fail(format!("{what}: {e}")))?;
        let resp = self
            .transport
            .fetch(req)
            .await
            .map_err(|e| fail(format!("{what}: {e}")))?;
        let status = resp.status();
        if status.is_success() || (what.starts_with("DELETE") && status == StatusCode::NOT_FOUND) {
            return Ok(());
        }
        let mut body = resp.into_body();
        let body = body
            .to_buffer()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(fail(format!(
            "{what}: status {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        )))
    }
}

fn fail(msg: String) -> Error {
    Error::Backend {
        driver: super::NAME,
        source: msg.into(),
    }
}

#[async_trait::async_trait]
impl Join for SloJoin {
    async fn join(&self, sources: Vec<String>, to: &str) -> Result<()> {
        let manifest: Vec<serde_json::Value> = sources
            .iter()
            .map(|key| {
                serde_json::json!({ "path": format!("/{}/{}{key}", self.container, self.prefix) })
            })
            .collect();
        let body = serde_json::to_vec(&manifest).map_err(|e| fail(e.to_string()))?;
        let slo = format!("{to}~segments/slo-{}", uuid::Uuid::new_v4().simple());
        self.send(
            Request::put(self.url(&slo, "?multipart-manifest=put")),
            Buffer::from(body),
            "PUT SLO manifest",
        )
        .await?;
        let copied = self
            .send(
                Request::put(self.url(to, ""))
                    .header(
                        "X-Copy-From",
                        format!(
                            "/{}",
                            encode_path(&format!("{}/{}{slo}", self.container, self.prefix))
                        ),
                    )
                    .header(http::header::CONTENT_LENGTH, "0"),
                Buffer::new(),
                "COPY from SLO manifest",
            )
            .await;
        // The manifest alone (its segments are the caller's to delete).
        let deleted = self
            .send(
                Request::delete(self.url(&slo, "")),
                Buffer::new(),
                "DELETE SLO manifest",
            )
            .await;
        copied.and(deleted)
    }

    fn max_sources(&self) -> usize {
        MAX_MANIFEST_SEGMENTS
    }
}
