//! Streamed writes for stores whose multipart API cannot be used (GCS: OpenDAL's chunked GCS
//! writer speaks the XML multipart API, which emulators reject): every `chunk` bytes become a
//! part object, written in one request, and on close the parts are joined server-side with
//! native compose (at most 32 sources per call, so larger files are joined in rounds).
//!
//! Part and intermediate objects live below the file's `<key>~segments/` prefix, outside the
//! path grammar, so listings never show them and deleting the file removes any left behind by
//! a crash. Memory per writer is about `chunk × (concurrent + 1)`.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use opendal::{Buffer, ErrorKind, Operator};
use tokio::task::JoinHandle;

use super::backend;
use crate::driver::Result;

/// GCS compose takes at most this many sources per request.
pub(super) const MAX_SOURCES: usize = 32;
/// Object deletions in flight at once where there is no batch delete.
const DELETE_CONCURRENCY: usize = 8;

/// Deletes `keys` one request each (GCS's JSON batch endpoint is not used: emulators lack it);
/// keys already gone are no error.
pub(super) async fn delete_each(
    name: &'static str,
    op: &Operator,
    keys: Vec<String>,
) -> Result<()> {
    let mut results = futures::stream::iter(keys)
        .map(|key| {
            let op = op.clone();
            async move { op.delete(&key).await }
        })
        .buffer_unordered(DELETE_CONCURRENCY);
    while let Some(result) = results.next().await {
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(backend(name, e)),
        }
    }
    Ok(())
}

/// A store's own way to join objects, for stores OpenDAL has no compose for (Swift).
#[async_trait::async_trait]
pub trait Join: Send + Sync + 'static {
    /// Writes `to` as the concatenation of `sources` (keys relative to the operator's root).
    async fn join(&self, sources: Vec<String>, to: &str) -> Result<()>;
    /// The most sources one [`join`](Join::join) takes.
    fn max_sources(&self) -> usize;
}

/// How part objects become one object: OpenDAL's native compose (GCS) or a [`Join`].
#[derive(Clone)]
pub enum Joiner {
    /// `Operator::compose`.
    Native,
    /// The store's own join.
    Custom(Arc<dyn Join>),
}

impl Joiner {
    fn max_sources(&self) -> usize {
        match self {
            Joiner::Native => MAX_SOURCES,
            Joiner::Custom(j) => j.max_sources().max(2),
        }
    }

    async fn join(
        &self,
        name: &'static str,
        op: &Operator,
        sources: Vec<String>,
        to: &str,
    ) -> Result<()> {
        match self {
            Joiner::Native => op
                .compose(sources, to)
                .await
                .map(drop)
                .map_err(|e| backend(name, e)),
            Joiner::Custom(j) => j.join(sources, to).await,
        }
    }
}

/// Joins `sources` (in order) into `to`; intermediates are named after `scratch` and returned
/// so the caller deletes them with the sources.
pub(super) async fn compose_all(
    name: &'static str,
    op: &Operator,
    joiner: &Joiner,
    mut sources: Vec<String>,
    to: &str,
    scratch: &str,
) -> Result<Vec<String>> {
    let mut temps = Vec::new();
    let mut round = 0;
    let max = joiner.max_sources();
    while sources.len() > max {
        let mut next = Vec::with_capacity(sources.len().div_ceil(max));
        for (i, group) in sources.chunks(max).enumerate() {
            if let [single] = group {
                next.push(single.clone());
                continue;
            }
            let temp = format!("{scratch}c{round}-{i:05}");
            let joined = joiner.join(name, op, group.to_vec(), &temp).await;
            temps.push(temp.clone());
            if let Err(e) = joined {
                let _ = delete_each(name, op, temps).await;
                return Err(e);
            }
            next.push(temp);
        }
        sources = next;
        round += 1;
    }
    if let Err(e) = joiner.join(name, op, sources, to).await {
        let _ = delete_each(name, op, temps).await;
        return Err(e);
    }
    Ok(temps)
}

/// One object written as part objects joined by compose; see the module docs.
pub(super) struct ComposeSink {
    name: &'static str,
    op: Operator,
    joiner: Joiner,
    target: String,
    scratch: String,
    chunk: usize,
    concurrent: usize,
    buf: Vec<Bytes>,
    buffered: usize,
    parts: Vec<String>,
    uploads: VecDeque<JoinHandle<opendal::Result<()>>>,
}

impl ComposeSink {
    /// A sink for `target`; its parts are named `<scratch><n>`.
    pub(super) fn new(
        name: &'static str,
        op: Operator,
        joiner: Joiner,
        target: String,
        scratch: String,
        chunk: usize,
        concurrent: usize,
    ) -> Self {
        ComposeSink {
            name,
            op,
            joiner,
            target,
            scratch,
            chunk: chunk.max(1),
            concurrent: concurrent.max(1),
            buf: Vec::new(),
            buffered: 0,
            parts: Vec::new(),
            uploads: VecDeque::new(),
        }
    }

    pub(super) async fn write(&mut self, chunk: Bytes) -> Result<()> {
        self.buffered += chunk.len();
        self.buf.push(chunk);
        if self.buffered >= self.chunk {
            self.flush().await?;
        }
        Ok(())
    }

    /// Starts the upload of the buffered bytes as the next part; waits while too many run.
    async fn flush(&mut self) -> Result<()> {
        let part = format!("{}{:05}", self.scratch, self.parts.len());
        let body = Buffer::from(std::mem::take(&mut self.buf));
        self.buffered = 0;
        let op = self.op.clone();
        let key = part.clone();
        self.uploads.push_back(tokio::spawn(
            async move { op.write(&key, body).await.map(drop) },
        ));
        self.parts.push(part);
        while self.uploads.len() > self.concurrent {
            self.wait_oldest().await?;
        }
        Ok(())
    }

    async fn wait_oldest(&mut self) -> Result<()> {
        let Some(upload) = self.uploads.pop_front() else {
            return Ok(());
        };
        match upload.await {
            Ok(result) => result.map_err(|e| backend(self.name, e)),
            Err(e) => Err(backend(self.name, e)),
        }
    }

    /// Writes the target: in one request when it fits one part, else parts + compose.
    pub(super) async fn close(&mut self) -> Result<()> {
        if self.parts.is_empty() {
            let body = Buffer::from(std::mem::take(&mut self.buf));
            self.buffered = 0;
            return self
                .op
                .write(&self.target, body)
                .await
                .map(drop)
                .map_err(|e| backend(self.name, e));
        }
        if self.buffered > 0 {
            self.flush().await?;
        }
        while !self.uploads.is_empty() {
            if let Err(e) = self.wait_oldest().await {
                self.abort().await;
                return Err(e);
            }
        }
        let parts = std::mem::take(&mut self.parts);
        let temps = compose_all(
            self.name,
            &self.op,
            &self.joiner,
            parts.clone(),
            &self.target,
            &self.scratch,
        )
        .await;
        let temps = match temps {
            Ok(temps) => temps,
            Err(e) => {
                let _ = delete_each(self.name, &self.op, parts).await;
                return Err(e);
            }
        };
        delete_each(
            self.name,
            &self.op,
            parts.into_iter().chain(temps).collect(),
        )
        .await
    }

    /// Stops the uploads and deletes the parts written so far.
    pub(super) async fn abort(&mut self) {
        for upload in self.uploads.drain(..) {
            upload.abort();
            let _ = upload.await;
        }
        self.buf.clear();
        self.buffered = 0;
        let parts = std::mem::take(&mut self.parts);
        if let Err(e) = delete_each(self.name, &self.op, parts).await {
            tracing::warn!(error = %e, "deleting the parts of a cancelled write");
        }
    }
}

/// Where a write's bytes go: OpenDAL's multipart writer, or parts joined by compose.
pub(super) enum Sink {
    /// A multipart upload (S3, Azure blocks, OSS).
    Multipart(opendal::Writer),
    /// Part objects plus compose (GCS).
    Compose(ComposeSink),
}

impl Sink {
    pub(super) async fn write(&mut self, name: &'static str, chunk: Bytes) -> Result<()> {
        match self {
            Sink::Multipart(w) => w.write(chunk).await.map_err(|e| backend(name, e)),
            Sink::Compose(s) => s.write(chunk).await,
        }
    }

    pub(super) async fn close(&mut self, name: &'static str) -> Result<()> {
        match self {
            Sink::Multipart(w) => w.close().await.map(drop).map_err(|e| backend(name, e)),
            Sink::Compose(s) => s.close().await,
        }
    }

    pub(super) async fn abort(&mut self) {
        match self {
            Sink::Multipart(w) => {
                let _ = w.abort().await;
            }
            Sink::Compose(s) => s.abort().await,
        }
    }
}
