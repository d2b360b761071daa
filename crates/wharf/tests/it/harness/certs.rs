//! A throwaway PKI for TLS tests: a CA, a server certificate for the given names and IPs, and
//! a client certificate for mutual TLS, all made by rcgen and written as PEM files.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// The files of one test PKI, in its own temp dir.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA plus `server.crt`/`server.key` valid for `names` (DNS names or IP addresses) and
    /// `client.crt`/`client.key` signed by the same CA; `other-ca.crt` is an unrelated CA.
    pub fn new(names: &[&str]) -> Pki {
        let dir = tempfile::tempdir().expect("pki dir");
        let ca = ca();
        let write = |name: &str, text: String| {
            std::fs::write(dir.path().join(name), text).expect("write pem");
        };
        write("ca.crt", ca.pem());
        write("other-ca.crt", self::ca().pem());
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        for (who, sans) in [
            ("server", names),
            ("client", vec!["wharf-test-client".to_owned()]),
        ] {
            let key = KeyPair::generate().expect("key");
            let cert = CertificateParams::new(sans)
                .expect("params")
                .signed_by(&key, &ca)
                .expect("sign");
            write(&format!("{who}.crt"), cert.pem());
            write(&format!("{who}.key"), key.serialize_pem());
        }
        Pki { dir }
    }

    /// A file of this PKI: `ca.crt`, `other-ca.crt`, `server.crt`, `server.key`, `client.crt`,
    /// `client.key`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A file's text.
    pub fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).expect("read pem")
    }

    /// `http.tls` YAML for this PKI's server certificate (without client CAs).
    pub fn tls_yaml(&self) -> String {
        format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            self.path("server.crt").display(),
            self.path("server.key").display()
        )
    }
}

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(vec![]).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "wharf test CA");
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key")).expect("ca")
}
