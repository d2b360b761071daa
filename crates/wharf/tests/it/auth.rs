//! Access control end to end: htpasswd with the Docker engine (`docker login`, push, pull, a
//! file edited while running), the 401s and their challenges over HTTP, bearer tokens signed
//! by the test's own key, and silly.

use std::path::Path;
use std::process::Command;

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Wharf;
use crate::harness::docker::{Docker, pushed_digest, run};
use crate::harness::oci::{Client, errors, header};
use crate::harness::skopeo::{MultiArchLayout, Skopeo};

/// An htpasswd line made by `wharf htpasswd -Bbn`, as the seeds make theirs.
fn htpasswd_line(user: &str, password: &str) -> String {
    run(Command::new(env!("CARGO_BIN_EXE_wharf")).args(["htpasswd", "-Bbn", user, password]))
        .expect_ok()
        .stdout
}

fn start_htpasswd(path: &Path) -> Wharf {
    Wharf::start_with(&format!(
        "auth:\n  htpasswd:\n    realm: Registry Realm\n    path: {}\n",
        path.display()
    ))
}

fn basic(user: &str, password: &str) -> String {
    let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {v}")
}

#[tokio::test]
async fn htpasswd_answers_401_with_a_basic_challenge_until_the_password_is_right() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, htpasswd_line("testuser", "testpassword")).unwrap();
    let wharf = start_htpasswd(&file);
    let client = Client::new(&wharf.url());
    for auth in [
        None,
        Some(basic("testuser", "wrong-password")),
        Some(basic("nobody", "x")),
    ] {
        let mut req = client.get("/v2/");
        if let Some(auth) = &auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(
            header(&resp, "www-authenticate").as_deref(),
            Some("Basic realm=\"Registry Realm\"")
        );
        assert_eq!(errors(resp).await, ["UNAUTHORIZED"]);
    }
    let resp = client
        .get("/v2/app/tags/list")
        .header("authorization", basic("testuser", "testpassword"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "authorized, repository unknown"
    );
    let resp = client
        .get("/v2/_catalog")
        .header("authorization", basic("testuser", "testpassword"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let log = wharf.log();
    assert!(
        !log.contains("wrong-password") && !log.contains("testpassword"),
        "{log}"
    );
}

#[test]
fn docker_login_push_pull_and_a_user_added_while_running() {
    let Some(docker) = Docker::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, htpasswd_line("testuser", "testpassword")).unwrap();
    let wharf = start_htpasswd(&file);
    let host = wharf.host();
    let image = format!("{host}/auth/busybox:v1");
    docker.ok(&["tag", docker.busybox(), &image]);

    let anonymous = docker.run(&["push", &image]);
    assert!(!anonymous.success(), "pushed without login: {anonymous}");
    assert!(
        anonymous.all_output().contains("no basic auth credentials"),
        "{anonymous}"
    );
    let wrong = docker.run(&["login", "-u", "testuser", "-p", "nope", &host]);
    assert!(!wrong.success(), "logged in with a wrong password: {wrong}");

    docker.ok(&["login", "-u", "testuser", "-p", "testpassword", &host]);
    let push = docker.ok(&["push", &image]);
    let digest = pushed_digest(&push.stdout).unwrap_or_else(|| panic!("no digest in {push}"));
    docker.ok(&["rmi", &image]);
    let pull = docker.ok(&["pull", &image]);
    assert!(pull.stdout.contains(&digest), "{pull}");
    docker.ok(&["logout", &host]);

    let refused = docker.run(&["login", "-u", "newuser", "-p", "newpassword", &host]);
    assert!(!refused.success(), "{refused}");
    let both = format!(
        "{}{}",
        htpasswd_line("testuser", "testpassword"),
        htpasswd_line("newuser", "newpassword")
    );
    std::fs::write(&file, both).unwrap();
    docker.ok(&["login", "-u", "newuser", "-p", "newpassword", &host]);
    docker.ok(&["pull", &image]);
    docker.ok(&["logout", &host]);
    docker.ok(&["rmi", &image]);
    assert!(!wharf.log().contains("newpassword"));
}

/// The multi-platform push/pull workflow (uploads, cross-repository mounts, index and
/// manifests, tags) with credentials, and the same copy refused without them.
#[test]
fn skopeo_copies_an_index_with_credentials_and_is_refused_without() {
    let Some(skopeo) = Skopeo::get() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    std::fs::write(&file, htpasswd_line("testuser", "testpassword")).unwrap();
    let wharf = start_htpasswd(&file);
    let layout = MultiArchLayout::write(dir.path(), "v1", "auth");
    let dest = format!("docker://{}/auth/multi:v1", wharf.host());
    let copy = |creds: Option<&str>| {
        let mut args = vec!["copy", "--all", "--dest-tls-verify=false"];
        if let Some(creds) = creds {
            args.extend(["--dest-creds", creds]);
        }
        let src = layout.reference();
        skopeo.run(&[args.as_slice(), &[src.as_str(), dest.as_str()]].concat())
    };
    let refused = copy(None);
    assert!(!refused.success(), "copied without credentials: {refused}");
    copy(Some("testuser:wrong")).expect_failure();
    copy(Some("testuser:testpassword")).expect_ok();
    let other = format!("docker://{}/auth/other:v1", wharf.host());
    skopeo.ok(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src-creds",
        "testuser:testpassword",
        "--dest-creds",
        "testuser:testpassword",
        &dest,
        &other,
    ]);
    let raw = skopeo.ok(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        "testuser:testpassword",
        &other,
    ]);
    assert!(raw.stdout.contains(&layout.platforms[1].manifest), "{raw}");
    let anonymous = skopeo.run(&["inspect", "--raw", "--tls-verify=false", &other]);
    assert!(!anonymous.success(), "{anonymous}");
}

#[tokio::test]
async fn a_missing_htpasswd_file_is_created_with_a_password_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth/htpasswd");
    let wharf = start_htpasswd(&file);
    let log = wharf.log();
    let password = log
        .lines()
        .find_map(|l| {
            l.split_once("with password ")
                .map(|(_, p)| p.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no password printed: {log}"));
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .starts_with("docker:$2")
    );
    let resp = Client::new(&wharf.url())
        .get("/v2/")
        .header("authorization", basic("docker", &password))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[test]
fn a_non_bcrypt_htpasswd_entry_stops_start_up_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    std::fs::write(
        &file,
        format!(
            "{}legacy:{{SHA}}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n",
            htpasswd_line("a", "b")
        ),
    )
    .unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  inmemory: {{}}\nhttp:\n  addr: 127.0.0.1:0\nauth:\n  htpasswd:\n    realm: r\n    path: {}\n",
            file.display()
        ),
    )
    .unwrap();
    let out = run(Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("serve")
        .arg(&config));
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains("line 2") && out.stderr.contains("\"legacy\""),
        "{out}"
    );
    assert!(!out.stderr.contains("W6ph5Mm5"), "{out}");
}

/// A CA in the bundle and a key it certified; tokens carry the leaf in `x5c`.
struct Issuer {
    _dir: tempfile::TempDir,
    bundle: String,
    leaf_der: Vec<u8>,
    key: jsonwebtoken::EncodingKey,
}

impl Issuer {
    fn new() -> Issuer {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut params = CertificateParams::new(vec![]).expect("test issuer");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("test issuer"))
            .expect("test issuer");
        let key = KeyPair::generate().expect("test issuer");
        let leaf = CertificateParams::new(vec!["token-signer".to_owned()])
            .expect("test issuer")
            .signed_by(&key, &ca)
            .expect("test issuer");
        let dir = tempfile::tempdir().expect("test issuer");
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, ca.pem()).expect("test issuer");
        Issuer {
            bundle: bundle.display().to_string(),
            _dir: dir,
            leaf_der: leaf.der().to_vec(),
            key: jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes())
                .expect("test issuer"),
        }
    }

    fn token(&self, access: Value) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        let claims = json!({"iss": "test-issuer", "aud": "test-registry", "sub": "ci",
            "exp": now + 300, "nbf": now - 5, "access": access});
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.x5c = Some(vec![
            base64::engine::general_purpose::STANDARD.encode(&self.leaf_der),
        ]);
        jsonwebtoken::encode(&header, &claims, &self.key).expect("test issuer")
    }
}

#[tokio::test]
async fn bearer_tokens_grant_their_scope_and_challenges_name_the_scope() {
    let issuer = Issuer::new();
    let wharf = Wharf::start_with(&format!(
        "auth:\n  token:\n    realm: https://auth.example.com/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
        issuer.bundle
    ));
    let client = Client::new(&wharf.url());
    let resp = client
        .post("/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&resp, "www-authenticate").as_deref(),
        Some(
            "Bearer realm=\"https://auth.example.com/token\",service=\"test-registry\",scope=\"repository:team/app:pull,push\""
        )
    );
    let push = issuer
        .token(json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]));
    let bearer = format!("Bearer {push}");
    let (manifest, _) = {
        let authed = AuthedClient {
            client: &client,
            bearer: &bearer,
        };
        authed.push_image("team/app", "v1").await
    };
    let pull =
        issuer.token(json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}]));
    let resp = client
        .get("/v2/team/app/manifests/v1")
        .header("authorization", format!("Bearer {pull}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), manifest);
    let resp = client
        .put("/v2/team/app/manifests/v2")
        .header("authorization", format!("Bearer {pull}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "pull-only token pushed"
    );
    let challenge = header(&resp, "www-authenticate").unwrap();
    assert!(
        challenge.ends_with(",error=\"insufficient_scope\""),
        "{challenge}"
    );
    let resp = client
        .get("/v2/team/other/tags/list")
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "token for another repository"
    );
    assert!(!wharf.log().contains(&push), "token logged");
}

/// A token server for the test: grants whatever is asked on `tok/app` (anonymous, as
/// `docker push` asks before any login) and nothing elsewhere.
fn spawn_token_server(issuer: std::sync::Arc<Issuer>) -> (tokio::runtime::Runtime, u16) {
    let rt = tokio::runtime::Runtime::new().expect("token server runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind token server");
    let port = listener.local_addr().expect("token server addr").port();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let issuer = issuer.clone();
        async move {
            let query = uri.query().unwrap_or_default();
            let access: Vec<Value> = form_urlencoded::parse(query.as_bytes())
                .filter(|(k, _)| k == "scope")
                .filter_map(|(_, scope)| {
                    let mut parts = scope.splitn(3, ':');
                    let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                    (kind == "repository" && name == "tok/app").then(|| {
                        json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()})
                    })
                })
                .collect();
            let token = issuer.token(Value::Array(access));
            let body = json!({"token": token, "access_token": token, "expires_in": 300});
            ([("content-type", "application/json")], body.to_string())
        }
    });
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, port)
}

#[test]
fn docker_pushes_and_pulls_with_tokens_from_the_realm_and_is_refused_outside_them() {
    let Some(docker) = Docker::get() else { return };
    let issuer = std::sync::Arc::new(Issuer::new());
    let (_rt, port) = spawn_token_server(issuer.clone());
    let wharf = Wharf::start_with(&format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{port}/token\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
        issuer.bundle
    ));
    let image = format!("{}/tok/app:v1", wharf.host());
    docker.ok(&["tag", docker.busybox(), &image]);
    let push = docker.ok(&["push", &image]);
    let digest = pushed_digest(&push.stdout).unwrap_or_else(|| panic!("no digest in {push}"));
    docker.ok(&["rmi", &image]);
    let pull = docker.ok(&["pull", &image]);
    assert!(pull.stdout.contains(&digest), "{pull}");
    let elsewhere = format!("{}/tok/other:v1", wharf.host());
    docker.ok(&["tag", docker.busybox(), &elsewhere]);
    let refused = docker.run(&["push", &elsewhere]);
    assert!(
        !refused.success(),
        "pushed outside the token's scope: {refused}"
    );
    docker.ok(&["rmi", &image, &elsewhere]);
}

/// Pushes with an `Authorization` header on every request.
struct AuthedClient<'a> {
    client: &'a Client,
    bearer: &'a str,
}

impl AuthedClient<'_> {
    /// A config blob and an OCI manifest under `tag`; returns the manifest bytes.
    async fn push_image(&self, repo: &str, tag: &str) -> (bytes::Bytes, String) {
        let config = b"{}".to_vec();
        let digest = crate::harness::oci::sha256(&config);
        let resp = self
            .client
            .post(&format!("/v2/{repo}/blobs/uploads/?digest={digest}"))
            .header("authorization", self.bearer)
            .body(config.clone())
            .send()
            .await
            .expect("authorized push");
        assert_eq!(resp.status(), StatusCode::CREATED);
        let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest, "size": config.len()},
            "layers": []});
        let body = bytes::Bytes::from(manifest.to_string());
        let resp = self
            .client
            .put(&format!("/v2/{repo}/manifests/{tag}"))
            .header("authorization", self.bearer)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body.clone())
            .send()
            .await
            .expect("authorized push");
        assert_eq!(resp.status(), StatusCode::CREATED);
        (body, digest)
    }
}

#[tokio::test]
async fn silly_lets_any_authorization_header_through() {
    let wharf =
        Wharf::start_with("auth:\n  silly:\n    realm: silly-realm\n    service: silly-service\n");
    let client = Client::new(&wharf.url());
    let resp = client.get("/v2/_catalog").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&resp, "www-authenticate").as_deref(),
        Some("Bearer realm=\"silly-realm\",service=\"silly-service\",scope=\"registry:catalog:*\"")
    );
    let resp = client
        .get("/v2/_catalog")
        .header("authorization", "Bearer anything")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}
