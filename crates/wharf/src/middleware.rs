//! `middleware.storage`: decorators around the storage driver that change where blob GETs
//! redirect to (`cloudfront`, `redirect`), as distribution's storage middleware do.

pub mod cloudfront;

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use wharf_storage::{ByteStream, Driver, FileInfo, FileWriter, Result, StoragePath};

use crate::config::{Config, Middleware};

/// Why a storage middleware cannot start.
#[derive(Debug, thiserror::Error)]
pub enum MiddlewareError {
    /// A required option is missing or has a bad value.
    #[error("middleware.storage {name}: {msg}")]
    Option {
        /// The middleware name.
        name: String,
        /// What is wrong.
        msg: String,
    },
}

/// Names of the storage middleware wharf runs; others are only reported.
pub const STORAGE_MIDDLEWARE: &[&str] = &["cloudfront", "redirect"];

/// Wraps `driver` in every enabled `middleware.storage` entry, in file order.
///
/// Redirect middleware apply whatever the backend, unless `storage.redirect.disable` is set.
pub fn wrap_storage(
    mut driver: Arc<dyn Driver>,
    config: &Config,
) -> std::result::Result<Arc<dyn Driver>, MiddlewareError> {
    for m in config.middleware.storage.iter().filter(|m| !m.disabled) {
        let url: Arc<dyn RedirectUrl> = match m.name.as_str() {
            "cloudfront" => Arc::new(cloudfront::CloudFront::from_options(&m.options)?),
            "redirect" => Arc::new(BaseUrl::from_options(m)?),
            // Listed by `Config::unsupported()` at start-up; the driver stays as it is.
            _ => continue,
        };
        if config.storage.redirect_disable {
            tracing::warn!(
                middleware = %m.name,
                "storage.redirect.disable is set: blobs are served directly, the middleware is not used"
            );
            continue;
        }
        driver = Arc::new(Redirecting { inner: driver, url });
    }
    Ok(driver)
}

/// Makes the URL a client is redirected to for a path in storage.
pub trait RedirectUrl: Send + Sync + 'static {
    /// The URL for `path` (absolute in storage, starting with `/`).
    fn url(&self, path: &StoragePath) -> std::result::Result<String, String>;
}

/// `redirect`: `baseurl` followed by the path in storage, unsigned.
struct BaseUrl {
    base: String,
}

impl BaseUrl {
    fn from_options(m: &Middleware) -> std::result::Result<Self, MiddlewareError> {
        let base = m
            .options
            .text("baseurl")
            .filter(|b| b.starts_with("http://") || b.starts_with("https://"))
            .ok_or_else(|| MiddlewareError::Option {
                name: "redirect".into(),
                msg: "option baseurl (an http:// or https:// URL) is required".into(),
            })?;
        Ok(Self { base })
    }
}

impl RedirectUrl for BaseUrl {
    fn url(&self, path: &StoragePath) -> std::result::Result<String, String> {
        Ok(join(&self.base, path))
    }
}

/// `base` (with or without a trailing `/`) followed by `path` relative to the storage root.
pub(crate) fn join(base: &str, path: &StoragePath) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.relative())
}

/// The decorator: every call goes to `inner`, but `redirect_url` comes from `url`.
struct Redirecting {
    inner: Arc<dyn Driver>,
    url: Arc<dyn RedirectUrl>,
}

#[async_trait]
impl Driver for Redirecting {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        self.inner.get_content(path).await
    }
    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        self.inner.put_content(path, content).await
    }
    async fn put_scratch(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        self.inner.put_scratch(path, content).await
    }
    async fn put_contents(&self, groups: Vec<Vec<(StoragePath, Bytes)>>) -> Result<()> {
        self.inner.put_contents(groups).await
    }
    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        self.inner.reader(path, offset).await
    }
    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        self.inner.writer(path, append).await
    }
    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        self.inner.stat(path).await
    }
    async fn list(&self, dir: &StoragePath) -> Result<Vec<StoragePath>> {
        self.inner.list(dir).await
    }
    async fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        self.inner.rename(from, to).await
    }
    async fn delete(&self, path: &StoragePath) -> Result<()> {
        self.inner.delete(path).await
    }
    async fn local_file(&self, path: &StoragePath) -> Result<Option<std::fs::File>> {
        self.inner.local_file(path).await
    }
    async fn redirect_url(&self, path: &StoragePath) -> Result<Option<String>> {
        match self.url.url(path) {
            Ok(u) => Ok(Some(u)),
            Err(e) => {
                // Serving directly beats failing the pull when signing breaks.
                tracing::error!(error = %e, "storage middleware: cannot sign a redirect; serving directly");
                self.inner.redirect_url(path).await
            }
        }
    }
    async fn walk(&self, root: &StoragePath) -> Result<Vec<FileInfo>> {
        self.inner.walk(root).await
    }
}
