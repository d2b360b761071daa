//! `http:`: where wharf listens and what it adds to responses.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::de;
use super::secret::{self, Secret};
use super::tree::Node;
use super::typed::Ctx;

/// distribution's listen address when `http.addr` is empty.
pub const DEFAULT_ADDR: &str = ":5000";

/// `http:` as wharf uses it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct HttpConfig {
    /// `addr`: `host:port` for tcp, a socket path for unix (default `:5000`).
    pub addr: String,
    /// `net`: tcp (default) or unix.
    pub net: Net,
    /// `prefix`: path the registry is served under; empty, or `/path/` with both slashes.
    pub prefix: String,
    /// `host`: externally visible base URL for generated `Location`s, when requests can't tell.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// `secret`: HMAC key for upload state; must be equal on every replica behind a balancer.
    #[serde(
        deserialize_with = "secret::non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub secret: Option<Secret>,
    /// `headers`: extra response headers, in file order.
    #[serde(with = "de::headers")]
    pub headers: Vec<(String, Vec<String>)>,
    /// `relativeurls`: answer with relative `Location` headers.
    #[serde(rename = "relativeurls")]
    pub relative_urls: bool,
    /// `draintimeout`: how long to let requests finish on SIGTERM (0: stop at once).
    #[serde(rename = "draintimeout", with = "de::duration")]
    pub drain_timeout: Duration,
    /// `tls`: served with rustls (`crate::tls`); `letsencrypt` by `crate::tls::acme`.
    #[serde(skip_serializing_if = "TlsConfig::is_off")]
    pub tls: TlsConfig,
    /// `debug`: the separate debug/metrics listener; parsed, not served yet.
    pub debug: DebugConfig,
    /// `http2`: `disabled` turns HTTP/2 off on TLS listeners.
    pub http2: Http2Config,
    /// `h2c`: `enabled` allows HTTP/2 without TLS (behind some load balancers).
    pub h2c: H2cConfig,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: DEFAULT_ADDR.to_owned(),
            net: Net::Tcp,
            prefix: String::new(),
            host: None,
            secret: None,
            headers: Vec::new(),
            relative_urls: false,
            drain_timeout: Duration::ZERO,
            tls: TlsConfig::default(),
            debug: DebugConfig::default(),
            http2: Http2Config::default(),
            h2c: H2cConfig::default(),
        }
    }
}

/// The socket family of `http.addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Net {
    /// A TCP `host:port`.
    #[default]
    Tcp,
    /// A Unix domain socket path.
    Unix,
}

impl<'de> Deserialize<'de> for Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.trim() {
            "" | "tcp" => Ok(Net::Tcp),
            "unix" => Ok(Net::Unix),
            _ => Err(serde::de::Error::custom(format!(
                "expected tcp or unix, got {s:?}"
            ))),
        }
    }
}

impl Serialize for Net {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Net::Tcp => "tcp",
            Net::Unix => "unix",
        })
    }
}

/// `http.tls`: a certificate pair or Let's Encrypt.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct TlsConfig {
    /// `certificate`: PEM certificate chain path.
    pub certificate: String,
    /// `key`: PEM private key path.
    pub key: String,
    /// `clientcas`: CA files for verifying client certificates.
    #[serde(rename = "clientcas")]
    pub client_cas: Vec<String>,
    /// `clientauth`: how client certificates are required.
    #[serde(rename = "clientauth")]
    pub client_auth: String,
    /// `minimumtls`: lowest version (tls1.2 by default in distribution).
    #[serde(rename = "minimumtls")]
    pub minimum_tls: String,
    /// `ciphersuites`: allowed suites, by Go name.
    #[serde(rename = "ciphersuites")]
    pub cipher_suites: Vec<String>,
    /// `letsencrypt`: ACME instead of a certificate pair.
    #[serde(rename = "letsencrypt")]
    pub lets_encrypt: LetsEncrypt,
}

impl TlsConfig {
    /// True when the operator asked for TLS in any way (wharf must not then serve plain HTTP).
    pub fn is_requested(&self) -> bool {
        *self != TlsConfig::default()
    }

    fn is_off(&self) -> bool {
        !self.is_requested()
    }
}

/// `http.tls.letsencrypt`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct LetsEncrypt {
    /// `cachefile`: where certificates are cached.
    #[serde(rename = "cachefile")]
    pub cache_file: String,
    /// `email`: ACME account address.
    pub email: String,
    /// `hosts`: names a certificate may be requested for.
    pub hosts: Vec<String>,
    /// `directoryurl`: ACME server (Let's Encrypt when empty).
    #[serde(rename = "directoryurl")]
    pub directory_url: String,
}

/// `http.debug`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct DebugConfig {
    /// `addr`: listen address of the debug server (off when empty).
    pub addr: String,
    /// `prometheus`: metrics endpoint on the debug server.
    pub prometheus: Prometheus,
}

/// `http.debug.prometheus`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Prometheus {
    /// `enabled`: expose metrics.
    pub enabled: bool,
    /// `path`: metrics path (`/metrics` when empty).
    pub path: String,
}

/// `http.http2`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Http2Config {
    /// `disabled`: HTTP/1.1 only.
    pub disabled: bool,
}

/// `http.h2c`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct H2cConfig {
    /// `enabled`: accept cleartext HTTP/2.
    pub enabled: bool,
}

/// Reads `http:`, filling defaults and checking values that must be right before listening.
pub(crate) fn from_node(node: &Node, ctx: &mut Ctx) -> Option<HttpConfig> {
    let mut http: HttpConfig = ctx.typed(node, "http")?;
    let before = ctx.errors.len();
    if http.addr.trim().is_empty() {
        http.addr = DEFAULT_ADDR.to_owned();
    }
    if !http.prefix.is_empty() {
        if !http.prefix.starts_with('/') {
            ctx.error(format!(
                "http.prefix: must start with /, got {:?}",
                http.prefix
            ));
        } else if !http.prefix.ends_with('/') {
            http.prefix.push('/');
        }
    }
    if let Some(host) = http.host.take().filter(|h| !h.trim().is_empty()) {
        let ok = ["http://", "https://"].iter().any(|scheme| {
            host.strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        });
        if !ok {
            ctx.error(format!(
                "http.host: expected a URL such as https://registry.example.com:5000, got {host:?}"
            ));
        }
        http.host = Some(host);
    }
    for (name, values) in &http.headers {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token) {
            ctx.error(format!("http.headers: {name:?} is not a valid header name"));
        }
        if values
            .iter()
            .any(|v| v.chars().any(|c| c.is_control() && c != '\t'))
        {
            ctx.error(format!(
                "http.headers.{name}: a value contains a control character"
            ));
        }
    }
    (ctx.errors.len() == before).then_some(http)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tree::parse_yaml;

    fn read(yaml: &str) -> (Option<HttpConfig>, Ctx) {
        let mut ctx = Ctx::default();
        let node = parse_yaml(yaml).unwrap();
        (from_node(&node, &mut ctx), ctx)
    }

    #[test]
    fn seed_http_block() {
        let yaml = "addr: localhost:5000\nnet: tcp\nprefix: /my/nested/registry/\nsecret: asecretforlocaldevelopment\ntls:\n  certificate: /path/to/x509/public\n  key: /path/to/x509/private\n  clientcas:\n    - /path/to/ca.pem\n    - /path/to/another/ca.pem\ndebug:\n  addr: localhost:5001\n";
        let (http, ctx) = read(yaml);
        assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
        let http = http.unwrap();
        assert_eq!(http.addr, "localhost:5000");
        assert_eq!(http.net, Net::Tcp);
        assert_eq!(http.prefix, "/my/nested/registry/");
        assert_eq!(
            http.secret.as_ref().map(Secret::expose),
            Some("asecretforlocaldevelopment")
        );
        assert_eq!(
            http.tls.client_cas,
            ["/path/to/ca.pem", "/path/to/another/ca.pem"]
        );
        assert!(http.tls.is_requested());
        assert_eq!(http.debug.addr, "localhost:5001");
    }

    #[test]
    fn defaults_and_normalization() {
        let http = read("").0.unwrap();
        assert_eq!(http, HttpConfig::default());
        assert_eq!(http.addr, ":5000");
        assert!(!http.tls.is_requested());
        let http = read(
            "addr: ''\nprefix: /reg\nsecret: ''\ndraintimeout: 60s\nhost: https://r.example.com\n",
        )
        .0
        .unwrap();
        assert_eq!(http.addr, ":5000");
        assert_eq!(http.prefix, "/reg/");
        assert_eq!(http.secret, None);
        assert_eq!(http.drain_timeout, Duration::from_secs(60));
        assert_eq!(http.host.as_deref(), Some("https://r.example.com"));
    }

    #[test]
    fn headers_keep_file_order() {
        let http = read("headers:\n  X-Content-Type-Options: [nosniff]\n  Strict-Transport-Security: max-age=31536000\n  Access-Control-Allow-Methods: [GET, HEAD]\n")
            .0
            .unwrap();
        assert_eq!(
            http.headers,
            [
                (
                    "X-Content-Type-Options".to_owned(),
                    vec!["nosniff".to_owned()]
                ),
                (
                    "Strict-Transport-Security".to_owned(),
                    vec!["max-age=31536000".to_owned()]
                ),
                (
                    "Access-Control-Allow-Methods".to_owned(),
                    vec!["GET".to_owned(), "HEAD".to_owned()]
                ),
            ]
        );
    }

    #[test]
    fn wrong_values_name_their_keys() {
        let cases = [
            ("net: udp", "http.net: expected tcp or unix, got \"udp\""),
            (
                "draintimeout: soon",
                "http.draintimeout: expected a duration like 300ms, 1h30m or 168h, got \"soon\"",
            ),
            (
                "relativeurls: sometimes",
                "http.relativeurls: expected true or false, got \"sometimes\"",
            ),
            (
                "prefix: reg/",
                "http.prefix: must start with /, got \"reg/\"",
            ),
            (
                "host: registry.example.com",
                "http.host: expected a URL such as https://registry.example.com:5000, got \"registry.example.com\"",
            ),
            (
                "headers: nosniff",
                "http.headers: expected a map of keys, got \"nosniff\"",
            ),
            (
                "headers: {X Bad: [a]}",
                "http.headers: \"X Bad\" is not a valid header name",
            ),
            (
                "headers: {X-Ok: [\"a\\nb\"]}",
                "http.headers.X-Ok: a value contains a control character",
            ),
        ];
        for (yaml, want) in cases {
            let (http, ctx) = read(yaml);
            assert!(http.is_none(), "{yaml}");
            assert_eq!(ctx.errors, [want], "{yaml}");
        }
    }
}
