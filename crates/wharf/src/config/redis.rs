//! `redis:`: the shared redis of the blob descriptor cache (`storage.cache.blobdescriptor: redis`,
//! served by `registry::cache::redis`).
//!
//! Both generations of keys are read: distribution 2.x (`addr`, `pool.maxidle` …) and 3.x,
//! which inlines go-redis `UniversalOptions` (`addrs`, `poolsize`, `connmaxidletime` …).
//! Acted on: `addr`/the first of `addrs`, `username`, `password`, `db`, `dialtimeout`,
//! `readtimeout`/`writetimeout` (one command timeout, the larger), `tls.enabled`,
//! `tls.certificate`/`tls.key` (client certificate) and `tls.clientcas` (roots instead of the
//! system's); either file also switches TLS on, as in 3.x configs, which have no `enabled`. The pool keys have nothing to size: wharf keeps one multiplexed connection that
//! reconnects by itself. Sentinel and cluster keys are reported by [`RedisConfig::unsupported`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::de;
use super::secret::{self, Secret};

/// `redis:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RedisConfig {
    /// `addr` (2.x): one `host:port`.
    pub addr: String,
    /// `addrs` (3.x): one address, a cluster, or sentinels.
    pub addrs: Vec<String>,
    /// `clientname`: CLIENT SETNAME value.
    #[serde(rename = "clientname")]
    pub client_name: String,
    /// `protocol`: RESP version (2 or 3).
    pub protocol: u8,
    /// `username`: ACL user.
    pub username: String,
    /// `password`: masked everywhere.
    #[serde(
        deserialize_with = "secret::non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<Secret>,
    /// `sentinelusername`: ACL user at the sentinels.
    #[serde(rename = "sentinelusername")]
    pub sentinel_username: String,
    /// `sentinelpassword`: masked everywhere.
    #[serde(
        rename = "sentinelpassword",
        deserialize_with = "secret::non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub sentinel_password: Option<Secret>,
    /// `mastername`: sentinel master set.
    #[serde(rename = "mastername")]
    pub master_name: String,
    /// `db`: database number.
    pub db: i64,
    /// `maxretries`: retries per command.
    #[serde(rename = "maxretries")]
    pub max_retries: i64,
    /// `minretrybackoff`.
    #[serde(rename = "minretrybackoff", with = "de::duration")]
    pub min_retry_backoff: Duration,
    /// `maxretrybackoff`.
    #[serde(rename = "maxretrybackoff", with = "de::duration")]
    pub max_retry_backoff: Duration,
    /// `dialtimeout`: connect timeout.
    #[serde(rename = "dialtimeout", with = "de::duration")]
    pub dial_timeout: Duration,
    /// `readtimeout`.
    #[serde(rename = "readtimeout", with = "de::duration")]
    pub read_timeout: Duration,
    /// `writetimeout`.
    #[serde(rename = "writetimeout", with = "de::duration")]
    pub write_timeout: Duration,
    /// `contexttimeoutenabled`: honour request deadlines.
    #[serde(rename = "contexttimeoutenabled")]
    pub context_timeout_enabled: bool,
    /// `poolfifo`: FIFO instead of LIFO pool.
    #[serde(rename = "poolfifo")]
    pub pool_fifo: bool,
    /// `poolsize` (3.x): connections per node.
    #[serde(rename = "poolsize")]
    pub pool_size: u64,
    /// `pooltimeout`: wait for a free connection.
    #[serde(rename = "pooltimeout", with = "de::duration")]
    pub pool_timeout: Duration,
    /// `minidleconns`.
    #[serde(rename = "minidleconns")]
    pub min_idle_conns: u64,
    /// `maxidleconns` (3.x).
    #[serde(rename = "maxidleconns")]
    pub max_idle_conns: u64,
    /// `maxactiveconns` (3.x).
    #[serde(rename = "maxactiveconns")]
    pub max_active_conns: u64,
    /// `connmaxidletime` (3.x).
    #[serde(rename = "connmaxidletime", with = "de::duration")]
    pub conn_max_idle_time: Duration,
    /// `connmaxlifetime`.
    #[serde(rename = "connmaxlifetime", with = "de::duration")]
    pub conn_max_lifetime: Duration,
    /// `maxredirects`: cluster MOVED/ASK hops.
    #[serde(rename = "maxredirects")]
    pub max_redirects: i64,
    /// `readonly`: read from replicas.
    #[serde(rename = "readonly")]
    pub read_only: bool,
    /// `routebylatency`.
    #[serde(rename = "routebylatency")]
    pub route_by_latency: bool,
    /// `routerandomly`.
    #[serde(rename = "routerandomly")]
    pub route_randomly: bool,
    /// `disableidentity`: skip CLIENT SETINFO.
    #[serde(rename = "disableidentity")]
    pub disable_identity: bool,
    /// `disableindentity`: go-redis's earlier misspelling of `disableidentity`.
    #[serde(rename = "disableindentity")]
    pub disable_indentity: bool,
    /// `identitysuffix`.
    #[serde(rename = "identitysuffix")]
    pub identity_suffix: String,
    /// `unstableresp3`.
    #[serde(rename = "unstableresp3")]
    pub unstable_resp3: bool,
    /// `pool` (2.x): connection pool sizes.
    pub pool: RedisPool,
    /// `tls`: encrypt the redis connection.
    pub tls: RedisTls,
}

impl RedisConfig {
    /// Keys that are set but name redis features wharf does not speak (cluster, sentinel).
    pub fn unsupported(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.addrs.len() > 1 {
            out.push("redis.addrs (more than one: cluster or sentinels; the first is used)");
        }
        if !self.master_name.is_empty() {
            out.push("redis.mastername");
        }
        if !self.sentinel_username.is_empty() || self.sentinel_password.is_some() {
            out.push("redis.sentinelusername/sentinelpassword");
        }
        if self.read_only || self.route_by_latency || self.route_randomly {
            out.push("redis.readonly/routebylatency/routerandomly");
        }
        out
    }
}

/// `redis.pool` (distribution 2.x).
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RedisPool {
    /// `maxidle`: idle connections kept.
    #[serde(rename = "maxidle")]
    pub max_idle: u64,
    /// `maxactive`: connections before callers wait.
    #[serde(rename = "maxactive")]
    pub max_active: u64,
    /// `idletimeout`: idle connections are closed after this.
    #[serde(rename = "idletimeout", with = "de::duration")]
    pub idle_timeout: Duration,
}

/// `redis.tls`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct RedisTls {
    /// `enabled` (2.x): use TLS with system roots.
    pub enabled: bool,
    /// `certificate`: client certificate path.
    pub certificate: String,
    /// `key`: client key path.
    pub key: String,
    /// `clientcas`: CAs that verify the server.
    #[serde(rename = "clientcas")]
    pub client_cas: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;
    use crate::config::typed::Ctx;

    #[test]
    fn seed_block_and_v3_keys() {
        let yaml = "addr: localhost:6379\npassword: asecret\ndb: 0\ndialtimeout: 10ms\nreadtimeout: 10ms\nwritetimeout: 10ms\npool:\n  maxidle: 16\n  maxactive: 64\n  idletimeout: 300s\naddrs: [localhost:6379]\npoolsize: 64\nconnmaxidletime: 300s\ntls:\n  certificate: /c.crt\n";
        let mut ctx = Ctx::default();
        let r: RedisConfig = ctx.typed(&parse_yaml(yaml).unwrap(), "redis").unwrap();
        assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
        assert_eq!(r.addr, "localhost:6379");
        assert_eq!(r.password.as_ref().map(Secret::expose), Some("asecret"));
        assert_eq!(r.dial_timeout, Duration::from_millis(10));
        assert_eq!(r.pool.idle_timeout, Duration::from_secs(300));
        assert_eq!(
            (r.pool.max_idle, r.pool.max_active, r.pool_size),
            (16, 64, 64)
        );
        assert!(!format!("{r:?}").contains("asecret"));
    }

    #[test]
    fn a_redis_cache_needs_a_redis_address() {
        let yaml = "version: 0.1\nstorage:\n  inmemory: {}\n  cache:\n    blobdescriptor: redis\n";
        let Err(crate::config::ConfigError::Invalid { problems, .. }) =
            crate::config::Config::parse(yaml, &[])
        else {
            panic!("accepted a redis cache without an address");
        };
        assert_eq!(
            problems,
            ["storage.cache.blobdescriptor: redis needs redis.addr (or redis.addrs)"]
        );
        let with_addr = format!("{yaml}redis:\n  addr: localhost:6379\n");
        let l =
            crate::config::Config::parse(&with_addr, &[]).expect("a redis cache with an address");
        assert!(
            l.config.unsupported().is_empty(),
            "{:?}",
            l.config.unsupported()
        );
    }
}
