//! The `cachefile` directory, laid out like Go autocert's `DirCache` so distribution and wharf
//! can use each other's: `acme_account+key` (the account's private key, PEM) and one file per
//! host holding the certificate's private key followed by its chain (PEM). Files are written
//! to a temporary name and renamed, with mode 0600.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use instant_acme::Key;
use rcgen::{CertificateParams, CustomExtension, KeyPair};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::AcmeError;

/// autocert's name for the account key file.
const ACCOUNT_KEY: &str = "acme_account+key";
/// Renew when less than this remains (Let's Encrypt's 90-day certificates: at 60 days).
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// A certificate ready to serve, with its validity.
#[derive(Debug, Clone)]
pub struct Served {
    /// Chain and signing key for rustls.
    pub key: Arc<CertifiedKey>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

impl Served {
    /// When to order the next one: 30 days before expiry, or with a third of the lifetime left
    /// for short-lived certificates.
    pub fn renew_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_after - RENEW_BEFORE.min(lifetime / 3)
    }
}

/// The cache directory.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
}

fn io_err(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> AcmeError {
    AcmeError::Store(format!(
        "http.tls.letsencrypt.cachefile: {what} {}: {e}",
        path.display()
    ))
}

impl Store {
    /// Creates the directory (mode 0700) if it does not exist.
    pub fn open(dir: &str) -> Result<Store, AcmeError> {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).map_err(|e| io_err("cannot create", &dir, e))?;
        let meta = std::fs::metadata(&dir).map_err(|e| io_err("cannot read", &dir, e))?;
        if !meta.is_dir() {
            return Err(io_err(
                "not a directory:",
                &dir,
                "used as autocert's DirCache",
            ));
        }
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
        Ok(Store { dir })
    }

    /// The cached certificate of `host`, if there is one that covers it and has not expired.
    pub fn load(&self, host: &str) -> Result<Option<Served>, AcmeError> {
        let path = self.dir.join(host);
        let pem = match std::fs::read(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("cannot read", &path, e)),
        };
        let served = parse(host, &pem).map_err(|e| io_err("unusable", &path, e))?;
        Ok((served.not_after > SystemTime::now()).then_some(served))
    }

    /// Checks and caches a newly issued key + chain (PEM) for `host`.
    pub fn save(&self, host: &str, pem: &str) -> Result<Served, AcmeError> {
        let served = parse(host, pem.as_bytes()).map_err(|e| {
            AcmeError::Store(format!(
                "the CA issued an unusable certificate for {host}: {e}"
            ))
        })?;
        self.write(host, pem.as_bytes())?;
        Ok(served)
    }

    /// The account key (PKCS#8, or autocert's SEC1 EC key), made and saved on first use.
    pub fn account_key(&self) -> Result<(Key, PrivateKeyDer<'static>), AcmeError> {
        let path = self.dir.join(ACCOUNT_KEY);
        let pkcs8 = match std::fs::read(&path) {
            Ok(pem) => {
                let der = PrivateKeyDer::from_pem_slice(&pem)
                    .map_err(|e| io_err("unusable account key", &path, e))?;
                to_pkcs8(&der).map_err(|e| io_err("unusable account key", &path, e))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (_, pkcs8) =
                    Key::generate_pkcs8().map_err(|e| AcmeError::Store(e.to_string()))?;
                let pem = pem_encode("PRIVATE KEY", pkcs8.secret_pkcs8_der());
                self.write(ACCOUNT_KEY, pem.as_bytes())?;
                tracing::info!(path = %path.display(), "ACME: new account key");
                pkcs8
            }
            Err(e) => return Err(io_err("cannot read", &path, e)),
        };
        let key = Key::from_pkcs8_der(PrivatePkcs8KeyDer::from(pkcs8.secret_pkcs8_der()))
            .map_err(|e| io_err("unusable account key", &path, e))?;
        Ok((key, PrivateKeyDer::Pkcs8(pkcs8)))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), AcmeError> {
        let path = self.dir.join(name);
        let tmp = self
            .dir
            .join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_all()
            })
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(io_err("cannot write", &path, e));
        }
        Ok(())
    }
}

/// autocert writes P-256 keys as SEC1 (`EC PRIVATE KEY`); instant-acme wants PKCS#8.
fn to_pkcs8(der: &PrivateKeyDer<'_>) -> Result<PrivatePkcs8KeyDer<'static>, String> {
    match der {
        PrivateKeyDer::Pkcs8(k) => Ok(k.clone_key()),
        PrivateKeyDer::Sec1(k) => {
            let pair = aws_lc_rs::signature::EcdsaKeyPair::from_private_key_der(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                k.secret_sec1_der(),
            )
            .map_err(|e| e.to_string())?;
            let doc = pair.to_pkcs8v1().map_err(|e| e.to_string())?;
            Ok(PrivatePkcs8KeyDer::from(doc.as_ref().to_vec()))
        }
        _ => Err("expected an EC private key (PKCS#8 or SEC1)".to_owned()),
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Key + chain PEM into a rustls key, checking the leaf names `host` and fits the key.
fn parse(host: &str, pem: &[u8]) -> Result<Served, String> {
    let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("private key: {e}"))?;
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate: {e}"))?;
    let leaf = chain.first().ok_or("no certificate")?;
    let (_, cert) =
        x509_parser::parse_x509_certificate(leaf).map_err(|e| format!("certificate: {e}"))?;
    let names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    x509_parser::extensions::GeneralName::DNSName(d) => {
                        Some(d.to_ascii_lowercase())
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !names.iter().any(|n| n == host) {
        return Err(format!("certificate is for {names:?}, not {host}"));
    }
    let time = |t: &x509_parser::time::ASN1Time| {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or_default())
    };
    let not_before = time(&cert.validity().not_before);
    let not_after = time(&cert.validity().not_after);
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let key = CertifiedKey::from_der(chain, key, &provider).map_err(|e| e.to_string())?;
    Ok(Served {
        key: Arc::new(key),
        not_before,
        not_after,
    })
}

/// The self-signed TLS-ALPN-01 certificate for `host`: its only name is `host` and it carries
/// the critical acmeIdentifier extension with the SHA-256 of the key authorization.
pub fn challenge_certificate(
    host: &str,
    digest: impl AsRef<[u8]>,
) -> Result<Arc<CertifiedKey>, AcmeError> {
    let fail = |e: rcgen::Error| AcmeError::Store(format!("challenge certificate for {host}: {e}"));
    let key = KeyPair::generate().map_err(fail)?;
    let mut params = CertificateParams::new(vec![host.to_owned()]).map_err(fail)?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest.as_ref())];
    let cert = params.self_signed(&key).map_err(fail)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
    // refuses the critical acmeIdentifier extension that the validating CA requires.
    let signing = rustls::crypto::aws_lc_rs::default_provider()
        .key_provider
        .load_private_key(der)
        .map_err(|e| AcmeError::Store(format!("challenge certificate for {host}: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing,
    )))
}

/// RFC 3339 for log lines.
pub fn rfc3339(t: SystemTime) -> String {
    crate::rfc3339::seconds(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(names: &[&str]) -> String {
        let key = KeyPair::generate().unwrap();
        let names = names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let cert = CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        format!("{}{}", key.serialize_pem(), cert.pem())
    }

    #[test]
    fn renewal_is_due_30_days_before_expiry_or_at_a_third_of_short_lifetimes() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let day = Duration::from_secs(24 * 3600);
        let served = |days: u32| Served {
            key: parse("a.test", self_signed(&["a.test"]).as_bytes())
                .unwrap()
                .key,
            not_before: start,
            not_after: start + day * days,
        };
        assert_eq!(served(90).renew_at(), start + day * 60);
        assert_eq!(served(6).renew_at(), start + day * 4);
    }

    #[test]
    fn cache_round_trip_checks_the_name_and_takes_autocert_sec1_account_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("acme").to_string_lossy()).unwrap();
        assert!(store.load("a.test").unwrap().is_none());
        store.save("a.test", &self_signed(&["a.test"])).unwrap();
        assert!(store.load("a.test").unwrap().is_some());
        let e = store.save("b.test", &self_signed(&["a.test"])).unwrap_err();
        assert!(e.to_string().contains("not b.test"), "{e}");

        // autocert writes the account key as SEC1 `EC PRIVATE KEY`.
        let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        )
        .unwrap();
        let sec1 =
            aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::EcPrivateKeyRfc5915Der<'_>>::as_der(
                &pair.private_key(),
            )
            .unwrap();
        store
            .write(
                ACCOUNT_KEY,
                pem_encode("EC PRIVATE KEY", sec1.as_ref()).as_bytes(),
            )
            .unwrap();
        let (_, der) = store.account_key().unwrap();
        assert!(matches!(der, PrivateKeyDer::Pkcs8(_)));
    }
}
