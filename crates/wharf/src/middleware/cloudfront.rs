//! `cloudfront`: redirects blob GETs to a CloudFront distribution with a signed URL (canned
//! policy: `Expires`, `Signature`, `Key-Pair-Id`), as distribution's cloudfront middleware.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use rsa::pkcs1::DecodeRsaPrivateKey as _;
use rsa::pkcs8::DecodePrivateKey as _;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use wharf_storage::StoragePath;

use super::{MiddlewareError, RedirectUrl, join};
use crate::config::Params;

/// distribution's default lifetime of a signed URL.
const DEFAULT_DURATION: Duration = Duration::from_secs(20 * 60);

/// DER prefix of a PKCS#1 v1.5 DigestInfo for SHA-1 (RFC 8017 §9.2 note 1).
const SHA1_DIGEST_INFO: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];

/// A configured `cloudfront` middleware.
pub struct CloudFront {
    base: String,
    key: RsaPrivateKey,
    key_pair_id: String,
    duration: Duration,
}

impl CloudFront {
    /// Reads the options (`baseurl`, `privatekey`, `keypairid`, `duration`) and loads the key.
    pub fn from_options(o: &Params) -> Result<Self, MiddlewareError> {
        let bad = |msg: String| MiddlewareError::Option {
            name: "cloudfront".into(),
            msg,
        };
        let req = |k: &str| {
            o.text(k)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(format!("option {k} is required")))
        };
        let base = req("baseurl")?;
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(bad(format!("baseurl {base:?} is not an http(s) URL")));
        }
        let key_path = req("privatekey")?;
        let key_pair_id = req("keypairid")?;
        let duration = match o.text("duration") {
            None => DEFAULT_DURATION,
            Some(d) => {
                crate::config::parse_go_duration(&d).map_err(|e| bad(format!("duration: {e}")))?
            }
        };
        let pem = std::fs::read_to_string(&key_path)
            .map_err(|e| bad(format!("privatekey {key_path}: {e}")))?;
        let key = RsaPrivateKey::from_pkcs1_pem(&pem)
            .or_else(|_| RsaPrivateKey::from_pkcs8_pem(&pem))
            .map_err(|e| bad(format!("privatekey {key_path}: not a PEM RSA key: {e}")))?;
        for (k, default) in [
            ("ipfilteredby", "none"),
            ("awsregion", ""),
            ("updatefrequency", ""),
            ("iprangesurl", ""),
        ] {
            if let Some(v) = o.text(k).filter(|v| !v.is_empty() && v != default) {
                tracing::warn!(option = k, value = %v, "middleware cloudfront: option not supported, every client is redirected");
            }
        }
        Ok(Self {
            base,
            key,
            key_pair_id,
            duration,
        })
    }

    /// `url` signed with a canned policy valid until `expires` (unix seconds).
    fn sign(&self, url: &str, expires: u64) -> Result<String, String> {
        let policy = canned_policy(url, expires);
        let sig = self.signature(policy.as_bytes())?;
        let sig = base64::engine::general_purpose::STANDARD
            .encode(sig)
            .replace('+', "-")
            .replace('=', "_")
            .replace('/', "~");
        let sep = if url.contains('?') { '&' } else { '?' };
        Ok(format!(
            "{url}{sep}Expires={expires}&Signature={sig}&Key-Pair-Id={}",
            self.key_pair_id
        ))
    }

    /// RSA-SHA1 PKCS#1 v1.5 signature of `data`.
    fn signature(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data);
        let mut info = SHA1_DIGEST_INFO.to_vec();
        info.extend_from_slice(hash.as_ref());
        self.key
            .sign(Pkcs1v15Sign::new_unprefixed(), &info)
            .map_err(|e| format!("RSA signing failed: {e}"))
    }
}

/// CloudFront's canned policy for `url`, exactly as the signature covers it.
fn canned_policy(url: &str, expires: u64) -> String {
    format!(
        r#"{{"Statement":[{{"Resource":"{url}","Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}"#
    )
}

impl RedirectUrl for CloudFront {
    fn url(&self, path: &StoragePath) -> Result<String, String> {
        let expires = (SystemTime::now() + self.duration)
            .duration_since(UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        self.sign(&join(&self.base, path), expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options of `middleware.storage[0]` from a config holding `options_yaml`.
    fn options(options_yaml: &str) -> Params {
        let indented: String = options_yaml
            .lines()
            .map(|l| format!("        {l}\n"))
            .collect();
        let yaml = format!(
            "version: 0.1\nstorage:\n  inmemory: {{}}\nmiddleware:\n  storage:\n    - name: cloudfront\n      options:\n{indented}"
        );
        let loaded = crate::config::Config::parse(&yaml, &[]).unwrap();
        loaded.config.middleware.storage[0].options.clone()
    }

    fn openssl(args: &[&str]) -> bool {
        std::process::Command::new("openssl")
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn signature_verifies_with_openssl_and_expires_after_duration() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
        if !openssl(&["genrsa", "-traditional", "-out", &p("key.pem"), "2048"])
            && !openssl(&["genrsa", "-out", &p("key.pem"), "2048"])
        {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "openssl missing"
            );
            eprintln!("SKIP: openssl is not installed");
            return;
        }
        assert!(openssl(&[
            "rsa",
            "-in",
            &p("key.pem"),
            "-pubout",
            "-out",
            &p("pub.pem")
        ]));
        let yaml = format!(
            "baseurl: https://d111.cloudfront.net/\nprivatekey: {}\nkeypairid: APKAEXAMPLE\nduration: 3m\n",
            p("key.pem")
        );
        let cf = CloudFront::from_options(&options(&yaml)).unwrap();
        let path = StoragePath::new("/docker/registry/v2/blobs/sha256/ab/abcd/data").unwrap();
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let url = cf.url(&path).unwrap();
        let base = "https://d111.cloudfront.net/docker/registry/v2/blobs/sha256/ab/abcd/data";
        let query = url.strip_prefix(&format!("{base}?")).expect(&url);
        let mut parts = query.split('&');
        let expires: u64 = parts
            .next()
            .unwrap()
            .strip_prefix("Expires=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (before + 180..=before + 182).contains(&expires),
            "{expires} vs {before}"
        );
        let sig = parts.next().unwrap().strip_prefix("Signature=").unwrap();
        assert_eq!(parts.next(), Some("Key-Pair-Id=APKAEXAMPLE"));
        let sig = sig.replace('-', "+").replace('_', "=").replace('~', "/");
        let sig = base64::engine::general_purpose::STANDARD
            .decode(sig)
            .unwrap();
        std::fs::write(p("sig.bin"), &sig).unwrap();
        std::fs::write(p("policy.txt"), canned_policy(base, expires)).unwrap();
        let verify = |policy: &str| {
            openssl(&[
                "dgst",
                "-sha1",
                "-verify",
                &p("pub.pem"),
                "-signature",
                &p("sig.bin"),
                policy,
            ])
        };
        assert!(verify(&p("policy.txt")), "openssl rejects the signature");
        std::fs::write(p("other.txt"), canned_policy(base, expires + 1)).unwrap();
        assert!(!verify(&p("other.txt")), "signature must cover Expires");
    }

    #[test]
    fn missing_options_are_errors() {
        let err = CloudFront::from_options(&options("baseurl: https://x/\n"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("privatekey"), "{err}");
    }
}
