//! `token:`: the built-in token server at `/auth/token`, so one wharf process gives
//! per-repository permissions with no other service.
//!
//! `GET` follows Docker's token protocol (basic auth optional, anonymous without it); `POST`
//! is the OAuth2 form containerd and Docker use (`password` and `refresh_token` grants).
//! Users come from an htpasswd file (`auth/htpasswd.rs`), permissions from `rules.rs`; a
//! scope is granted only as far as both the request and the rules allow, and an ungranted
//! scope is left out rather than refused. Access tokens are JWTs signed by `signingkey` with
//! `certificate` in `x5c`, verified by `auth/token.rs` like any other token server's.
//! Refresh tokens are HMAC-signed (key derived from `http.secret`, else from the signing key),
//! bound to their user. Depends on the configuration and HTTP only, never on storage.

pub mod keygen;
pub mod rules;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::htpasswd::Htpasswd;
use super::token::TokenController;
use super::{Access, AccessController, Action, AuthError, Challenge, Denial, Grant, Resource};
use crate::config::{HtpasswdAuth, HttpConfig, TokenAuth, TokenServerConfig};
use rules::Rules;

/// The path tokens are served at (with and without the trailing slash `autoredirect` uses).
pub const TOKEN_PATH: &str = "/auth/token";

/// The issuing side, keys loaded at start-up.
pub struct TokenServer {
    issuer: String,
    service: String,
    expiration: Duration,
    refresh_expiration: Duration,
    algorithm: Algorithm,
    key: EncodingKey,
    x5c: Vec<String>,
    htpasswd: Option<Htpasswd>,
    rules: Rules,
    refresh_key: EncodingKey,
    refresh_check: DecodingKey,
}

/// Why a token request is refused; rendered by the one `match` in `into_response`.
#[derive(Debug)]
enum Refusal {
    /// 401: wrong or unknown credentials (never says which).
    Unauthorized,
    /// 400: a malformed request or another service's name.
    BadRequest(&'static str),
    /// 400: a refresh token that is forged, expired or whose user is gone.
    InvalidGrant,
    /// 500: signing failed.
    Internal,
}

/// The claims of a refresh token.
#[derive(Debug, Deserialize)]
struct RefreshClaims {
    sub: String,
    typ: String,
}

impl TokenServer {
    /// Loads the signing key and certificate, the users file and the rules of `token:`.
    pub fn new(config: &TokenServerConfig, secret: Option<&str>) -> Result<TokenServer, AuthError> {
        let Signer {
            algorithm,
            key,
            x5c,
            key_pem,
        } = signer(config)?;
        let htpasswd = (!config.htpasswd.is_empty())
            .then(|| {
                Htpasswd::open(&HtpasswdAuth {
                    realm: config.issuer.clone(),
                    path: config.htpasswd.clone(),
                })
            })
            .transpose()?;
        let seed: [u8; 32] = Sha256::new()
            .chain_update(b"wharf token server refresh tokens\0")
            .chain_update(secret.map_or(key_pem.as_slice(), str::as_bytes))
            .finalize()
            .into();
        Ok(TokenServer {
            issuer: config.issuer.clone(),
            service: config.service.clone(),
            expiration: config.expiration,
            refresh_expiration: config.refresh_expiration,
            algorithm,
            key,
            x5c,
            htpasswd,
            rules: Rules::new(config.access.clone(), config.groups.clone()),
            refresh_key: EncodingKey::from_secret(&seed),
            refresh_check: DecodingKey::from_secret(&seed),
        })
    }

    /// The `/auth/token` routes under `http.prefix`, to merge into the API's router before its
    /// fallback.
    pub fn routes<S: Clone + Send + Sync + 'static>(
        self: Arc<Self>,
        prefix: &str,
    ) -> axum::Router<S> {
        let method = || axum::routing::get(get_token).post(post_token);
        let path = token_path(prefix);
        axum::Router::new()
            .route(&path, method())
            .route(&format!("{path}/"), method())
            .with_state(self)
    }

    /// The account of an `Authorization: Basic` header, `None` without one.
    async fn account(&self, headers: &HeaderMap) -> Result<Option<String>, Refusal> {
        if super::credentials(headers, "Basic").is_none() {
            return Ok(None);
        }
        let htpasswd = self.htpasswd.as_ref().ok_or(Refusal::Unauthorized)?;
        match htpasswd.authorize(headers, &[]).await {
            Ok(Grant { user: Some(user) }) => Ok(Some(user)),
            Ok(Grant { user: None }) | Err(_) => Err(Refusal::Unauthorized),
        }
    }

    /// Checks a password grant's credentials through the same htpasswd path as basic auth.
    async fn login(&self, user: &str, password: &str) -> Result<String, Refusal> {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|_| Refusal::Unauthorized)?;
        headers.insert(http::header::AUTHORIZATION, value);
        self.account(&headers).await?.ok_or(Refusal::Unauthorized)
    }

    fn check_service(&self, service: Option<&str>) -> Result<(), Refusal> {
        match service {
            Some(s) if !s.is_empty() && s != self.service => {
                Err(Refusal::BadRequest("service is not this registry's"))
            }
            _ => Ok(()),
        }
    }

    /// The granted part of `scopes` for `account`, as `access` claim entries and scope strings.
    /// `registry:catalog:*` lists every repository, so it needs `*` on the pattern `*`.
    fn grant(&self, account: Option<&str>, scopes: &[String]) -> (Vec<Value>, Vec<String>) {
        let mut claim = Vec::new();
        let mut granted = Vec::new();
        for scope in scopes.iter().flat_map(|s| s.split_whitespace()) {
            let Some((resource, requested)) = parse_scope(scope) else {
                continue;
            };
            let allowed = match &resource {
                Resource::Repository(name) => self.rules.allowed(account, name.as_str()),
                Resource::Catalog => self.rules.allowed(account, "*"),
            };
            let actions: Vec<&str> = requested
                .into_iter()
                .filter(|a| allowed.contains(a))
                .map(Action::as_str)
                .collect();
            if actions.is_empty() {
                continue;
            }
            let (kind, name) = (resource.kind(), resource.name());
            granted.push(format!("{kind}:{name}:{}", actions.join(",")));
            claim.push(json!({"type": kind, "name": name, "actions": actions}));
        }
        (claim, granted)
    }

    /// A signed access token for `account` with the granted part of `scopes`.
    fn access_token(&self, account: Option<&str>, scopes: &[String]) -> Result<Issued, Refusal> {
        let now = jsonwebtoken::get_current_timestamp();
        let (access, granted) = self.grant(account, scopes);
        let jti: [u8; 16] = rand::random();
        let claims = json!({
            "iss": self.issuer, "sub": account.unwrap_or_default(), "aud": self.service,
            "exp": now + self.expiration.as_secs(), "nbf": now.saturating_sub(1), "iat": now,
            "jti": hex::encode(jti), "access": access,
        });
        let mut header = Header::new(self.algorithm);
        header.x5c = Some(self.x5c.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &self.key).map_err(|_| Refusal::Internal)?;
        tracing::info!(target: "token", account = account.unwrap_or("anonymous"), granted = %granted.join(" "), "token issued");
        Ok(Issued {
            token,
            granted,
            issued_at: now,
        })
    }

    /// A refresh token bound to `user`.
    fn refresh_token(&self, user: &str) -> Result<String, Refusal> {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = json!({"iss": self.issuer, "aud": self.service, "sub": user, "typ": "refresh",
            "iat": now, "exp": now + self.refresh_expiration.as_secs()});
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.refresh_key)
            .map_err(|_| Refusal::Internal)
    }

    /// The user a refresh token was issued to, if it is genuine, current, and the user exists.
    fn refreshed_user(&self, token: &str) -> Result<String, Refusal> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.service]);
        let claims = jsonwebtoken::decode::<RefreshClaims>(token, &self.refresh_check, &validation)
            .map_err(|_| Refusal::InvalidGrant)?
            .claims;
        let known = self.htpasswd.as_ref().is_some_and(|h| h.knows(&claims.sub));
        if claims.typ != "refresh" || !known {
            return Err(Refusal::InvalidGrant);
        }
        Ok(claims.sub)
    }
}

/// An access token and what it grants.
struct Issued {
    token: String,
    granted: Vec<String>,
    issued_at: u64,
}

/// `GET /auth/token?service=&scope=...&offline_token=`: Docker's token protocol.
async fn get_token(
    State(server): State<Arc<TokenServer>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.as_deref().unwrap_or_default().as_bytes());
    let result = async {
        server.check_service(params.one("service"))?;
        let account = server.account(&headers).await?;
        let issued = server.access_token(account.as_deref(), &params.all("scope"))?;
        let mut body = json!({
            "token": issued.token, "access_token": issued.token,
            "expires_in": server.expiration.as_secs(), "issued_at": rfc3339(issued.issued_at),
        });
        if let (Some(user), Some("true")) = (&account, params.one("offline_token")) {
            body["refresh_token"] = Value::String(server.refresh_token(user)?);
        }
        Ok::<_, Refusal>(body)
    }
    .await;
    reply(&server, result)
}

/// `POST /auth/token` (form): the OAuth2 `password` and `refresh_token` grants.
async fn post_token(State(server): State<Arc<TokenServer>>, body: Bytes) -> Response {
    let params = Params::parse(&body);
    let result = async {
        server.check_service(params.one("service"))?;
        let (user, offline) = match params.one("grant_type") {
            Some("password") => {
                let user = params
                    .one("username")
                    .ok_or(Refusal::BadRequest("username is required"))?;
                let password = params
                    .one("password")
                    .ok_or(Refusal::BadRequest("password is required"))?;
                (
                    server.login(user, password).await?,
                    params.one("access_type") == Some("offline"),
                )
            }
            Some("refresh_token") => {
                let token = params
                    .one("refresh_token")
                    .ok_or(Refusal::BadRequest("refresh_token is required"))?;
                (server.refreshed_user(token)?, true)
            }
            _ => {
                return Err(Refusal::BadRequest(
                    "grant_type must be password or refresh_token",
                ));
            }
        };
        let issued = server.access_token(Some(&user), &params.all("scope"))?;
        let mut body = json!({
            "access_token": issued.token, "expires_in": server.expiration.as_secs(),
            "issued_at": rfc3339(issued.issued_at), "scope": issued.granted.join(" "),
        });
        if offline {
            body["refresh_token"] = Value::String(server.refresh_token(&user)?);
        }
        Ok(body)
    }
    .await;
    reply(&server, result)
}

fn reply(server: &TokenServer, result: Result<Value, Refusal>) -> Response {
    let (status, error, description) = match result {
        Ok(body) => return json_response(StatusCode::OK, &body),
        Err(Refusal::Unauthorized) => (
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "authentication failed",
        ),
        Err(Refusal::BadRequest(why)) => (StatusCode::BAD_REQUEST, "invalid_request", why),
        Err(Refusal::InvalidGrant) => (
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token is not valid",
        ),
        Err(Refusal::Internal) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "cannot sign the token",
        ),
    };
    let body = json!({"error": error, "error_description": description,
        "errors": [{"code": "UNAUTHORIZED", "message": description}]});
    let mut resp = json_response(status, &body);
    if status == StatusCode::UNAUTHORIZED {
        let challenge = Challenge::Basic {
            realm: server.issuer.clone(),
        }
        .header_value();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let headers = [(http::header::CONTENT_TYPE, "application/json")];
    (status, headers, body.to_string()).into_response()
}

/// Decoded `application/x-www-form-urlencoded` pairs (a query string or a POST body).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(bytes: &[u8]) -> Params {
        Params(form_urlencoded::parse(bytes).into_owned().collect())
    }

    fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// `repository:<name>:<actions>` or `registry:catalog:*` → the resource and the known
/// actions asked for (a catalog scope asks for `*` whatever it says).
fn parse_scope(scope: &str) -> Option<(Resource, Vec<Action>)> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    let resource = match (kind, name) {
        ("repository", name) => Resource::Repository(name.parse().ok()?),
        ("registry", "catalog") => return Some((Resource::Catalog, vec![Action::All])),
        _ => return None,
    };
    let mut out = Vec::new();
    for a in actions.split(',') {
        let action = match a {
            "pull" => Action::Pull,
            "push" => Action::Push,
            "delete" => Action::Delete,
            "*" => Action::All,
            _ => continue,
        };
        if !out.contains(&action) {
            out.push(action);
        }
    }
    Some((resource, out))
}

/// What signs access tokens, as loaded from `signingkey` and `certificate`.
struct Signer {
    /// The algorithm whose signature the certificate's key verifies.
    algorithm: Algorithm,
    key: EncodingKey,
    /// The certificate file's chain, base64 DER, leaf first.
    x5c: Vec<String>,
    /// The key file's bytes, the refresh-token key's seed when `http.secret` is unset.
    key_pem: Vec<u8>,
}

/// Loads `signingkey` (generated when missing) and `certificate`; a key that does not belong
/// to the certificate stops start-up.
fn signer(config: &TokenServerConfig) -> Result<Signer, AuthError> {
    let fail =
        |what: &str, e: &dyn std::fmt::Display| AuthError::TokenServer(format!("{what}: {e}"));
    ensure_key(config)?;
    let cert_path = config.certificate_path();
    let key_pem = std::fs::read(&config.signing_key).map_err(|e| AuthError::Io {
        what: "token.signingkey",
        path: config.signing_key.clone().into(),
        source: e,
    })?;
    let certs = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| fail(&format!("certificate {}", cert_path.display()), &e))?;
    let b64 = |c: &CertificateDer<'_>| base64::engine::general_purpose::STANDARD.encode(c.as_ref());
    let leaf = certs.first().ok_or_else(|| {
        AuthError::TokenServer(format!(
            "certificate {}: no certificate found",
            cert_path.display()
        ))
    })?;
    let leaf_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        b64(leaf)
    );
    let mut probe_check = Validation::new(Algorithm::ES256);
    probe_check.set_required_spec_claims::<&str>(&[]);
    probe_check.validate_exp = false;
    probe_check.validate_aud = false;
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::RS256,
        Algorithm::EdDSA,
    ] {
        let keys = match alg.family() {
            AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&key_pem)
                .ok()
                .zip(DecodingKey::from_ec_pem(leaf_pem.as_bytes()).ok()),
            AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&key_pem)
                .ok()
                .zip(DecodingKey::from_rsa_pem(leaf_pem.as_bytes()).ok()),
            AlgorithmFamily::Ed => EncodingKey::from_ed_pem(&key_pem)
                .ok()
                .zip(DecodingKey::from_ed_pem(leaf_pem.as_bytes()).ok()),
            AlgorithmFamily::Hmac => None,
        };
        let Some((key, public)) = keys else { continue };
        probe_check.algorithms = vec![alg];
        let verified = jsonwebtoken::encode(&Header::new(alg), &json!({"probe": true}), &key)
            .ok()
            .is_some_and(|t| jsonwebtoken::decode::<Value>(&t, &public, &probe_check).is_ok());
        if verified {
            return Ok(Signer {
                algorithm: alg,
                key,
                x5c: certs.iter().map(b64).collect(),
                key_pem,
            });
        }
    }
    Err(AuthError::TokenServer(format!(
        "signingkey {} is not a PKCS#8 EC (P-256/P-384), RSA or Ed25519 key of the first certificate in {}",
        config.signing_key,
        cert_path.display()
    )))
}

/// Generates `signingkey` (and its certificate) when the key file does not exist yet.
fn ensure_key(config: &TokenServerConfig) -> Result<(), AuthError> {
    let key = std::path::Path::new(&config.signing_key);
    if key.exists() {
        return Ok(());
    }
    keygen::generate(key, &config.certificate_path())
}

/// `/auth/token` under `http.prefix` (as the API is served under it).
pub fn token_path(prefix: &str) -> String {
    format!("{}{TOKEN_PATH}", prefix.trim_end_matches('/'))
}

/// `issued_at`: seconds since the epoch as RFC 3339 UTC.
fn rfc3339(secs: u64) -> String {
    crate::rfc3339::seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// `auth.token` for a registry whose only token server is its own `token:` section: the
/// realm is `<this server><http.prefix>/auth/token`, derived per request unless `token.realm` or
/// `http.host` fixes it.
pub struct LocalRealm {
    inner: TokenController,
    realm: Option<String>,
    /// `/auth/token` under `http.prefix`.
    path: String,
    tls: bool,
}

impl LocalRealm {
    /// Trusts `token.certificate` for tokens of `token.issuer` addressed to `token.service`.
    pub fn new(config: &TokenServerConfig, http: &HttpConfig) -> Result<LocalRealm, AuthError> {
        let fixed = match (config.realm.as_str(), http.host.as_deref()) {
            ("", Some(host)) if !host.is_empty() => Some(format!(
                "{}{}",
                host.trim_end_matches('/'),
                token_path(&http.prefix)
            )),
            ("", _) => None,
            (realm, _) => Some(realm.to_owned()),
        };
        ensure_key(config)?;
        let inner = TokenController::new(&TokenAuth {
            realm: fixed.clone().unwrap_or_default(),
            service: config.service.clone(),
            issuer: config.issuer.clone(),
            root_cert_bundle: config.certificate_path().display().to_string(),
            ..TokenAuth::default()
        })?;
        Ok(LocalRealm {
            inner,
            realm: fixed,
            path: token_path(&http.prefix),
            tls: http.tls.is_requested(),
        })
    }

    fn realm(&self, headers: &HeaderMap) -> String {
        if let Some(realm) = &self.realm {
            return realm.clone();
        }
        let text = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
        let scheme = text("x-forwarded-proto").unwrap_or(if self.tls { "https" } else { "http" });
        let host = text(http::header::HOST.as_str()).unwrap_or("localhost");
        format!("{scheme}://{host}{}", self.path)
    }
}

#[async_trait::async_trait]
impl AccessController for LocalRealm {
    async fn authorize(&self, headers: &HeaderMap, access: &[Access]) -> Result<Grant, Denial> {
        self.inner
            .authorize(headers, access)
            .await
            .map_err(|mut denial| {
                if let Challenge::Bearer { realm, .. } = &mut denial.challenge {
                    *realm = self.realm(headers);
                }
                denial
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_at_is_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_999_999), "2026-11-30T00:53:19Z");
    }

    #[test]
    fn scopes_keep_known_actions_of_repositories_and_the_catalog() {
        let (resource, actions) = parse_scope("repository:team/app:pull,push,bogus,pull").unwrap();
        assert_eq!(resource.name(), "team/app");
        assert_eq!(actions, [Action::Pull, Action::Push]);
        let (resource, actions) = parse_scope("registry:catalog:*").unwrap();
        assert_eq!((resource, actions), (Resource::Catalog, vec![Action::All]));
        assert!(parse_scope("registry:other:*").is_none());
        assert!(parse_scope("repository:Bad Name:pull").is_none());
        assert!(parse_scope("repository:noactions").is_none());
    }
}
