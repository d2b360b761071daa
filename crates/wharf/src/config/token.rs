//! `token:`: wharf's built-in token server (not a distribution key), so that `auth.token`
//! needs no other service.
//!
//! `crate::auth::token_server` serves it at `/auth/token`. Being wharf's own section it uses
//! `deny_unknown_fields`: a misspelt rule key must stop start-up, not widen access.
//! Depends on nothing of HTTP or storage.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::de;
use super::tree::Node;
use super::typed::Ctx;

/// How long an access token lives unless `expiration` says otherwise.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(5 * 60);

/// How long a refresh token (Docker's identity token) lives unless configured.
pub const DEFAULT_REFRESH_EXPIRATION: Duration = Duration::from_secs(30 * 24 * 3600);

/// `token:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenServerConfig {
    /// `issuer`: the `iss` of issued tokens, checked by the registry side.
    pub issuer: String,
    /// `service`: the `aud` of issued tokens; requests naming another service are refused.
    pub service: String,
    /// `realm`: the URL clients are sent to; derived from the request's host when empty.
    pub realm: String,
    /// `expiration`: lifetime of an access token.
    #[serde(with = "de::duration")]
    pub expiration: Duration,
    /// `refreshexpiration`: lifetime of a refresh token.
    #[serde(rename = "refreshexpiration", with = "de::duration")]
    pub refresh_expiration: Duration,
    /// `signingkey`: PEM private key (EC P-256/P-384, RSA or Ed25519) that signs tokens;
    /// generated (P-256, with a self-signed `certificate`) when the file is missing.
    #[serde(rename = "signingkey")]
    pub signing_key: String,
    /// `certificate`: PEM certificate of that key, sent in `x5c` and trusted by the registry
    /// (default: `signingkey` with the extension `.crt`).
    pub certificate: String,
    /// `htpasswd`: bcrypt users file; without it only anonymous rules can grant anything.
    pub htpasswd: String,
    /// `groups`: group name → member accounts.
    pub groups: BTreeMap<String, Vec<String>>,
    /// `access`: rules; every matching rule adds its actions (union).
    pub access: Vec<AccessRule>,
}

impl Default for TokenServerConfig {
    fn default() -> Self {
        TokenServerConfig {
            issuer: String::new(),
            service: String::new(),
            realm: String::new(),
            expiration: DEFAULT_EXPIRATION,
            refresh_expiration: DEFAULT_REFRESH_EXPIRATION,
            signing_key: String::new(),
            certificate: String::new(),
            htpasswd: String::new(),
            groups: BTreeMap::new(),
            access: Vec::new(),
        }
    }
}

impl TokenServerConfig {
    /// `certificate`, or the file next to `signingkey` where a generated one is written.
    pub fn certificate_path(&self) -> std::path::PathBuf {
        if !self.certificate.is_empty() {
            return self.certificate.clone().into();
        }
        let key = std::path::Path::new(&self.signing_key);
        match key.extension() {
            Some(ext) if ext == "crt" => format!("{}.crt", self.signing_key).into(),
            _ => key.with_extension("crt"),
        }
    }
}

/// One `access:` entry: who, on which repositories, may do what.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// `match`: the requester and repositories the rule applies to.
    #[serde(rename = "match")]
    pub matches: RuleMatch,
    /// `actions`: what the rule grants.
    pub actions: Vec<RuleAction>,
}

/// `match:` of a rule; `account` and `group` both given must both hold.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMatch {
    /// `account`: a user name, `*` (any authenticated user) or `anonymous` (everyone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `group`: a key of `groups`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `repository`: a glob where `*` matches any run of characters, `/` included.
    #[serde(default = "any_repository")]
    pub repository: String,
}

fn any_repository() -> String {
    "*".to_owned()
}

/// An action a rule can grant, in token-scope spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    /// `pull`.
    Pull,
    /// `push`.
    Push,
    /// `delete`.
    Delete,
    /// `*`: all of them.
    #[serde(rename = "*")]
    All,
}

/// Reads `token:`; `None` inside `Some` when the section is absent.
pub(crate) fn from_node(node: &Node, ctx: &mut Ctx) -> Option<Option<TokenServerConfig>> {
    if matches!(node, Node::Null) {
        return Some(None);
    }
    let before = ctx.errors.len();
    let t: TokenServerConfig = ctx.typed(node, "token")?;
    for (key, value) in [
        ("issuer", &t.issuer),
        ("service", &t.service),
        ("signingkey", &t.signing_key),
    ] {
        if value.trim().is_empty() {
            ctx.error(format!("token.{key} is required"));
        }
    }
    if t.expiration.is_zero() {
        ctx.error("token.expiration must be more than zero");
    }
    for (i, rule) in t.access.iter().enumerate() {
        let m = &rule.matches;
        if m.account.is_none() && m.group.is_none() {
            ctx.error(format!(
                "token.access[{i}].match: account or group is required (account: anonymous means everyone)"
            ));
        }
        if let Some(g) = m.group.as_ref().filter(|g| !t.groups.contains_key(*g)) {
            ctx.error(format!(
                "token.access[{i}].match.group: {g:?} is not a key of token.groups"
            ));
        }
    }
    (ctx.errors.len() == before).then_some(Some(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;

    fn read(yaml: &str) -> (Option<Option<TokenServerConfig>>, Vec<String>) {
        let mut ctx = Ctx::default();
        let t = from_node(&parse_yaml(yaml).unwrap(), &mut ctx);
        (t, ctx.errors)
    }

    #[test]
    fn a_full_section_parses_with_defaults_filled_in() {
        let (t, errors) = read(
            "issuer: wharf\nservice: registry\nsigningkey: /k.pem\ncertificate: /c.pem\nhtpasswd: /h\n\
             groups:\n  team-a: [alice, bob]\naccess:\n  - match: {account: anonymous, repository: \"public/*\"}\n    actions: [pull]\n  - match: {group: team-a, repository: \"team-a/*\"}\n    actions: [\"*\"]\n",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let t = t.unwrap().unwrap();
        assert_eq!(t.expiration, DEFAULT_EXPIRATION);
        assert_eq!(t.access.len(), 2);
        assert_eq!(t.access[1].actions, [RuleAction::All]);
        assert_eq!(t.access[1].matches.group.as_deref(), Some("team-a"));
    }

    #[test]
    fn an_absent_section_is_none() {
        assert_eq!(read("").0, Some(None));
    }

    #[test]
    fn unknown_keys_missing_keys_and_dangling_groups_are_errors() {
        let (t, errors) =
            read("issuer: i\nservice: s\nsigningkey: k\ncertificate: c\nexpire: 5m\n");
        assert!(t.is_none());
        assert!(errors[0].contains("expire"), "{errors:?}");
        let (_, errors) = read(
            "access:\n  - match: {repository: x}\n    actions: [pull]\n  - match: {group: nobody}\n    actions: [pull]\n",
        );
        assert_eq!(
            errors,
            [
                "token.issuer is required",
                "token.service is required",
                "token.signingkey is required",
                "token.access[0].match: account or group is required (account: anonymous means everyone)",
                "token.access[1].match.group: \"nobody\" is not a key of token.groups",
            ]
        );
        let (_, errors) = read(
            "issuer: i\nservice: s\nsigningkey: k\ncertificate: c\naccess:\n  - match: {account: a}\n    actions: [write]\n",
        );
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}
