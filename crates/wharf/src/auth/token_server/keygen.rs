//! A signing key for `token:` when the operator gave none: an ECDSA P-256 key (PKCS#8 PEM,
//! mode 0600) and a self-signed certificate next to it, so a first start needs no openssl.
//!
//! The certificate is only a carrier for the public key (`x5c`, `rootcertbundle`): the
//! registry trusts it by identity, not by chain, so it holds no extensions. The DER is written
//! here (a few fixed structures) rather than pulling a certificate library into the server.
//! Uses aws-lc-rs, already the TLS and JWT backend.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;

use crate::auth::AuthError;

/// Lifetime of a generated certificate (the registry checks token expiry, not this).
const VALID_SECS: u64 = 10 * 365 * 24 * 3600;

/// `1.2.840.10045.4.3.2`, ecdsa-with-SHA256.
const OID_ECDSA_SHA256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
/// `1.2.840.10045.2.1`, id-ecPublicKey.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
/// `1.2.840.10045.3.1.7`, prime256v1.
const OID_P256: &[u8] = &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// `2.5.4.3`, commonName.
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

/// Writes a new key to `key_path` and its certificate to `cert_path`; neither may exist.
pub fn generate(key_path: &Path, cert_path: &Path) -> Result<(), AuthError> {
    let fail = |what: &str| AuthError::TokenServer(format!("generating the signing key: {what}"));
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
        .map_err(|_| fail("key generation failed"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
        .map_err(|_| fail("generated key unreadable"))?;
    let now = jsonwebtoken::get_current_timestamp();
    let tbs = tbs_certificate(
        pair.public_key().as_ref(),
        now.saturating_sub(3600),
        now + VALID_SECS,
    );
    let signature = pair
        .sign(&rng, &tbs)
        .map_err(|_| fail("self-signing failed"))?;
    let cert = seq(&[
        &tbs,
        &seq(&[&oid(OID_ECDSA_SHA256)]),
        &bit_string(signature.as_ref()),
    ]);
    write_new(
        key_path,
        "token.signingkey",
        &pem("PRIVATE KEY", pkcs8.as_ref()),
        0o600,
    )?;
    write_new(
        cert_path,
        "token.certificate",
        &pem("CERTIFICATE", &cert),
        0o644,
    )?;
    tracing::info!(key = %key_path.display(), certificate = %cert_path.display(), "token: generated a signing key and its self-signed certificate");
    Ok(())
}

fn tbs_certificate(point: &[u8], not_before: u64, not_after: u64) -> Vec<u8> {
    let serial: [u8; 16] = rand::random();
    let mut serial = serial.to_vec();
    serial[0] = (serial[0] & 0x7F) | 0x01; // positive and minimal
    let name = seq(&[&tlv(
        0x31,
        &seq(&[&oid(OID_CN), &tlv(0x0C, b"wharf token signer")]),
    )]);
    let validity = seq(&[&utc_time(not_before), &utc_time(not_after)]);
    let spki = seq(&[
        &seq(&[&oid(OID_EC_PUBLIC_KEY), &oid(OID_P256)]),
        &bit_string(point),
    ]);
    seq(&[
        &tlv(0xA0, &tlv(0x02, &[0x02])),
        &tlv(0x02, &serial),
        &seq(&[&oid(OID_ECDSA_SHA256)]),
        &name,
        &validity,
        &name,
        &spki,
    ])
}

/// DER type-length-value.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn oid(body: &[u8]) -> Vec<u8> {
    tlv(0x06, body)
}

fn bit_string(bytes: &[u8]) -> Vec<u8> {
    tlv(0x03, &[&[0u8][..], bytes].concat())
}

/// `YYMMDDHHMMSSZ`, valid until 2049 as UTCTime is.
fn utc_time(secs: u64) -> Vec<u8> {
    let iso = super::rfc3339(secs);
    let digits: String = iso.chars().filter(char::is_ascii_digit).collect();
    tlv(0x17, format!("{}Z", &digits[2..]).as_bytes())
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out + &format!("-----END {label}-----\n")
}

fn write_new(path: &Path, what: &'static str, text: &str, mode: u32) -> Result<(), AuthError> {
    let io = |source| AuthError::Io {
        what,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    options
        .open(path)
        .map_err(io)?
        .write_all(text.as_bytes())
        .map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_use_the_long_form_past_127_bytes() {
        assert_eq!(tlv(0x04, &[7; 3]), [0x04, 3, 7, 7, 7]);
        assert_eq!(&tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], [0x04, 0x82, 0x01, 0x2C]);
    }

    #[test]
    fn utc_time_is_two_digit_year() {
        assert_eq!(utc_time(951_782_400), tlv(0x17, b"000229000000Z"));
    }

    #[test]
    fn a_generated_certificate_parses_and_carries_the_key() {
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("k.pem"), dir.path().join("k.crt"));
        generate(&key, &cert).unwrap();
        let der = CertificateDer::from_pem_file(&cert).unwrap();
        webpki::anchor_from_trusted_cert(&der).unwrap();
        webpki::EndEntityCert::try_from(&der).unwrap();
        PrivateKeyDer::from_pem_file(&key).unwrap();
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&key).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(generate(&key, &cert).is_err(), "overwrote an existing key");
    }
}
