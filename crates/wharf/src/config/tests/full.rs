//! The full reference: every key distribution documents, with wharf's own values.

use std::collections::BTreeSet;

use super::*;

/// Every key of distribution's reference with wharf's own values; secrets end in a digit run.
const FULL: &str = r#"version: 0.1
log:
  accesslog:
    disabled: false
  level: info
  formatter: json
  fields:
    service: wharf
  hooks:
    - type: mail
      disabled: true
      levels: [error]
      options:
        smtp:
          addr: mail.internal:25
          username: alerts
          password: smtp-pass-123
          insecure: false
        from: wharf@internal
        to: [ops@internal]
  reportcaller: false
storage:
  filesystem:
    rootdirectory: /srv/wharf
    maxthreads: 64
  tag:
    concurrencylimit: 4
  delete:
    enabled: true
  redirect:
    disable: true
  cache:
    blobdescriptor: inmemory
    blobdescriptorsize: 2000
  maintenance:
    uploadpurging:
      enabled: true
      age: 96h
      interval: 12h
      dryrun: false
    readonly:
      enabled: false
middleware:
  storage:
    - name: redirect
      disabled: false
      options:
        baseurl: https://cdn.internal/
        privatekey: cdn-private-key-456
reporting:
  bugsnag:
    apikey: bugsnag-key-789
    releasestage: staging
    endpoint: https://bugsnag.internal
  newrelic:
    licensekey: newrelic-key-012
    name: wharf
    verbose: false
http:
  addr: 127.0.0.1:5000
  net: tcp
  prefix: /registry/
  host: https://registry.internal:5000
  secret: http-secret-345
  relativeurls: true
  draintimeout: 30s
  headers:
    X-Content-Type-Options: [nosniff]
    Cache-Control: [no-store]
  debug:
    addr: 127.0.0.1:5001
    prometheus:
      enabled: true
      path: /metrics
  http2:
    disabled: false
  h2c:
    enabled: true
notifications:
  events:
    includereferences: true
  endpoints:
    - name: hook
      disabled: false
      url: https://hook.internal/events
      headers:
        Authorization: [Bearer hook-token-678]
      timeout: 2s
      threshold: 5
      backoff: 3s
      ignoredmediatypes: [application/octet-stream]
      ignore:
        mediatypes: [application/vnd.oci.image.config.v1+json]
        actions: [pull]
redis:
  addr: redis.internal:6379
  addrs: [redis.internal:6379]
  clientname: wharf
  protocol: 3
  username: wharf
  password: redis-pass-901
  sentinelusername: s
  sentinelpassword: sentinel-pass-234
  mastername: m
  db: 1
  maxretries: 3
  minretrybackoff: 8ms
  maxretrybackoff: 512ms
  dialtimeout: 1s
  readtimeout: 1s
  writetimeout: 1s
  contexttimeoutenabled: true
  poolfifo: false
  poolsize: 32
  pooltimeout: 2s
  minidleconns: 1
  maxidleconns: 8
  maxactiveconns: 64
  connmaxidletime: 5m
  connmaxlifetime: 1h
  maxredirects: 3
  readonly: false
  routebylatency: false
  routerandomly: false
  disableidentity: false
  disableindentity: false
  identitysuffix: x
  unstableresp3: false
  pool:
    maxidle: 8
    maxactive: 32
    idletimeout: 5m
  tls:
    enabled: true
    certificate: /etc/redis/client.crt
    key: /etc/redis/client.key
    clientcas: [/etc/redis/ca.crt]
health:
  storagedriver:
    enabled: true
    interval: 20s
    threshold: 2
  file:
    - file: /srv/drain
      interval: 5s
      threshold: 1
  http:
    - uri: https://upstream.internal/health
      headers:
        X-Api-Key: [health-key-567]
      statuscode: 204
      timeout: 2s
      interval: 15s
      threshold: 2
  tcp:
    - addr: redis.internal:6379
      timeout: 1s
      interval: 15s
      threshold: 2
catalog:
  maxentries: 500
proxy:
  remoteurl: https://mirror.internal
  username: puller
  password: proxy-pass-890
  exec:
    command: docker-credential-internal
    lifetime: 30m
  ttl: 72h
  remotenamespace: library
compatibility:
  schema1:
    signingkeyfile: /etc/wharf/schema1.pem
    enabled: false
validation:
  disabled: false
  manifests:
    urls:
      allow: ['^https://layers\.internal/']
      deny: ['^https://layers\.internal/private/']
    indexes:
      platforms: list
      platformlist:
        - architecture: arm64
          os: linux
policy:
  repository:
    classes: [image]
"#;

const FULL_AUTH_TLS: &str = "auth:
  token:
    realm: https://auth.internal/token
    service: wharf
    issuer: auth.internal
    rootcertbundle: /etc/wharf/token.pem
    jwks: /etc/wharf/jwks.json
    autoredirect: false
    autoredirectpath: /auth/token/
    signingalgorithms: [ES256]
";

const FULL_SECRETS: &[&str] = &[
    "smtp-pass-123",
    "cdn-private-key-456",
    "bugsnag-key-789",
    "newrelic-key-012",
    "http-secret-345",
    "hook-token-678",
    "redis-pass-901",
    "sentinel-pass-234",
    "health-key-567",
    "proxy-pass-890",
];

#[test]
fn full_reference_config_runs_and_lists_what_is_not_acted_on() {
    let l = ok(FULL, &[]);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = &l.config;
    assert_eq!(c.http.headers.len(), 2);
    assert_eq!(c.http.headers[1].0, "Cache-Control");
    assert_eq!(
        c.validation.manifests.urls.allow,
        ["^https://layers\\.internal/"]
    );
    assert_eq!(c.storage.upload_purging.age, Duration::from_secs(96 * 3600));
    assert_eq!(
        c.unsupported(),
        [
            "storage.tag.concurrencylimit",
            "http.h2c",
            "redis.mastername",
            "redis.sentinelusername/sentinelpassword",
            "proxy",
            "catalog.maxentries",
            "compatibility.schema1",
            "policy.repository.classes",
            "validation.manifests.indexes",
        ]
    );
}

#[test]
fn secrets_never_reach_debug_or_redacted_output() {
    let c = ok(FULL, &[]).config;
    let debug = format!("{c:?}");
    let yaml = c.redacted_yaml();
    for secret in FULL_SECRETS {
        assert!(!debug.contains(secret), "Debug leaks {secret}");
        assert!(
            !yaml.contains(secret),
            "redacted_yaml leaks {secret}:\n{yaml}"
        );
    }
    assert!(yaml.contains(tree::MASK));
    assert!(
        yaml.contains("96h") && yaml.contains("rootdirectory: /srv/wharf"),
        "{yaml}"
    );
    // the output is itself a config that parses back to the same values (secrets aside)
    let again = ok(&yaml, &[]).config;
    assert_eq!(again.storage, c.storage);
    assert_eq!(again.http.headers, c.http.headers);
    assert_eq!(again.http.drain_timeout, c.http.drain_timeout);
    assert_eq!(again.health.http[0].status_code, 204);
    assert_eq!(again.redis.pool, c.redis.pool);
    assert_eq!(
        again.http.secret.as_ref().map(Secret::expose),
        Some(tree::MASK)
    );
    assert_eq!(again.unsupported(), c.unsupported());
}

#[test]
fn defaults_are_filled_in_the_effective_config() {
    let yaml = ok("version: 0.1\nstorage: inmemory\n", &[])
        .config
        .redacted_yaml();
    for expected in [
        "addr: \":5000\"",
        "net: tcp",
        "level: info",
        "formatter: text",
        "age: 168h",
        "interval: 24h",
        "maxentries: 1000",
    ] {
        assert!(yaml.contains(expected), "missing {expected:?} in\n{yaml}");
    }
    let again = ok(&yaml, &[]).config;
    assert_eq!(again, ok("version: 0.1\nstorage: inmemory\n", &[]).config);
}

#[test]
fn full_config_with_auth_and_tls_reports_both() {
    let yaml = format!("{FULL}{FULL_AUTH_TLS}").replace(
        "  h2c:\n",
        "  tls:\n    letsencrypt:\n      cachefile: /srv/acme\n      email: ops@internal\n  h2c:\n",
    );
    let p = problems(&yaml, &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("http.tls.letsencrypt.hosts: at least one name is required"),
        "{p:?}"
    );
}

/// The env schema must know exactly the keys the typed sections accept, or overrides would
/// miss keys (or invent them).
#[test]
fn env_schema_matches_the_typed_sections() {
    let tls = "  tls:\n    certificate: /c\n    key: /k\n    clientcas: [/ca]\n    clientauth: require-and-verify-client-cert\n    minimumtls: tls1.2\n    ciphersuites: [TLS_AES_128_GCM_SHA256]\n    letsencrypt:\n      cachefile: /a\n      email: e\n      hosts: [h]\n      directoryurl: https://acme\n";
    let token = "token:\n  issuer: wharf\n  service: reg\n  realm: https://r/auth/token\n  expiration: 5m\n  refreshexpiration: 720h\n  signingkey: /k\n  certificate: /c\n  htpasswd: /h\n  groups: {ops: [a]}\n  access:\n    - match: {group: ops, repository: \"*\"}\n      actions: [pull]\n";
    let gc = "gc:\n  enabled: true\n  interval: 10m\n  grace: 1h\n  deleteuntagged: true\n  dryrun: true\n";
    let yaml = format!("{FULL}{FULL_AUTH_TLS}{token}{gc}tracing:\n  endpoint: http://c:4318\n")
        .replace("  h2c:\n", &format!("{tls}  h2c:\n"));
    let (config, ctx) = typed(&yaml, &[]);
    assert!(
        config.is_some() && ctx.errors.is_empty() && ctx.warnings.is_empty(),
        "{ctx:?}"
    );
    let mut checked = BTreeSet::new();
    for (path, fields) in &ctx.struct_fields {
        let Some(schema::Kind::Struct(schema_fields)) = schema::kind_at(path) else {
            continue;
        };
        let typed: BTreeSet<&str> = fields.iter().copied().collect();
        let known: BTreeSet<&str> = schema_fields.iter().map(|f| f.key).collect();
        assert_eq!(typed, known, "keys at {path:?}");
        checked.insert(path.clone());
    }
    let mut expected = BTreeSet::new();
    collect_struct_paths(&schema::ROOT, "", &mut expected);
    let missing: Vec<_> = expected.difference(&checked).collect();
    assert!(
        missing.is_empty(),
        "schema sections never typed: {missing:?}"
    );
}

fn collect_struct_paths(kind: &schema::Kind, path: &str, out: &mut BTreeSet<String>) {
    match kind {
        schema::Kind::Struct(fields) => {
            if !path.is_empty() {
                out.insert(path.to_owned());
            }
            for f in *fields {
                collect_struct_paths(&f.kind, &typed::join(path, f.key), out);
            }
        }
        schema::Kind::Seq(elem) => collect_struct_paths(elem, &format!("{path}[0]"), out),
        schema::Kind::Map { elem, .. } if path == "middleware" => {
            collect_struct_paths(elem, &format!("{path}.storage"), out)
        }
        _ => {}
    }
}
