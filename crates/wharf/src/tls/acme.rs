//! `http.tls.letsencrypt`: certificates ordered from an ACME CA (Let's Encrypt unless
//! `directoryurl` says otherwise), the way distribution does it with Go's autocert.
//!
//! One certificate per name in `hosts`, ordered at start-up and renewed in the background when
//! less than 30 days (or a third of its lifetime, whichever is shorter) remain; the old one is
//! served until the new one is in. The challenge is TLS-ALPN-01 (RFC 8737) answered on wharf's
//! own TLS listener: a ClientHello offering ALPN `acme-tls/1` gets the challenge certificate
//! for its SNI name, any other gets the cached certificate of its name if the name is one of
//! `hosts`, and no certificate (a failed handshake) otherwise. `cachefile` is a directory laid
//! out like autocert's `DirCache` (`acme_account+key`, one `<host>` file with key and chain),
//! so a restart serves what is there without ordering again. Failures (CA unreachable, order
//! invalid) are logged and retried with exponential backoff. The CA's own TLS certificate is
//! checked against the system roots, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, as in Go.

mod store;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::LetsEncrypt;
use store::{Served, Store};

/// The ALPN protocol a TLS-ALPN-01 validation offers (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// First wait after a failed order; doubled on each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_secs(5);
/// Longest wait between attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Longest sleep between checks when all is well (clock changes, suspended machines).
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// How long one order may take to become ready, and its certificate to be issued.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an order failed; logged by the renewal task, which then retries.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// The CA answered with an error or could not be reached.
    #[error("ACME: {0}")]
    Protocol(#[from] instant_acme::Error),
    /// The CA offered no TLS-ALPN-01 challenge, the only one wharf answers.
    #[error("the CA offered no tls-alpn-01 challenge for {0}")]
    NoTlsAlpnChallenge(String),
    /// An authorization ended in a state other than valid.
    #[error("authorization for {host} is {status:?}")]
    Authorization {
        /// The name being ordered.
        host: String,
        /// The state it ended in.
        status: AuthorizationStatus,
    },
    /// The order did not become ready (usually: the CA could not validate the challenge).
    #[error("order for {host} is {status:?}{detail}")]
    Order {
        /// The name being ordered.
        host: String,
        /// The state it ended in.
        status: OrderStatus,
        /// The CA's problem document, if it sent one.
        detail: String,
    },
    /// The cache directory or a certificate in it could not be used.
    #[error("{0}")]
    Store(String),
}

/// Certificates and pending challenges, shared by the TLS resolver and the renewal task.
#[derive(Debug, Default)]
struct Shared {
    hosts: Vec<String>,
    certs: RwLock<HashMap<String, Served>>,
    challenges: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

/// Picks the certificate for a handshake: the challenge one for `acme-tls/1`, else the host's.
#[derive(Debug)]
pub struct Resolver(Arc<Shared>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = normalize(hello.server_name()?);
        let challenge = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if challenge {
            return self.0.challenges.read().ok()?.get(&name).cloned();
        }
        if !self.0.hosts.contains(&name) {
            tracing::debug!(server_name = %name, "TLS: no certificate for a name outside http.tls.letsencrypt.hosts");
            return None;
        }
        self.0.certs.read().ok()?.get(&name).map(|s| s.key.clone())
    }
}

/// Orders and renews the certificates of `http.tls.letsencrypt.hosts`.
pub struct Manager {
    shared: Arc<Shared>,
    store: Store,
    email: String,
    directory_url: String,
}

impl Manager {
    /// Opens (creating) the cache directory and loads the certificates already there.
    pub fn new(config: &LetsEncrypt) -> Result<Manager, AcmeError> {
        let store = Store::open(config.cache_file.trim())?;
        let hosts: Vec<String> = config.hosts.iter().map(|h| normalize(h)).collect();
        let mut certs = HashMap::new();
        for host in &hosts {
            match store.load(host) {
                Ok(Some(served)) => {
                    tracing::info!(host = %host, expires = %store::rfc3339(served.not_after), "ACME: serving the cached certificate");
                    certs.insert(host.clone(), served);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(host = %host, error = %e, "ACME: cached certificate unusable, ordering a new one");
                }
            }
        }
        let directory_url = match config.directory_url.trim() {
            "" => instant_acme::LetsEncrypt::Production.url().to_owned(),
            url => url.to_owned(),
        };
        Ok(Manager {
            shared: Arc::new(Shared {
                hosts,
                certs: RwLock::new(certs),
                challenges: RwLock::default(),
            }),
            store,
            email: config.email.trim().to_owned(),
            directory_url,
        })
    }

    /// The rustls certificate resolver backed by this manager.
    pub fn resolver(&self) -> Arc<Resolver> {
        Arc::new(Resolver(self.shared.clone()))
    }

    /// Runs forever: orders what is missing or due, sleeps until the next renewal, and backs
    /// off exponentially after failures.
    pub async fn run(self) {
        let mut account = None;
        let mut backoff = MIN_BACKOFF;
        loop {
            let now = SystemTime::now();
            let mut next = now + MAX_SLEEP;
            let mut failed = false;
            for host in &self.shared.hosts {
                let due = self.renew_at(host);
                if let Some(at) = due.filter(|at| *at > now) {
                    next = next.min(at);
                    continue;
                }
                match self.obtain(&mut account, host).await {
                    Ok(served) => {
                        tracing::info!(host = %host, expires = %store::rfc3339(served.not_after), renewed = due.is_some(), "ACME: certificate obtained");
                        next = next.min(served.renew_at());
                        if let Ok(mut certs) = self.shared.certs.write() {
                            certs.insert(host.clone(), served);
                        }
                    }
                    Err(e) => {
                        failed = true;
                        tracing::error!(host = %host, directory = %self.directory_url, error = %e, retry_in = ?backoff, "ACME: could not obtain a certificate");
                        if matches!(e, AcmeError::Protocol(_)) {
                            account = None;
                        }
                    }
                }
            }
            let sleep = if failed {
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                wait
            } else {
                backoff = MIN_BACKOFF;
                next.duration_since(SystemTime::now()).unwrap_or_default()
            };
            tokio::time::sleep(sleep.min(MAX_SLEEP)).await;
        }
    }

    fn renew_at(&self, host: &str) -> Option<SystemTime> {
        let certs = self.shared.certs.read().ok()?;
        certs.get(host).map(Served::renew_at)
    }

    /// Registers (or finds) the account of the cached key, creating the key on first use.
    async fn account(&self) -> Result<Account, AcmeError> {
        let key = self.store.account_key()?;
        let (account, _) = Account::builder()?
            .create_from_key(key, self.directory_url.clone())
            .await?;
        if !self.email.is_empty() {
            let contact = format!("mailto:{}", self.email);
            if let Err(e) = account.update_contacts(&[contact.as_str()]).await {
                tracing::warn!(email = %self.email, error = %e, "ACME: could not set the account's contact");
            }
        }
        Ok(account)
    }

    /// One order for `host`, answered by TLS-ALPN-01; the result is cached before it is served.
    async fn obtain(&self, account: &mut Option<Account>, host: &str) -> Result<Served, AcmeError> {
        let account = match account {
            Some(a) => a,
            None => account.insert(self.account().await?),
        };
        let identifiers = [Identifier::Dns(host.to_owned())];
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        let _cleanup = ChallengeCleanup {
            shared: &self.shared,
            host,
        };
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                status => {
                    return Err(AcmeError::Authorization {
                        host: host.to_owned(),
                        status,
                    });
                }
            }
            let mut challenge = authz
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| AcmeError::NoTlsAlpnChallenge(host.to_owned()))?;
            let key = store::challenge_certificate(host, challenge.key_authorization().digest())?;
            if let Ok(mut challenges) = self.shared.challenges.write() {
                challenges.insert(host.to_owned(), key);
            }
            challenge.set_ready().await?;
        }
        let retry = RetryPolicy::new().timeout(ORDER_TIMEOUT);
        let status = order.poll_ready(&retry).await?;
        if status != OrderStatus::Ready {
            let detail = order
                .state()
                .error
                .as_ref()
                .map(|p| format!(": {p}"))
                .unwrap_or_default();
            return Err(AcmeError::Order {
                host: host.to_owned(),
                status,
                detail,
            });
        }
        let key_pem = order.finalize().await?;
        let chain_pem = order.poll_certificate(&retry).await?;
        self.store.save(host, &format!("{key_pem}{chain_pem}"))
    }
}

/// Drops the challenge certificate of a host once its order is over, however it ended.
struct ChallengeCleanup<'a> {
    shared: &'a Shared,
    host: &'a str,
}

impl Drop for ChallengeCleanup<'_> {
    fn drop(&mut self) {
        if let Ok(mut challenges) = self.shared.challenges.write() {
            challenges.remove(self.host);
        }
    }
}

/// SNI and `hosts` compare case-insensitively and without a trailing dot.
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}
