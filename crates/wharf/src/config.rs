//! distribution's `config.yml` (version 0.1) and its `REGISTRY_*` environment overrides.
//!
//! The same file and the same variables that configure `registry:2` configure wharf. Loading
//! goes: YAML text → untyped tree (`tree.rs`) → environment overrides on that tree (`env.rs`,
//! by the rules of distribution's `configuration/parser.go`) → one typed section at a time
//! (`typed.rs`, lenient scalars in `de.rs`), collecting every problem → [`Config::validate`]. Keys distribution knows but
//! wharf does not act on yet are parsed and listed by [`Config::unsupported`]; an unknown auth
//! scheme and Let's Encrypt are refused outright, so wharf never starts open or unencrypted
//! when the operator asked otherwise. Depends on `wharf-storage` for the driver configuration only.

mod auth;
mod catalog;
mod de;
mod env;
mod gc;
mod health;
mod http;
mod log;
mod middleware;
mod notifications;
mod proxy;
mod redis;
mod reporting;
mod schema;
mod secret;
mod storage;
mod telemetry;
mod token;
mod tree;
mod typed;
mod validation;

use std::path::{Path, PathBuf};

use serde::ser::{Serialize, SerializeMap, Serializer};

pub use auth::{AuthConfig, HtpasswdAuth, SillyAuth, TokenAuth};
pub use catalog::CatalogConfig;
pub(crate) use de::parse_go_duration;
pub use gc::GcConfig;
pub use health::{FileCheck, HealthConfig, HttpCheck, StorageDriverCheck, TcpCheck};
pub use http::{
    DebugConfig, H2cConfig, Http2Config, HttpConfig, LetsEncrypt, Net, Prometheus, TlsConfig,
};
pub use log::{LogConfig, LogFormatter, LogHook, LogLevel, MailOptions, Smtp};
pub use middleware::{Middleware, MiddlewareConfig};
pub use notifications::{Endpoint, Events, Headers, Ignore, NotificationsConfig};
pub use proxy::{ProxyConfig, ProxyExec};
pub use redis::{RedisConfig, RedisPool, RedisTls};
pub use reporting::{Bugsnag, NewRelic, ReportingConfig};
pub use secret::Secret;
pub use storage::{StorageConfig, UploadPurging};
pub use telemetry::TracingConfig;
pub use token::{AccessRule, RuleAction, RuleMatch, TokenServerConfig};
pub use tree::Params;
pub use validation::{
    CompatibilityConfig, IndexValidation, ManifestValidation, Platform, Platforms, PolicyConfig,
    RepositoryPolicy, Schema1, UrlRules, ValidationConfig,
};

use tree::Node;
use typed::Ctx;

/// The only configuration version distribution (and so wharf) reads.
pub const VERSION: &str = "0.1";

/// Where `wharf serve` without a file keeps its data, under the current directory.
pub const DEFAULT_DATA_DIR: &str = "wharf-data";

/// The whole configuration, defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `version`: always "0.1".
    pub version: String,
    /// `log` (and the deprecated top-level `loglevel`).
    pub log: LogConfig,
    /// `storage`: the driver and its settings.
    pub storage: StorageConfig,
    /// `auth`: the access controller (`crate::auth`); unknown schemes are refused.
    pub auth: AuthConfig,
    /// `middleware`: parsed, not run.
    pub middleware: MiddlewareConfig,
    /// `reporting`: Bugsnag and New Relic (`crate::reporting`).
    pub reporting: ReportingConfig,
    /// `http`: listener and response settings.
    pub http: HttpConfig,
    /// `notifications`: webhook endpoints.
    pub notifications: NotificationsConfig,
    /// `redis`: the server of the shared blob descriptor cache.
    pub redis: RedisConfig,
    /// `health`: background checks.
    pub health: HealthConfig,
    /// `catalog`: `maxentries` of `/v2/_catalog` (zero or less means 1000, as in distribution).
    pub catalog: CatalogConfig,
    /// `proxy`: parsed, pull-through not built.
    pub proxy: ProxyConfig,
    /// `compatibility`: parsed, schema 1 not served.
    pub compatibility: CompatibilityConfig,
    /// `validation`: manifest URL rules (acted on) and index rules.
    pub validation: ValidationConfig,
    /// `policy`: parsed, not enforced.
    pub policy: PolicyConfig,
    /// `token`: wharf's built-in token server (wharf's addition, not a distribution key).
    pub token: Option<TokenServerConfig>,
    /// `tracing`: OTLP trace export (wharf's addition, not a distribution key).
    pub tracing: Option<TracingConfig>,
    /// `gc`: online garbage collection (wharf's addition, not a distribution key).
    pub gc: GcConfig,
}

/// A configuration plus what the operator should read before it runs.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The configuration to run.
    pub config: Config,
    /// Unknown keys and variables, deprecated spellings, values adjusted to limits.
    pub warnings: Vec<String>,
}

/// Why a configuration cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML.
    #[error("configuration is not valid YAML: {0}")]
    Syntax(String),
    /// The YAML is fine but values are wrong, missing, or ask for what wharf cannot do yet.
    #[error("{}", render_invalid(problems, warnings))]
    Invalid {
        /// Every problem, each naming its key (`http.net: expected tcp or unix, got "udp"`).
        problems: Vec<String>,
        /// Warnings gathered on the way; a misspelt variable often explains a problem.
        warnings: Vec<String>,
    },
}

impl ConfigError {
    /// The individual problems (one for `Read`/`Syntax`).
    pub fn problems(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid { problems, .. } => problems.clone(),
            other => vec![other.to_string()],
        }
    }
}

fn render_invalid(problems: &[String], warnings: &[String]) -> String {
    let mut out = match problems {
        [one] => format!("invalid configuration: {one}"),
        many => format!(
            "invalid configuration ({} problems):\n  - {}",
            many.len(),
            many.join("\n  - ")
        ),
    };
    if !warnings.is_empty() {
        out += &format!("\nwarnings:\n  - {}", warnings.join("\n  - "));
    }
    out
}

impl Config {
    /// Reads the file at `path` and applies the process's `REGISTRY_*` variables.
    pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text, &process_env())
    }

    /// The configuration of `wharf serve` with no file: filesystem storage in `./wharf-data`,
    /// listening on `:5000`, deletes enabled; `REGISTRY_*` variables still apply.
    pub fn load_default() -> Result<Loaded, ConfigError> {
        let dir = std::env::current_dir().map_or_else(
            |_| PathBuf::from(DEFAULT_DATA_DIR),
            |d| d.join(DEFAULT_DATA_DIR),
        );
        Config::from_tree(default_tree(&dir), &process_env())
    }

    /// Parses YAML text with the given environment (the pure core of [`Config::load`]).
    pub fn parse(yaml: &str, env: &[(String, String)]) -> Result<Loaded, ConfigError> {
        let mut root = tree::parse_yaml(yaml).map_err(ConfigError::Syntax)?;
        if let (Node::Map(entries), Some(text)) = (&mut root, tree::version_text(yaml))
            && let Some(slot) = entries.iter_mut().find(|(k, _)| k == "version")
        {
            slot.1 = Node::Str(text);
        }
        Config::from_tree(root, env)
    }

    /// Problems that forbid running this configuration even though every value parsed:
    /// an unknown auth scheme, or TLS asked for without a certificate pair or a complete
    /// `letsencrypt` section (wharf never falls back to plain HTTP).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let problems = refusals(Some(&self.auth), Some(&self.http.tls));
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                problems,
                warnings: Vec::new(),
            })
        }
    }

    /// The effective configuration as YAML, every secret shown as `*****` (`wharf config check`).
    pub fn redacted_yaml(&self) -> String {
        serde_saphyr::to_string(self)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }

    /// Dotted keys that are set but that wharf does not act on yet, for a start-up warning.
    pub fn unsupported(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut flag = |set: bool, key: &str| {
            if set {
                out.push(key.to_owned());
            }
        };
        flag(
            self.log.hooks.iter().any(|h| h.kind != "mail"),
            "log.hooks (types other than mail)",
        );
        flag(self.log.report_caller, "log.reportcaller");
        flag(
            self.storage.tag_concurrency_limit != 0,
            "storage.tag.concurrencylimit",
        );
        flag(self.http.http2 != Http2Config::default(), "http.http2");
        flag(self.http.h2c != H2cConfig::default(), "http.h2c");
        for key in self.redis.unsupported() {
            flag(true, key);
        }
        flag(self.proxy != ProxyConfig::default(), "proxy");
        flag(
            self.catalog != CatalogConfig::default(),
            "catalog.maxentries",
        );
        flag(
            self.compatibility != CompatibilityConfig::default(),
            "compatibility.schema1",
        );
        flag(
            self.policy != PolicyConfig::default(),
            "policy.repository.classes",
        );
        flag(
            self.validation.manifests.indexes != IndexValidation::default(),
            "validation.manifests.indexes",
        );
        out.extend(
            self.middleware
                .entries()
                .filter(|(key, m)| {
                    !(key.starts_with("middleware.storage[")
                        && crate::middleware::STORAGE_MIDDLEWARE.contains(&m.name.as_str()))
                })
                .map(|(key, m)| format!("{key}: {}", m.name)),
        );
        out
    }

    fn from_tree(mut root: Node, env: &[(String, String)]) -> Result<Loaded, ConfigError> {
        let mut ctx = Ctx::default();
        let config = build(&mut root, env, &mut ctx);
        let (warnings, problems) = (ctx.warnings, ctx.errors);
        match config {
            Some(config) if problems.is_empty() => Ok(Loaded { config, warnings }),
            _ => Err(ConfigError::Invalid { problems, warnings }),
        }
    }
}

/// Applies `env` to `root` and types every section, recording all problems in `ctx`.
fn build(root: &mut Node, env: &[(String, String)], ctx: &mut Ctx) -> Option<Config> {
    match root {
        Node::Map(_) => {}
        Node::Null => *root = Node::Map(Vec::new()),
        other => {
            ctx.error(format!(
                "the configuration must be a map of sections, got {}",
                other.describe()
            ));
            return None;
        }
    }
    env::apply(root, env, ctx);
    let root = &*root;
    let known = match &schema::ROOT {
        schema::Kind::Struct(fields) => *fields,
        _ => &[],
    };
    if let Node::Map(entries) = root {
        for (key, _) in entries
            .iter()
            .filter(|(k, _)| k != "token" && !known.iter().any(|f| f.key == k))
        {
            let hint = if key == "hooks" {
                " (log hooks belong under log.hooks)"
            } else {
                ""
            };
            ctx.warn(format!("unknown key {key} is ignored{hint}"));
        }
    }
    let section = |key: &str| root.get(key).unwrap_or(&Node::Null);
    let version = check_version(section("version"), ctx);
    let log = log::from_node(section("log"), root.get("loglevel"), ctx);
    let storage = storage::from_node(section("storage"), ctx);
    let auth = auth::from_node(section("auth"), ctx);
    let middleware = ctx.typed(section("middleware"), "middleware");
    let reporting = ctx.typed(section("reporting"), "reporting");
    let http = http::from_node(section("http"), ctx);
    let notifications = notifications::from_node(section("notifications"), ctx);
    let redis: Option<RedisConfig> = ctx.typed(section("redis"), "redis");
    let health = ctx.typed(section("health"), "health");
    let catalog: Option<CatalogConfig> = ctx.typed(section("catalog"), "catalog");
    let proxy = ctx.typed(section("proxy"), "proxy");
    let compatibility = ctx.typed(section("compatibility"), "compatibility");
    let validation = validation::from_node(section("validation"), ctx);
    let policy = ctx.typed(section("policy"), "policy");
    let token = token::from_node(section("token"), ctx);
    let tracing = telemetry::from_node(section("tracing"), ctx);
    let gc = gc::from_node(section("gc"), ctx);
    ctx.errors
        .extend(refusals(auth.as_ref(), http.as_ref().map(|h| &h.tls)));
    if let (Some(s), Some(r)) = (&storage, &redis)
        && s.blob_descriptor_cache.as_deref() == Some("redis")
        && r.addr.is_empty()
        && r.addrs.iter().all(String::is_empty)
    {
        ctx.error("storage.cache.blobdescriptor: redis needs redis.addr (or redis.addrs)");
    }
    let mut catalog = catalog?;
    if catalog.max_entries <= 0 {
        catalog = CatalogConfig::default();
    }
    Some(Config {
        version: version?,
        log: log?,
        storage: storage?,
        auth: auth?,
        middleware: middleware?,
        reporting: reporting?,
        http: http?,
        notifications: notifications?,
        redis: redis?,
        health: health?,
        catalog,
        proxy: proxy?,
        compatibility: compatibility?,
        validation: validation?,
        policy: policy?,
        token: token?,
        tracing: tracing?,
        gc: gc?,
    })
}

/// The refusals of [`Config::validate`], also applied to sections that parsed when others did not:
/// an auth scheme or TLS mode wharf does not provide must stop start-up, never run open.
fn refusals(auth: Option<&AuthConfig>, tls: Option<&TlsConfig>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(AuthConfig::Other { scheme, .. }) = auth {
        problems.push(format!(
            "auth.{scheme}: unknown access-control scheme; wharf provides htpasswd, token and silly, \
             and will not start an open registry when auth is configured"
        ));
    }
    let incomplete = |t: &TlsConfig| t.certificate.trim().is_empty() || t.key.trim().is_empty();
    if tls.is_some_and(|t| {
        t.lets_encrypt == LetsEncrypt::default() && t.is_requested() && incomplete(t)
    }) {
        problems.push(
            "http.tls: certificate and key are both required (wharf will not serve plain HTTP when TLS is configured)"
                .to_owned(),
        );
    }
    if let Some(t) = tls.filter(|t| t.lets_encrypt != LetsEncrypt::default()) {
        problems.extend(lets_encrypt_problems(t));
    }
    problems
}

/// `http.tls.letsencrypt` needs a cache directory and names, and excludes a certificate pair
/// (distribution: "cannot specify both certificate and Let's Encrypt").
fn lets_encrypt_problems(tls: &TlsConfig) -> Vec<String> {
    let le = &tls.lets_encrypt;
    let mut problems = Vec::new();
    if le.cache_file.trim().is_empty() {
        problems.push(
            "http.tls.letsencrypt.cachefile: required (the directory keeping the ACME account key and \
             certificates); wharf will not serve plain HTTP when TLS is configured"
                .to_owned(),
        );
    }
    if le.hosts.iter().all(|h| h.trim().is_empty()) {
        problems.push(
            "http.tls.letsencrypt.hosts: at least one name is required; certificates are ordered and \
             served only for these names"
                .to_owned(),
        );
    }
    if !tls.certificate.trim().is_empty() || !tls.key.trim().is_empty() {
        problems.push("http.tls: certificate/key and letsencrypt cannot both be set".to_owned());
    }
    problems
}

fn check_version(node: &Node, ctx: &mut Ctx) -> Option<String> {
    let text = node.scalar_text().unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        ctx.error("version: please specify a configuration version (version: 0.1)");
        return None;
    }
    let numeric = text.split_once('.').is_some_and(|(major, minor)| {
        [major, minor]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    if !numeric {
        ctx.error(format!(
            "version: expected major.minor such as 0.1, got {text:?}"
        ));
        return None;
    }
    if text != VERSION {
        ctx.error(format!(
            "version: unsupported configuration version {text:?}; wharf reads version {VERSION}"
        ));
        return None;
    }
    Some(text.to_owned())
}

fn default_tree(data_dir: &Path) -> Node {
    let map = |entries: Vec<(&str, Node)>| {
        Node::Map(
            entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    };
    map(vec![
        ("version", Node::Str(VERSION.to_owned())),
        (
            "storage",
            map(vec![
                (
                    "filesystem",
                    map(vec![(
                        "rootdirectory",
                        Node::Str(data_dir.to_string_lossy().into_owned()),
                    )]),
                ),
                ("delete", map(vec![("enabled", Node::Bool(true))])),
            ]),
        ),
        (
            "http",
            map(vec![("addr", Node::Str(http::DEFAULT_ADDR.to_owned()))]),
        ),
    ])
}

fn process_env() -> Vec<(String, String)> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with(env::PREFIX))
        .collect()
}

impl Serialize for Config {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("version", &self.version)?;
        map.serialize_entry("log", &self.log)?;
        map.serialize_entry("storage", &self.storage)?;
        if self.auth != AuthConfig::None {
            map.serialize_entry("auth", &self.auth)?;
        }
        if self.middleware != MiddlewareConfig::default() {
            map.serialize_entry("middleware", &self.middleware)?;
        }
        if self.reporting != ReportingConfig::default() {
            map.serialize_entry("reporting", &self.reporting)?;
        }
        map.serialize_entry("http", &self.http)?;
        if self.notifications != NotificationsConfig::default() {
            map.serialize_entry("notifications", &self.notifications)?;
        }
        if self.redis != RedisConfig::default() {
            map.serialize_entry("redis", &self.redis)?;
        }
        if self.health != HealthConfig::default() {
            map.serialize_entry("health", &self.health)?;
        }
        map.serialize_entry("catalog", &self.catalog)?;
        if self.proxy != ProxyConfig::default() {
            map.serialize_entry("proxy", &self.proxy)?;
        }
        if self.compatibility != CompatibilityConfig::default() {
            map.serialize_entry("compatibility", &self.compatibility)?;
        }
        map.serialize_entry("validation", &self.validation)?;
        if self.policy != PolicyConfig::default() {
            map.serialize_entry("policy", &self.policy)?;
        }
        if let Some(token) = &self.token {
            map.serialize_entry("token", token)?;
        }
        if let Some(tracing) = &self.tracing {
            map.serialize_entry("tracing", tracing)?;
        }
        if self.gc != GcConfig::default() {
            map.serialize_entry("gc", &self.gc)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests;
