//! Tokens signed by the test's own keys: an x5c chain to a CA in `rootcertbundle`, a key found
//! by `kid` in a JWKS, and every way a token must be refused.

use base64::Engine;
use jsonwebtoken::{EncodingKey, encode};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use serde_json::{Value, json};

use super::*;
use crate::auth::{Action, Resource};

const ISSUER: &str = "test-issuer";
const SERVICE: &str = "test-registry";

/// A CA in the bundle and a leaf it signed, whose key signs tokens.
struct Keys {
    _dir: tempfile::TempDir,
    config: TokenAuth,
    leaf_der: Vec<u8>,
    leaf_key: EncodingKey,
}

fn keys() -> Keys {
    let mut ca_params = CertificateParams::new(vec![]).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_kp = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["token-signer".to_owned()])
        .unwrap()
        .signed_by(&leaf_kp, &ca)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, ca.pem()).unwrap();
    Keys {
        config: TokenAuth {
            realm: "https://auth.example.com/token".into(),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            root_cert_bundle: bundle.display().to_string(),
            ..TokenAuth::default()
        },
        _dir: dir,
        leaf_der: leaf.der().to_vec(),
        leaf_key: EncodingKey::from_ec_pem(leaf_kp.serialize_pem().as_bytes()).unwrap(),
    }
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn claims(access: Value) -> Value {
    json!({"iss": ISSUER, "aud": SERVICE, "sub": "alice", "exp": now() + 300, "nbf": now() - 10, "access": access})
}

fn pull_push(name: &str) -> Value {
    json!([{"type": "repository", "name": name, "actions": ["pull", "push"]}])
}

fn sign(keys: &Keys, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.x5c = Some(vec![
        base64::engine::general_purpose::STANDARD.encode(&keys.leaf_der),
    ]);
    encode(&header, claims, &keys.leaf_key).unwrap()
}

fn bearer(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    h
}

fn want(name: &str, action: Action) -> Vec<Access> {
    vec![Access::repository(&name.parse().unwrap(), action)]
}

async fn check(c: &TokenController, token: &str, access: &[Access]) -> Result<Grant, &'static str> {
    c.authorize(&bearer(token), access)
        .await
        .map_err(|d| d.reason)
}

#[tokio::test]
async fn token_with_x5c_chain_to_the_bundle_grants_its_scope_only() {
    let k = keys();
    let c = TokenController::new(&k.config).unwrap();
    let token = sign(&k, &claims(pull_push("team/app")));
    let grant = check(&c, &token, &want("team/app", Action::Push)).await;
    assert_eq!(grant.unwrap().user.as_deref(), Some("alice"));
    assert!(
        check(&c, &token, &want("team/app", Action::Pull))
            .await
            .is_ok()
    );
    assert!(check(&c, &token, &[]).await.is_ok());
    let scope = "token does not grant the requested access";
    assert_eq!(
        check(&c, &token, &want("team/other", Action::Pull)).await,
        Err(scope)
    );
    assert_eq!(
        check(&c, &token, &want("team/app", Action::Delete)).await,
        Err(scope)
    );
    let catalog = [Access {
        resource: Resource::Catalog,
        action: Action::All,
    }];
    assert_eq!(check(&c, &token, &catalog).await, Err(scope));
}

#[tokio::test]
async fn pull_only_token_cannot_push() {
    let k = keys();
    let c = TokenController::new(&k.config).unwrap();
    let pull = json!([{"type": "repository", "name": "a", "actions": ["pull"]}]);
    let token = sign(&k, &claims(pull));
    assert!(check(&c, &token, &want("a", Action::Pull)).await.is_ok());
    let access = [want("a", Action::Pull), want("a", Action::Push)].concat();
    let denial = c.authorize(&bearer(&token), &access).await.unwrap_err();
    assert_eq!(
        denial.challenge.header_value(),
        "Bearer realm=\"https://auth.example.com/token\",service=\"test-registry\",scope=\"repository:a:pull,push\",error=\"insufficient_scope\""
    );
}

#[tokio::test]
async fn expired_wrong_issuer_and_wrong_audience_are_refused() {
    let k = keys();
    let c = TokenController::new(&k.config).unwrap();
    let access = want("a", Action::Pull);
    let mut expired = claims(pull_push("a"));
    expired["exp"] = json!(now() - LEEWAY_SECS as i64 - 5);
    assert_eq!(
        check(&c, &sign(&k, &expired), &access).await,
        Err("token expired")
    );
    let mut skewed = claims(pull_push("a"));
    skewed["exp"] = json!(now() - 20);
    assert!(
        check(&c, &sign(&k, &skewed), &access).await.is_ok(),
        "within leeway"
    );
    let mut early = claims(pull_push("a"));
    early["nbf"] = json!(now() + 600);
    assert_eq!(
        check(&c, &sign(&k, &early), &access).await,
        Err("token not valid yet")
    );
    let mut iss = claims(pull_push("a"));
    iss["iss"] = json!("someone-else");
    assert_eq!(
        check(&c, &sign(&k, &iss), &access).await,
        Err("wrong issuer")
    );
    let mut aud = claims(pull_push("a"));
    aud["aud"] = json!(["other-registry"]);
    assert_eq!(
        check(&c, &sign(&k, &aud), &access).await,
        Err("wrong audience")
    );
    let mut many = claims(pull_push("a"));
    many["aud"] = json!(["other-registry", SERVICE]);
    assert!(check(&c, &sign(&k, &many), &access).await.is_ok());
}

#[tokio::test]
async fn bad_signature_untrusted_chain_and_alg_none_are_refused() {
    let k = keys();
    let c = TokenController::new(&k.config).unwrap();
    let access = want("a", Action::Pull);
    let token = sign(&k, &claims(pull_push("a")));
    let (head, _) = token.rsplit_once('.').unwrap();
    let other = sign(&k, &claims(pull_push("b")));
    let forged = format!("{head}.{}", other.rsplit_once('.').unwrap().1);
    assert_eq!(
        check(&c, &forged, &access).await,
        Err("no trusted key verifies the signature")
    );
    let stranger = keys();
    let untrusted = sign(&stranger, &claims(pull_push("a")));
    assert_eq!(
        check(&c, &untrusted, &access).await,
        Err("x5c chain does not lead to rootcertbundle")
    );
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT"})),
        b64(&claims(pull_push("a")))
    );
    assert_eq!(check(&c, &none, &access).await, Err("malformed token"));
    let hs = encode(
        &Header::new(Algorithm::HS256),
        &claims(pull_push("a")),
        &EncodingKey::from_secret(b"guess"),
    )
    .unwrap();
    assert_eq!(
        check(&c, &hs, &access).await,
        Err("signing algorithm not accepted")
    );
    assert_eq!(
        c.authorize(&HeaderMap::new(), &access)
            .await
            .unwrap_err()
            .reason,
        "no bearer token"
    );
}

#[tokio::test]
async fn key_named_by_kid_in_jwks_verifies() {
    let kp = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let key = DecodingKey::from_ec_pem(cert.pem().as_bytes()).unwrap();
    let DecodingKeyKindEc { x, y } = ec_point(&key);
    let dir = tempfile::tempdir().unwrap();
    let jwks = dir.path().join("jwks.json");
    let set = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "key-1", "alg": "ES256", "x": x, "y": y}]});
    std::fs::write(&jwks, set.to_string()).unwrap();
    let config = TokenAuth {
        realm: "r".into(),
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        jwks: jwks.display().to_string(),
        ..TokenAuth::default()
    };
    let c = TokenController::new(&config).unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("key-1".into());
    let signer = EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap();
    let token = encode(&header, &claims(pull_push("a")), &signer).unwrap();
    assert!(check(&c, &token, &want("a", Action::Push)).await.is_ok());
}

struct DecodingKeyKindEc {
    x: String,
    y: String,
}

/// x and y (base64url) of an uncompressed P-256 point, as a JWK spells them.
fn ec_point(key: &DecodingKey) -> DecodingKeyKindEc {
    let point = key.try_get_as_bytes().unwrap();
    assert_eq!((point.len(), point[0]), (65, 4));
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    DecodingKeyKindEc {
        x: enc(&point[1..33]),
        y: enc(&point[33..]),
    }
}

#[test]
fn unknown_or_symmetric_algorithms_are_refused_at_start() {
    let k = keys();
    let mut config = k.config.clone();
    config.signing_algorithms = vec!["HS256".into()];
    assert!(TokenController::new(&config).is_err());
    config.signing_algorithms = vec!["ES256".into(), "RS256".into()];
    assert!(TokenController::new(&config).is_ok());
    config.root_cert_bundle = "/nonexistent/bundle.pem".into();
    let Err(e) = TokenController::new(&config) else {
        panic!("started without its bundle");
    };
    assert!(e.to_string().contains("/nonexistent/bundle.pem"));
}

#[tokio::test]
async fn autoredirect_points_the_realm_at_the_requested_host() {
    let k = keys();
    let mut config = k.config.clone();
    config.auto_redirect = true;
    let c = TokenController::new(&config).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::HOST,
        "registry.example.com:5000".parse().unwrap(),
    );
    let denial = c.authorize(&headers, &[]).await.unwrap_err();
    assert_eq!(
        denial.challenge.header_value(),
        "Bearer realm=\"https://registry.example.com:5000/auth/token/\",service=\"test-registry\""
    );
}
