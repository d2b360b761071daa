//! The storage driver contract: the operations distribution's drivers have, in Rust types.

use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::path::{InvalidPath, StoragePath};

/// Chunks of a file, read in order; dropping the stream stops the read.
pub type ByteStream = BoxStream<'static, std::io::Result<Bytes>>;

/// Storage failures by meaning, so the registry can tell "absent" from "broken".
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing at that path.
    #[error("path not found: {path}")]
    NotFound {
        /// The missing path.
        path: StoragePath,
    },
    /// A path string outside the grammar.
    #[error(transparent)]
    InvalidPath(#[from] InvalidPath),
    /// A read offset past the end of the file.
    #[error("invalid offset {offset} for {path}")]
    InvalidOffset {
        /// The file.
        path: StoragePath,
        /// The offset asked for.
        offset: u64,
    },
    /// The backend cannot do this operation.
    #[error("operation not supported by the {driver} driver")]
    Unsupported {
        /// The backend's name.
        driver: &'static str,
    },
    /// Anything else the backend reported.
    #[error("{driver} driver: {source}")]
    Backend {
        /// The backend's name.
        driver: &'static str,
        /// The underlying failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Whether this is a missing path, the one failure callers routinely handle.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// Wraps an I/O error, turning `NotFound` into [`Error::NotFound`].
    pub fn io(driver: &'static str, path: &StoragePath, e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NotFound { path: path.clone() }
        } else {
            Error::Backend {
                driver,
                source: Box::new(e),
            }
        }
    }
}

/// Result of every storage operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What `stat` knows about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// The path described.
    pub path: StoragePath,
    /// Size in bytes (0 for directories).
    pub size: u64,
    /// Last modification, used by upload purging and online GC grace periods.
    pub modified: SystemTime,
    /// Directories exist implicitly on object stores: any path with children is one.
    pub is_dir: bool,
}

/// Raw bytes at validated paths; knows nothing of OCI. One impl per backend.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// The config key of the backend, for logs and metrics.
    fn name(&self) -> &'static str;

    /// Reads a whole small file (links, manifests, upload state) into memory.
    async fn get_content(&self, path: &StoragePath) -> Result<Bytes>;

    /// Replaces a small file atomically: a reader sees the old or the new content, never a mix.
    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()>;

    /// `put_content` for groups of small files where each group may only become visible once
    /// the groups before it are durable (a manifest's data, then its revision link, then its
    /// tag). A backend may write every file's bytes at once and keep only the order of making
    /// them visible; on error, some leading groups may be visible and nothing of the rest. A
    /// file already holding its content may stay in place, with a fresh modification time.
    async fn put_contents(&self, groups: Vec<Vec<(StoragePath, Bytes)>>) -> Result<()> {
        for group in groups {
            let writes = group
                .into_iter()
                .map(|(p, c)| async move { self.put_content(&p, c).await });
            futures::future::try_join_all(writes).await?;
        }
        Ok(())
    }

    /// `put_content` for state that is rebuilt when lost, worthless after a crash, or never
    /// read back (an upload's hash state and start time, a tag's history entry): still atomic,
    /// but a backend may return before it is durable.
    async fn put_scratch(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        self.put_content(path, content).await
    }

    /// Streams a file from `offset`; `InvalidOffset` past its end.
    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream>;

    /// Opens a writer; with `append` it continues an existing file (possibly written by another
    /// process or instance) from its current size, else it truncates.
    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>>;

    /// Describes a file or directory; `NotFound` when neither exists.
    async fn stat(&self, path: &StoragePath) -> Result<FileInfo>;

    /// Direct children of a directory, sorted; `NotFound` when it does not exist.
    async fn list(&self, dir: &StoragePath) -> Result<Vec<StoragePath>>;

    /// Moves a file into place, replacing any file already there (the commit step of blob
    /// uploads); the moved bytes are durable at `to` when it returns, even if they were only
    /// `close`d.
    async fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()>;

    /// Deletes a file or a whole subtree; `NotFound` when nothing was there.
    async fn delete(&self, path: &StoragePath) -> Result<()>;

    /// The file itself when it is a local file, so the HTTP layer can hand it to the kernel
    /// (`sendfile`) instead of copying it through user space. Backends without local files
    /// answer `None` at once, without a request, whether the path exists or not.
    async fn local_file(&self, _path: &StoragePath) -> Result<Option<std::fs::File>> {
        Ok(None)
    }

    /// A URL a client may fetch the file from directly, when the backend offers one.
    async fn redirect_url(&self, _path: &StoragePath) -> Result<Option<String>> {
        Ok(None)
    }

    /// Every file and directory below `root`, depth first in lexical order (default: list + stat).
    async fn walk(&self, root: &StoragePath) -> Result<Vec<FileInfo>> {
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let children = self.list(&dir).await?;
            for child in children.into_iter().rev() {
                let info = self.stat(&child).await?;
                if info.is_dir {
                    stack.push(child);
                }
                out.push(info);
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

/// An open write; consumed by commit or cancel, so writing after either cannot compile.
#[async_trait]
pub trait FileWriter: Send {
    /// Appends bytes.
    async fn write(&mut self, chunk: Bytes) -> Result<()>;

    /// Bytes in the file so far, including what was there before an append.
    fn size(&self) -> u64;

    /// Makes everything written durable and visible at the path.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Leaves what was written visible at the path for a later writer or `rename`, without
    /// waiting for it to be durable: an upload's chunk, made durable once, when it completes.
    async fn close(self: Box<Self>) -> Result<()> {
        self.commit().await
    }

    /// Discards the file.
    async fn cancel(self: Box<Self>) -> Result<()>;
}
