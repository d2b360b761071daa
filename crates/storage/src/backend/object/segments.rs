//! Appendable files on a store that cannot append: segment objects plus a manifest.
//!
//! A file that an `append` writer continued is stored as
//!
//! ```text
//! <key>                               manifest: "wharf-segments 1\n" then "<size> <name>\n" per
//!                                     segment; user metadata wharfsegmentedsize = total
//! <key>~segments/<offset>-<random>    the bytes, in order
//! ```
//!
//! The manifest is replaced by one PUT when a writer commits, so a reader sees the file before
//! or after that writer, never between. Segment names carry a random part, so a retried or
//! concurrent request never overwrites a segment a manifest already lists.

use bytes::Bytes;
use opendal::{ErrorKind, Operator};

use super::compose::{ComposeSink, Sink, compose_all, delete_each};
use super::{CopyPlan, MAX_COPY, Writes, backend, key, map_err};
use crate::driver::{FileWriter, Result};
use crate::path::StoragePath;

const MAGIC: &[u8] = b"wharf-segments 1\n";
/// User metadata on a manifest object: the file's total size. Lower case (S3 lower-cases
/// keys) and letters only (Azure wants C# identifiers).
const SIZE_KEY: &str = "wharfsegmentedsize";

/// The prefix holding a file's segments.
pub(super) fn dir(path: &StoragePath) -> String {
    format!("{}~segments/", path.relative())
}

/// The file a segment key belongs to.
pub(super) fn owner(key: &str) -> Option<StoragePath> {
    let (owner, _) = key.split_once("~segments/")?;
    StoragePath::new(format!("/{owner}")).ok()
}

/// The total size recorded on a manifest object; `None` for a plain object.
pub(super) fn total_size(meta: &opendal::Metadata) -> Option<u64> {
    meta.user_metadata()?.get(SIZE_KEY)?.parse().ok()
}

fn segment_name(offset: u64) -> String {
    format!("{offset:020}-{}", uuid::Uuid::new_v4().simple())
}

/// The ordered segments of a file: `(size, name)`.
#[derive(Debug, Clone, Default)]
pub(super) struct Manifest {
    segments: Vec<(u64, String)>,
}

impl Manifest {
    /// Whether content read from a key could be a manifest (confirmed by its metadata).
    pub(super) fn may_be(content: &[u8]) -> bool {
        content.starts_with(MAGIC)
    }

    pub(super) async fn read(
        name: &'static str,
        op: &Operator,
        path: &StoragePath,
    ) -> Result<Self> {
        let content = op
            .read(key(path))
            .await
            .map_err(map_err(name, path))?
            .to_bytes();
        Self::parse(&content)
            .ok_or_else(|| backend(name, format!("{path}: unreadable segment manifest")))
    }

    fn parse(content: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(content.strip_prefix(MAGIC)?).ok()?;
        let segments = text
            .lines()
            .map(|line| {
                let (size, name) = line.split_once(' ')?;
                Some((size.parse().ok()?, name.to_owned()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Manifest { segments })
    }

    fn render(&self) -> Bytes {
        let mut out = MAGIC.to_vec();
        for (size, name) in &self.segments {
            out.extend_from_slice(format!("{size} {name}\n").as_bytes());
        }
        out.into()
    }

    fn total(&self) -> u64 {
        self.segments.iter().map(|(size, _)| size).sum()
    }

    async fn write(&self, name: &'static str, op: &Operator, path: &StoragePath) -> Result<()> {
        op.write_with(key(path), self.render())
            .user_metadata([(SIZE_KEY.to_owned(), self.total().to_string())])
            .await
            .map(drop)
            .map_err(|e| backend(name, e))
    }

    /// `(key, start, len)` of every segment piece from `offset` to the end.
    pub(super) fn ranges_from(&self, path: &StoragePath, offset: u64) -> Vec<(String, u64, u64)> {
        let mut pos = 0;
        let mut out = Vec::new();
        for (size, name) in &self.segments {
            let end = pos + size;
            if end > offset && *size > 0 {
                let from = offset.saturating_sub(pos);
                out.push((format!("{}{name}", dir(path)), from, size - from));
            }
            pos = end;
        }
        out
    }

    /// Writes the file's bytes as one plain object at `to`: whole parts are copied server-side
    /// (UploadPartCopy); only the bytes needed to fill a part to the 5 MiB minimum pass through.
    pub(super) async fn assemble(
        &self,
        name: &'static str,
        op: &Operator,
        path: &StoragePath,
        to: &str,
        chunk: usize,
        writes: &Writes,
    ) -> Result<()> {
        if let Writes::Compose(joiner) = writes {
            let sources = self
                .segments
                .iter()
                .filter(|(size, _)| *size > 0)
                .map(|(_, segment)| format!("{}{segment}", dir(path)))
                .collect::<Vec<_>>();
            if sources.is_empty() {
                return op
                    .write(to, Bytes::new())
                    .await
                    .map(drop)
                    .map_err(|e| backend(name, e));
            }
            let scratch = format!("{}{}-join-", dir(path), uuid::Uuid::new_v4().simple());
            let temps = compose_all(name, op, joiner, sources, to, &scratch).await?;
            return delete_each(name, op, temps).await;
        }
        let mut w = op
            .writer_with(to)
            .chunk(chunk)
            .concurrent(2)
            .await
            .map_err(|e| backend(name, e))?;
        for (size, segment) in &self.segments {
            let source = format!("{}{segment}", dir(path));
            let mut start = 0;
            while start < *size {
                let end = (*size).min(start + MAX_COPY);
                if let Err(e) = w.copy_from(&source, start..end).await {
                    let _ = w.abort().await;
                    return Err(backend(name, e));
                }
                start = end;
            }
        }
        w.close().await.map(drop).map_err(|e| backend(name, e))
    }
}

/// Deletes a file and its segments, whatever shape it has; a missing file is no error.
pub(super) async fn remove_file(
    name: &'static str,
    op: &Operator,
    path: &StoragePath,
    writes: &Writes,
) -> Result<()> {
    let fail = |e| backend(name, e);
    op.delete(key(path)).await.map_err(fail)?;
    let lister = op.lister_with(&dir(path)).recursive(true).await;
    let segments: Vec<String> = match lister {
        Ok(lister) => {
            use futures::TryStreamExt;
            let entries: Vec<opendal::Entry> = lister.try_collect().await.map_err(fail)?;
            entries.into_iter().map(|e| e.path().to_owned()).collect()
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(fail(e)),
    };
    if matches!(writes, Writes::Compose(_)) {
        delete_each(name, op, segments).await?;
    } else if !segments.is_empty() {
        op.delete_iter(segments).await.map_err(fail)?;
    }
    Ok(())
}

/// What an `append` writer continues.
pub(super) enum Base {
    /// Nothing (or an empty file): the writer writes a plain object.
    None,
    /// A plain object of this size: it becomes the first segment on commit.
    Plain(u64),
    /// A segmented file.
    Segmented(Manifest),
}

impl Base {
    fn size(&self) -> u64 {
        match self {
            Base::None => 0,
            Base::Plain(size) => *size,
            Base::Segmented(m) => m.total(),
        }
    }
}

/// A streamed write: a multipart upload of `chunk`-sized parts, so memory stays bounded.
pub(super) struct SegmentWriter {
    name: &'static str,
    op: Operator,
    path: StoragePath,
    base: Base,
    copy: CopyPlan,
    chunk: usize,
    concurrent: usize,
    writes: Writes,
    /// Where the new bytes go: the file's key, or a new segment's.
    target: String,
    segment: String,
    inner: Option<Sink>,
    written: u64,
}

impl SegmentWriter {
    /// A writer of `path` continuing `base`; `parts` is (part size, parts in flight).
    pub(super) fn new(
        name: &'static str,
        op: Operator,
        path: StoragePath,
        base: Base,
        copy: CopyPlan,
        (chunk, concurrent): (usize, usize),
        writes: Writes,
    ) -> Self {
        let segment = segment_name(base.size());
        let target = match base {
            Base::None => key(&path).to_owned(),
            _ => format!("{}{segment}", dir(&path)),
        };
        SegmentWriter {
            name,
            op,
            path,
            base,
            copy,
            chunk,
            concurrent,
            writes,
            target,
            segment,
            inner: None,
            written: 0,
        }
    }
}

#[async_trait::async_trait]
impl FileWriter for SegmentWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let inner = match &mut self.inner {
            Some(inner) => inner,
            empty => empty.insert(match &self.writes {
                Writes::Multipart => Sink::Multipart(
                    self.op
                        .writer_with(&self.target)
                        .chunk(self.chunk)
                        .concurrent(self.concurrent)
                        .await
                        .map_err(|e| backend(self.name, e))?,
                ),
                Writes::Compose(joiner) => Sink::Compose(ComposeSink::new(
                    self.name,
                    self.op.clone(),
                    joiner.clone(),
                    self.target.clone(),
                    format!("{}{}-part-", dir(&self.path), uuid::Uuid::new_v4().simple()),
                    self.chunk,
                    self.concurrent,
                )),
            }),
        };
        let len = chunk.len() as u64;
        inner.write(self.name, chunk).await?;
        self.written += len;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.base.size() + self.written
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        if let Some(inner) = &mut self.inner {
            inner.close(self.name).await?;
        }
        let mut manifest = match std::mem::replace(&mut self.base, Base::None) {
            Base::None if self.inner.is_none() => {
                return self
                    .op
                    .write(&self.target, Bytes::new())
                    .await
                    .map(drop)
                    .map_err(|e| backend(self.name, e));
            }
            Base::None => return Ok(()),
            _ if self.written == 0 => return Ok(()),
            Base::Plain(size) => {
                let first = segment_name(0);
                let to = format!("{}{first}", dir(&self.path));
                self.copy
                    .run(self.name, &self.op, key(&self.path), &to, size)
                    .await?;
                Manifest {
                    segments: vec![(size, first)],
                }
            }
            Base::Segmented(manifest) => manifest,
        };
        manifest
            .segments
            .push((self.written, std::mem::take(&mut self.segment)));
        manifest.write(self.name, &self.op, &self.path).await
    }

    async fn cancel(mut self: Box<Self>) -> Result<()> {
        if let Some(inner) = &mut self.inner {
            inner.abort().await;
        }
        remove_file(self.name, &self.op, &self.path, &self.writes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_round_trip_and_ranges() {
        let m = Manifest {
            segments: vec![(10, "a".into()), (0, "e".into()), (5, "b".into())],
        };
        let parsed = Manifest::parse(&m.render()).unwrap();
        assert_eq!(parsed.segments, m.segments);
        assert_eq!(parsed.total(), 15);
        let p = StoragePath::new("/u/data").unwrap();
        assert_eq!(
            parsed.ranges_from(&p, 12),
            [("u/data~segments/b".to_owned(), 2, 3)]
        );
        assert_eq!(parsed.ranges_from(&p, 0).len(), 2);
        assert!(parsed.ranges_from(&p, 15).is_empty());
        assert!(Manifest::parse(b"not a manifest").is_none());
        assert_eq!(owner("u/data~segments/x"), Some(p));
    }
}
