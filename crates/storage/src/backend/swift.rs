//! The `swift` backend: OpenStack Swift with distribution 2.x's parameters (distribution 3
//! dropped the driver); an [`ObjectStore`] over OpenDAL's Swift service. OpenDAL takes a static
//! token, so wharf logs in itself (v1/tempauth or Keystone v3, module `auth`) and its HTTP
//! transport keeps the token fresh (module `session`). Streamed writes go as part objects of
//! `chunksize` bytes joined by an SLO manifest that is copied server-side into one plain object,
//! so memory stays at a few chunks and an object written by distribution or wharf is a plain
//! object at its key. Redirect URLs are TempURLs signed with `secretkey`.

mod auth;
mod session;

use std::fmt;
use std::sync::Arc;

use opendal::{Buffer, HttpTransport, Operator};

pub use self::auth::{AuthError, Session};
pub use self::session::Account;
use self::session::{SloJoin, TokenTransport, encode_path};
use super::object::{CopyPlan, Joiner, ObjectStore};
use crate::driver::{Error, Result};

const NAME: &str = "swift";

/// distribution's default `chunksize` (20 MiB).
pub const DEFAULT_CHUNK_SIZE: u64 = 20 << 20;

/// The `swift` driver: an object store named `swift`.
pub type SwiftDriver = ObjectStore;

fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Backend {
        driver: NAME,
        source: source.into(),
    }
}

/// The Swift auth protocol (`authversion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthVersion {
    /// v1.0: tempauth / swauth (`X-Auth-User` + `X-Auth-Key`).
    V1,
    /// Keystone v2.0 (accepted in config, refused at start-up: not implemented).
    V2,
    /// Keystone v3, password method.
    V3,
}

/// Parameters of the `swift` driver, with distribution 2.x's keys.
#[derive(Clone, PartialEq, Eq)]
pub struct SwiftParams {
    /// `authurl` (required): v1 URL (`…/auth/v1.0`) or Keystone (`…/v3`).
    pub auth_url: String,
    /// `username` (required); for v1 `account:user`.
    pub username: String,
    /// `password` (required); for v1 the key.
    pub password: String,
    /// `tenant`: project name (Keystone).
    pub tenant: Option<String>,
    /// `tenantid`: project id (Keystone).
    pub tenant_id: Option<String>,
    /// `domain`: user and project domain name (Keystone v3).
    pub domain: Option<String>,
    /// `domainid`: user and project domain id (Keystone v3).
    pub domain_id: Option<String>,
    /// `tenantdomain`: the project's domain name when it differs from the user's (v3).
    pub tenant_domain: Option<String>,
    /// `tenantdomainid`: the project's domain id when it differs from the user's (v3).
    pub tenant_domain_id: Option<String>,
    /// `region`: picks the object-store endpoint of the catalog (Keystone).
    pub region: Option<String>,
    /// `endpointtype`: the catalog interface, `public` (default), `internal` or `admin`.
    pub endpoint_type: Option<String>,
    /// `container` (required): created when missing.
    pub container: String,
    /// `prefix`: object-name prefix below which the tree lives.
    pub prefix: String,
    /// `insecureskipverify`: accept any TLS certificate.
    pub insecure_skip_verify: bool,
    /// `chunksize`: bytes per part object of a streamed write (default 20 MiB).
    pub chunk_size: u64,
    /// `authversion`: 1, 2 or 3; `None` infers it from `authurl`.
    pub auth_version: Option<AuthVersion>,
    /// `secretkey`: the TempURL key; set on the account (or container) and used for redirects.
    pub secret_key: Option<String>,
    /// `tempurlcontainerkey`: the TempURL key is the container's, not the account's.
    pub temp_url_container_key: bool,
    /// `tempurlmethods`: methods TempURLs are made for; redirects need `GET` (default `GET`).
    pub temp_url_methods: Vec<String>,
    /// Blob GETs answer 307 to a TempURL (`storage.redirect.disable` turns it off).
    pub redirect: bool,
}

impl Default for SwiftParams {
    fn default() -> Self {
        SwiftParams {
            auth_url: String::new(),
            username: String::new(),
            password: String::new(),
            tenant: None,
            tenant_id: None,
            domain: None,
            domain_id: None,
            tenant_domain: None,
            tenant_domain_id: None,
            region: None,
            endpoint_type: None,
            container: String::new(),
            prefix: String::new(),
            insecure_skip_verify: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
            auth_version: None,
            secret_key: None,
            temp_url_container_key: false,
            temp_url_methods: Vec::new(),
            redirect: true,
        }
    }
}

impl fmt::Debug for SwiftParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SwiftParams")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &"*****")
            .field("tenant", &self.tenant)
            .field("tenant_id", &self.tenant_id)
            .field("domain", &self.domain)
            .field("domain_id", &self.domain_id)
            .field("tenant_domain", &self.tenant_domain)
            .field("tenant_domain_id", &self.tenant_domain_id)
            .field("region", &self.region)
            .field("endpoint_type", &self.endpoint_type)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("chunk_size", &self.chunk_size)
            .field("auth_version", &self.auth_version)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "*****"))
            .field("temp_url_container_key", &self.temp_url_container_key)
            .field("temp_url_methods", &self.temp_url_methods)
            .field("redirect", &self.redirect)
            .finish()
    }
}

impl SwiftParams {
    /// Whether blob GETs redirect: a TempURL key is known and `GET` TempURLs are allowed.
    pub fn redirects(&self) -> bool {
        self.redirect
            && self.secret_key.as_deref().is_some_and(|k| !k.is_empty())
            && (self.temp_url_methods.is_empty()
                || self
                    .temp_url_methods
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case("GET")))
    }
}

/// Sends one start-up request on the account, expecting success; a busy proxy (5xx, 429) or no
/// answer is retried with backoff, since a fleet restarting at once must not stop on one 503.
async fn call(
    transport: &TokenTransport,
    req: impl Fn() -> http::request::Builder,
    what: &str,
) -> Result<()> {
    let mut delay = std::time::Duration::from_millis(250);
    for attempt in 1.. {
        let sent = req()
            .header(http::header::CONTENT_LENGTH, "0")
            .body(Buffer::new())
            .map_err(|e| backend(format!("{what}: {e}")))?;
        let last = attempt == CALL_ATTEMPTS;
        match transport.fetch(sent).await {
            Ok(resp) if resp.status().is_success() => return Ok(()),
            Ok(resp) if !last && (resp.status().is_server_error() || resp.status() == 429) => {}
            Ok(resp) => return Err(backend(format!("{what}: status {}", resp.status()))),
            Err(_) if !last => {}
            Err(e) => return Err(backend(format!("{what}: {e}"))),
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    unreachable!("the last attempt returns")
}

/// Tries of one start-up request (about 8 s of backoff in all).
const CALL_ATTEMPTS: u32 = 6;

impl ObjectStore {
    /// The `swift` driver: logs in, creates the container when missing and sets the TempURL
    /// key when `secretkey` is given.
    pub async fn swift(params: SwiftParams) -> Result<Self> {
        Ok(Self::swift_account(params).await?.0)
    }

    /// [`swift`](Self::swift), also handing back the logged-in account.
    pub async fn swift_account(params: SwiftParams) -> Result<(Self, Arc<Account>)> {
        if params.container.is_empty() {
            return Err(backend("container is required"));
        }
        let client = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(params.insecure_skip_verify)
            .build()
            .map_err(backend)?;
        let account = Account::login(client.clone(), params.clone())
            .await
            .map_err(backend)?;
        let storage_url = account.storage_url().await;
        let transport = TokenTransport::new(client, account.clone());
        let container_url = format!("{storage_url}/{}", encode_path(&params.container));
        call(
            &transport,
            || http::Request::put(&container_url),
            "creating the container",
        )
        .await?;
        if let Some(key) = params.secret_key.as_deref().filter(|k| !k.is_empty()) {
            let (url, header) = if params.temp_url_container_key {
                (&container_url, "X-Container-Meta-Temp-URL-Key")
            } else {
                (&storage_url, "X-Account-Meta-Temp-URL-Key")
            };
            call(
                &transport,
                || http::Request::post(url).header(header, key),
                "setting the TempURL key",
            )
            .await?;
        }
        let prefix = params.prefix.trim_matches('/');
        let mut builder = opendal::services::Swift::default()
            .endpoint(&storage_url)
            .container(&params.container)
            .root(&format!("/{prefix}"));
        if let Some(key) = &params.secret_key {
            builder = builder.temp_url_key(key);
        }
        let op = Operator::new(builder).map_err(backend)?;
        let ctx = op
            .context()
            .with_http_transport(opendal::HttpTransporter::new(transport.clone()));
        let op = op.with_context(ctx);
        let join = SloJoin::new(transport, &storage_url, &params.container, prefix);
        let store = ObjectStore::new(
            op,
            NAME,
            CopyPlan::whole(),
            params.chunk_size,
            params.redirects(),
        )
        .with_compose(params.chunk_size)
        .with_joiner(Joiner::Custom(Arc::new(join)))
        .with_reread_missing();
        Ok((store, account))
    }
}

#[cfg(test)]
mod tests;
