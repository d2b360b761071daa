//! Object stores (S3, Azure Blob, GCS, OSS, Swift) behind the driver trait, on OpenDAL: what every bucket-like
//! backend shares, so `s3` and `azure` are only "config → OpenDAL operator".
//!
//! A file is a plain object at its key (`<rootdirectory>/docker/registry/v2/…`), as
//! distribution lays it out, so a bucket written by distribution is served unchanged. Object
//! stores cannot append (OpenDAL's S3 "append" silently overwrites on S3-compatible servers, so
//! it is never used): a writer opened with `append` on a non-empty file writes its bytes as a
//! new segment object below `<key>~segments/` and, on commit, replaces the object at `<key>` by a
//! small manifest listing the segments, marked by user metadata holding the total size (module
//! `segments`). Everything lives in the store, so an upload continues on whichever instance gets
//! the next request; `rename` (the end of an upload) assembles the segments into one plain
//! object, server-side where the store can copy parts (S3 UploadPartCopy) or compose objects
//! (GCS, which also streams writes as composed part objects: module `compose`; Swift the same,
//! joining through an SLO manifest copied into a plain object). `~` is outside the
//! storage path grammar, so segment keys never collide with a real path and are invisible to
//! `list` and `walk`. Must not depend on anything registry-specific.

mod compose;
mod segments;

pub use self::compose::{Join, Joiner};

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use opendal::{ErrorKind, Operator};

use self::segments::{Base, Manifest};
use crate::driver::{ByteStream, Driver, Error, FileInfo, FileWriter, Result};
use crate::path::{InvalidPath, StoragePath};

/// S3's smallest multipart part (except the last): the floor of every chunk size.
pub const MIN_CHUNK_SIZE: u64 = 5 << 20;
/// S3's largest single copy (CopyObject, UploadPartCopy).
pub(crate) const MAX_COPY: u64 = 5 << 30;
/// How long a redirect URL stays valid (distribution: 20 minutes).
pub(crate) const REDIRECT_EXPIRY: Duration = Duration::from_secs(20 * 60);
/// Parts uploaded in parallel by one writer; memory per writer is about `chunksize × (this + 1)`.
const WRITE_CONCURRENCY: usize = 2;

fn backend(
    driver: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    Error::Backend {
        driver,
        source: source.into(),
    }
}

/// Maps OpenDAL's failures by meaning: a missing key is `NotFound` at `path`.
fn map_err<'a>(
    driver: &'static str,
    path: &'a StoragePath,
) -> impl FnOnce(opendal::Error) -> Error + 'a {
    move |e| {
        if e.kind() == ErrorKind::NotFound {
            Error::NotFound { path: path.clone() }
        } else {
            backend(driver, e)
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

/// Files in a bucket or container; every operation is a few HTTP requests.
pub struct ObjectStore {
    op: Operator,
    name: &'static str,
    copy: CopyPlan,
    chunk: usize,
    redirect: bool,
    writes: Writes,
    presigner: Option<Operator>,
    url_signer: Option<UrlSigner>,
    /// Read a missing object once more before answering NotFound (see [`Self::with_reread_missing`]).
    reread_missing: bool,
}

/// Makes a redirect URL for an object key itself, for stores OpenDAL cannot presign (Azure).
pub type UrlSigner = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// How a store takes streamed writes and many deletions.
#[derive(Clone)]
pub enum Writes {
    /// OpenDAL's multipart writer and batch deletes (S3, Azure, OSS).
    Multipart,
    /// Part objects joined by native compose, one request per deletion (GCS: OpenDAL's GCS
    /// multipart is the XML API and its batch delete the JSON batch endpoint, both missing
    /// from emulators; compose is what the GCS JSON API itself offers for this). Swift joins
    /// with its own [`Joiner`] (an SLO manifest copied into a plain object).
    Compose(Joiner),
}

/// How objects are copied server-side: whole up to a threshold, in parallel parts above it.
#[derive(Debug, Clone, Copy)]
pub struct CopyPlan {
    threshold: u64,
    chunk: usize,
    concurrency: usize,
}

impl CopyPlan {
    /// Objects above `threshold` bytes are copied in `chunk`-sized parts, `concurrency` at once.
    pub fn new(threshold: u64, chunk: u64, concurrency: u64) -> Self {
        CopyPlan {
            threshold: threshold.min(MAX_COPY),
            chunk: usize::try_from(chunk.clamp(MIN_CHUNK_SIZE, MAX_COPY)).unwrap_or(usize::MAX),
            concurrency: usize::try_from(concurrency.max(1)).unwrap_or(1),
        }
    }

    /// Always one whole-object copy, for stores without part copies.
    pub fn whole() -> Self {
        CopyPlan {
            threshold: u64::MAX,
            chunk: usize::MAX,
            concurrency: 1,
        }
    }

    async fn run(
        &self,
        name: &'static str,
        op: &Operator,
        from: &str,
        to: &str,
        size: u64,
    ) -> Result<()> {
        let mut options = opendal::options::CopyOptions::default();
        if size > self.threshold {
            options.chunk = Some(self.chunk);
            options.concurrent = self.concurrency;
        }
        op.copy_options(from, to, options)
            .await
            .map(drop)
            .map_err(|e| backend(name, e))
    }
}

impl ObjectStore {
    /// A driver named `name` (its config key) over `op`; writes go in `chunk`-byte parts and
    /// blob reads redirect to presigned URLs when `redirect` is set.
    pub fn new(
        op: Operator,
        name: &'static str,
        copy: CopyPlan,
        chunk: u64,
        redirect: bool,
    ) -> Self {
        let op = op.layer(opendal::layers::RetryLayer::new().with_jitter());
        ObjectStore {
            op,
            name,
            copy,
            chunk: usize::try_from(chunk.max(MIN_CHUNK_SIZE)).unwrap_or(usize::MAX),
            redirect,
            writes: Writes::Multipart,
            presigner: None,
            url_signer: None,
            reread_missing: false,
        }
    }

    /// Streams writes as composed part objects of `chunk` bytes (no minimum), not multipart.
    pub fn with_compose(mut self, chunk: u64) -> Self {
        self.writes = Writes::Compose(Joiner::Native);
        self.chunk = usize::try_from(chunk.max(1)).unwrap_or(usize::MAX);
        self
    }

    /// Joins composed parts with `joiner` instead of the store's native compose.
    pub fn with_joiner(mut self, joiner: Joiner) -> Self {
        self.writes = Writes::Compose(joiner);
        self
    }

    /// Presigns redirect URLs with `op` (e.g. one holding a signing key the data path lacks).
    pub fn with_presigner(mut self, op: Operator) -> Self {
        self.presigner = Some(op);
        self
    }

    /// Reads a missing object a second time, 50 ms later, before answering NotFound: Swift's
    /// object server can answer 404 to a GET racing an overwrite of the same object (it picks
    /// the newest data file, which the overwrite may clean up before it is opened), and a tag
    /// link being moved must not look absent to a pull.
    pub fn with_reread_missing(mut self) -> Self {
        self.reread_missing = true;
        self
    }

    /// Redirects blob reads to URLs made by `signer`, whatever `redirect` says.
    pub fn with_url_signer(mut self, signer: UrlSigner) -> Self {
        self.url_signer = Some(signer);
        self
    }

    async fn delete_keys(&self, keys: Vec<String>) -> Result<()> {
        match self.writes {
            Writes::Compose(_) => compose::delete_each(self.name, &self.op, keys).await,
            Writes::Multipart => self.op.delete_iter(keys).await.map_err(|e| self.fail(e)),
        }
    }

    fn chunk_size(&self) -> usize {
        self.chunk
    }

    fn fail(&self, e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        backend(self.name, e)
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
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Keys of every object below a prefix.
    async fn keys_below(&self, prefix: &str) -> Result<Vec<String>> {
        let lister = self.op.lister_with(prefix).recursive(true).await;
        let entries: Vec<opendal::Entry> = match lister {
            Ok(lister) => lister.try_collect().await.map_err(|e| self.fail(e))?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.fail(e)),
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
            Err(e) => return Err(self.fail(e)),
        };
        while let Some(entry) = lister.try_next().await.map_err(|e| self.fail(e))? {
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
        let reader = self.op.reader(key).await.map_err(|e| self.fail(e))?;
        let stream = reader
            .into_bytes_stream(offset..offset + len)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(stream.boxed())
    }
}

/// Gives an operator its HTTP client (OpenDAL's process-wide default is not installed here).
pub fn with_http_client(op: Operator, client: reqwest::Client) -> Operator {
    let transport = opendal_http_transport_reqwest::ReqwestTransport::new(client);
    let ctx = op
        .context()
        .with_http_transport(opendal::HttpTransporter::new(transport));
    op.with_context(ctx)
}

/// One HEAD's worth of knowledge about a file.
struct Head {
    size: u64,
    segmented: bool,
    modified: SystemTime,
}

#[async_trait]
impl Driver for ObjectStore {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        reject_root(path)?;
        let mut read = self.op.read(key(path)).await;
        if self.reread_missing
            && matches!(&read, Err(e) if e.kind() == opendal::ErrorKind::NotFound)
        {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            read = self.op.read(key(path)).await;
        }
        let content = read.map_err(map_err(self.name, path))?.to_bytes();
        if !Manifest::may_be(&content) {
            return Ok(content);
        }
        match self.head(path).await? {
            Some(head) if head.segmented => {
                let mut out = Vec::with_capacity(usize::try_from(head.size).unwrap_or(0));
                let mut chunks = self.reader(path, 0).await?;
                while let Some(chunk) = chunks.next().await {
                    out.extend_from_slice(&chunk.map_err(|e| self.fail(e))?);
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
            .map_err(|e| self.fail(e))
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
        let manifest = Manifest::read(self.name, &self.op, path).await?;
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
                    Base::Segmented(Manifest::read(self.name, &self.op, path).await?)
                } else {
                    Base::Plain(head.size)
                }
            }
            _ => Base::None,
        };
        Ok(Box::new(segments::SegmentWriter::new(
            self.name,
            self.op.clone(),
            path.clone(),
            base,
            self.copy,
            (self.chunk_size(), WRITE_CONCURRENCY),
            self.writes.clone(),
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
            Ok(lister) => lister.try_collect().await.map_err(|e| self.fail(e))?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.fail(e)),
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
            let manifest = Manifest::read(self.name, &self.op, from).await?;
            manifest
                .assemble(
                    self.name,
                    &self.op,
                    from,
                    key(to),
                    self.chunk_size(),
                    &self.writes,
                )
                .await?;
            return self.delete(from).await;
        }
        self.copy
            .run(self.name, &self.op, key(from), key(to), head.size)
            .await?;
        self.op.delete(key(from)).await.map_err(|e| self.fail(e))
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
        self.delete_keys(doomed).await
    }

    async fn redirect_url(&self, path: &StoragePath) -> Result<Option<String>> {
        reject_root(path)?;
        if let Some(signer) = &self.url_signer {
            return Ok(Some(signer(key(path))));
        }
        if !self.redirect {
            return Ok(None);
        }
        let signed = self
            .presigner
            .as_ref()
            .unwrap_or(&self.op)
            .presign_read(key(path), REDIRECT_EXPIRY)
            .await
            .map_err(|e| self.fail(e))?;
        Ok(Some(signed.uri().to_string()))
    }

    /// One recursive listing instead of a list and a stat per entry.
    async fn walk(&self, root: &StoragePath) -> Result<Vec<FileInfo>> {
        let lister = self.op.lister_with(&dir_key(root)).recursive(true).await;
        let entries: Vec<opendal::Entry> = match lister {
            Ok(lister) => lister.try_collect().await.map_err(|e| self.fail(e))?,
            Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(self.fail(e)),
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
