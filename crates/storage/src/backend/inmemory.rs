//! The `inmemory` backend: a sorted map of path to bytes behind a lock, for tests and one-process
//! demos. Directories are implicit, as on object stores: a path with files below it is one.
//!
//! Semantics follow the `filesystem` backend case for case, so the conformance suite holds both.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use crate::driver::{ByteStream, Driver, Error, FileInfo, FileWriter, Result};
use crate::path::{InvalidPath, StoragePath};

const NAME: &str = "inmemory";
/// Bytes per streamed chunk, so a large file is never copied out whole.
const READ_CHUNK: usize = 512 * 1024;

/// One stored file.
#[derive(Debug)]
struct Entry {
    data: Vec<u8>,
    modified: SystemTime,
}

impl Entry {
    fn new(data: Vec<u8>) -> Self {
        Entry {
            data,
            modified: SystemTime::now(),
        }
    }
}

/// Files keyed by their path string: keys below a directory are one contiguous range.
type Files = BTreeMap<String, Entry>;

/// A whole storage tree in process memory, lost on exit; the suite's reference backend.
#[derive(Debug, Default)]
pub struct InMemoryDriver {
    files: Arc<RwLock<Files>>,
}

impl InMemoryDriver {
    /// An empty tree, for tests and `storage: inmemory`.
    pub fn new() -> Self {
        Self::default()
    }
}

/// A panic elsewhere cannot leave a map entry half-written, so a poisoned lock is still usable.
fn read(files: &RwLock<Files>) -> RwLockReadGuard<'_, Files> {
    files.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(files: &RwLock<Files>) -> RwLockWriteGuard<'_, Files> {
    files.write().unwrap_or_else(PoisonError::into_inner)
}

/// The root is a directory, never a file: file operations on it are refused as distribution does.
fn reject_root(path: &StoragePath) -> Result<()> {
    if path.is_root() {
        return Err(Error::InvalidPath(InvalidPath(path.to_string())));
    }
    Ok(())
}

fn not_found(path: &StoragePath) -> Error {
    Error::NotFound { path: path.clone() }
}

fn conflict(path: &StoragePath, why: &str) -> Error {
    Error::Backend {
        driver: NAME,
        source: format!("{path}: {why}").into(),
    }
}

/// Entries strictly below `dir`, in path order.
fn descendants<'a>(
    files: &'a Files,
    dir: &StoragePath,
) -> impl Iterator<Item = (&'a String, &'a Entry)> {
    let prefix = if dir.is_root() {
        "/".to_owned()
    } else {
        format!("{dir}/")
    };
    files
        .range::<str, _>((Bound::Included(prefix.as_str()), Bound::Unbounded))
        .take_while(move |(key, _)| key.starts_with(&prefix))
}

/// Refuses a file where a directory is (or below a file), as a real filesystem would.
fn check_file_slot(files: &Files, path: &StoragePath) -> Result<()> {
    if descendants(files, path).next().is_some() {
        return Err(conflict(path, "is a directory"));
    }
    let mut parent = path.parent();
    while let Some(dir) = parent {
        if files.contains_key(dir.as_str()) {
            return Err(conflict(path, "a parent is a file"));
        }
        parent = dir.parent();
    }
    Ok(())
}

#[async_trait]
impl Driver for InMemoryDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        reject_root(path)?;
        let files = read(&self.files);
        let entry = files.get(path.as_str()).ok_or_else(|| not_found(path))?;
        Ok(Bytes::copy_from_slice(&entry.data))
    }

    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        reject_root(path)?;
        let mut files = write(&self.files);
        check_file_slot(&files, path)?;
        files.insert(path.as_str().to_owned(), Entry::new(content.to_vec()));
        Ok(())
    }

    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        reject_root(path)?;
        let len = read(&self.files)
            .get(path.as_str())
            .ok_or_else(|| not_found(path))?
            .data
            .len();
        let start = usize::try_from(offset).ok().filter(|&o| o <= len);
        let start = start.ok_or_else(|| Error::InvalidOffset {
            path: path.clone(),
            offset,
        })?;
        let (files, key) = (Arc::clone(&self.files), path.as_str().to_owned());
        let chunks = futures::stream::try_unfold(start, move |pos| {
            let chunk = read(&files).get(&key).map(|entry| {
                let from = pos.min(entry.data.len());
                let to = (from + READ_CHUNK).min(entry.data.len());
                Bytes::copy_from_slice(&entry.data[from..to])
            });
            futures::future::ready(match chunk {
                Some(chunk) if chunk.is_empty() => Ok(None),
                Some(chunk) => {
                    let next = pos + chunk.len();
                    Ok(Some((chunk, next)))
                }
                None => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{key} was deleted while being read"),
                )),
            })
        });
        Ok(chunks.boxed())
    }

    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        reject_root(path)?;
        let mut files = write(&self.files);
        check_file_slot(&files, path)?;
        let key = path.as_str().to_owned();
        let size = match files.get_mut(&key) {
            Some(entry) if append => entry.data.len() as u64,
            _ => {
                files.insert(key, Entry::new(Vec::new()));
                0
            }
        };
        Ok(Box::new(InMemoryWriter {
            files: Arc::clone(&self.files),
            path: path.clone(),
            size,
        }))
    }

    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        let files = read(&self.files);
        if let Some(entry) = files.get(path.as_str()) {
            return Ok(FileInfo {
                path: path.clone(),
                size: entry.data.len() as u64,
                modified: entry.modified,
                is_dir: false,
            });
        }
        let newest = descendants(&files, path).map(|(_, e)| e.modified).max();
        if newest.is_none() && !path.is_root() {
            return Err(not_found(path));
        }
        Ok(FileInfo {
            path: path.clone(),
            size: 0,
            modified: newest.unwrap_or_else(SystemTime::now),
            is_dir: true,
        })
    }

    async fn list(&self, dir: &StoragePath) -> Result<Vec<StoragePath>> {
        let files = read(&self.files);
        let skip = if dir.is_root() {
            1
        } else {
            dir.as_str().len() + 1
        };
        let children: BTreeSet<StoragePath> = descendants(&files, dir)
            .map(|(key, _)| {
                let end = key[skip..].find('/').map_or(key.len(), |i| skip + i);
                StoragePath::new(&key[..end]).expect("invariant: a stored key's prefix is a path")
            })
            .collect();
        if children.is_empty() && !dir.is_root() {
            return Err(not_found(dir));
        }
        Ok(children.into_iter().collect())
    }

    async fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        reject_root(from)?;
        reject_root(to)?;
        let mut files = write(&self.files);
        if !files.contains_key(from.as_str()) {
            if descendants(&files, from).next().is_some() {
                // Object stores move single objects; directory moves are not part of the contract.
                return Err(Error::Unsupported { driver: NAME });
            }
            return Err(not_found(from));
        }
        check_file_slot(&files, to)?;
        if let Some(entry) = files.remove(from.as_str()) {
            files.insert(to.as_str().to_owned(), entry);
        }
        Ok(())
    }

    async fn delete(&self, path: &StoragePath) -> Result<()> {
        let mut files = write(&self.files);
        if path.is_root() {
            files.clear();
            return Ok(());
        }
        let mut doomed: Vec<String> = descendants(&files, path).map(|(k, _)| k.clone()).collect();
        doomed.push(path.as_str().to_owned());
        let removed = doomed
            .iter()
            .filter(|k| files.remove(k.as_str()).is_some())
            .count();
        if removed == 0 {
            return Err(not_found(path));
        }
        Ok(())
    }
}

/// Appends straight into the shared map, so other handles see bytes as soon as they are written.
struct InMemoryWriter {
    files: Arc<RwLock<Files>>,
    path: StoragePath,
    size: u64,
}

#[async_trait]
impl FileWriter for InMemoryWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let mut files = write(&self.files);
        let entry = files
            .get_mut(self.path.as_str())
            .ok_or_else(|| not_found(&self.path))?;
        entry.data.extend_from_slice(&chunk);
        entry.modified = SystemTime::now();
        self.size += chunk.len() as u64;
        Ok(())
    }

    fn size(&self) -> u64 {
        self.size
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        write(&self.files).remove(self.path.as_str());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::conformance_tests!(InMemoryDriver::new());

    fn path(s: &str) -> StoragePath {
        StoragePath::new(s).unwrap()
    }

    #[tokio::test]
    async fn file_and_directory_cannot_share_a_path() {
        let d = InMemoryDriver::new();
        d.put_content(&path("/a/b"), Bytes::new()).await.unwrap();
        assert!(d.put_content(&path("/a"), Bytes::new()).await.is_err());
        assert!(d.put_content(&path("/a/b/c"), Bytes::new()).await.is_err());
        assert!(d.writer(&path("/a"), true).await.is_err());
        assert!(d.get_content(&path("/a")).await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn directory_rename_is_unsupported() {
        let d = InMemoryDriver::new();
        d.put_content(&path("/dir/file"), Bytes::new())
            .await
            .unwrap();
        let moved = d.rename(&path("/dir"), &path("/elsewhere")).await;
        assert!(matches!(moved, Err(Error::Unsupported { .. })));
    }
}
