//! `http.tls`: serving the API over TLS with rustls (aws-lc-rs), HTTP/2 negotiated by ALPN.
//!
//! distribution's keys map onto rustls: `certificate`/`key` (PEM), `clientcas` (mutual TLS:
//! a client needs a certificate signed by one of them), `clientauth`, `minimumtls` and
//! `ciphersuites` (Go names). rustls offers only TLS 1.2 and 1.3 with AEAD suites, so older
//! versions and CBC/RC4/3DES suites are named in a warning and left out. A client speaking
//! plain HTTP to the TLS port gets Go's `400 Client sent an HTTP request to an HTTPS server`.
//! `letsencrypt` (ACME, TLS-ALPN-01) lives in [`acme`]. Depends on the config and the axum app
//! only.

pub mod acme;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::HttpConfig;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What Go's net/http answers to plain HTTP on a TLS port; clients show it verbatim.
const PLAIN_HTTP_REPLY: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Why TLS cannot start; the message names the `http.tls` key to fix.
#[derive(Debug, thiserror::Error)]
#[error("http.tls.{key}: {reason}")]
pub struct TlsError {
    key: &'static str,
    reason: String,
}

fn err(key: &'static str, reason: impl Into<String>) -> TlsError {
    TlsError {
        key,
        reason: reason.into(),
    }
}

/// The acceptor `http.tls` asks for, or `None` when TLS is not configured. With `letsencrypt`
/// the certificates come from an [`acme::Manager`], whose ordering task is spawned on the
/// current tokio runtime.
pub fn acceptor(http: &HttpConfig) -> Result<Option<TlsAcceptor>, TlsError> {
    let tls = &http.tls;
    if !tls.is_requested() {
        return Ok(None);
    }
    let acme = !tls.lets_encrypt.cache_file.trim().is_empty();
    if !acme && (tls.certificate.is_empty() || tls.key.is_empty()) {
        return Err(err("certificate", "certificate and key are both required"));
    }
    let provider = Arc::new(CryptoProvider {
        cipher_suites: cipher_suites(&tls.cipher_suites)?,
        ..rustls::crypto::aws_lc_rs::default_provider()
    });
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions(&tls.minimum_tls)?)
        .map_err(|e| err("ciphersuites", e.to_string()))?;
    let builder = if tls.client_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_verifier(client_verifier(
            &tls.client_cas,
            &tls.client_auth,
            provider,
        )?)
    };
    let mut config = if acme {
        let manager =
            acme::Manager::new(&tls.lets_encrypt).map_err(|e| err("letsencrypt", e.to_string()))?;
        let resolver = manager.resolver();
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| err("letsencrypt", format!("needs a tokio runtime: {e}")))?;
        runtime.spawn(manager.run());
        builder.with_cert_resolver(resolver)
    } else {
        let (certs, key) = certificate_and_key(&tls.certificate, &tls.key)?;
        builder
            .with_single_cert(certs, key)
            .map_err(|e| err("key", format!("does not fit the certificate: {e}")))?
    };
    config.alpn_protocols = if http.http2.disabled {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    if acme {
        config.alpn_protocols.push(acme::ACME_TLS_ALPN.to_vec());
    }
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// `certificate` and `key` from PEM files.
fn certificate_and_key(
    certificate: &str,
    key: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let certs = CertificateDer::pem_file_iter(certificate)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err("certificate", format!("{certificate}: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            "certificate",
            format!("{certificate}: no certificate found"),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| err("key", format!("{key}: {e}")))?;
    Ok((certs, key))
}

/// `minimumtls`: tls1.2 (default) or tls1.3; tls1.0/1.1 are raised to 1.2 with a warning.
fn versions(
    minimum: &str,
) -> Result<&'static [&'static rustls::SupportedProtocolVersion], TlsError> {
    static BOTH: [&rustls::SupportedProtocolVersion; 2] =
        [&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY_13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match minimum.trim().to_ascii_lowercase().as_str() {
        "" | "tls1.2" => Ok(&BOTH),
        "tls1.3" => Ok(&ONLY_13),
        "tls1.0" | "tls1.1" => {
            tracing::warn!(
                minimumtls = minimum,
                "rustls has no TLS 1.0 or 1.1; TLS 1.2 is the minimum"
            );
            Ok(&BOTH)
        }
        other => Err(err(
            "minimumtls",
            format!("expected tls1.0, tls1.1, tls1.2 or tls1.3, got {other:?}"),
        )),
    }
}

/// `ciphersuites`: the TLS 1.2 suites to offer, by Go name; TLS 1.3 suites are always on (Go
/// does not let them be configured either).
fn cipher_suites(names: &[String]) -> Result<Vec<SupportedCipherSuite>, TlsError> {
    let all = rustls::crypto::aws_lc_rs::ALL_CIPHER_SUITES;
    if names.is_empty() {
        return Ok(rustls::crypto::aws_lc_rs::DEFAULT_CIPHER_SUITES.to_vec());
    }
    let mut chosen: Vec<SupportedCipherSuite> = all
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    let mut missing = Vec::new();
    for name in names {
        match all
            .iter()
            .find(|s| go_names(s).iter().any(|n| n == name.trim()))
        {
            Some(s) if !chosen.contains(s) => chosen.push(*s),
            Some(_) => {}
            None if name.trim().starts_with("TLS_") => missing.push(name.trim()),
            None => {
                return Err(err(
                    "ciphersuites",
                    format!("unknown cipher suite {name:?}"),
                ));
            }
        }
    }
    if !missing.is_empty() {
        tracing::warn!(
            suites = missing.join(", "),
            "rustls does not offer these cipher suites; they are left out"
        );
    }
    Ok(chosen)
}

/// Go's names for a rustls suite (Go drops `_SHA256` from the ChaCha20 names' short alias and
/// spells TLS 1.3 suites without the `13`).
fn go_names(suite: &SupportedCipherSuite) -> Vec<String> {
    let name = format!("{:?}", suite.suite()).replace("TLS13_", "TLS_");
    let mut names = vec![name.clone()];
    if let Some(short) = name.strip_suffix("_POLY1305_SHA256") {
        names.push(format!("{short}_POLY1305"));
    }
    names
}

/// `clientcas` + `clientauth`: every client must present a certificate signed by one of the
/// CAs, unless `clientauth: verify-client-cert-if-given`.
fn client_verifier(
    files: &[String],
    mode: &str,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for file in files {
        let certs = CertificateDer::pem_file_iter(file)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| err("clientcas", format!("{file}: {e}")))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(err(
                "clientcas",
                format!("{file}: no usable CA certificate"),
            ));
        }
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = match mode.trim() {
        "" | "require-and-verify-client-cert" => builder,
        "verify-client-cert-if-given" => builder.allow_unauthenticated(),
        other => {
            return Err(err(
                "clientauth",
                format!(
                    "expected require-and-verify-client-cert or verify-client-cert-if-given, got {other:?}"
                ),
            ));
        }
    };
    builder.build().map_err(|e| err("clientcas", e.to_string()))
}

/// Accepts TLS connections and serves `app` on each (HTTP/1.1 or h2) until `shutdown`, then
/// waits for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::server::accept_loop(listener, shutdown, move |tcp, peer, builder, watcher| {
        let acceptor = acceptor.clone();
        let app = app.clone();
        async move {
            let Some(stream) = handshake(tcp, &acceptor).await else {
                tracing::debug!(%peer, "TLS handshake failed");
                return;
            };
            if stream.get_ref().1.alpn_protocol() == Some(acme::ACME_TLS_ALPN) {
                // A TLS-ALPN-01 validation: the handshake was the answer.
                tracing::debug!(%peer, "ACME tls-alpn-01 validation handshake");
                return;
            }
            let service =
                TowerToHyperService::new(app.map_request(move |req| with_host(req, peer)));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    })
    .await
}

/// HTTP/2 carries the host in `:authority`, not `Host`; the API builds absolute `Location`s
/// from `Host`, so copy it over. The peer address goes along for notifications' `request.addr`.
fn with_host(req: Request<Incoming>, peer: SocketAddr) -> Request<axum::body::Body> {
    let mut req = req.map(axum::body::Body::new);
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    if !req.headers().contains_key(http::header::HOST)
        && let Some(host) = req
            .uri()
            .authority()
            .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
    {
        req.headers_mut().insert(http::header::HOST, host);
    }
    req
}

/// The TLS handshake; plain HTTP gets a 400 and the connection is closed.
async fn handshake(
    mut tcp: TcpStream,
    acceptor: &TlsAcceptor,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await;
    // 0x16: a TLS handshake record; anything else printable is a plain-HTTP request line.
    if matches!(peeked, Ok(Ok(1))) && first[0] != 0x16 && first[0].is_ascii_alphabetic() {
        let _ = tcp.write_all(PLAIN_HTTP_REPLY).await;
        let _ = tcp.shutdown().await;
        return None;
    }
    tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
        .await
        .ok()?
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_cipher_names_map_onto_rustls_and_old_ones_are_left_out() {
        let names = [
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".to_owned(),
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305".to_owned(),
            "TLS_RSA_WITH_AES_128_CBC_SHA".to_owned(),
        ];
        let suites = cipher_suites(&names).unwrap();
        let tls12: Vec<String> = suites
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
            .map(|s| format!("{:?}", s.suite()))
            .collect();
        assert_eq!(
            tls12,
            [
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert_eq!(suites.len(), 2 + 3, "all three TLS 1.3 suites stay on");
        assert!(cipher_suites(&["bogus".to_owned()]).is_err());
    }

    #[test]
    fn minimum_versions() {
        assert_eq!(versions("").unwrap().len(), 2);
        assert_eq!(versions("tls1.1").unwrap().len(), 2);
        assert_eq!(versions("tls1.3").unwrap().len(), 1);
        let e = versions("ssl3").unwrap_err().to_string();
        assert!(e.starts_with("http.tls.minimumtls: expected"), "{e}");
    }

    #[test]
    fn missing_files_name_their_key() {
        let mut http = HttpConfig::default();
        assert!(acceptor(&http).unwrap().is_none());
        http.tls.certificate = "/nonexistent/cert.pem".into();
        http.tls.key = "/nonexistent/key.pem".into();
        let Err(e) = acceptor(&http) else {
            panic!("TLS started without files");
        };
        assert!(
            e.to_string()
                .starts_with("http.tls.certificate: /nonexistent/cert.pem"),
            "{e}"
        );
    }
}
