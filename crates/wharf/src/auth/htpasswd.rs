//! `auth.htpasswd`: HTTP basic auth against an Apache htpasswd file of bcrypt entries.
//!
//! Like distribution: a missing file is created with user `docker` and a random password that
//! is printed once; any authenticated user may do anything. Beyond it: entries other than
//! bcrypt are refused at start-up (naming the line), the file is re-read when its mtime or size
//! changes, and a verified (user, password) is remembered for [`VERIFIED_TTL`] so that pulling
//! 50 layers runs bcrypt once, not 50 times. bcrypt runs on the blocking pool.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::{Access, AccessController, AuthError, Challenge, Denial, Grant, credentials};
use crate::config::HtpasswdAuth;

/// How long a successful bcrypt verification is trusted without running bcrypt again.
pub const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// Remembered verifications kept at most (expired ones are dropped first).
const VERIFIED_MAX: usize = 4096;

/// The user distribution provisions in a missing file.
const DEFAULT_USER: &str = "docker";

/// The htpasswd controller.
pub struct Htpasswd {
    realm: String,
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    users: Arc<HashMap<String, String>>,
    version: Option<(SystemTime, u64)>,
    /// SHA-256 of (user, password, stored hash) → expiry; a changed entry misses.
    verified: HashMap<[u8; 32], Instant>,
}

impl Htpasswd {
    /// Reads (or provisions) the file of `auth.htpasswd`.
    pub fn open(config: &HtpasswdAuth) -> Result<Htpasswd, AuthError> {
        let path = PathBuf::from(&config.path);
        if !path.exists() {
            provision(&path)?;
        }
        let io = |source| AuthError::Io {
            what: "auth.htpasswd.path",
            path: path.clone(),
            source,
        };
        let text = std::fs::read_to_string(&path).map_err(io)?;
        let users = parse(&path, &text)?;
        Ok(Htpasswd {
            realm: config.realm.clone(),
            state: Mutex::new(State {
                users: Arc::new(users),
                version: version(&path),
                verified: HashMap::new(),
            }),
            path,
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current users, re-reading the file when it changed; a broken edit keeps the old set.
    fn users(&self) -> Arc<HashMap<String, String>> {
        let now = version(&self.path);
        let mut state = self.state();
        if now.is_some() && now != state.version {
            state.version = now;
            match std::fs::read_to_string(&self.path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse(&self.path, &text).map_err(|e| e.to_string()))
            {
                Ok(users) => {
                    tracing::info!(path = %self.path.display(), users = users.len(), "htpasswd reloaded");
                    state.users = Arc::new(users);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "htpasswd changed but cannot be used; keeping the previous users")
                }
            }
        }
        state.users.clone()
    }

    /// True when `user` is in the file now, so a refresh token does not outlive its account.
    pub(crate) fn knows(&self, user: &str) -> bool {
        self.users().contains_key(user)
    }

    fn deny(&self, reason: &'static str, access: &[Access]) -> Denial {
        Denial {
            challenge: Challenge::Basic {
                realm: self.realm.clone(),
            },
            access: access.to_vec(),
            reason,
        }
    }
}

#[async_trait::async_trait]
impl AccessController for Htpasswd {
    async fn authorize(&self, headers: &HeaderMap, access: &[Access]) -> Result<Grant, Denial> {
        let Some((user, password)) = basic(headers) else {
            return Err(self.deny("no basic credentials", access));
        };
        let users = self.users();
        let Some(hash) = users.get(&user).cloned() else {
            return Err(self.deny("unknown user", access));
        };
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        let now = Instant::now();
        if self
            .state()
            .verified
            .get(&key)
            .is_some_and(|exp| *exp > now)
        {
            return Ok(Grant { user: Some(user) });
        }
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(false);
        if !ok {
            return Err(self.deny("wrong password", access));
        }
        let mut state = self.state();
        if state.verified.len() >= VERIFIED_MAX {
            state.verified.retain(|_, exp| *exp > now);
            if state.verified.len() >= VERIFIED_MAX {
                state.verified.clear();
            }
        }
        state.verified.insert(key, now + VERIFIED_TTL);
        Ok(Grant { user: Some(user) })
    }
}

/// `Authorization: Basic base64(user:password)`.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = credentials(headers, "Basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn version(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// `user:hash` lines; blank lines and `#` comments skipped; only bcrypt hashes accepted.
fn parse(path: &Path, text: &str) -> Result<HashMap<String, String>, AuthError> {
    let mut users = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: String| AuthError::HtpasswdLine {
            path: path.to_owned(),
            line: i + 1,
            reason,
        };
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| bad("expected user:hash".to_owned()))?;
        if user.is_empty() {
            return Err(bad("empty user name".to_owned()));
        }
        if !["$2y$", "$2a$", "$2b$"].iter().any(|p| hash.starts_with(p)) {
            return Err(bad(format!(
                "user {user:?} has a non-bcrypt password hash; only bcrypt entries are accepted \
                 (create one with `wharf htpasswd -Bbn USER PASSWORD`)"
            )));
        }
        users.insert(user.to_owned(), hash.to_owned());
    }
    Ok(users)
}

/// Creates a missing file with user `docker` and a random password printed once, as
/// distribution does, so a fresh registry is never open.
fn provision(path: &Path) -> Result<(), AuthError> {
    let io = |source| AuthError::Io {
        what: "auth.htpasswd.path",
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let secret: [u8; 32] = rand::random();
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let hash =
        bcrypt::hash(&password, bcrypt::DEFAULT_COST).map_err(|e| io(std::io::Error::other(e)))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io)?;
    writeln!(file, "{DEFAULT_USER}:{hash}").map_err(io)?;
    tracing::warn!(path = %path.display(), user = DEFAULT_USER, "htpasswd is missing, provisioning with a default user; its password is printed once on standard error");
    eprintln!(
        "htpasswd {} was missing: created user {DEFAULT_USER:?} with password {password}",
        path.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Action;

    fn line(user: &str, password: &str) -> String {
        let hash = bcrypt::hash_with_result(password, 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        format!("{user}:{hash}\n")
    }

    fn headers(user: &str, password: &str) -> HeaderMap {
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Basic {v}").parse().unwrap(),
        );
        h
    }

    fn open(dir: &Path, text: &str) -> Result<Htpasswd, AuthError> {
        let path = dir.join("htpasswd");
        std::fs::write(&path, text).unwrap();
        Htpasswd::open(&HtpasswdAuth {
            realm: "basic-realm".into(),
            path: path.display().to_string(),
        })
    }

    #[tokio::test]
    async fn right_password_passes_wrong_one_gets_basic_challenge() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(
            dir.path(),
            &format!("# team\n\n{}", line("alice", "s3cret")),
        )
        .unwrap();
        let access = [Access::repository(&"a".parse().unwrap(), Action::Push)];
        let grant = h.authorize(&headers("alice", "s3cret"), &access).await;
        assert_eq!(grant.unwrap().user.as_deref(), Some("alice"));
        let denial = h
            .authorize(&headers("alice", "wrong"), &access)
            .await
            .unwrap_err();
        assert_eq!(
            denial.challenge.header_value(),
            "Basic realm=\"basic-realm\""
        );
        assert_eq!(denial.reason, "wrong password");
        let denial = h.authorize(&HeaderMap::new(), &[]).await.unwrap_err();
        assert_eq!(denial.reason, "no basic credentials");
        assert!(h.authorize(&headers("bob", "s3cret"), &[]).await.is_err());
    }

    #[tokio::test]
    async fn a_verified_password_is_remembered_and_a_changed_file_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let h = open(dir.path(), &line("alice", "one")).unwrap();
        assert!(h.authorize(&headers("alice", "one"), &[]).await.is_ok());
        assert_eq!(h.state().verified.len(), 1);
        assert!(h.authorize(&headers("alice", "one"), &[]).await.is_ok());
        assert_eq!(h.state().verified.len(), 1);
        let text = format!("{}{}", line("alice", "two"), line("bob", "three"));
        std::fs::write(dir.path().join("htpasswd"), text).unwrap();
        assert!(h.authorize(&headers("bob", "three"), &[]).await.is_ok());
        assert!(h.authorize(&headers("alice", "two"), &[]).await.is_ok());
        assert!(h.authorize(&headers("alice", "one"), &[]).await.is_err());
    }

    #[test]
    fn non_bcrypt_entries_are_refused_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{}carol:{{SHA}}fEqNCco3Yq9h5ZUglD3CZJT4lBs=\n",
            line("a", "b")
        );
        let Err(e) = open(dir.path(), &text) else {
            panic!("accepted a SHA1 entry");
        };
        let msg = e.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("\"carol\""), "{msg}");
        assert!(!msg.contains("fEqNCco3"), "{msg}");
        let Err(e) = open(dir.path(), "no-colon-here\n") else {
            panic!("accepted a line without a hash");
        };
        assert!(e.to_string().contains("line 1: expected user:hash"));
    }

    #[tokio::test]
    async fn a_missing_file_is_created_with_a_docker_user() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth/htpasswd");
        let h = Htpasswd::open(&HtpasswdAuth {
            realm: "r".into(),
            path: path.display().to_string(),
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("docker:$2"), "{text}");
        assert!(h.users().contains_key("docker"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
