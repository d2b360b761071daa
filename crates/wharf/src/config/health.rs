//! `health:`: periodic checks that would mark the registry unhealthy (run by `crate::health`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::de;
use super::notifications::Headers;

/// `health:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HealthConfig {
    /// `storagedriver`: probe the storage backend.
    #[serde(rename = "storagedriver")]
    pub storage_driver: StorageDriverCheck,
    /// `file`: unhealthy while a file exists (to drain a node).
    pub file: Vec<FileCheck>,
    /// `http`: unhealthy while a URL does not answer as expected.
    pub http: Vec<HttpCheck>,
    /// `tcp`: unhealthy while an address refuses connections.
    pub tcp: Vec<TcpCheck>,
}

/// `health.storagedriver`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct StorageDriverCheck {
    /// `enabled`: run the check.
    pub enabled: bool,
    /// `interval`: time between checks (0: 10s, distribution's default).
    #[serde(with = "de::duration")]
    pub interval: Duration,
    /// `threshold`: failures before unhealthy (0 or 1: the first).
    pub threshold: u64,
}

/// One `health.file` entry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct FileCheck {
    /// `file`: the path whose existence means unhealthy.
    pub file: String,
    /// `interval`: time between checks (0: 10s, distribution's default).
    #[serde(with = "de::duration")]
    pub interval: Duration,
    /// `threshold`: failures before unhealthy.
    pub threshold: u64,
}

/// One `health.http` entry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpCheck {
    /// `uri`: URL probed with HEAD.
    pub uri: String,
    /// `headers`: sent with the probe.
    pub headers: Headers,
    /// `statuscode`: expected status (0: 200).
    #[serde(rename = "statuscode")]
    pub status_code: u16,
    /// `timeout`: per probe.
    #[serde(with = "de::duration")]
    pub timeout: Duration,
    /// `interval`: time between checks (0: 10s, distribution's default).
    #[serde(with = "de::duration")]
    pub interval: Duration,
    /// `threshold`: failures before unhealthy.
    pub threshold: u64,
}

/// One `health.tcp` entry.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TcpCheck {
    /// `addr`: `host:port` to connect to.
    pub addr: String,
    /// `timeout`: per connection attempt.
    #[serde(with = "de::duration")]
    pub timeout: Duration,
    /// `interval`: time between checks (0: 10s, distribution's default).
    #[serde(with = "de::duration")]
    pub interval: Duration,
    /// `threshold`: failures before unhealthy.
    pub threshold: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;
    use crate::config::typed::Ctx;

    #[test]
    fn reference_block() {
        let yaml = "storagedriver:\n  enabled: true\n  interval: 10s\n  threshold: 3\nfile:\n  - file: /path/to/checked/file\n    interval: 10s\nhttp:\n  - uri: http://server.to.check/must/return/200\n    headers:\n      Authorization: [Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==]\n    statuscode: 200\n    timeout: 3s\n    interval: 10s\n    threshold: 3\ntcp:\n  - addr: redis-server.domain.com:6379\n    timeout: 3s\n    interval: 10s\n    threshold: 3\n";
        let mut ctx = Ctx::default();
        let h: HealthConfig = ctx.typed(&parse_yaml(yaml).unwrap(), "health").unwrap();
        assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
        assert!(h.storage_driver.enabled);
        assert_eq!(h.http[0].status_code, 200);
        assert_eq!(h.tcp[0].timeout, Duration::from_secs(3));
        assert!(!format!("{h:?}").contains("QWxhZGRpbjpvcGVuIHNlc2FtZQ"));
    }
}
