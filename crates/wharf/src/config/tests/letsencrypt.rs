//! `http.tls.letsencrypt`: distribution's keys, their `REGISTRY_HTTP_TLS_LETSENCRYPT_*`
//! overrides, and the refusals of an incomplete section.

use super::*;

const BASE: &str = "version: 0.1\nstorage: inmemory\nhttp:\n  addr: :443\n";

#[test]
fn letsencrypt_keys_are_read_from_yaml() {
    let yaml = format!(
        "{BASE}  tls:\n    letsencrypt:\n      cachefile: /var/lib/wharf/acme\n      email: ops@example.com\n      hosts: [registry.example.com, Mirror.Example.com]\n      directoryurl: https://acme.internal/dir\n"
    );
    let le = ok(&yaml, &[]).config.http.tls.lets_encrypt;
    assert_eq!(le.cache_file, "/var/lib/wharf/acme");
    assert_eq!(le.email, "ops@example.com");
    assert_eq!(le.hosts, ["registry.example.com", "Mirror.Example.com"]);
    assert_eq!(le.directory_url, "https://acme.internal/dir");
}

#[test]
fn letsencrypt_keys_are_read_from_env_overrides() {
    let env = [
        ("REGISTRY_HTTP_TLS_LETSENCRYPT_CACHEFILE", "/cache/acme"),
        ("REGISTRY_HTTP_TLS_LETSENCRYPT_EMAIL", "admin@example.com"),
        (
            "REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS",
            "[a.example.com, b.example.com]",
        ),
        (
            "REGISTRY_HTTP_TLS_LETSENCRYPT_DIRECTORYURL",
            "https://pebble:14000/dir",
        ),
    ];
    let le = ok(BASE, &env).config.http.tls.lets_encrypt;
    assert_eq!(le.cache_file, "/cache/acme");
    assert_eq!(le.email, "admin@example.com");
    assert_eq!(le.hosts, ["a.example.com", "b.example.com"]);
    assert_eq!(le.directory_url, "https://pebble:14000/dir");

    // One element of the list, over a YAML list.
    let yaml = format!(
        "{BASE}  tls:\n    letsencrypt:\n      cachefile: /c\n      hosts: [old.example.com]\n"
    );
    let le = ok(
        &yaml,
        &[("REGISTRY_HTTP_TLS_LETSENCRYPT_HOSTS_0", "new.example.com")],
    )
    .config
    .http
    .tls
    .lets_encrypt;
    assert_eq!(le.hosts, ["new.example.com"]);
}

#[test]
fn letsencrypt_needs_cachefile_and_hosts_and_excludes_a_certificate() {
    let p = problems(
        &format!("{BASE}  tls:\n    letsencrypt:\n      email: e@x\n"),
        &[],
    );
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].starts_with("http.tls.letsencrypt.cachefile: required"),
        "{p:?}"
    );
    assert!(
        p[1].starts_with("http.tls.letsencrypt.hosts: at least one name"),
        "{p:?}"
    );

    let p = problems(
        &format!(
            "{BASE}  tls:\n    certificate: /c.pem\n    key: /k.pem\n    letsencrypt:\n      cachefile: /a\n      hosts: [h.example.com]\n"
        ),
        &[],
    );
    assert_eq!(
        p,
        ["http.tls: certificate/key and letsencrypt cannot both be set"]
    );
}
