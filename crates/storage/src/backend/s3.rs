//! The `s3` backend: AWS S3 and S3-compatible servers (MinIO, Ceph RGW, R2, moto), on OpenDAL.
//!
//! A file is a plain object at distribution's key (`<rootdirectory>/docker/registry/v2/…`), so a
//! bucket written by distribution is served unchanged and blobs can be redirected to with a
//! presigned GET. S3 cannot append, and OpenDAL's S3 "append" silently overwrites on
//! S3-compatible servers, so it is never used. Instead a writer opened with `append` on a
//! non-empty file writes its bytes as a new segment object below `<key>~segments/` and, on
//! commit, replaces the object at `<key>` by a small manifest listing the segments, marked by
//! user metadata holding the total size (module `segments`). Everything lives in the bucket, so an
//! upload continues on whichever instance gets the next request; `rename` (the end of an upload)
//! assembles the segments into one plain object server-side with UploadPartCopy. `~` is outside
//! the storage path grammar, so segment keys never collide with a real path and are invisible to
//! `list` and `walk`. Must not depend on anything registry-specific.

mod segments;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator};

use self::segments::{Base, Manifest};
use crate::driver::{ByteStream, Driver, Error, FileInfo, FileWriter, Result};
use crate::path::{InvalidPath, StoragePath};

const NAME: &str = "s3";
/// S3's smallest multipart part (except the last): the floor of `chunksize`.
pub const MIN_CHUNK_SIZE: u64 = 5 << 20;
/// S3's largest single copy (CopyObject, UploadPartCopy).
const MAX_COPY: u64 = 5 << 30;
/// How long a redirect URL stays valid (distribution: 20 minutes).
const REDIRECT_EXPIRY: Duration = Duration::from_secs(20 * 60);
/// Parts uploaded in parallel by one writer; memory per writer is about `chunksize × (this + 1)`.
const WRITE_CONCURRENCY: usize = 2;

/// Parameters of the `s3` driver, with distribution's keys and defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Params {
    /// `bucket` (required).
    pub bucket: String,
    /// `region` (required; any value for most S3-compatible servers).
    pub region: String,
    /// `regionendpoint`: an S3-compatible server's URL; AWS's regional endpoint when unset.
    pub region_endpoint: Option<String>,
    /// `forcepathstyle`: `host/bucket/key` URLs instead of `bucket.host/key` (default true).
    pub force_path_style: bool,
    /// `accesskey`; with `secretkey`, static credentials. Unset: the usual AWS credential chain.
    pub access_key: Option<String>,
    /// `secretkey`.
    pub secret_key: Option<String>,
    /// `sessiontoken`, for temporary static credentials.
    pub session_token: Option<String>,
    /// `encrypt`: server-side encryption (SSE-S3, or SSE-KMS with `keyid`).
    pub encrypt: bool,
    /// `keyid`: the KMS key for `encrypt`.
    pub key_id: Option<String>,
    /// `secure`: https to the endpoint when `regionendpoint` names no scheme (default true).
    pub secure: bool,
    /// `skipverify`: accept any TLS certificate from the endpoint.
    pub skip_verify: bool,
    /// `chunksize`: multipart part size for writes, at least 5 MiB (default 10 MiB).
    pub chunk_size: u64,
    /// `multipartcopychunksize`: part size when copying large objects (default 32 MiB).
    pub multipart_copy_chunk_size: u64,
    /// `multipartcopymaxconcurrency`: parts copied in parallel (default 100).
    pub multipart_copy_max_concurrency: u64,
    /// `multipartcopythresholdsize`: objects above this are copied in parts (default 32 MiB).
    pub multipart_copy_threshold_size: u64,
    /// `rootdirectory`: key prefix below which the tree lives (default: the bucket's root).
    pub root_directory: String,
    /// `storageclass`: class of new objects (default STANDARD; `NONE` sends none).
    pub storage_class: Option<String>,
    /// Blob GETs answer 307 to a presigned URL (`storage.redirect.disable` turns it off).
    pub redirect: bool,
}

impl Default for S3Params {
    fn default() -> Self {
        S3Params {
            bucket: String::new(),
            region: String::new(),
            region_endpoint: None,
            force_path_style: true,
            access_key: None,
            secret_key: None,
            session_token: None,
            encrypt: false,
            key_id: None,
            secure: true,
            skip_verify: false,
            chunk_size: 10 << 20,
            multipart_copy_chunk_size: 32 << 20,
            multipart_copy_max_concurrency: 100,
            multipart_copy_threshold_size: 32 << 20,
            root_directory: String::new(),
            storage_class: Some("STANDARD".to_owned()),
            redirect: true,
        }
    }
}

impl fmt::Debug for S3Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("S3Params")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("region_endpoint", &self.region_endpoint)
            .field("force_path_style", &self.force_path_style)
            .field("access_key", &self.access_key)
            .field("secret_key", &masked(&self.secret_key))
            .field("session_token", &masked(&self.session_token))
            .field("encrypt", &self.encrypt)
            .field("key_id", &self.key_id)
            .field("secure", &self.secure)
            .field("skip_verify", &self.skip_verify)
            .field("chunk_size", &self.chunk_size)
            .field("root_directory", &self.root_directory)
            .field("storage_class", &self.storage_class)
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

impl S3Params {
    /// The endpoint URL: `regionendpoint` (with `secure`'s scheme if it names none) or AWS's.
    pub fn endpoint(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        match self
            .region_endpoint
            .as_deref()
            .map(|e| e.trim_end_matches('/'))
        {
            Some(e) if e.contains("://") => e.to_owned(),
            Some(e) => format!("{scheme}://{e}"),
            None if self.region == "us-east-1" => format!("{scheme}://s3.amazonaws.com"),
            None => format!("{scheme}://s3.{}.amazonaws.com", self.region),
        }
    }
}

fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Backend {
        driver: NAME,
        source: source.into(),
    }
}

/// Maps OpenDAL's failures by meaning: a missing key is `NotFound` at `path`.
fn map_err(path: &StoragePath) -> impl FnOnce(opendal::Error) -> Error + '_ {
    move |e| {
        if e.kind() == ErrorKind::NotFound {
            Error::NotFound { path: path.clone() }
        } else {
            backend(e)
        }
    }
}

fn reject_root(path: &StoragePath) -> Result<()> {
    if path.is_root() {
        return Err(Error::InvalidPath(InvalidPath(path.to_string())));
    }
    Ok(())
}

/// The object key of a file (relative to the operator's root).
fn key(path: &StoragePath) -> &str {
    path.relative()
}

/// The listing prefix of a directory.
fn dir_key(path: &StoragePath) -> String {
    if path.is_root() {
        "/".to_owned()
    } else {
        format!("{}/", path.relative())
    }
}

/// A listed key as a storage path; `None` for keys outside the grammar (segments, foreign keys).
fn listed_path(entry_path: &str) -> Option<StoragePath> {
    let trimmed = entry_path.trim_end_matches('/');
    if trimmed.is_empty() {
        return None;
    }
    StoragePath::new(format!("/{trimmed}")).ok()
}

fn modified(meta: &opendal::Metadata) -> SystemTime {
    meta.last_modified()
        .map(SystemTime::from)
        .unwrap_or_else(SystemTime::now)
}

/// The HTTP client: `skipverify` and the CA bundle (`AWS_CA_BUNDLE`, as the AWS SDKs read it)
/// apply to https endpoints only, so a bundle meant for AWS never breaks a plain-http MinIO.
fn http_client(
    params: &S3Params,
    endpoint: &str,
    ca_bundle: Option<std::ffi::OsString>,
) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if endpoint.starts_with("https://") {
        if params.skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(bundle) = ca_bundle.filter(|v| !v.is_empty()) {
            let pem = std::fs::read(&bundle).map_err(|e| {
                backend(format!(
                    "reading AWS_CA_BUNDLE {}: {e}",
                    bundle.to_string_lossy()
                ))
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(backend)? {
                builder = builder.add_root_certificate(cert);
            }
        }
    }
    builder.build().map_err(backend)
}

/// Files in an S3 bucket; cheap to share, every operation is a few HTTP requests.
pub struct S3Driver {
    op: Operator,
    params: S3Params,
    copy: CopyPlan,
}

/// How objects are copied server-side: whole up to a threshold, in parallel parts above it.
#[derive(Debug, Clone, Copy)]
struct CopyPlan {
    threshold: u64,
    chunk: usize,
    concurrency: usize,
}

impl CopyPlan {
    fn new(params: &S3Params) -> Self {
        let chunk = params
            .multipart_copy_chunk_size
            .clamp(MIN_CHUNK_SIZE, MAX_COPY);
        CopyPlan {
            threshold: params.multipart_copy_threshold_size.min(MAX_COPY),
            chunk: usize::try_from(chunk).unwrap_or(usize::MAX),
            concurrency: usize::try_from(params.multipart_copy_max_concurrency.max(1)).unwrap_or(1),
        }
    }

    async fn run(&self, op: &Operator, from: &str, to: &str, size: u64) -> Result<()> {
        let mut options = opendal::options::CopyOptions::default();
        if size > self.threshold {
            options.chunk = Some(self.chunk);
            options.concurrent = self.concurrency;
        }
        op.copy_options(from, to, options)
            .await
            .map(drop)
            .map_err(backend)
    }
}

impl S3Driver {
    /// Connects lazily: no request is made until the first operation.
    pub fn new(params: S3Params) -> Result<Self> {
        let endpoint = params.endpoint();
        let mut builder = opendal::services::S3::default()
            .bucket(&params.bucket)
            .region(&params.region)
            .endpoint(&endpoint)
            .root(&format!("/{}", params.root_directory.trim_matches('/')));
        if !params.force_path_style {
            builder = builder.enable_virtual_host_style();
        }
        if let (Some(ak), Some(sk)) = (&params.access_key, &params.secret_key) {
            builder = builder.access_key_id(ak).secret_access_key(sk);
            if let Some(token) = &params.session_token {
                builder = builder.session_token(token);
            }
        }
        if params.encrypt {
            builder = match &params.key_id {
                Some(id) => builder.server_side_encryption_with_customer_managed_kms_key(id),
                None => builder.server_side_encryption_with_s3_key(),
            };
        }
        if let Some(class) = &params.storage_class {
            builder = builder.default_storage_class(class);
        }
        let op = Operator::new(builder)
            .map_err(backend)?
            .layer(opendal::layers::RetryLayer::new().with_jitter());
        let transport = opendal_http_transport_reqwest::ReqwestTransport::new(http_client(
            &params,
            &endpoint,
            std::env::var_os("AWS_CA_BUNDLE"),
        )?);
        let ctx = op
            .context()
            .with_http_transport(opendal::HttpTransporter::new(transport));
        Ok(S3Driver {
            op: op.with_context(ctx),
            copy: CopyPlan::new(&params),
            params,
        })
    }

    fn chunk_size(&self) -> usize {
        usize::try_from(self.params.chunk_size.max(MIN_CHUNK_SIZE)).unwrap_or(usize::MAX)
    }

    /// What is at a file key: `None` when no object is there.
    async fn head(&self, path: &StoragePath) -> Result<Option<Head>> {
        match self.op.stat(key(path)).await {
            Ok(meta) => Ok(Some(Head {
                size: segments::total_size(&meta).unwrap_or(meta.content_length()),
                segmented: segments::total_size(&meta).is_some(),
                modified: modified(&meta),
            })),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    /// Keys of every object below a prefix.
    async fn keys_below(&self, prefix: &str) -> Result<Vec<String>> {
        let lister = self.op.lister_with(prefix).recursive(true).await;
        let entries: Vec<opendal::Entry> = match lister {
            Ok(lister) => lister.try_collect().await.map_err(backend)?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(backend(e)),
        };
        Ok(entries
            .into_iter()
            .filter(|e| !e.path().ends_with('/'))
            .map(|e| e.path().to_owned())
            .collect())
    }

    /// The newest modification among a directory's direct children; `None` when it has none.
    async fn first_child(&self, dir: &StoragePath) -> Result<Option<SystemTime>> {
        let prefix = dir_key(dir);
        let mut lister = match self.op.lister(&prefix).await {
            Ok(l) => l,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(backend(e)),
        };
        while let Some(entry) = lister.try_next().await.map_err(backend)? {
            if entry.path() != prefix && listed_path(entry.path()).is_some() {
                return Ok(Some(modified(entry.metadata())));
            }
        }
        Ok(None)
    }

    /// Streams `len` bytes of one object from `offset`.
    async fn object_stream(&self, key: &str, offset: u64, len: u64) -> Result<ByteStream> {
        if len == 0 {
            return Ok(futures::stream::empty().boxed());
        }
        let reader = self.op.reader(key).await.map_err(backend)?;
        let stream = reader
            .into_bytes_stream(offset..offset + len)
            .await
            .map_err(backend)?;
        Ok(stream.boxed())
    }
}

/// One HEAD's worth of knowledge about a file.
struct Head {
    size: u64,
    segmented: bool,
    modified: SystemTime,
}

#[async_trait]
impl Driver for S3Driver {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        reject_root(path)?;
        let content = self
            .op
            .read(key(path))
            .await
            .map_err(map_err(path))?
            .to_bytes();
        if !Manifest::may_be(&content) {
            return Ok(content);
        }
        match self.head(path).await? {
            Some(head) if head.segmented => {
                let mut out = Vec::with_capacity(usize::try_from(head.size).unwrap_or(0));
                let mut chunks = self.reader(path, 0).await?;
                while let Some(chunk) = chunks.next().await {
                    out.extend_from_slice(&chunk.map_err(backend)?);
                }
                Ok(out.into())
            }
            _ => Ok(content),
        }
    }

    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        reject_root(path)?;
        self.op
            .write(key(path), content)
            .await
            .map(drop)
            .map_err(backend)
    }

    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        reject_root(path)?;
        let head = self
            .head(path)
            .await?
            .ok_or_else(|| Error::NotFound { path: path.clone() })?;
        if offset > head.size {
            return Err(Error::InvalidOffset {
                path: path.clone(),
                offset,
            });
        }
        if !head.segmented {
            return self
                .object_stream(key(path), offset, head.size - offset)
                .await;
        }
        let manifest = Manifest::read(&self.op, path).await?;
        let op = self.op.clone();
        let pieces = manifest.ranges_from(path, offset);
        let stream = futures::stream::iter(pieces)
            .then(move |(key, from, len)| {
                let op = op.clone();
                async move {
                    let reader = op.reader(&key).await.map_err(std::io::Error::other)?;
                    reader
                        .into_bytes_stream(from..from + len)
                        .await
                        .map_err(std::io::Error::other)
                }
            })
            .try_flatten();
        Ok(stream.boxed())
    }

    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        reject_root(path)?;
        let base = match self.head(path).await? {
            Some(head) if append && head.size > 0 => {
                if head.segmented {
                    Base::Segmented(Manifest::read(&self.op, path).await?)
                } else {
                    Base::Plain(head.size)
                }
            }
            _ => Base::None,
        };
        Ok(Box::new(segments::S3Writer::new(
            self.op.clone(),
            path.clone(),
            base,
            self.copy,
            self.chunk_size(),
            WRITE_CONCURRENCY,
        )))
    }

    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        if !path.is_root()
            && let Some(head) = self.head(path).await?
        {
            return Ok(FileInfo {
                path: path.clone(),
                size: head.size,
                modified: head.modified,
                is_dir: false,
            });
        }
        let modified = match self.first_child(path).await? {
            Some(modified) => modified,
            None if path.is_root() => SystemTime::now(),
            None => return Err(Error::NotFound { path: path.clone() }),
        };
        Ok(FileInfo {
            path: path.clone(),
            size: 0,
            modified,
            is_dir: true,
        })
    }

    async fn list(&self, dir: &StoragePath) -> Result<Vec<StoragePath>> {
        let prefix = dir_key(dir);
        let entries: Vec<opendal::Entry> = match self.op.lister(&prefix).await {
            Ok(lister) => lister.try_collect().await.map_err(backend)?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(backend(e)),
        };
        let children: BTreeSet<StoragePath> = entries
            .iter()
            .filter(|e| e.path() != prefix)
            .filter_map(|e| listed_path(e.path()))
            .filter(|p| p.parent().as_ref() == Some(dir))
            .collect();
        if children.is_empty() && !dir.is_root() {
            return Err(Error::NotFound { path: dir.clone() });
        }
        Ok(children.into_iter().collect())
    }

    async fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        reject_root(from)?;
        reject_root(to)?;
        let head = self
            .head(from)
            .await?
            .ok_or_else(|| Error::NotFound { path: from.clone() })?;
        if head.segmented {
            let manifest = Manifest::read(&self.op, from).await?;
            manifest
                .assemble(&self.op, from, key(to), self.chunk_size())
                .await?;
            return self.delete(from).await;
        }
        self.copy
            .run(&self.op, key(from), key(to), head.size)
            .await?;
        self.op.delete(key(from)).await.map_err(backend)
    }

    async fn delete(&self, path: &StoragePath) -> Result<()> {
        let mut doomed = Vec::new();
        if !path.is_root() {
            if self.head(path).await?.is_some() {
                doomed.push(key(path).to_owned());
            }
            doomed.extend(self.keys_below(&segments::dir(path)).await?);
        }
        doomed.extend(self.keys_below(&dir_key(path)).await?);
        if doomed.is_empty() {
            if path.is_root() {
                return Ok(());
            }
            return Err(Error::NotFound { path: path.clone() });
        }
        self.op.delete_iter(doomed).await.map_err(backend)
    }

    async fn redirect_url(&self, path: &StoragePath) -> Result<Option<String>> {
        reject_root(path)?;
        if !self.params.redirect {
            return Ok(None);
        }
        let signed = self
            .op
            .presign_read(key(path), REDIRECT_EXPIRY)
            .await
            .map_err(backend)?;
        Ok(Some(signed.uri().to_string()))
    }

    /// One recursive listing instead of a list and a stat per entry.
    async fn walk(&self, root: &StoragePath) -> Result<Vec<FileInfo>> {
        let lister = self.op.lister_with(&dir_key(root)).recursive(true).await;
        let entries: Vec<opendal::Entry> = match lister {
            Ok(lister) => lister.try_collect().await.map_err(backend)?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(backend(e)),
        };
        let mut found: BTreeMap<StoragePath, FileInfo> = BTreeMap::new();
        let mut segmented = BTreeSet::new();
        for entry in &entries {
            if entry.path().ends_with('/') {
                continue;
            }
            let Some(path) = listed_path(entry.path()) else {
                if let Some(owner) = segments::owner(entry.path()) {
                    segmented.insert(owner);
                }
                continue;
            };
            let info = FileInfo {
                path: path.clone(),
                size: entry.metadata().content_length(),
                modified: modified(entry.metadata()),
                is_dir: false,
            };
            let mut parent = path.parent();
            while let Some(dir) = parent.filter(|d| d != root && d.starts_with(root)) {
                let slot = found.entry(dir.clone()).or_insert_with(|| FileInfo {
                    path: dir.clone(),
                    size: 0,
                    modified: info.modified,
                    is_dir: true,
                });
                slot.modified = slot.modified.max(info.modified);
                parent = dir.parent();
            }
            found.insert(path, info);
        }
        for path in segmented {
            if let (Some(info), Some(head)) = (found.get_mut(&path), self.head(&path).await?) {
                info.size = head.size;
            }
        }
        if found.is_empty() && !root.is_root() {
            return Err(Error::NotFound { path: root.clone() });
        }
        Ok(found.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsuite::peers;

    /// A driver on a fresh moto bucket, below a `rootdirectory` as deployments often use.
    async fn on_moto() -> Option<S3Driver> {
        let moto = peers::moto()?;
        let bucket = moto.bucket().await;
        let params = S3Params {
            root_directory: "/registry/root".to_owned(),
            chunk_size: MIN_CHUNK_SIZE,
            ..moto.params(&bucket)
        };
        Some(S3Driver::new(params).unwrap())
    }

    crate::conformance_tests!(optional: on_moto().await);

    #[test]
    fn endpoint_follows_secure_and_region() {
        let p = |region: &str, endpoint: Option<&str>, secure: bool| S3Params {
            region: region.to_owned(),
            region_endpoint: endpoint.map(str::to_owned),
            secure,
            ..S3Params::default()
        };
        assert_eq!(
            p("us-east-1", None, true).endpoint(),
            "https://s3.amazonaws.com"
        );
        assert_eq!(
            p("eu-west-1", None, false).endpoint(),
            "http://s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            p("x", Some("minio:9000/"), false).endpoint(),
            "http://minio:9000"
        );
        assert_eq!(
            p("x", Some("https://r2.example"), false).endpoint(),
            "https://r2.example"
        );
    }

    #[test]
    fn ca_bundle_applies_to_https_endpoints_only() {
        let p = S3Params::default();
        let missing = Some(std::ffi::OsString::from("/nonexistent/ca.pem"));
        assert!(http_client(&p, "http://127.0.0.1:9000", missing.clone()).is_ok());
        let err = http_client(&p, "https://s3.amazonaws.com", missing).unwrap_err();
        assert!(err.to_string().contains("AWS_CA_BUNDLE"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("bundle.pem");
        std::fs::write(&not_pem, "no certificates here").unwrap();
        http_client(&p, "https://s3.amazonaws.com", Some(not_pem.into())).unwrap();
    }

    #[tokio::test]
    async fn resume_from_another_driver_instance_and_redirect() {
        let Some(moto) = peers::moto() else { return };
        let bucket = moto.bucket().await;
        let (a, b) = (
            S3Driver::new(moto.params(&bucket)).unwrap(),
            S3Driver::new(moto.params(&bucket)).unwrap(),
        );
        let p = StoragePath::new("/_uploads/x/data").unwrap();
        let mut w = a.writer(&p, true).await.unwrap();
        w.write(Bytes::from_static(b"abc")).await.unwrap();
        w.commit().await.unwrap();
        let mut w = b.writer(&p, true).await.unwrap();
        assert_eq!(w.size(), 3);
        w.write(Bytes::from_static(b"def")).await.unwrap();
        w.commit().await.unwrap();
        assert_eq!(a.get_content(&p).await.unwrap(), &b"abcdef"[..]);
        let blob = StoragePath::new("/blobs/data").unwrap();
        b.rename(&p, &blob).await.unwrap();
        let url = a.redirect_url(&blob).await.unwrap().unwrap();
        assert!(url.contains("X-Amz-Signature="), "{url}");
        let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        assert_eq!(body, &b"abcdef"[..]);
        let quiet = S3Params {
            redirect: false,
            ..moto.params(&bucket)
        };
        let quiet = S3Driver::new(quiet).unwrap();
        assert_eq!(quiet.redirect_url(&blob).await.unwrap(), None);
    }
}
