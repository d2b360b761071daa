//! The registry's content model on top of a storage driver: blobs, uploads, manifests, tags,
//! referrers and the catalog, with the OCI rules that apply to them.
//!
//! Depends on `wharf_storage::Driver` and `wharf_oci`; knows nothing of HTTP.

pub mod blobs;
pub mod cache;
pub mod catalog;
pub mod layout;
pub mod manifest_cache;
pub mod manifests;
pub mod referrers;
mod refresh;
pub mod tags;
pub mod uploads;

use std::sync::Arc;

use bytes::Bytes;
use wharf_oci::{Digest, Reference, RepoName};
use wharf_storage::{Driver, StoragePath};

use layout::PathSpec;

/// What can go wrong in the registry layer, by meaning; mapped to OCI codes only in `api::error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository does not hold this blob.
    #[error("blob unknown: {0}")]
    BlobUnknown(Digest),
    /// No such upload in this repository.
    #[error("upload unknown")]
    UploadUnknown,
    /// The upload request is malformed (bad body, bad query).
    #[error("upload invalid: {0}")]
    UploadInvalid(String),
    /// Digest missing, malformed, or not matching the content.
    #[error("digest invalid: {0}")]
    DigestInvalid(String),
    /// A chunk does not start where the upload ends, or a Range is unsatisfiable.
    #[error("range invalid: {detail}")]
    RangeInvalid {
        /// Why.
        detail: String,
        /// Bytes the upload or blob holds, for the Range/Content-Range answer header.
        size: u64,
    },
    /// Declared and actual sizes differ.
    #[error("size invalid: {0}")]
    SizeInvalid(String),
    /// The repository does not hold this manifest.
    #[error("manifest unknown: {0}")]
    ManifestUnknown(Reference),
    /// The manifest body is not acceptable.
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    /// A manifest references content the repository does not hold.
    #[error("manifest references unknown blob {0}")]
    ManifestBlobUnknown(Digest),
    /// The tag in the URL is malformed.
    #[error("tag invalid: {0}")]
    TagInvalid(String),
    /// The repository does not exist.
    #[error("repository unknown: {0}")]
    NameUnknown(RepoName),
    /// The operation is switched off by configuration (delete disabled, read-only mode).
    #[error("{0}")]
    Unsupported(&'static str),
    /// The client's body stream failed (disconnect, bad framing).
    #[error("request body: {0}")]
    Body(String),
    /// Storage failed in a way that is not the client's fault.
    #[error(transparent)]
    Storage(#[from] wharf_storage::Error),
}

impl From<wharf_storage::path::InvalidPath> for Error {
    fn from(e: wharf_storage::path::InvalidPath) -> Self {
        Error::Storage(e.into())
    }
}

/// Result of registry operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Switches from `storage:` and `validation:` that change what the registry allows.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `storage.delete.enabled`: blob and manifest DELETE are allowed.
    pub delete_enabled: bool,
    /// `storage.maintenance.readonly.enabled`: every write is refused.
    pub read_only: bool,
    /// `validation.manifests.urls`: rules for foreign-layer URLs; `None` when validation is off.
    pub layer_urls: Option<UrlRules>,
    /// Online GC is on: links older than this are rewritten when a repository serves or
    /// validates them (half the grace period; see `refresh.rs`). `None` when GC is off.
    pub link_refresh: Option<std::time::Duration>,
}

/// Which foreign-layer URLs a pushed manifest may carry (distribution's `validation` rules).
#[derive(Debug, Clone, Default)]
pub struct UrlRules {
    /// Every URL must match one of these, when any are given.
    pub allow: Vec<regex::Regex>,
    /// No URL may match any of these.
    pub deny: Vec<regex::Regex>,
}

impl UrlRules {
    /// Whether a layer URL is acceptable: http(s), no fragment, allowed and not denied.
    pub fn accepts(&self, url: &str) -> bool {
        let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
        scheme_ok
            && !url.contains('#')
            && (self.allow.is_empty() || self.allow.iter().any(|r| r.is_match(url)))
            && !self.deny.iter().any(|r| r.is_match(url))
    }
}

/// The registry: a driver plus the rules of the content model. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    driver: Arc<dyn Driver>,
    options: Options,
    /// Told of every completed action (notifications); `None` costs nothing.
    listener: Option<Arc<dyn crate::notify::Listener>>,
    /// Serializes requests on one upload session within this process.
    upload_locks: Arc<uploads::UploadLocks>,
    /// `storage.cache.blobdescriptor`; `None` asks the backend every time.
    cache: Option<Arc<dyn cache::DescriptorCache>>,
    /// When this process last looked at each link, for online GC's link refresh.
    refreshed: Arc<refresh::RefreshCache>,
    /// Manifest bytes by digest, so hot manifest GETs read only links.
    manifests: Arc<manifest_cache::ManifestCache>,
}

impl Registry {
    /// A registry over `driver`.
    pub fn new(driver: Arc<dyn Driver>, options: Options) -> Self {
        Registry {
            driver,
            options,
            listener: None,
            upload_locks: Arc::default(),
            cache: None,
            refreshed: Arc::default(),
            manifests: Arc::default(),
        }
    }

    /// The same registry, reporting every completed action to `listener`.
    pub fn with_listener(mut self, listener: Arc<dyn crate::notify::Listener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Whether actions are reported anywhere, so callers can skip gathering what reports need.
    pub fn has_listener(&self) -> bool {
        self.listener.is_some()
    }

    /// Reports an action to the listener; `report` is only built when someone listens.
    pub(crate) fn emit(&self, report: impl FnOnce() -> crate::notify::Report) {
        if let Some(listener) = &self.listener {
            listener.report(report());
        }
    }

    /// The storage driver, for health checks and maintenance tasks.
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The options in force.
    pub fn options(&self) -> &Options {
        &self.options
    }

    fn check_writable(&self) -> Result<()> {
        if self.options.read_only {
            return Err(Error::Unsupported("registry is in read-only mode"));
        }
        Ok(())
    }

    fn check_deletable(&self) -> Result<()> {
        self.check_writable()?;
        if !self.options.delete_enabled {
            return Err(Error::Unsupported(
                "deletes are disabled (storage.delete.enabled)",
            ));
        }
        Ok(())
    }

    /// Reads a link file; `None` when it does not exist or does not hold a digest.
    pub(crate) async fn read_link(&self, spec: PathSpec<'_>) -> Result<Option<Digest>> {
        match self.driver.get_content(&spec.path()).await {
            Ok(b) => Ok(layout::parse_link(&b)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn write_link(&self, spec: PathSpec<'_>, digest: &Digest) -> Result<()> {
        let body = Bytes::from(digest.to_string());
        Ok(self.driver.put_content(&spec.path(), body).await?)
    }

    async fn exists(&self, path: &StoragePath) -> Result<bool> {
        match self.driver.stat(path).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a path, treating "already gone" as success.
    pub(crate) async fn remove(&self, path: &StoragePath) -> Result<()> {
        match self.driver.delete(path).await {
            Err(e) if !e.is_not_found() => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Names of the direct children of a directory, empty when it does not exist.
    pub(crate) async fn child_names(&self, dir: &StoragePath) -> Result<Vec<String>> {
        match self.driver.list(dir).await {
            Ok(v) => Ok(v.iter().map(|p| p.file_name().to_owned()).collect()),
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }
}
