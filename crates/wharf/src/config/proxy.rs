//! `proxy:`: pull-through cache of an upstream registry (not built yet).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::de;
use super::secret::{self, Secret};

/// distribution's cache expiry when `proxy.ttl` is unset.
pub const DEFAULT_TTL: Duration = Duration::from_secs(168 * 3600);

/// `proxy:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct ProxyConfig {
    /// `remoteurl`: the upstream, e.g. `https://registry-1.docker.io`; empty means no proxy.
    #[serde(rename = "remoteurl")]
    pub remote_url: String,
    /// `username`: upstream login.
    pub username: String,
    /// `password`: masked everywhere.
    #[serde(
        deserialize_with = "secret::non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<Secret>,
    /// `exec`: a docker credential helper to ask instead of username/password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ProxyExec>,
    /// `ttl`: how long cached content lives (default 168h; 0: forever).
    #[serde(with = "de::duration")]
    pub ttl: Duration,
    /// `remotenamespace`: prefix added to names upstream.
    #[serde(rename = "remotenamespace")]
    pub remote_namespace: String,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            remote_url: String::new(),
            username: String::new(),
            password: None,
            exec: None,
            ttl: DEFAULT_TTL,
            remote_namespace: String::new(),
        }
    }
}

/// `proxy.exec`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ProxyExec {
    /// `command`: the helper to run.
    pub command: String,
    /// `lifetime`: reuse credentials this long (unset: forever; 0: ask every time).
    #[serde(with = "de::opt_duration", skip_serializing_if = "Option::is_none")]
    pub lifetime: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;
    use crate::config::typed::Ctx;

    #[test]
    fn reference_block_and_defaults() {
        let yaml = "remoteurl: https://registry-1.docker.io\nusername: u\npassword: p\nexec:\n  command: docker-credential-helper\n  lifetime: 1h\nttl: 0\nremotenamespace: namespace\n";
        let mut ctx = Ctx::default();
        let p: ProxyConfig = ctx.typed(&parse_yaml(yaml).unwrap(), "proxy").unwrap();
        assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
        assert_eq!(p.ttl, Duration::ZERO);
        assert_eq!(p.exec.unwrap().lifetime, Some(Duration::from_secs(3600)));
        let p: ProxyConfig = ctx
            .typed(&parse_yaml("remoteurl: https://x").unwrap(), "proxy")
            .unwrap();
        assert_eq!(p.ttl, DEFAULT_TTL);
    }
}
