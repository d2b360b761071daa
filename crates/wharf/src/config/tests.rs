//! Whole-file tests: the seed documents' config blocks and `REGISTRY_*` variables, env
//! overrides end to end, security refusals, redaction, defaults, and the env schema checked
//! against the typed sections. (A file of its own to keep `config.rs` readable.)

use std::time::Duration;

use wharf_storage::DriverConfig;
use wharf_storage::factory::FilesystemParams;

use super::*;

fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ok(yaml: &str, env: &[(&str, &str)]) -> Loaded {
    Config::parse(yaml, &vars(env)).unwrap_or_else(|e| panic!("{e}\n--- yaml:\n{yaml}"))
}

fn problems(yaml: &str, env: &[(&str, &str)]) -> Vec<String> {
    match Config::parse(yaml, &vars(env)) {
        Ok(_) => panic!("expected problems\n--- yaml:\n{yaml}"),
        Err(e) => e.problems(),
    }
}

/// Types every section, setting aside the auth/TLS refusals, to look at what such configs hold.
fn typed(yaml: &str, env: &[(&str, &str)]) -> (Option<Config>, Ctx) {
    let mut root = tree::parse_yaml(yaml).unwrap();
    let mut ctx = Ctx::default();
    let config = build(&mut root, &vars(env), &mut ctx);
    ctx.errors
        .retain(|e| !e.contains("letsencrypt cannot both be set"));
    (config, ctx)
}

const TLS_REFUSED: &str = "http.tls: certificate and key are both required";

/// `/etc/docker/registry/config.yml` of the `registry:2` image: what `docker run -e …` edits.
const IMAGE_DEFAULT: &str = "version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
";

fn with_storage(block: &str) -> String {
    format!("version: 0.1\nstorage:\n  inmemory:\n{block}")
}

// ---- seed 000: the config.yml reference, block by block ----

#[test]
fn seed_log_block() {
    let l = ok(
        &with_storage(
            "log:\n  level: debug\n  formatter: text\n  fields:\n    service: registry\n    environment: staging\n",
        ),
        &[],
    );
    assert_eq!(l.config.log.level, LogLevel::Debug);
    assert_eq!(l.config.log.fields.len(), 2);
    assert!(l.warnings.is_empty() && l.config.unsupported().is_empty());
}

#[test]
fn seed_hooks_block_at_top_level_and_under_log() {
    let hooks = "hooks:\n  - type: mail\n    levels:\n      - panic\n    options:\n      smtp:\n        addr: smtp.sendhost.com:25\n        username: sendername\n        password: password\n        insecure: true\n      from: name@sendhost.com\n      to:\n        - name@receivehost.com\n";
    let l = ok(&with_storage(hooks), &[]);
    assert_eq!(
        l.warnings,
        ["unknown key hooks is ignored (log hooks belong under log.hooks)"]
    );
    let nested: String = hooks.lines().map(|line| format!("  {line}\n")).collect();
    let l = ok(&with_storage(&format!("log:\n{nested}")), &[]);
    assert_eq!(l.config.log.hooks[0].levels, ["panic"]);
    assert!(l.config.unsupported().is_empty());
    assert!(!l.config.redacted_yaml().contains("password: password"));
}

#[test]
fn seed_loglevel_block() {
    let l = ok(&with_storage("loglevel: debug\n"), &[]);
    assert_eq!(l.config.log.level, LogLevel::Debug);
    assert_eq!(l.warnings, ["loglevel is deprecated; use log.level"]);
}

const SEED_STORAGE: &str = "storage:
  filesystem:
    rootdirectory: /var/lib/registry
  azure:
    accountname: accountname
    accountkey: base64encodedaccountkey
    container: containername
  s3:
    accesskey: awsaccesskey
    secretkey: awssecretkey
    region: us-west-1
    bucket: bucketname
    encrypt: true
    secure: true
    v4auth: true
    chunksize: 5242880
    rootdirectory: /s3/object/name/prefix
  rados:
    poolname: radospool
    username: radosuser
    chunksize: 4194304
  swift:
    username: username
    password: password
    tenant: tenantname
    tenantid: tenantid
    domain: domain name for Openstack Identity v3 API
    domainid: domain id for Openstack Identity v3 API
    insecureskipverify: true
    region: fr
    container: containername
    rootdirectory: /swift/object/name/prefix
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: true
      age: 168h
      interval: 24h
      dryrun: false
  redirect:
    disable: false
";

/// The block lists one of every driver, which distribution refuses too.
#[test]
fn seed_storage_block_needs_exactly_one_driver() {
    let all = format!("version: 0.1\n{SEED_STORAGE}");
    assert_eq!(
        problems(&all, &[]),
        [
            "storage: exactly one storage driver must be configured, found filesystem, azure, s3, rados, swift"
        ]
    );
    let only = |keep: &str| {
        let drivers = ["filesystem", "azure", "s3", "rados", "swift"];
        let mut out = String::from("version: 0.1\n");
        let mut skipping = false;
        for line in SEED_STORAGE.lines() {
            if let Some(key) = line.strip_prefix("  ").filter(|l| !l.starts_with(' ')) {
                let name = key.trim_end_matches(':');
                skipping = drivers.contains(&name) && name != keep;
            }
            if !skipping {
                out += line;
                out += "\n";
            }
        }
        out
    };
    let l = ok(&only("filesystem"), &[]);
    let s = &l.config.storage;
    assert_eq!(
        s.driver,
        DriverConfig::Filesystem(FilesystemParams::default())
    );
    assert_eq!(s.blob_descriptor_cache.as_deref(), Some("inmemory"));
    assert_eq!(s.upload_purging, UploadPurging::default());
    assert!(l.warnings.is_empty() && l.config.unsupported().is_empty());
    let DriverConfig::S3(s3) = &ok(&only("s3"), &[]).config.storage.driver else {
        panic!("s3 block read as another driver")
    };
    assert_eq!((s3.bucket.as_str(), s3.chunk_size), ("bucketname", 5 << 20));
    // distribution's sample swift block has no authurl (and `rootdirectory`, which its swift
    // driver never read: the key is `prefix`)
    let p = problems(&only("swift"), &[]);
    assert!(
        p.iter()
            .any(|m| m.contains("storage.swift.authurl: required")),
        "{p:?}"
    );
    {
        let driver = "rados";
        let p = problems(&only(driver), &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains(&format!("storage driver {driver} is not supported yet")),
            "{p:?}"
        );
        assert!(!p[0].contains("awssecretkey") && !p[0].contains("base64encodedaccountkey"));
    }
}

#[test]
fn seed_redirect_and_filesystem_snippets() {
    let l = ok(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  redirect:\n    disable: true\n",
        &[],
    );
    assert!(l.config.storage.redirect_disable);
}

/// The seed documents the parameters of each scheme; each runs, an unknown one is refused.
#[test]
fn seed_auth_schemes_run_and_unknown_ones_are_refused() {
    let schemes = [
        (
            "silly",
            "    realm: silly-realm\n    service: silly-service\n",
        ),
        (
            "token",
            "    realm: token-realm\n    service: token-service\n    issuer: registry-token-issuer\n    rootcertbundle: /root/certs/bundle\n",
        ),
        (
            "htpasswd",
            "    realm: basic-realm\n    path: /path/to/htpasswd\n",
        ),
    ];
    for (scheme, params) in schemes {
        let yaml = with_storage(&format!("auth:\n  {scheme}:\n{params}"));
        assert_eq!(ok(&yaml, &[]).config.auth.scheme(), Some(scheme));
    }
    let p = problems(&with_storage("auth:\n  ldap:\n    url: ldap://x\n"), &[]);
    assert!(
        p.len() == 1 && p[0].starts_with("auth.ldap: unknown access-control scheme"),
        "{p:?}"
    );
    ok(&with_storage(""), &[]);
}

#[test]
fn seed_middleware_block() {
    let yaml = with_storage(
        "middleware:\n  registry:\n    - name: ARegistryMiddleware\n      options:\n        foo: bar\n  repository:\n    - name: ARepositoryMiddleware\n      options:\n        foo: bar\n  storage:\n    - name: cloudfront\n      options:\n        baseurl: https://my.cloudfronted.domain.com/\n        privatekey: /path/to/pem\n        keypairid: cloudfrontkeypairid\n        duration: 3000\n",
    );
    let l = ok(&yaml, &[]);
    assert_eq!(
        l.config.unsupported(),
        [
            "middleware.registry[0]: ARegistryMiddleware",
            "middleware.repository[0]: ARepositoryMiddleware",
        ]
    );
}

#[test]
fn seed_reporting_block() {
    let yaml = with_storage(
        "reporting:\n  bugsnag:\n    apikey: bugsnagapikey\n    releasestage: bugsnagreleasestage\n    endpoint: bugsnagendpoint\n  newrelic:\n    licensekey: newreliclicensekey\n    name: newrelicname\n    verbose: true\n",
    );
    let l = ok(&yaml, &[]);
    assert!(l.config.unsupported().is_empty());
    let out = l.config.redacted_yaml();
    assert!(
        !out.contains("bugsnagapikey") && !out.contains("newreliclicensekey"),
        "{out}"
    );
}

const SEED_HTTP: &str = "http:
  addr: localhost:5000
  net: tcp
  prefix: /my/nested/registry/
  secret: asecretforlocaldevelopment
  tls:
    certificate: /path/to/x509/public
    key: /path/to/x509/private
    clientcas:
      - /path/to/ca.pem
      - /path/to/another/ca.pem
  debug:
    addr: localhost:5001
";

#[test]
fn seed_http_block_runs_with_and_without_tls() {
    let l = ok(&with_storage(SEED_HTTP), &[]);
    assert!(l.config.http.tls.is_requested());
    assert!(!l.config.unsupported().iter().any(|k| k.contains("tls")));
    let without_tls = SEED_HTTP.replace(
        "  tls:\n    certificate: /path/to/x509/public\n    key: /path/to/x509/private\n    clientcas:\n      - /path/to/ca.pem\n      - /path/to/another/ca.pem\n",
        "",
    );
    assert!(!without_tls.contains("tls"));
    let l = ok(&with_storage(&without_tls), &[]);
    assert_eq!(l.config.http.addr, "localhost:5000");
    assert_eq!(l.config.http.prefix, "/my/nested/registry/");
    assert_eq!(
        l.config.http.secret.as_ref().map(Secret::expose),
        Some("asecretforlocaldevelopment")
    );
    assert!(l.config.unsupported().is_empty());
}

#[test]
fn seed_notifications_block() {
    let yaml = with_storage(
        "notifications:\n  endpoints:\n    - name: alistener\n      disabled: false\n      headers: <http.Header>\n      timeout: 500\n      threshold: 5\n      backoff: 1000\n",
    );
    let l = ok(&yaml, &[]);
    assert_eq!(
        l.warnings,
        [
            "notifications.endpoints[0].headers: expected a map of header lists, got a single value; ignored"
        ]
    );
    assert_eq!(
        l.config.notifications.endpoints[0].timeout,
        Duration::from_nanos(500)
    );
    assert!(l.config.unsupported().is_empty());
}

#[test]
fn seed_redis_block_and_pool_snippet() {
    let yaml = with_storage(
        "redis:\n  addr: localhost:6379\n  password: asecret\n  db: 0\n  dialtimeout: 10ms\n  readtimeout: 10ms\n  writetimeout: 10ms\n  pool:\n    maxidle: 16\n    maxactive: 64\n    idletimeout: 300s\n",
    );
    let l = ok(&yaml, &[]);
    assert_eq!(l.config.redis.pool.max_active, 64);
    assert!(
        l.config.unsupported().is_empty(),
        "{:?}",
        l.config.unsupported()
    );
    assert!(!l.config.redacted_yaml().contains("asecret"));
    // the seed's separate `pool` snippet has idletimeout dedented: a warning, not a failure
    let l = ok(
        &with_storage("redis:\n  pool:\n    maxidle: 16\n    maxactive: 64\n  idletimeout: 300s\n"),
        &[],
    );
    assert_eq!(l.warnings, ["unknown key redis.idletimeout is ignored"]);
}

// ---- seeds 001, 002, 004: docker run -e REGISTRY_* over the image's default config ----

#[test]
fn image_default_config_runs() {
    let l = ok(IMAGE_DEFAULT, &[]);
    let c = &l.config;
    assert_eq!(c.http.addr, ":5000");
    assert_eq!(
        c.http.headers,
        [(
            "X-Content-Type-Options".to_owned(),
            vec!["nosniff".to_owned()]
        )]
    );
    assert_eq!(
        c.storage.driver,
        DriverConfig::Filesystem(FilesystemParams::default())
    );
    assert!(l.warnings.is_empty());
    assert!(c.unsupported().is_empty());
}

#[test]
fn other_overrides_reach_typed_fields() {
    let env = [
        ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/somewhere"),
        ("REGISTRY_STORAGE_DELETE_ENABLED", "true"),
        ("REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED", "yes"),
        ("REGISTRY_LOG_LEVEL", "debug"),
        ("REGISTRY_LOG_ACCESSLOG_DISABLED", "true"),
        ("REGISTRY_HTTP_SECRET", "0123"),
        ("REGISTRY_HTTP_DRAINTIMEOUT", "1m30s"),
        (
            "REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL",
            "http://hook/events",
        ),
        ("REGISTRY_NOTIFICATIONS_ENDPOINTS_0_TIMEOUT", "500ms"),
        ("REGISTRY_REDIS_ADDR", "redis:6379"),
        ("REGISTRY_PROXY_REMOTEURL", "https://registry-1.docker.io"),
        ("REGISTRY_CATALOG_MAXENTRIES", "50"),
    ];
    let l = ok(IMAGE_DEFAULT, &env);
    let c = &l.config;
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(
        c.storage.driver,
        DriverConfig::Filesystem(FilesystemParams {
            root_directory: "/somewhere".into(),
            ..Default::default()
        })
    );
    assert!(c.storage.delete_enabled && c.storage.readonly && c.log.access_log_disabled);
    assert_eq!(c.log.level, LogLevel::Debug);
    assert_eq!(c.http.secret.as_ref().map(Secret::expose), Some("0123"));
    assert_eq!(c.http.drain_timeout, Duration::from_secs(90));
    assert_eq!(c.notifications.endpoints[0].url, "http://hook/events");
    assert_eq!(
        c.notifications.endpoints[0].timeout,
        Duration::from_millis(500)
    );
    assert_eq!(c.redis.addr, "redis:6379");
    assert_eq!(c.proxy.remote_url, "https://registry-1.docker.io");
    assert_eq!(c.catalog.max_entries, 50);
}

// ---- whole-file behaviour ----

#[test]
fn every_problem_is_reported_at_once() {
    let yaml = "version: 0.1\nlog:\n  level: loud\nstorage:\n  filesystem: {}\n  inmemory: {}\nhttp:\n  net: udp\nredis:\n  db: zero\n";
    assert_eq!(
        problems(yaml, &[]),
        [
            "log.level: expected one of error, warn, info, debug, trace, got \"loud\"",
            "storage: exactly one storage driver must be configured, found filesystem, inmemory",
            "http.net: expected tcp or unix, got \"udp\"",
            "redis.db: expected an integer, got \"zero\"",
        ]
    );
}

#[test]
fn version_rules() {
    assert_eq!(
        problems("storage: inmemory\n", &[]),
        ["version: please specify a configuration version (version: 0.1)"]
    );
    assert_eq!(
        problems("version: 0.2\nstorage: inmemory\n", &[]),
        ["version: unsupported configuration version \"0.2\"; wharf reads version 0.1"]
    );
    assert_eq!(
        problems("version: latest\nstorage: inmemory\n", &[]),
        ["version: expected major.minor such as 0.1, got \"latest\""]
    );
    assert_eq!(
        ok("version: '0.1'\nstorage: inmemory\n", &[])
            .config
            .version,
        "0.1"
    );
    assert_eq!(
        ok("version: 0.1\nstorage: inmemory\n", &[]).config.version,
        "0.1"
    );
    assert_eq!(problems("", &[]).len(), 2);
    assert!(matches!(
        Config::parse("version: [\n", &[]),
        Err(ConfigError::Syntax(_))
    ));
    assert_eq!(
        problems("- a\n", &[]),
        ["the configuration must be a map of sections, got a list"]
    );
}

#[test]
fn unknown_keys_warn_with_their_path() {
    let l = ok(
        "version: 0.1\nstorage:\n  inmemory:\nhttp:\n  adress: :5000\n  tls: {}\nloging: {}\n",
        &[],
    );
    assert_eq!(
        l.warnings,
        [
            "unknown key loging is ignored",
            "unknown key http.adress is ignored"
        ]
    );
}

#[test]
fn error_text_lists_problems_then_warnings() {
    let err = Config::parse(
        "version: 0.1\nstorage: inmemory\nhttp: {adress: x, net: udp}\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: http.net: expected tcp or unix, got \"udp\"\nwarnings:\n  - unknown key http.adress is ignored"
    );
}

#[test]
fn default_config_is_filesystem_under_the_current_dir() {
    let dir = Path::new("/work/here").join(DEFAULT_DATA_DIR);
    let l = Config::from_tree(default_tree(&dir), &[]).unwrap();
    let c = &l.config;
    assert_eq!(
        c.storage.driver,
        DriverConfig::Filesystem(FilesystemParams {
            root_directory: dir.clone(),
            ..Default::default()
        })
    );
    assert!(c.storage.delete_enabled);
    assert_eq!((c.http.addr.as_str(), c.http.net), (":5000", Net::Tcp));
    assert!(l.warnings.is_empty() && c.unsupported().is_empty());
    let l = Config::from_tree(
        default_tree(&dir),
        &vars(&[("REGISTRY_HTTP_ADDR", ":6000")]),
    )
    .unwrap();
    assert_eq!(l.config.http.addr, ":6000");
    if process_env().is_empty() {
        let load = Config::load_default().unwrap();
        let DriverConfig::Filesystem(p) = &load.config.storage.driver else {
            panic!("not filesystem")
        };
        assert!(p.root_directory.ends_with(DEFAULT_DATA_DIR));
    }
}

#[test]
fn load_reads_a_file_and_names_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, IMAGE_DEFAULT).unwrap();
    assert_eq!(Config::load(&path).unwrap().config.http.addr, ":5000");
    let missing = dir.path().join("nope.yml");
    let err = Config::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.yml"));
}

mod full;
mod letsencrypt;
mod seeds_env;
