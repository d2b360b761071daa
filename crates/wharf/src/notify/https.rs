//! TLS for `https://` notification endpoints: the system's trusted roots, or those named by
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` when set (they replace the system store, as in Go's
//! `crypto/x509` on Linux), loaded once per process.

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;

/// The shared client configuration, built on first use; `Err` says why no root is trusted.
fn client_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "loading trusted certificates for notifications");
            }
            let mut roots = rustls::RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "trusted roots for https notifications");
            if roots.is_empty() {
                return Err(
                    "no trusted root certificate found (system store, SSL_CERT_FILE, SSL_CERT_DIR)"
                        .into(),
                );
            }
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            let config = ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Ok(Arc::new(config))
        })
        .clone()
}

/// How to reach one `https://` endpoint: the connector and the name its certificate must carry.
#[derive(Clone)]
pub struct Tls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("name", &self.name).finish()
    }
}

impl Tls {
    /// TLS towards `authority` (`host:port`, `[v6]:port`); the host is checked against the
    /// server's certificate (DNS name or IP address).
    pub fn new(authority: &str) -> Result<Tls, String> {
        let host = match authority.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
            _ => authority,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| format!("invalid server name {host:?}: {e}"))?;
        Ok(Tls {
            connector: TlsConnector::from(client_config()?),
            name,
        })
    }

    /// The TLS handshake over an open connection.
    pub async fn connect(
        &self,
        tcp: tokio::net::TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        self.connector.connect(self.name.clone(), tcp).await
    }
}
