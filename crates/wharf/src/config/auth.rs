//! `auth:`: one access-control scheme (silly, token or htpasswd).
//!
//! `crate::auth` builds the controller from these; a scheme neither distribution nor wharf
//! provides is kept as [`AuthConfig::Other`] so that `Config::parse` can refuse it by name: an
//! operator who asked for authentication must never get an open registry instead.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

use super::tree::{Node, Params};
use super::typed::Ctx;

/// The configured access controller.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AuthConfig {
    /// No `auth:` section: every request is allowed.
    #[default]
    None,
    /// `silly`: any `Authorization` header passes (development only).
    Silly(SillyAuth),
    /// `token`: bearer tokens issued by an external token server.
    Token(TokenAuth),
    /// `htpasswd`: basic auth against a bcrypt htpasswd file.
    Htpasswd(HtpasswdAuth),
    /// A scheme distribution does not ship (its plug-ins); kept to name it in the error.
    Other {
        /// The key under `auth:`.
        scheme: String,
        /// Its parameters, secrets masked in `Debug`.
        params: Params,
    },
}

impl AuthConfig {
    /// The key under `auth:`, or `None` when access control is off.
    pub fn scheme(&self) -> Option<&str> {
        match self {
            AuthConfig::None => None,
            AuthConfig::Silly(_) => Some("silly"),
            AuthConfig::Token(_) => Some("token"),
            AuthConfig::Htpasswd(_) => Some("htpasswd"),
            AuthConfig::Other { scheme, .. } => Some(scheme),
        }
    }
}

/// `auth.silly`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SillyAuth {
    /// `realm`: echoed in the challenge.
    pub realm: String,
    /// `service`: echoed in the challenge.
    pub service: String,
}

/// `auth.token`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TokenAuth {
    /// `realm`: URL of the token server clients are sent to.
    pub realm: String,
    /// `service`: this registry's name at the token server.
    pub service: String,
    /// `issuer`: expected `iss` of tokens.
    pub issuer: String,
    /// `rootcertbundle`: certificates whose keys sign tokens.
    #[serde(rename = "rootcertbundle")]
    pub root_cert_bundle: String,
    /// `jwks`: a JSON Web Key Set file of trusted keys.
    pub jwks: String,
    /// `autoredirect`: derive the realm from the request's host.
    #[serde(rename = "autoredirect")]
    pub auto_redirect: bool,
    /// `autoredirectpath`: token path used with `autoredirect` (default `/auth/token/`).
    #[serde(rename = "autoredirectpath")]
    pub auto_redirect_path: String,
    /// `signingalgorithms`: accepted JWS algorithms (all of distribution's when empty).
    #[serde(rename = "signingalgorithms")]
    pub signing_algorithms: Vec<String>,
}

/// `auth.htpasswd`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HtpasswdAuth {
    /// `realm`: basic-auth realm.
    pub realm: String,
    /// `path`: the htpasswd file; created when missing, re-read when it changes.
    pub path: String,
}

/// Reads `auth:`: nothing, a bare scheme name (`REGISTRY_AUTH=htpasswd`), or one scheme map.
pub(crate) fn from_node(node: &Node, ctx: &mut Ctx) -> Option<AuthConfig> {
    let (scheme, params) = match node {
        Node::Null => return Some(AuthConfig::None),
        Node::Str(s) if s.is_empty() => return Some(AuthConfig::None),
        Node::Str(s) => (s.clone(), Node::Null),
        Node::Map(entries) => match entries.as_slice() {
            [] => return Some(AuthConfig::None),
            [(scheme, params)] => (scheme.clone(), params.clone()),
            many => {
                let names: Vec<&str> = many.iter().map(|(k, _)| k.as_str()).collect();
                ctx.error(format!(
                    "auth: exactly one scheme may be configured, found {}",
                    names.join(", ")
                ));
                return None;
            }
        },
        other => {
            ctx.error(format!(
                "auth: expected a map with one scheme, got {}",
                other.describe()
            ));
            return None;
        }
    };
    let path = format!("auth.{scheme}");
    let before = ctx.errors.len();
    let auth = match scheme.as_str() {
        "silly" => {
            let a: SillyAuth = ctx.typed(&params, &path)?;
            require(ctx, &path, &[("realm", &a.realm), ("service", &a.service)]);
            AuthConfig::Silly(a)
        }
        "token" => {
            let a: TokenAuth = ctx.typed(&params, &path)?;
            require(
                ctx,
                &path,
                &[
                    ("realm", &a.realm),
                    ("service", &a.service),
                    ("issuer", &a.issuer),
                ],
            );
            if a.root_cert_bundle.is_empty() && a.jwks.is_empty() {
                ctx.error(format!("{path}: rootcertbundle or jwks is required"));
            }
            AuthConfig::Token(a)
        }
        "htpasswd" => {
            let a: HtpasswdAuth = ctx.typed(&params, &path)?;
            require(ctx, &path, &[("realm", &a.realm), ("path", &a.path)]);
            AuthConfig::Htpasswd(a)
        }
        _ => match Params::from_node(&params) {
            Some(params) => AuthConfig::Other { scheme, params },
            None => {
                ctx.error(format!(
                    "{path}: expected a map of parameters, got {}",
                    params.describe()
                ));
                return None;
            }
        },
    };
    (ctx.errors.len() == before).then_some(auth)
}

fn require(ctx: &mut Ctx, path: &str, fields: &[(&str, &String)]) {
    for (key, value) in fields {
        if value.trim().is_empty() {
            ctx.error(format!("{path}.{key} is required"));
        }
    }
}

impl Serialize for AuthConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            AuthConfig::None => {}
            AuthConfig::Silly(a) => map.serialize_entry("silly", a)?,
            AuthConfig::Token(a) => map.serialize_entry("token", a)?,
            AuthConfig::Htpasswd(a) => map.serialize_entry("htpasswd", a)?,
            AuthConfig::Other { scheme, params } => map.serialize_entry(scheme, params)?,
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;

    fn read(yaml: &str) -> (Option<AuthConfig>, Ctx) {
        let mut ctx = Ctx::default();
        (from_node(&parse_yaml(yaml).unwrap(), &mut ctx), ctx)
    }

    #[test]
    fn each_scheme_of_the_seed() {
        let silly = read("silly:\n  realm: silly-realm\n  service: silly-service\n")
            .0
            .unwrap();
        assert_eq!(
            silly,
            AuthConfig::Silly(SillyAuth {
                realm: "silly-realm".into(),
                service: "silly-service".into()
            })
        );
        let token = read("token:\n  realm: token-realm\n  service: token-service\n  issuer: registry-token-issuer\n  rootcertbundle: /root/certs/bundle\n").0.unwrap();
        assert_eq!(token.scheme(), Some("token"));
        let htpasswd = read("htpasswd:\n  realm: basic-realm\n  path: /path/to/htpasswd\n")
            .0
            .unwrap();
        assert_eq!(
            htpasswd,
            AuthConfig::Htpasswd(HtpasswdAuth {
                realm: "basic-realm".into(),
                path: "/path/to/htpasswd".into()
            })
        );
        assert_eq!(read("").0.unwrap(), AuthConfig::None);
        assert_eq!(read("{}").0.unwrap(), AuthConfig::None);
    }

    #[test]
    fn problems() {
        let (_, ctx) = read("silly: {}\ntoken: {}\nhtpasswd: {}\n");
        assert_eq!(
            ctx.errors,
            ["auth: exactly one scheme may be configured, found silly, token, htpasswd"]
        );
        let (_, ctx) = read("htpasswd");
        assert_eq!(
            ctx.errors,
            [
                "auth.htpasswd.realm is required",
                "auth.htpasswd.path is required"
            ]
        );
        let (auth, ctx) = read("ldap:\n  url: ldap://x\n  bindpassword: p\n");
        assert!(ctx.errors.is_empty());
        let auth = auth.unwrap();
        assert_eq!(auth.scheme(), Some("ldap"));
        assert!(!format!("{auth:?}").contains("\"p\""));
    }
}
