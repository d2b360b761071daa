//! Access control: who may do what to which repository, decided before a request is dispatched.
//!
//! One [`AccessController`] per configured scheme (`htpasswd`, `token`, `silly`), chosen by the
//! `match` in [`controller`]. A refusal is a [`Denial`] whose [`Challenge`] the API renders as
//! `WWW-Authenticate` (in `api/error.rs`, the only place it becomes an OCI error). Depends on
//! the configuration and request headers only, never on storage. Passwords and tokens never
//! reach a log line, an error or a response.

pub mod challenge;
pub mod htpasswd;
pub mod silly;
pub mod token;
pub mod token_server;

use std::path::PathBuf;
use std::sync::Arc;

use http::HeaderMap;
use wharf_oci::RepoName;

use crate::config::{AuthConfig, Config};

pub use challenge::{BearerError, Challenge};

/// One thing a request wants to do, in the vocabulary of a token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// What is acted on.
    pub resource: Resource,
    /// What is done to it.
    pub action: Action,
}

impl Access {
    /// `action` on repository `name`.
    pub fn repository(name: &RepoName, action: Action) -> Access {
        Access {
            resource: Resource::Repository(name.clone()),
            action,
        }
    }
}

/// A resource of distribution's token scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// `repository:<name>`.
    Repository(RepoName),
    /// `registry:catalog`, the repository listing.
    Catalog,
}

impl Resource {
    /// The scope's type field.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Repository(_) => "repository",
            Resource::Catalog => "registry",
        }
    }

    /// The scope's name field.
    pub fn name(&self) -> &str {
        match self {
            Resource::Repository(name) => name.as_str(),
            Resource::Catalog => "catalog",
        }
    }
}

/// An action of distribution's token scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read manifests, blobs, tags, referrers.
    Pull,
    /// Upload blobs and manifests.
    Push,
    /// Delete manifests, tags and blobs.
    Delete,
    /// `*`: everything, which the catalog requires.
    All,
}

impl Action {
    /// The spelling in scopes and claims.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
            Action::All => "*",
        }
    }
}

/// Who passed the check, for the access log (never their secret).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The authenticated user or token subject, when the scheme knows one.
    pub user: Option<String>,
}

/// A refused request: 401 with `challenge`; `reason` is for the server log only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// What the client must do to get in, rendered as `WWW-Authenticate`.
    pub challenge: Challenge,
    /// The requested access, echoed in the error detail as distribution does.
    pub access: Vec<Access>,
    /// Why, in words that contain no credential.
    pub reason: &'static str,
}

/// Decides whether a request's credentials allow `access`; one implementation per scheme.
#[async_trait::async_trait]
pub trait AccessController: Send + Sync {
    /// `Ok` with who it is, or the challenge to answer with. An empty `access` asks only for
    /// authentication (`GET /v2/`).
    async fn authorize(&self, headers: &HeaderMap, access: &[Access]) -> Result<Grant, Denial>;
}

/// Why access control could not start; each names the file or key to fix.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A file could not be read or created.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// Which configured file.
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An htpasswd line wharf will not accept.
    #[error("auth.htpasswd: {}, line {line}: {reason}", path.display())]
    HtpasswdLine {
        /// The file.
        path: PathBuf,
        /// 1-based line number (the line itself may hold a hash, so it is not shown).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A token-auth setting is unusable.
    #[error("auth.token: {0}")]
    Token(String),
    /// A `token:` (built-in token server) setting is unusable.
    #[error("token: {0}")]
    TokenServer(String),
    /// A scheme neither distribution nor wharf provides.
    #[error("auth.{0}: unknown access-control scheme (wharf provides htpasswd, token and silly)")]
    Unknown(String),
}

/// The controller `auth:` asks for, or `None` when the registry is open.
pub fn controller(config: &AuthConfig) -> Result<Option<Arc<dyn AccessController>>, AuthError> {
    Ok(match config {
        AuthConfig::None => None,
        AuthConfig::Silly(c) => Some(Arc::new(silly::Silly::new(c))),
        AuthConfig::Htpasswd(c) => Some(Arc::new(htpasswd::Htpasswd::open(c)?)),
        AuthConfig::Token(c) => Some(Arc::new(token::TokenController::new(c)?)),
        AuthConfig::Other { scheme, .. } => return Err(AuthError::Unknown(scheme.clone())),
    })
}

/// The registry's controller: `auth:`'s, or, when only `token:` is set, one trusting the
/// built-in token server, so that section alone protects the registry.
pub fn configured(config: &Config) -> Result<Option<Arc<dyn AccessController>>, AuthError> {
    match (&config.auth, &config.token) {
        (AuthConfig::None, Some(t)) => Ok(Some(Arc::new(token_server::LocalRealm::new(
            t,
            &config.http,
        )?))),
        (auth, _) => controller(auth),
    }
}

/// Why a `token:` section probably does not protect the registry (a start-up warning): `auth:`
/// is another scheme, or a token realm that does not point at the built-in `/auth/token`.
pub fn token_section_warning(config: &Config) -> Option<String> {
    config.token.as_ref()?;
    let path = token_server::token_path(&config.http.prefix);
    match &config.auth {
        AuthConfig::None => None,
        AuthConfig::Token(t) => {
            let realm_path = if t.auto_redirect {
                t.auto_redirect_path.clone()
            } else {
                t.realm
                    .parse::<http::Uri>()
                    .map(|u| u.path().to_owned())
                    .unwrap_or_default()
            };
            (realm_path.trim_end_matches('/') != path).then(|| {
                format!(
                    "token: the built-in token server answers at {path}, but auth.token.realm ({}) \
                     points elsewhere; clients will not fetch their tokens from it",
                    t.realm
                )
            })
        }
        other => Some(format!(
            "token: the built-in token server answers at {path}, but auth is {}, not token; \
             the registry will not accept the tokens it issues",
            other.scheme().unwrap_or("unknown")
        )),
    }
}

/// The credentials of an `Authorization: <scheme> <value>` header, scheme matched
/// case-insensitively as RFC 7235 says.
pub(crate) fn credentials<'h>(headers: &'h HeaderMap, scheme: &str) -> Option<&'h str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(extra: &str) -> Option<String> {
        let yaml = format!(
            "version: 0.1\nstorage: inmemory\nhttp:\n  prefix: /reg/\ntoken:\n  issuer: wharf\n  service: reg\n  signingkey: /k\n{extra}"
        );
        let config = Config::parse(&yaml, &[]).unwrap().config;
        token_section_warning(&config)
    }

    #[test]
    fn a_token_section_not_used_by_auth_is_warned_about() {
        assert_eq!(warning(""), None, "token: alone protects the registry");
        let w = warning("auth:\n  htpasswd:\n    realm: r\n    path: /h\n").unwrap();
        assert!(w.contains("auth is htpasswd, not token"), "{w}");
        let ours = "auth:\n  token:\n    realm: https://r.example/reg/auth/token\n    service: reg\n    issuer: wharf\n    rootcertbundle: /c\n";
        assert_eq!(warning(ours), None);
        let w = warning(&ours.replace("/reg/auth/token", "/auth/token")).unwrap();
        assert!(w.contains("answers at /reg/auth/token"), "{w}");
        let redirect = "auth:\n  token:\n    realm: x\n    service: reg\n    issuer: wharf\n    rootcertbundle: /c\n    autoredirect: true\n    autoredirectpath: /reg/auth/token/\n";
        assert_eq!(warning(redirect), None);
    }
}
