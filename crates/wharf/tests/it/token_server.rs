//! The built-in token server (`token:`): one wharf process issues tokens at `/auth/token` and
//! verifies them, over HTTP (GET with basic auth or anonymous, POST password and refresh
//! grants) and with the Docker engine (`docker login`, push, pull, anonymous pull allowed and
//! anonymous push refused).

use std::path::Path;
use std::process::Command;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::Wharf;
use crate::harness::docker::{Docker, pushed_digest, run};

const SERVICE: &str = "wharf-registry";

/// A signing key, its self-signed certificate, a users file and the `token:` YAML using them.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("token server test setup");
        let key = rcgen::KeyPair::generate().expect("token server test setup");
        let cert = rcgen::CertificateParams::new(vec!["wharf-token-signer".to_owned()])
            .expect("token server test setup")
            .self_signed(&key)
            .expect("token server test setup");
        std::fs::write(dir.path().join("token.key"), key.serialize_pem())
            .expect("token server test setup");
        std::fs::write(dir.path().join("token.crt"), cert.pem()).expect("token server test setup");
        let users = ["alice", "bob", "root"]
            .iter()
            .map(|u| htpasswd_line(u, &format!("{u}-password")))
            .collect::<String>();
        std::fs::write(dir.path().join("htpasswd"), users).expect("token server test setup");
        Setup { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// alice (team-a) pushes to `team-a/*` and `public/*`; any user pulls everything; anyone
    /// pulls `public/*`; root may do anything, the catalog included.
    fn yaml(&self) -> String {
        format!(
            "token:\n  issuer: wharf-test\n  service: {SERVICE}\n  signingkey: {}\n  certificate: {}\n  htpasswd: {}\n  groups:\n    team-a: [alice]\n  access:\n    - match: {{account: anonymous, repository: \"public/*\"}}\n      actions: [pull]\n    - match: {{account: \"*\"}}\n      actions: [pull]\n    - match: {{group: team-a, repository: \"team-a/*\"}}\n      actions: [pull, push]\n    - match: {{account: alice, repository: \"public/*\"}}\n      actions: [push]\n    - match: {{account: root}}\n      actions: [\"*\"]\n",
            self.path("token.key"),
            self.path("token.crt"),
            self.path("htpasswd")
        )
    }
}

fn htpasswd_line(user: &str, password: &str) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_wharf")).args(["htpasswd", "-Bbn", user, password]))
        .expect_ok()
        .stdout
}

/// The `access` claim of a JWT, read without verifying (the registry verifies).
fn access_claim(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("token server test setup");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("token server test setup");
    serde_json::from_slice::<Value>(&bytes).expect("token server test setup")["access"].clone()
}

async fn get_token(wharf: &Wharf, query: &str, user: Option<(&str, &str)>) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(format!("{}/auth/token?{query}", wharf.url()));
    if let Some((u, p)) = user {
        req = req.basic_auth(u, Some(p));
    }
    req.send().await.expect("token server test setup")
}

async fn post_token(wharf: &Wharf, form: &[(&str, &str)]) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    reqwest::Client::new()
        .post(format!("{}/auth/token", wharf.url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("token server test setup")
}

async fn registry_get(wharf: &Wharf, path: &str, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", wharf.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("token server test setup")
}

#[tokio::test]
async fn get_grants_the_requested_scopes_the_rules_allow_and_nothing_more() {
    let setup = Setup::new();
    let wharf = Wharf::start_with(&setup.yaml());
    let resp = reqwest::get(format!("{}/v2/", wharf.url())).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer realm=\"http://{}/auth/token\",service=\"{SERVICE}\"",
            wharf.host()
        )
    );

    let query = format!(
        "service={SERVICE}&scope=repository:team-a/app:pull,push&scope=repository:other/app:pull,push,delete&scope=registry:catalog:*"
    );
    let resp = get_token(&wharf, &query, Some(("alice", "alice-password"))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let alice = body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        access_claim(&alice),
        serde_json::json!([
            {"type": "repository", "name": "team-a/app", "actions": ["pull", "push"]},
            {"type": "repository", "name": "other/app", "actions": ["pull"]},
        ])
    );
    let resp = registry_get(&wharf, "/v2/team-a/app/tags/list", &alice).await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "authorized, but empty"
    );

    let resp = get_token(&wharf, &query, Some(("bob", "bob-password"))).await;
    let bob: Value = resp.json().await.unwrap();
    let pushes = access_claim(bob["token"].as_str().unwrap())
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["actions"].to_string().contains("push"));
    assert!(!pushes, "bob is not in team-a: {bob}");

    let resp = get_token(
        &wharf,
        "service=wharf-registry&scope=registry:catalog:*",
        Some(("root", "root-password")),
    )
    .await;
    let root: Value = resp.json().await.expect("token body");
    let resp = registry_get(&wharf, "/v2/_catalog", root["token"].as_str().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = registry_get(&wharf, "/v2/_catalog", &alice).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);

    let resp = get_token(&wharf, &query, Some(("alice", "wrong"))).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().contains_key("www-authenticate"));
    let resp = get_token(&wharf, &query, Some(("mallory", "x"))).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = get_token(&wharf, "service=someone-else&scope=repository:a:pull", None).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(!wharf.log().contains(&alice), "token logged");
}

#[tokio::test]
async fn anonymous_requests_get_public_pulls_only_and_cannot_push() {
    let setup = Setup::new();
    let wharf = Wharf::start_with(&setup.yaml());
    let query = format!(
        "service={SERVICE}&scope=repository:public/base:pull,push&scope=repository:team-a/app:pull"
    );
    let body: Value = get_token(&wharf, &query, None).await.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(
        access_claim(token),
        serde_json::json!([{"type": "repository", "name": "public/base", "actions": ["pull"]}])
    );
    let resp = registry_get(&wharf, "/v2/public/base/tags/list", token).await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "authorized, but empty"
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/v2/public/base/blobs/uploads/", wharf.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let resp = registry_get(&wharf, "/v2/team-a/app/tags/list", token).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_missing_signing_key_is_generated_with_its_certificate_and_signs_tokens() {
    let setup = Setup::new();
    let key = setup.dir.path().join("generated/token.key");
    let yaml = setup
        .yaml()
        .replace(&setup.path("token.key"), &key.display().to_string())
        .replace(&format!("  certificate: {}\n", setup.path("token.crt")), "");
    assert!(!yaml.contains("certificate"), "{yaml}");
    let wharf = Wharf::start_with(&yaml);
    let cert = std::fs::read_to_string(key.with_extension("crt")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    let query = format!("service={SERVICE}&scope=repository:public/base:pull");
    let body: Value = get_token(&wharf, &query, None).await.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let resp = registry_get(&wharf, "/v2/public/base/tags/list", token).await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "authorized, but empty"
    );
    let resp = registry_get(&wharf, "/v2/public/base/tags/list", "forged.token.here").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oauth_password_and_refresh_grants_issue_tokens_bound_to_the_user() {
    let setup = Setup::new();
    let wharf = Wharf::start_with(&setup.yaml());
    let scope = "repository:team-a/app:pull,push repository:secret/x:delete";
    let resp = post_token(
        &wharf,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "alice-password"),
            ("service", SERVICE),
            ("scope", scope),
            ("client_id", "wharf-test"),
            ("access_type", "offline"),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "repository:team-a/app:pull,push");
    assert_eq!(body["expires_in"], 300);
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let access = body["access_token"].as_str().unwrap();
    let resp = registry_get(&wharf, "/v2/team-a/app/tags/list", access).await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "authorized, but empty"
    );

    let resp = post_token(
        &wharf,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong"),
            ("service", SERVICE),
        ],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = post_token(
        &wharf,
        &[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", "bob-password"),
            ("service", SERVICE),
        ],
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        body.get("refresh_token").is_none(),
        "no offline access asked: {body}"
    );

    let refreshed = |token: String| {
        let wharf = &wharf;
        async move {
            post_token(
                wharf,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("service", SERVICE),
                    ("scope", "repository:team-a/app:push"),
                    ("client_id", "wharf-test"),
                ],
            )
            .await
        }
    };
    let resp = refreshed(refresh.clone()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["scope"], "repository:team-a/app:push");
    let claims = body["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "alice");

    let mut forged = refresh.clone();
    forged.pop();
    forged.push(if refresh.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(refreshed(forged).await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        refreshed(access.to_owned()).await.status(),
        StatusCode::BAD_REQUEST,
        "an access token is not a refresh token"
    );
    let log = wharf.log();
    assert!(
        !log.contains(&refresh) && !log.contains("alice-password"),
        "secret logged"
    );
    remove_user(Path::new(&setup.path("htpasswd")), "alice");
    assert_eq!(
        refreshed(refresh).await.status(),
        StatusCode::BAD_REQUEST,
        "a removed user's refresh token still works"
    );
}

fn remove_user(file: &Path, user: &str) {
    let text = std::fs::read_to_string(file).expect("edit htpasswd");
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{user}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    // a different size makes the reload certain even within one mtime tick
    std::fs::write(file, format!("# edited\n{kept}")).expect("edit htpasswd");
}

#[test]
fn docker_logs_in_pushes_and_pulls_through_the_built_in_token_server() {
    let Some(docker) = Docker::get() else { return };
    let setup = Setup::new();
    let wharf = Wharf::start_with(&setup.yaml());
    let host = wharf.host();

    let public = format!("{host}/public/base:v1");
    docker.ok(&["tag", docker.busybox(), &public]);
    let anonymous = docker.run(&["push", &public]);
    assert!(!anonymous.success(), "anonymous push: {anonymous}");

    let wrong = docker.run(&["login", "-u", "alice", "-p", "nope", &host]);
    assert!(!wrong.success(), "login with a wrong password: {wrong}");
    docker.ok(&["login", "-u", "alice", "-p", "alice-password", &host]);
    let image = format!("{host}/team-a/app:v1");
    docker.ok(&["tag", docker.busybox(), &image]);
    let push = docker.ok(&["push", &image]);
    let digest = pushed_digest(&push.stdout).unwrap_or_else(|| panic!("no digest in {push}"));
    docker.ok(&["rmi", &image]);
    let pull = docker.ok(&["pull", &image]);
    assert!(pull.stdout.contains(&digest), "{pull}");
    let outside = format!("{host}/team-b/app:v1");
    docker.ok(&["tag", docker.busybox(), &outside]);
    let refused = docker.run(&["push", &outside]);
    assert!(!refused.success(), "pushed outside team-a: {refused}");
    docker.ok(&["push", &public]);
    docker.ok(&["logout", &host]);

    docker.ok(&["rmi", &public]);
    let pulled = docker.ok(&["pull", &public]);
    assert!(pulled.stdout.contains(&digest), "anonymous pull: {pulled}");
    let again = format!("{host}/public/base:v2");
    docker.ok(&["tag", docker.busybox(), &again]);
    let anonymous = docker.run(&["push", &again]);
    assert!(!anonymous.success(), "anonymous push: {anonymous}");
    docker.ok(&["rmi", &image, &outside, &public, &again]);
}

#[tokio::test]
async fn the_token_endpoint_and_its_realm_honour_http_prefix() {
    let setup = Setup::new();
    let wharf = Wharf::start_with(&format!("  prefix: /reg/\n{}", setup.yaml()));
    let resp = reqwest::get(format!("{}/reg/v2/", wharf.url()))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers()["www-authenticate"].to_str().unwrap(),
        format!(
            "Bearer realm=\"http://{}/reg/auth/token\",service=\"{SERVICE}\"",
            wharf.host()
        )
    );
    let query = format!("service={SERVICE}&scope=repository:team-a/app:pull");
    let resp = reqwest::Client::new()
        .get(format!("{}/reg/auth/token?{query}", wharf.url()))
        .basic_auth("alice", Some("alice-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    let resp = registry_get(&wharf, "/reg/v2/team-a/app/tags/list", token).await;
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "authorized, but empty"
    );
    let outside = get_token(&wharf, &query, Some(("alice", "alice-password"))).await;
    assert_eq!(
        outside.status(),
        StatusCode::NOT_FOUND,
        "only under the prefix"
    );
}
