//! `WWW-Authenticate` challenges: what a 401 tells the client to do next (RFC 7235, RFC 6750,
//! and distribution's token-auth scope grammar `repository:NAME:pull,push`).

use super::Access;

/// The challenge of a 401, rendered by [`Challenge::header_value`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic auth (htpasswd): `docker login` sends a user and password.
    Basic {
        /// `auth.htpasswd.realm`.
        realm: String,
    },
    /// A bearer token from the token server at `realm` for `scope` (token, silly).
    Bearer {
        /// The token server's URL.
        realm: String,
        /// This registry's name at the token server.
        service: String,
        /// The access the token must grant.
        scope: Vec<Access>,
        /// RFC 6750 error when a token was presented.
        error: Option<BearerError>,
    },
}

/// RFC 6750 §3.1 error codes a registry sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerError {
    /// The token is malformed, expired, badly signed or for someone else.
    InvalidToken,
    /// The token is valid but does not grant the requested access.
    InsufficientScope,
}

impl Challenge {
    /// The `WWW-Authenticate` value, e.g.
    /// `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull,push"`.
    pub fn header_value(&self) -> String {
        match self {
            Challenge::Basic { realm } => format!("Basic realm=\"{}\"", quote(realm)),
            Challenge::Bearer {
                realm,
                service,
                scope,
                error,
            } => {
                let mut v = format!(
                    "Bearer realm=\"{}\",service=\"{}\"",
                    quote(realm),
                    quote(service)
                );
                if !scope.is_empty() {
                    v += &format!(",scope=\"{}\"", scopes(scope).join(" "));
                }
                match error {
                    Some(BearerError::InvalidToken) => v += ",error=\"invalid_token\"",
                    Some(BearerError::InsufficientScope) => v += ",error=\"insufficient_scope\"",
                    None => {}
                }
                v
            }
        }
    }
}

/// `type:name:action,action` per resource, resources in first-seen order.
pub fn scopes(access: &[Access]) -> Vec<String> {
    let mut grouped: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for a in access {
        let (kind, name) = (a.resource.kind(), a.resource.name());
        match grouped
            .iter_mut()
            .find(|(k, n, _)| *k == kind && *n == name)
        {
            Some((_, _, actions)) if !actions.contains(&a.action.as_str()) => {
                actions.push(a.action.as_str());
            }
            Some(_) => {}
            None => grouped.push((kind, name, vec![a.action.as_str()])),
        }
    }
    grouped
        .into_iter()
        .map(|(kind, name, actions)| format!("{kind}:{name}:{}", actions.join(",")))
        .collect()
}

/// A quoted-string body: configuration text cannot break out of the quotes.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Action, Resource};

    fn repo(name: &str, action: Action) -> Access {
        Access::repository(&name.parse().unwrap(), action)
    }

    #[test]
    fn bearer_challenge_groups_actions_per_repository() {
        let c = Challenge::Bearer {
            realm: "https://auth.example.com/token".into(),
            service: "registry.example.com".into(),
            scope: vec![
                repo("team/app", Action::Pull),
                repo("team/app", Action::Push),
                repo("base", Action::Pull),
            ],
            error: None,
        };
        assert_eq!(
            c.header_value(),
            "Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\",scope=\"repository:team/app:pull,push repository:base:pull\""
        );
    }

    #[test]
    fn bearer_challenge_names_the_error_and_catalog_scope() {
        let c = Challenge::Bearer {
            realm: "r".into(),
            service: "s".into(),
            scope: vec![Access {
                resource: Resource::Catalog,
                action: Action::All,
            }],
            error: Some(BearerError::InsufficientScope),
        };
        assert_eq!(
            c.header_value(),
            "Bearer realm=\"r\",service=\"s\",scope=\"registry:catalog:*\",error=\"insufficient_scope\""
        );
    }

    #[test]
    fn basic_challenge_escapes_quotes_in_the_realm() {
        let c = Challenge::Basic {
            realm: "my \"realm\"\n".into(),
        };
        assert_eq!(c.header_value(), "Basic realm=\"my \\\"realm\\\"\"");
    }

    #[test]
    fn base_check_has_no_scope() {
        let c = Challenge::Bearer {
            realm: "r".into(),
            service: "s".into(),
            scope: vec![],
            error: None,
        };
        assert_eq!(c.header_value(), "Bearer realm=\"r\",service=\"s\"");
    }
}
