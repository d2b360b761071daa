//! The seeds' `REGISTRY_*` environment examples (001-004), read exactly as distribution does.

use super::*;

#[test]
fn seed_002_listen_address_from_env() {
    let l = ok(IMAGE_DEFAULT, &[("REGISTRY_HTTP_ADDR", "0.0.0.0:5001")]);
    assert_eq!(l.config.http.addr, "0.0.0.0:5001");
}

#[test]
fn seed_002_tls_and_basic_auth_from_env_are_read() {
    let tls = [
        ("REGISTRY_HTTP_ADDR", "0.0.0.0:443"),
        ("REGISTRY_HTTP_TLS_CERTIFICATE", "/certs/example.com.crt"),
        ("REGISTRY_HTTP_TLS_KEY", "/certs/example.com.key"),
    ];
    ok(IMAGE_DEFAULT, &tls);

    let mut both = tls.to_vec();
    both.extend([
        ("REGISTRY_AUTH", "htpasswd"),
        ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
        ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"),
    ]);
    let (config, ctx) = typed(IMAGE_DEFAULT, &both);
    assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
    let config = config.unwrap();
    assert_eq!(
        config.auth,
        AuthConfig::Htpasswd(HtpasswdAuth {
            realm: "Registry Realm".into(),
            path: "/auth/htpasswd".into()
        })
    );
    assert_eq!(config.http.tls.certificate, "/certs/example.com.crt");
    assert_eq!(config.http.addr, "0.0.0.0:443");
}

#[test]
fn seed_001_s3_storage_from_env_is_read() {
    let env = [
        ("REGISTRY_HTTP_TLS_CERTIFICATE", "/certs/server.crt"),
        ("REGISTRY_HTTP_TLS_KEY", "/certs/server.key"),
        ("REGISTRY_STORAGE", "s3"),
        ("REGISTRY_STORAGE_S3_BUCKET", "docker-registry.kh-developer"),
        ("REGISTRY_STORAGE_S3_ACCESSKEY", "ASEFWAF1232REWE"),
        (
            "REGISTRY_STORAGE_S3_SECRETKEY",
            "ASERWER1234WERFASER354SFDSDF1234",
        ),
        ("REGISTRY_STORAGE_S3_REGION", "ap-northeast-1"),
        ("REGISTRY_AUTH", "htpasswd"),
        ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry Realm"),
        ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"),
    ];
    let l = ok(IMAGE_DEFAULT, &env[2..7]);
    let DriverConfig::S3(s3) = &l.config.storage.driver else {
        panic!("REGISTRY_STORAGE=s3 read as another driver")
    };
    assert_eq!(s3.bucket, "docker-registry.kh-developer");
    assert_eq!(s3.region, "ap-northeast-1");
    assert_eq!(s3.access_key.as_deref(), Some("ASEFWAF1232REWE"));
    assert_eq!(
        s3.secret_key.as_deref(),
        Some("ASERWER1234WERFASER354SFDSDF1234")
    );
    if let Err(err) = Config::parse(IMAGE_DEFAULT, &vars(&env)) {
        let text = err.to_string();
        assert!(!text.contains("storage.s3"), "{text}");
        assert!(!text.contains("ASERWER1234WERFASER354SFDSDF1234"));
    }
}

#[test]
fn seed_004_misspelt_tls_variable_warns_and_the_key_alone_still_refuses() {
    let env = [
        ("REGISTRY_AUTH", "htpasswd"),
        ("REGISTRY_AUTH_HTPASSWD_REALM", "Registry-Realm"),
        ("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd"),
        ("REGISTRY_HTTP_ADDR", "0.0.0.0:443"),
        ("REGISTRY_HTTP_TLS_CRETIFICATE", "/certs/server.crt"),
        ("REGISTRY_HTTP_TLS_KEY", "/certs/server.key"),
    ];
    let err = Config::parse(IMAGE_DEFAULT, &vars(&env)).unwrap_err();
    let ConfigError::Invalid { problems, warnings } = &err else {
        panic!("{err}")
    };
    assert!(
        problems.len() == 1 && problems[0].starts_with(TLS_REFUSED),
        "{problems:?}"
    );
    assert_eq!(
        warnings,
        &["environment variable REGISTRY_HTTP_TLS_CRETIFICATE names no configuration key; ignored"]
    );
    assert!(err.to_string().contains("REGISTRY_HTTP_TLS_CRETIFICATE"));
}
