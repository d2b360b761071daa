//! Table tests of `REGISTRY_*` overrides: ordering, driver replacement, lists, unknown names.

use super::*;

fn run(yaml: &str, env: &[(&str, &str)]) -> (Node, Ctx) {
    let mut root = parse_yaml(yaml).unwrap();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut ctx = Ctx::default();
    apply(&mut root, &env, &mut ctx);
    (root, ctx)
}

fn at<'a>(node: &'a Node, path: &str) -> Option<&'a Node> {
    path.split('.')
        .try_fold(node, |n, part| match (n, part.parse::<usize>()) {
            (Node::Seq(items), Ok(i)) => items.get(i),
            _ => n.get(part),
        })
}

fn s(v: &str) -> Node {
    Node::Str(v.to_owned())
}

/// (file, env vars, dotted path, expected value at that path)
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
    Node,
);

#[test]
fn overrides_table() {
    let base = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\nhttp:\n  addr: :5000\n";
    let cases: &[Case] = &[
        (
            base,
            &[("REGISTRY_HTTP_ADDR", "0.0.0.0:443")],
            "http.addr",
            s("0.0.0.0:443"),
        ),
        (
            base,
            &[("REGISTRY_HTTP_ADDR", ":5001")],
            "http.addr",
            s(":5001"),
        ),
        (
            base,
            &[("REGISTRY_HTTP_TLS_CERTIFICATE", "/certs/server.crt")],
            "http.tls.certificate",
            s("/certs/server.crt"),
        ),
        (
            base,
            &[("REGISTRY_HTTP_TLS_KEY", "/certs/server.key")],
            "http.tls.key",
            s("/certs/server.key"),
        ),
        (
            base,
            &[("REGISTRY_HTTP_SECRET", "s3cr3t")],
            "http.secret",
            s("s3cr3t"),
        ),
        (
            base,
            &[("REGISTRY_HTTP_SECRET", "1e5")],
            "http.secret",
            s("1e5"),
        ),
        (
            base,
            &[("REGISTRY_HTTP_SECRET", "abc: def")],
            "http.secret",
            s("abc: def"),
        ),
        (
            base,
            &[("REGISTRY_HTTP_RELATIVEURLS", "true")],
            "http.relativeurls",
            s("true"),
        ),
        (
            base,
            &[("REGISTRY_HTTP_HEADERS_X-FRAME-OPTIONS", "[DENY]")],
            "http.headers.x-frame-options",
            Node::Seq(vec![s("DENY")]),
        ),
        (
            base,
            &[("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/somewhere")],
            "storage.filesystem.rootdirectory",
            s("/somewhere"),
        ),
        (
            base,
            &[("REGISTRY_STORAGE_DELETE_ENABLED", "true")],
            "storage.delete.enabled",
            Node::Bool(true),
        ),
        (
            base,
            &[(
                "REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED",
                "false",
            )],
            "storage.maintenance.uploadpurging.enabled",
            Node::Bool(false),
        ),
        (
            base,
            &[("REGISTRY_STORAGE_MAINTENANCE_READONLY", "{enabled: true}")],
            "storage.maintenance.readonly.enabled",
            Node::Bool(true),
        ),
        (
            base,
            &[("REGISTRY_STORAGE_S3_REGIONENDPOINT", "http://minio:9000")],
            "storage.s3.regionendpoint",
            s("http://minio:9000"),
        ),
        (
            base,
            &[("REGISTRY_AUTH", "htpasswd")],
            "auth.htpasswd",
            Node::Map(vec![]),
        ),
        (
            base,
            &[
                ("REGISTRY_AUTH", "htpasswd"),
                ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
            ],
            "auth.htpasswd.realm",
            s("Registry Realm"),
        ),
        (
            base,
            &[
                ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"),
                ("REGISTRY_AUTH", "htpasswd"),
            ],
            "auth.htpasswd.path",
            s("/auth/htpasswd"),
        ),
        (
            base,
            &[("REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL", "http://hook")],
            "notifications.endpoints.0.url",
            s("http://hook"),
        ),
        (
            base,
            &[(
                "REGISTRY_NOTIFICATIONS_EVENTCONFIG_INCLUDEREFERENCES",
                "true",
            )],
            "notifications.events.includereferences",
            s("true"),
        ),
        (
            base,
            &[("REGISTRY_LOG_LEVEL", "debug")],
            "log.level",
            s("debug"),
        ),
        (
            base,
            &[("REGISTRY_TOKEN_ISSUER", "wharf")],
            "token.issuer",
            s("wharf"),
        ),
        (
            base,
            &[("REGISTRY_TOKEN_GROUPS_OPS", "[alice, bob]")],
            "token.groups.ops",
            Node::Seq(vec![s("alice"), s("bob")]),
        ),
        (
            base,
            &[("REGISTRY_LOG_FIELDS_SERVICE", "registry")],
            "log.fields.service",
            s("registry"),
        ),
        (
            base,
            &[("REGISTRY_REDIS_ADDR", "redis:6379")],
            "redis.addr",
            s("redis:6379"),
        ),
        (
            base,
            &[("REGISTRY_PROXY_REMOTEURL", "https://registry-1.docker.io")],
            "proxy.remoteurl",
            s("https://registry-1.docker.io"),
        ),
        (
            base,
            &[("REGISTRY_HEALTH_FILECHECKERS_0_FILE", "/tmp/down")],
            "health.file.0.file",
            s("/tmp/down"),
        ),
        (
            base,
            &[("REGISTRY_COMPATIBILITY_SCHEMA1_TRUSTKEY", "/k.pem")],
            "compatibility.schema1.signingkeyfile",
            s("/k.pem"),
        ),
        (
            base,
            &[("REGISTRY_MIDDLEWARE_STORAGE_0_NAME", "cloudfront")],
            "middleware.storage.0.name",
            s("cloudfront"),
        ),
        (
            base,
            &[("REGISTRY_STORAGE_AZURE_MAX_RETRIES", "10")],
            "storage.azure.max_retries",
            Node::Int(10),
        ),
        (
            base,
            &[("REGISTRY_http_addr", "lower:1")],
            "http.addr",
            s("lower:1"),
        ),
        (
            base,
            &[(
                "REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_0",
                "registry.example.com",
            )],
            "http.tls.letsencrypt.hosts.0",
            s("registry.example.com"),
        ),
        (
            "version: 0.1\nstorage: inmemory\n",
            &[("REGISTRY_STORAGE_DELETE_ENABLED", "true")],
            "storage.inmemory",
            Node::Map(vec![]),
        ),
        (
            "version: 0.1\nhttp:\n  headers:\n    X-Content-Type-Options: [nosniff]\n",
            &[("REGISTRY_HTTP_HEADERS_X-CONTENT-TYPE-OPTIONS", "[sniff]")],
            "http.headers.X-Content-Type-Options",
            Node::Seq(vec![s("sniff")]),
        ),
        (
            "version: 0.1\nnotifications:\n  endpoints:\n    - name: a\n      url: http://a\n",
            &[("REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL", "http://b")],
            "notifications.endpoints.0.name",
            s("a"),
        ),
        (
            "version: 0.1\nnotifications:\n  endpoints:\n    - name: a\n      url: http://a\n",
            &[("REGISTRY_NOTIFICATIONS_ENDPOINTS_0_URL", "http://b")],
            "notifications.endpoints.0.url",
            s("http://b"),
        ),
        (
            "version: 0.1\nnotifications:\n  endpoints:\n    - name: a\n",
            &[("REGISTRY_NOTIFICATIONS_ENDPOINTS_1_NAME", "b")],
            "notifications.endpoints.1.name",
            s("b"),
        ),
        (
            "version: 0.1\nhttp:\n",
            &[("REGISTRY_HTTP_DEBUG_ADDR", ":5001")],
            "http.debug.addr",
            s(":5001"),
        ),
        (
            base,
            &[("REGISTRY_HTTP", "{addr: ':6000'}")],
            "http.addr",
            s(":6000"),
        ),
        (base, &[("REGISTRY_HTTP_ADDR", "")], "http.addr", Node::Null),
    ];
    for (yaml, env, path, want) in cases {
        let (root, ctx) = run(yaml, env);
        assert_eq!(at(&root, path), Some(want), "{env:?} -> {path}");
        assert!(
            ctx.errors.is_empty() && ctx.warnings.is_empty(),
            "{env:?}: {ctx:?}"
        );
    }
}

#[test]
fn lexical_order_puts_driver_replacement_first() {
    let yaml = "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  cache:\n    blobdescriptor: inmemory\n";
    // given out of order on purpose: sorting must apply REGISTRY_STORAGE first
    let (root, ctx) = run(
        yaml,
        &[
            ("REGISTRY_STORAGE_S3_BUCKET", "docker-registry.kh-developer"),
            ("REGISTRY_STORAGE_S3_REGION", "ap-northeast-1"),
            ("REGISTRY_STORAGE", "s3"),
        ],
    );
    let storage = root.get("storage").unwrap();
    let Node::Map(entries) = storage else {
        panic!("storage is not a map")
    };
    assert_eq!(entries.len(), 1, "{storage:?}");
    assert_eq!(
        at(&root, "storage.s3.bucket"),
        Some(&s("docker-registry.kh-developer"))
    );
    assert_eq!(at(&root, "storage.s3.region"), Some(&s("ap-northeast-1")));
    assert!(ctx.errors.is_empty());
    assert_eq!(ctx.warnings.len(), 1);
    assert!(
        ctx.warnings[0].contains("REGISTRY_STORAGE=s3 replaces the whole storage section"),
        "{:?}",
        ctx.warnings
    );
    assert!(ctx.warnings[0].contains("storage.cache"));
}

#[test]
fn unknown_variables_warn() {
    let yaml = "version: 0.1\nhttp:\n  addr: :5000\n";
    for name in [
        "REGISTRY_HTTP_TLS_CRETIFICATE",
        "REGISTRY_NOSUCHSECTION",
        "REGISTRY_HTTP_ADDR_PORT",
        "REGISTRY_",
        "REGISTRY_HTTP__ADDR",
        "REGISTRY_NOTIFICATIONS_ENDPOINTS_FIRST_URL",
    ] {
        let (root, ctx) = run(yaml, &[(name, "x")]);
        assert!(ctx.errors.is_empty(), "{name}");
        assert_eq!(ctx.warnings, [unknown(name)], "{name}");
        assert_eq!(at(&root, "http.addr"), Some(&s(":5000")), "{name}");
    }
    let (_, ctx) = run(yaml, &[("OTHER_VAR", "x"), ("registry_http_addr", "x")]);
    assert!(ctx.warnings.is_empty() && ctx.errors.is_empty());
}

#[test]
fn list_gap_is_an_error() {
    let (_, ctx) = run(
        "version: 0.1\n",
        &[("REGISTRY_NOTIFICATIONS_ENDPOINTS_2_URL", "http://x")],
    );
    assert_eq!(
        ctx.errors,
        [
            "environment variable REGISTRY_NOTIFICATIONS_ENDPOINTS_2_URL: notifications.endpoints has 0 item(s), so index 2 would leave a gap"
        ]
    );
}

#[test]
fn slices_append_in_order() {
    let (root, ctx) = run(
        "version: 0.1\n",
        &[
            ("REGISTRY_HTTP_TLS_CLIENTCAS_1", "/b.pem"),
            ("REGISTRY_HTTP_TLS_CLIENTCAS_0", "/a.pem"),
        ],
    );
    assert!(ctx.errors.is_empty(), "{ctx:?}");
    assert_eq!(
        at(&root, "http.tls.clientcas"),
        Some(&Node::Seq(vec![s("/a.pem"), s("/b.pem")]))
    );
}
