//! `auth.token`: bearer JWTs issued by a token server, as in distribution's token auth.
//!
//! The signing key is found, in this order: the `x5c` chain of the token's header, verified up
//! to a certificate of `rootcertbundle` (intermediates from the chain); the `kid` of a key in
//! `jwks`; otherwise every trusted key of the algorithm's family is tried. Then `exp`/`nbf`
//! (60 s leeway), `iss` = `issuer` and `aud` ∋ `service` are checked, and every requested
//! (resource, action) must appear in the `access` claim. Unsigned (`alg: none`) and HMAC tokens
//! are never accepted. Depends on jsonwebtoken and rustls-webpki; no I/O after start-up.

use std::collections::HashMap;

use base64::Engine;
use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Header, Validation};
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime, pem::PemObject};
use serde::Deserialize;

use super::{
    Access, AccessController, AuthError, BearerError, Challenge, Denial, Grant, credentials,
};
use crate::config::TokenAuth;

/// Clock skew tolerated on `exp` and `nbf`, as distribution allows.
pub const LEEWAY_SECS: u64 = 60;

/// Algorithms accepted when `signingalgorithms` is empty: every asymmetric JWS algorithm.
const DEFAULT_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The token controller, keys loaded at start-up.
pub struct TokenController {
    realm: String,
    service: String,
    auto_redirect_path: Option<String>,
    roots: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    /// Keys of the bundle's certificates and of the JWKS, tried when no `kid`/`x5c` names one.
    keys: Vec<DecodingKey>,
    by_kid: HashMap<String, DecodingKey>,
    validation: Validation,
}

/// The claims wharf reads beyond the standard ones jsonwebtoken checks.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    access: Vec<ResourceActions>,
}

/// One entry of the `access` claim.
#[derive(Debug, Deserialize)]
struct ResourceActions {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    #[serde(default)]
    actions: Vec<String>,
}

impl TokenController {
    /// Loads `rootcertbundle` and `jwks` and checks `signingalgorithms`.
    pub fn new(config: &TokenAuth) -> Result<TokenController, AuthError> {
        let mut roots = Vec::new();
        if !config.root_cert_bundle.is_empty() {
            let path = &config.root_cert_bundle;
            roots = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| AuthError::Token(format!("rootcertbundle {path}: {e}")))?;
            if roots.is_empty() {
                return Err(AuthError::Token(format!(
                    "rootcertbundle {path}: no certificates found"
                )));
            }
        }
        let mut anchors = Vec::new();
        let mut keys = Vec::new();
        for (i, cert) in roots.iter().enumerate() {
            let anchor = webpki::anchor_from_trusted_cert(cert).map_err(|e| {
                AuthError::Token(format!("rootcertbundle certificate {}: {e}", i + 1))
            })?;
            anchors.push(anchor.to_owned());
            keys.push(cert_key(cert).ok_or_else(|| {
                AuthError::Token(format!(
                    "rootcertbundle certificate {}: unsupported public key",
                    i + 1
                ))
            })?);
        }
        let by_kid = load_jwks(&config.jwks)?;
        keys.extend(by_kid.values().cloned());
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = algorithms(&config.signing_algorithms)?;
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.service]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        Ok(TokenController {
            realm: config.realm.clone(),
            service: config.service.clone(),
            auto_redirect_path: config.auto_redirect.then(|| {
                Some(config.auto_redirect_path.clone())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "/auth/token/".to_owned())
            }),
            roots,
            anchors,
            keys,
            by_kid,
            validation,
        })
    }

    /// Decodes and verifies `token`, returning its claims, or why it is not acceptable.
    fn verify(&self, token: &str) -> Result<Claims, &'static str> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| "malformed token")?;
        if !self.validation.algorithms.contains(&header.alg) {
            return Err("signing algorithm not accepted");
        }
        let keys = self.candidate_keys(&header)?;
        // jsonwebtoken wants every listed algorithm to fit the key: list only the token's
        let mut validation = self.validation.clone();
        validation.algorithms = vec![header.alg];
        let mut why = "no trusted key verifies the signature";
        for key in keys.iter().filter(|k| k.family() == header.alg.family()) {
            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => match e.kind() {
                    ErrorKind::InvalidSignature | ErrorKind::InvalidKeyFormat => {}
                    ErrorKind::ExpiredSignature => return Err("token expired"),
                    ErrorKind::ImmatureSignature => return Err("token not valid yet"),
                    ErrorKind::InvalidIssuer => return Err("wrong issuer"),
                    ErrorKind::InvalidAudience => return Err("wrong audience"),
                    ErrorKind::MissingRequiredClaim(_) => return Err("missing exp, iss or aud"),
                    _ => why = "token cannot be verified",
                },
            }
        }
        Err(why)
    }

    /// The keys that may have signed a token with this header.
    fn candidate_keys(&self, header: &Header) -> Result<Vec<DecodingKey>, &'static str> {
        let chain = header.x5c_der().map_err(|_| "malformed x5c")?;
        if let Some(chain) = chain {
            return self.chain_key(&chain).map(|k| vec![k]);
        }
        if let Some(kid) = &header.kid
            && let Some(key) = self.by_kid.get(kid)
        {
            return Ok(vec![key.clone()]);
        }
        Ok(self.keys.clone())
    }

    /// The leaf key of an `x5c` chain that leads to a `rootcertbundle` certificate.
    fn chain_key(&self, chain: &[Vec<u8>]) -> Result<DecodingKey, &'static str> {
        let (leaf, rest) = chain.split_first().ok_or("empty x5c")?;
        let leaf = CertificateDer::from(leaf.as_slice());
        if !self.roots.iter().any(|r| r.as_ref() == leaf.as_ref()) {
            let ee = webpki::EndEntityCert::try_from(&leaf)
                .map_err(|_| "x5c leaf is not a certificate")?;
            let intermediates: Vec<CertificateDer<'_>> = rest
                .iter()
                .map(|c| CertificateDer::from(c.as_slice()))
                .collect();
            ee.verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.anchors,
                &intermediates,
                UnixTime::now(),
                AnyUsage,
                None,
                None,
            )
            .map_err(|_| "x5c chain does not lead to rootcertbundle")?;
        }
        cert_key(&leaf).ok_or("x5c leaf has an unsupported key")
    }

    fn realm(&self, headers: &HeaderMap) -> String {
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok());
        match (&self.auto_redirect_path, host) {
            (Some(path), Some(host)) => format!("https://{host}{path}"),
            _ => self.realm.clone(),
        }
    }

    fn deny(
        &self,
        headers: &HeaderMap,
        access: &[Access],
        error: Option<BearerError>,
        reason: &'static str,
    ) -> Denial {
        Denial {
            challenge: Challenge::Bearer {
                realm: self.realm(headers),
                service: self.service.clone(),
                scope: access.to_vec(),
                error,
            },
            access: access.to_vec(),
            reason,
        }
    }
}

#[async_trait::async_trait]
impl AccessController for TokenController {
    async fn authorize(&self, headers: &HeaderMap, access: &[Access]) -> Result<Grant, Denial> {
        let Some(token) = credentials(headers, "Bearer") else {
            return Err(self.deny(headers, access, None, "no bearer token"));
        };
        let claims = self
            .verify(token)
            .map_err(|why| self.deny(headers, access, Some(BearerError::InvalidToken), why))?;
        let granted = |a: &Access| {
            claims.access.iter().any(|r| {
                r.kind == a.resource.kind()
                    && r.name == a.resource.name()
                    && r.actions.iter().any(|x| x == a.action.as_str())
            })
        };
        if !access.iter().all(granted) {
            return Err(self.deny(
                headers,
                access,
                Some(BearerError::InsufficientScope),
                "token does not grant the requested access",
            ));
        }
        Ok(Grant { user: claims.sub })
    }
}

/// Accepts any extended key usage, as Go's `ExtKeyUsageAny` does for token certificates.
struct AnyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, _: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

/// The public key of a certificate, whatever its family.
fn cert_key(cert: &CertificateDer<'_>) -> Option<DecodingKey> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let pem = format!("-----BEGIN CERTIFICATE-----\n{b64}\n-----END CERTIFICATE-----\n");
    let pem = pem.as_bytes();
    DecodingKey::from_rsa_pem(pem)
        .or_else(|_| DecodingKey::from_ec_pem(pem))
        .or_else(|_| DecodingKey::from_ed_pem(pem))
        .ok()
        .filter(|k| k.family() != AlgorithmFamily::Hmac)
}

/// `jwks`: a JSON Web Key Set file; every key needs a `kid`.
fn load_jwks(path: &str) -> Result<HashMap<String, DecodingKey>, AuthError> {
    let mut out = HashMap::new();
    if path.is_empty() {
        return Ok(out);
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| AuthError::Token(format!("jwks {path}: {e}")))?;
    let set: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&text).map_err(|e| AuthError::Token(format!("jwks {path}: {e}")))?;
    for (i, jwk) in set.keys.iter().enumerate() {
        let kid =
            jwk.common.key_id.clone().ok_or_else(|| {
                AuthError::Token(format!("jwks {path}: key {} has no kid", i + 1))
            })?;
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| AuthError::Token(format!("jwks {path}: key {kid:?}: {e}")))?;
        if key.family() == AlgorithmFamily::Hmac {
            return Err(AuthError::Token(format!(
                "jwks {path}: key {kid:?} is symmetric; only public keys are accepted"
            )));
        }
        out.insert(kid, key);
    }
    Ok(out)
}

/// `signingalgorithms`, by their JWS names.
fn algorithms(names: &[String]) -> Result<Vec<Algorithm>, AuthError> {
    if names.is_empty() {
        return Ok(DEFAULT_ALGORITHMS.to_vec());
    }
    names
        .iter()
        .map(|n| {
            n.parse::<Algorithm>()
                .ok()
                .filter(|a| a.family() != AlgorithmFamily::Hmac)
                .ok_or_else(|| {
                    AuthError::Token(format!(
                        "signingalgorithms: {n:?} is not an asymmetric JWS algorithm \
                         (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA)"
                    ))
                })
        })
        .collect()
}

#[cfg(test)]
mod tests;
