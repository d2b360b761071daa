//! `blobdescriptor: redis`: the cache every instance shares, in distribution's key scheme so a
//! mixed fleet reads each other's entries: the hash `blobs::<digest>` (`digest`, `size`,
//! `mediatype`) and the set `repository::<name>::blobs` of linked digests.
//!
//! One multiplexed connection that reconnects by itself (`ConnectionManager`) replaces go-redis's
//! pool, so `pool.*` and the 3.x pool sizes have nothing to size. Each command is bounded by a
//! timeout; after a failure the server is left alone for [`HOLD`] so requests go straight to the
//! backend instead of each waiting for a dead server.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, RedisResult};
use wharf_oci::{Digest, RepoName};

use super::{CacheError, DescriptorCache};
use crate::config::RedisConfig;

/// How long the cache is bypassed after a failed command.
pub const HOLD: Duration = Duration::from_secs(2);

/// Command timeout when neither `readtimeout` nor `writetimeout` is set (wharf's choice: a
/// cache that answers later than this is slower than the backend it saves).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Connect timeout when `dialtimeout` is not set (go-redis's default).
const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The media type distribution records for blobs it did not see a type for.
const MEDIA_TYPE: &str = "application/octet-stream";

/// Why the `redis` section cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Neither `addr` nor `addrs` is set.
    #[error("storage.cache.blobdescriptor is redis but redis.addr is not set")]
    NoAddress,
    /// The address is not `host:port`.
    #[error("redis.addr: expected host:port, got {0:?}")]
    BadAddress(String),
    /// A TLS file could not be read.
    #[error("redis.tls: cannot read {path}: {source}")]
    TlsFile {
        /// The configured path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The client refused the settings.
    #[error("redis: {0}")]
    Client(#[from] redis::RedisError),
}

/// The shared cache on a redis server.
pub struct RedisCache {
    conn: ConnectionManager,
    timeout: Duration,
    held_until: Mutex<Option<Instant>>,
}

/// `host:port` (or `[v6]:port`; port 6379 when absent) from `addr`, or the first of `addrs`.
fn address(config: &RedisConfig) -> Result<(String, u16), SetupError> {
    let addr = config
        .addrs
        .first()
        .filter(|a| !a.is_empty())
        .unwrap_or(&config.addr);
    if addr.is_empty() {
        return Err(SetupError::NoAddress);
    }
    let bad = || SetupError::BadAddress(addr.clone());
    let (host, port) = match addr.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => (h, p.parse::<u16>().map_err(|_| bad())?),
        _ => (addr.as_str(), 6379),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

fn read_file(path: &str) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|source| SetupError::TlsFile {
        path: path.to_owned(),
        source,
    })
}

fn client(config: &RedisConfig) -> Result<redis::Client, SetupError> {
    let (host, port) = address(config)?;
    let tls = &config.tls;
    // 2.x switches TLS on with `enabled`; 3.x configs only name the files
    let custom_tls = !tls.certificate.is_empty() || !tls.client_cas.is_empty();
    let addr = if tls.enabled || custom_tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    };
    let mut settings = RedisConnectionInfo::default().set_db(config.db);
    if !config.username.is_empty() {
        settings = settings.set_username(&config.username);
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password.expose());
    }
    let info = addr.into_connection_info()?.set_redis_settings(settings);
    if !custom_tls {
        return Ok(redis::Client::open(info)?);
    }
    let client_tls = if tls.certificate.is_empty() {
        None
    } else {
        Some(redis::ClientTlsConfig {
            client_cert: read_file(&tls.certificate)?,
            client_key: read_file(&tls.key)?,
        })
    };
    let mut roots = Vec::new();
    for path in &tls.client_cas {
        roots.extend(read_file(path)?);
        roots.push(b'\n');
    }
    let certs = redis::TlsCertificates {
        client_tls,
        root_cert: (!roots.is_empty()).then_some(roots),
    };
    Ok(redis::Client::build_with_tls(info, certs)?)
}

fn or_default(d: Duration, default: Duration) -> Duration {
    if d.is_zero() { default } else { d }
}

impl RedisCache {
    /// A cache on the configured server; connects on first use, so a redis that is down at
    /// start-up only means misses until it is up.
    pub fn new(config: &RedisConfig) -> Result<Self, SetupError> {
        let timeout = or_default(
            config.read_timeout.max(config.write_timeout),
            DEFAULT_TIMEOUT,
        );
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(or_default(config.dial_timeout, DEFAULT_DIAL_TIMEOUT)))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client(config)?, manager)?;
        Ok(RedisCache {
            conn,
            timeout,
            held_until: Mutex::new(None),
        })
    }

    fn held(&self) -> &Mutex<Option<Instant>> {
        &self.held_until
    }

    /// Runs one command or pipeline, bounded by the timeout, unless the server is on hold.
    async fn run<T, F>(&self, f: impl FnOnce(ConnectionManager) -> F) -> Result<T, CacheError>
    where
        F: Future<Output = RedisResult<T>>,
    {
        let now = Instant::now();
        {
            let mut held = self.held().lock().unwrap_or_else(|e| e.into_inner());
            match *held {
                Some(until) if until > now => return Err(CacheError::OnHold),
                Some(_) => *held = None,
                None => {}
            }
        }
        let result = match tokio::time::timeout(self.timeout, f(self.conn.clone())).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => CacheError::Redis(e),
            Err(_) => CacheError::Timeout(self.timeout),
        };
        *self.held().lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + HOLD);
        Err(result)
    }
}

fn blob_key(digest: &Digest) -> String {
    format!("blobs::{digest}")
}

fn members_key(repo: &RepoName) -> String {
    format!("repository::{repo}::blobs")
}

fn repo_blob_key(repo: &RepoName, digest: &Digest) -> String {
    format!("repository::{repo}::blobs::{digest}")
}

#[async_trait]
impl DescriptorCache for RedisCache {
    fn name(&self) -> &'static str {
        "redis"
    }

    async fn size(&self, digest: &Digest) -> Result<Option<u64>, CacheError> {
        let key = blob_key(digest);
        let size: Option<String> = self
            .run(|mut c| async move {
                redis::cmd("HGET")
                    .arg(&key)
                    .arg("size")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        size.map(|s| {
            s.parse::<u64>()
                .map_err(|_| CacheError::Malformed(blob_key(digest)))
        })
        .transpose()
    }

    async fn set_size(&self, digest: &Digest, size: u64) -> Result<(), CacheError> {
        let key = blob_key(digest);
        let d = digest.to_string();
        self.run(|mut c| async move {
            redis::cmd("HSET")
                .arg(&key)
                .arg("digest")
                .arg(&d)
                .arg("size")
                .arg(size)
                .arg("mediatype")
                .arg(MEDIA_TYPE)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn clear_size(&self, digest: &Digest) -> Result<(), CacheError> {
        let key = blob_key(digest);
        self.run(|mut c| async move { redis::cmd("DEL").arg(&key).query_async::<()>(&mut c).await })
            .await
    }

    async fn is_member(&self, repo: &RepoName, digest: &Digest) -> Result<bool, CacheError> {
        let (key, d) = (members_key(repo), digest.to_string());
        self.run(|mut c| async move {
            redis::cmd("SISMEMBER")
                .arg(&key)
                .arg(&d)
                .query_async::<bool>(&mut c)
                .await
        })
        .await
    }

    async fn add_member(&self, repo: &RepoName, digest: &Digest) -> Result<(), CacheError> {
        let (key, d) = (members_key(repo), digest.to_string());
        self.run(|mut c| async move {
            redis::cmd("SADD")
                .arg(&key)
                .arg(&d)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    async fn remove_member(&self, repo: &RepoName, digest: &Digest) -> Result<(), CacheError> {
        let (key, d) = (members_key(repo), digest.to_string());
        // distribution may have recorded a per-repository descriptor next to the membership
        let scoped = repo_blob_key(repo, digest);
        self.run(|mut c| async move {
            redis::pipe()
                .atomic()
                .cmd("SREM")
                .arg(&key)
                .arg(&d)
                .ignore()
                .cmd("DEL")
                .arg(&scoped)
                .ignore()
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_takes_addrs_first_then_addr_with_a_default_port() {
        let with = |addr: &str, addrs: &[&str]| RedisConfig {
            addr: addr.to_owned(),
            addrs: addrs.iter().map(|s| s.to_string()).collect(),
            ..RedisConfig::default()
        };
        let ok = |c: RedisConfig| address(&c).map_err(|e| e.to_string());
        assert_eq!(
            ok(with("localhost:6380", &[])),
            Ok(("localhost".into(), 6380))
        );
        assert_eq!(ok(with("cache", &[])), Ok(("cache".into(), 6379)));
        assert_eq!(ok(with("x:1", &["a:2", "b:3"])), Ok(("a".into(), 2)));
        assert_eq!(ok(with("[::1]:7000", &[])), Ok(("::1".into(), 7000)));
        assert!(ok(with("", &[])).is_err());
        assert!(ok(with("host:port", &[])).is_err());
    }
}
