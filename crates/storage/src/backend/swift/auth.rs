//! Getting a Swift token: v1 (tempauth, swauth, most SAIO-style proxies) and Keystone v3
//! (password method, project scope), the two ways distribution 2.x's driver logs in. OpenDAL's
//! Swift service takes only a ready token, so this is wharf's.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::{AuthVersion, SwiftParams};

/// What a login yields: the token and where the account's objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `X-Auth-Token` value for every request.
    pub token: String,
    /// The account URL, e.g. `https://swift.example/v1/AUTH_project`.
    pub storage_url: String,
    /// When the token expires, when the server said.
    pub expires: Option<Instant>,
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The auth server could not be reached or answered garbage.
    #[error("swift auth request to {url}: {source}")]
    Request {
        /// The auth URL.
        url: String,
        /// What went wrong.
        source: reqwest::Error,
    },
    /// The auth server refused or answered without what a login needs.
    #[error("swift auth at {url}: {reason}")]
    Refused {
        /// The auth URL.
        url: String,
        /// Status or missing piece.
        reason: String,
    },
}

fn refused(url: &str, reason: impl Into<String>) -> AuthError {
    AuthError::Refused {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

/// The auth version to speak: `authversion` if set, else guessed from the URL as distribution
/// does (`…/v3…` → 3, `…/v2…` → 2, anything else → 1).
pub fn version(params: &SwiftParams) -> AuthVersion {
    if let Some(v) = params.auth_version {
        return v;
    }
    let url = params.auth_url.to_ascii_lowercase();
    if url.contains("/v3") {
        AuthVersion::V3
    } else if url.contains("/v2") {
        AuthVersion::V2
    } else {
        AuthVersion::V1
    }
}

/// Login attempts before giving up on a busy or unreachable auth server.
const LOGIN_ATTEMPTS: u32 = 4;

/// Whether a failed login may succeed when tried again (a 5xx, a 429, no answer).
fn transient(e: &AuthError) -> bool {
    match e {
        AuthError::Request { .. } => true,
        AuthError::Refused { reason, .. } => {
            reason.starts_with("status 5") || reason.starts_with("status 429")
        }
    }
}

/// Logs in with `params`; `client` carries the TLS settings. Transient failures are retried
/// with a short backoff; a refusal (401, 403) is not.
pub async fn login(client: &reqwest::Client, params: &SwiftParams) -> Result<Session, AuthError> {
    let mut attempt = 1;
    loop {
        match login_once(client, params).await {
            Err(e) if attempt < LOGIN_ATTEMPTS && transient(&e) => {
                tracing::warn!(error = %e, attempt, "swift: login failed; trying again");
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

async fn login_once(client: &reqwest::Client, params: &SwiftParams) -> Result<Session, AuthError> {
    match version(params) {
        AuthVersion::V1 => login_v1(client, params).await,
        AuthVersion::V2 => Err(refused(
            &params.auth_url,
            "Keystone v2.0 auth is not implemented by wharf (use authversion 3 or 1)",
        )),
        AuthVersion::V3 => login_v3(client, params).await,
    }
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn login_v1(client: &reqwest::Client, params: &SwiftParams) -> Result<Session, AuthError> {
    let url = &params.auth_url;
    let resp = client
        .get(url)
        .header("X-Auth-User", &params.username)
        .header("X-Auth-Key", &params.password)
        .send()
        .await
        .map_err(|source| AuthError::Request {
            url: url.clone(),
            source,
        })?;
    if !resp.status().is_success() {
        return Err(refused(url, format!("status {}", resp.status())));
    }
    let token = header(&resp, "x-auth-token").ok_or_else(|| refused(url, "no X-Auth-Token"))?;
    let storage_url =
        header(&resp, "x-storage-url").ok_or_else(|| refused(url, "no X-Storage-Url"))?;
    let expires = header(&resp, "x-auth-token-expires")
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    Ok(Session {
        token,
        storage_url: storage_url.trim_end_matches('/').to_owned(),
        expires,
    })
}

/// `{"id": …}` or `{"name": …}` of a domain; `None` when neither is configured.
fn domain_ref(id: Option<&str>, name: Option<&str>) -> Option<Value> {
    if let Some(id) = id.filter(|s| !s.is_empty()) {
        return Some(json!({ "id": id }));
    }
    let name = name.filter(|s| !s.is_empty())?;
    Some(json!({ "name": name }))
}

/// The user's domain (`domainid` / `domain`).
fn domain(params: &SwiftParams) -> Option<Value> {
    domain_ref(params.domain_id.as_deref(), params.domain.as_deref())
}

/// The project's domain: `tenantdomainid` / `tenantdomain`, else the user's.
fn tenant_domain(params: &SwiftParams) -> Option<Value> {
    domain_ref(
        params.tenant_domain_id.as_deref(),
        params.tenant_domain.as_deref(),
    )
    .or_else(|| domain(params))
}

/// The Keystone v3 `POST /v3/auth/tokens` body: password method, project scope from
/// `tenant`/`tenantid` (the user's domain also scopes a project named by name).
pub fn v3_body(params: &SwiftParams) -> Value {
    let mut user = json!({ "name": params.username, "password": params.password });
    if let Some(d) = domain(params) {
        user["domain"] = d;
    }
    let mut body = json!({
        "auth": {
            "identity": { "methods": ["password"], "password": { "user": user } }
        }
    });
    let project = if let Some(id) = params.tenant_id.as_deref().filter(|s| !s.is_empty()) {
        Some(json!({ "id": id }))
    } else if let Some(name) = params.tenant.as_deref().filter(|s| !s.is_empty()) {
        let mut p = json!({ "name": name });
        if let Some(d) = tenant_domain(params) {
            p["domain"] = d;
        }
        Some(p)
    } else {
        None
    };
    if let Some(project) = project {
        body["auth"]["scope"] = json!({ "project": project });
    }
    body
}

/// The `object-store` endpoint of a v3 token's catalog on `interface` (`public` when `None`),
/// in `region` when one is set.
pub fn v3_endpoint(token: &Value, region: Option<&str>, interface: Option<&str>) -> Option<String> {
    let interface = interface.filter(|i| !i.is_empty()).unwrap_or("public");
    let catalog = token.get("token")?.get("catalog")?.as_array()?;
    catalog
        .iter()
        .filter(|service| service.get("type").and_then(Value::as_str) == Some("object-store"))
        .filter_map(|service| service.get("endpoints")?.as_array())
        .flatten()
        .filter(|e| e.get("interface").and_then(Value::as_str) == Some(interface))
        .find(|e| match region.filter(|r| !r.is_empty()) {
            None => true,
            Some(r) => [e.get("region"), e.get("region_id")]
                .into_iter()
                .flatten()
                .any(|v| v.as_str() == Some(r)),
        })
        .and_then(|e| e.get("url")?.as_str())
        .map(|url| url.trim_end_matches('/').to_owned())
}

/// Seconds since the Unix epoch of a Keystone `expires_at` (`2030-01-01T00:00:00.000000Z`;
/// UTC, as Keystone writes it); `None` for anything else.
pub fn parse_expires_at(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.split('.').next()?;
    let mut t = time.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // days from 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm)
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + hh * 3600 + mm * 60 + ss).ok()
}

/// When a token expiring at `epoch_secs` expires on this process's monotonic clock.
fn instant_of(epoch_secs: u64) -> Option<Instant> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    let left = Duration::from_secs(epoch_secs)
        .checked_sub(now)
        .unwrap_or_default();
    Some(Instant::now() + left)
}

fn v3_tokens_url(auth_url: &str) -> String {
    let base = auth_url.trim_end_matches('/');
    if base.ends_with("/auth/tokens") {
        base.to_owned()
    } else if base.ends_with("/v3") {
        format!("{base}/auth/tokens")
    } else {
        format!("{base}/v3/auth/tokens")
    }
}

async fn login_v3(client: &reqwest::Client, params: &SwiftParams) -> Result<Session, AuthError> {
    let url = v3_tokens_url(&params.auth_url);
    let resp = client
        .post(&url)
        .json(&v3_body(params))
        .send()
        .await
        .map_err(|source| AuthError::Request {
            url: url.clone(),
            source,
        })?;
    if !resp.status().is_success() {
        return Err(refused(&url, format!("status {}", resp.status())));
    }
    let token =
        header(&resp, "x-subject-token").ok_or_else(|| refused(&url, "no X-Subject-Token"))?;
    let body: Value = resp.json().await.map_err(|source| AuthError::Request {
        url: url.clone(),
        source,
    })?;
    let storage_url = v3_endpoint(
        &body,
        params.region.as_deref(),
        params.endpoint_type.as_deref(),
    )
    .ok_or_else(|| {
        refused(
            &url,
            format!(
                "no {} object-store endpoint{} in the token's catalog",
                params.endpoint_type.as_deref().unwrap_or("public"),
                params
                    .region
                    .as_deref()
                    .map(|r| format!(" in region {r}"))
                    .unwrap_or_default()
            ),
        )
    })?;
    let expires = body
        .get("token")
        .and_then(|t| t.get("expires_at"))
        .and_then(Value::as_str)
        .and_then(parse_expires_at)
        .and_then(instant_of);
    Ok(Session {
        token,
        storage_url,
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> SwiftParams {
        SwiftParams {
            auth_url: "https://keystone.example/v3".into(),
            username: "alice".into(),
            password: "s3cret".into(),
            tenant: Some("registry".into()),
            domain: Some("Default".into()),
            ..SwiftParams::default()
        }
    }

    #[test]
    fn version_is_inferred_from_the_url_unless_set() {
        let with = |url: &str| SwiftParams {
            auth_url: url.into(),
            ..SwiftParams::default()
        };
        assert_eq!(version(&with("http://h:8080/auth/v1.0")), AuthVersion::V1);
        assert_eq!(version(&with("https://k/v2.0")), AuthVersion::V2);
        assert_eq!(version(&with("https://k:5000/v3/")), AuthVersion::V3);
        let forced = SwiftParams {
            auth_version: Some(AuthVersion::V1),
            ..with("https://k/v3")
        };
        assert_eq!(version(&forced), AuthVersion::V1);
        assert_eq!(
            v3_tokens_url("https://k:5000/v3/"),
            "https://k:5000/v3/auth/tokens"
        );
        assert_eq!(
            v3_tokens_url("https://k:5000"),
            "https://k:5000/v3/auth/tokens"
        );
    }

    #[test]
    fn v3_body_is_password_method_with_project_scope() {
        let body = v3_body(&params());
        assert_eq!(
            body,
            json!({"auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": "alice", "password": "s3cret", "domain": {"name": "Default"}}}},
                "scope": {"project": {"name": "registry", "domain": {"name": "Default"}}}
            }})
        );
        let by_id = SwiftParams {
            tenant_id: Some("p-123".into()),
            domain_id: Some("d-9".into()),
            ..params()
        };
        let body = v3_body(&by_id);
        assert_eq!(body["auth"]["scope"], json!({"project": {"id": "p-123"}}));
        assert_eq!(
            body["auth"]["identity"]["password"]["user"]["domain"],
            json!({"id": "d-9"})
        );
        let other_domain = SwiftParams {
            tenant_domain: Some("Projects".into()),
            ..params()
        };
        assert_eq!(
            v3_body(&other_domain)["auth"]["scope"]["project"]["domain"],
            json!({"name": "Projects"})
        );
        let unscoped = SwiftParams {
            tenant: None,
            ..params()
        };
        assert!(v3_body(&unscoped)["auth"].get("scope").is_none());
    }

    /// A token body in the documented Keystone v3 format (api-ref "Password authentication
    /// with scoped authorization"), trimmed to what matters.
    const TOKEN: &str = r#"{"token": {
        "methods": ["password"], "expires_at": "2030-01-01T00:00:00.000000Z",
        "project": {"domain": {"id": "default", "name": "Default"}, "id": "p1", "name": "registry"},
        "catalog": [
          {"type": "identity", "name": "keystone", "id": "k", "endpoints": [
            {"interface": "public", "region": "RegionOne", "region_id": "RegionOne",
             "url": "https://keystone.example/v3", "id": "e0"}]},
          {"type": "object-store", "name": "swift", "id": "s", "endpoints": [
            {"interface": "internal", "region": "RegionOne", "region_id": "RegionOne",
             "url": "http://10.0.0.5:8080/v1/AUTH_p1", "id": "e1"},
            {"interface": "public", "region": "RegionOne", "region_id": "RegionOne",
             "url": "https://swift-one.example/v1/AUTH_p1", "id": "e2"},
            {"interface": "public", "region": "RegionTwo", "region_id": "RegionTwo",
             "url": "https://swift-two.example/v1/AUTH_p1/", "id": "e3"}]}
        ]}}"#;

    #[test]
    fn keystone_expiry_is_read_as_utc() {
        assert_eq!(parse_expires_at("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_expires_at("2030-01-01T00:00:00.000000Z"),
            Some(1_893_456_000)
        );
        assert_eq!(
            parse_expires_at("2024-02-29T12:34:56+00:00"),
            Some(1_709_210_096)
        );
        assert_eq!(parse_expires_at("2024-02-29T12:34:56+02:00"), None);
        assert_eq!(parse_expires_at("tomorrow"), None);
        let token: Value = serde_json::from_str(TOKEN).unwrap();
        assert_eq!(
            parse_expires_at(token["token"]["expires_at"].as_str().unwrap()),
            Some(1_893_456_000)
        );
        assert!(instant_of(0).is_some_and(|at| at <= Instant::now()));
    }

    #[test]
    fn v3_catalog_yields_the_public_object_store_of_the_region() {
        let token: Value = serde_json::from_str(TOKEN).unwrap();
        assert_eq!(
            v3_endpoint(&token, None, None).as_deref(),
            Some("https://swift-one.example/v1/AUTH_p1")
        );
        assert_eq!(
            v3_endpoint(&token, Some("RegionTwo"), Some("public")).as_deref(),
            Some("https://swift-two.example/v1/AUTH_p1")
        );
        assert_eq!(
            v3_endpoint(&token, Some("RegionOne"), Some("internal")).as_deref(),
            Some("http://10.0.0.5:8080/v1/AUTH_p1")
        );
        assert_eq!(v3_endpoint(&token, Some("Nowhere"), None), None);
        assert_eq!(
            v3_endpoint(&json!({"token": {"catalog": []}}), None, None),
            None
        );
    }
}
