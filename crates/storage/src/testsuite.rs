//! The one conformance suite every backend passes, so the registry above relies on the contract
//! in [`driver`](crate::driver) rather than on one backend's habits.
//!
//! Cases are `pub async fn`s over `&dyn Driver`; [`conformance_tests!`](crate::conformance_tests)
//! expands each into its own `#[tokio::test]` so a failure names the case. Every case works below
//! a fresh prefix and must leave nothing there (distribution's `TearDownTest`), so backends that
//! share a bucket can run cases in parallel. Large content is a position-derived pattern checked
//! byte for byte as it streams back, so neither the backend nor the suite ever holds it whole.
//! The cases live in `content` (bytes in and out) and `tree` (paths, listings, moves, deletes).
#![allow(
    clippy::unwrap_used,
    reason = "a conformance case reports failure by panicking"
)]

use std::fmt::Debug;

use bytes::Bytes;
use futures::StreamExt;

use crate::driver::{Driver, Error, FileWriter};
use crate::path::StoragePath;

mod content;
pub mod peers;
mod tree;

pub use content::*;
pub use tree::*;

/// What a backend's test setup hands the suite: a driver, or a driver plus a guard (a temp dir,
/// a container) that must outlive it.
pub trait Fixture {
    /// The driver under test.
    fn driver(&self) -> &dyn Driver;
}

impl<D: Driver> Fixture for D {
    fn driver(&self) -> &dyn Driver {
        self
    }
}

impl<D: Driver, G> Fixture for (D, G) {
    fn driver(&self) -> &dyn Driver {
        &self.0
    }
}

/// Expands one `#[tokio::test]` per conformance case; the argument builds a fresh [`Fixture`]
/// for each case and may `.await`. With `optional:` it yields `Option<Fixture>`, `None` when the
/// backend's outside server is missing. The calling crate needs `tokio` with `macros`.
#[macro_export]
macro_rules! conformance_tests {
    (@cases $mode:ident $make:expr) => {
        $crate::conformance_tests!(@$mode $make;
            root_exists, valid_paths_round_trip, root_is_not_a_file, content_round_trip,
            streamed_round_trip, put_content_replaces_atomically, put_contents_writes_every_group,
            large_streamed_write,
            writer_truncates, writer_resume_small_chunks, writer_resume_large_chunks,
            writer_append_creates_missing_file, cancel_removes_file, reader_offsets,
            reader_past_end_is_invalid_offset, stat_file_and_directory,
            list_many_sorted_direct_children, list_missing_is_not_found, rename_replaces_target,
            rename_missing_source_is_not_found, delete_subtree, delete_only_deletes_subpaths,
            delete_missing_is_not_found, walk_returns_everything_below_root, concurrent_writers,
            concurrent_readers, missing_paths_are_not_found, rename_after_resume,
            scratch_round_trip, local_file_is_the_content,
        );
    };
    (@required $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = $make;
                $crate::testsuite::$case($crate::testsuite::Fixture::driver(&fixture)).await;
            }
        )*
    };
    (@optional $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                // `None` when the backend's peer is missing (it printed why, or panicked under CI).
                let Some(fixture) = $make else { return };
                $crate::testsuite::$case($crate::testsuite::Fixture::driver(&fixture)).await;
            }
        )*
    };
    (optional: $make:expr) => {
        $crate::conformance_tests!(@cases optional $make);
    };
    ($make:expr) => {
        $crate::conformance_tests!(@cases required $make);
    };
}

/// Chunk sizes that straddle every buffer boundary a backend might have.
const ODD_CHUNKS: [usize; 7] = [1, 13, 4093, 65_537, 1_048_573, 3_000_017, 777];
/// The most a reader may yield at once: streaming means bounded chunks, never the whole file.
const MAX_READ_CHUNK: usize = 8 << 20;

/// A fresh prefix for one case, so cases never see each other's files.
fn scratch(case: &str) -> StoragePath {
    let id = uuid::Uuid::new_v4().simple();
    StoragePath::new(format!("/wharf-suite-{case}-{id}")).unwrap()
}

fn at(root: &StoragePath, rel: &str) -> StoragePath {
    root.join(rel).unwrap()
}

/// Deletes the case's prefix and checks that nothing, not even an empty directory, remains.
async fn finish(d: &dyn Driver, root: &StoragePath) {
    match d.delete(root).await {
        Err(e) if !e.is_not_found() => panic!("cleanup of {root}: {e}"),
        _ => {}
    }
    assert_not_found(d.stat(root).await, "stat after cleanup");
    assert_not_found(d.list(root).await, "list after cleanup");
}

#[track_caller]
fn assert_not_found<T: Debug>(result: Result<T, Error>, what: &str) {
    if !matches!(result, Err(Error::NotFound { .. })) {
        panic!("{what}: expected NotFound, got {result:?}");
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The `len` bytes at `start` of an endless pseudo-random stream named by `seed`.
fn pattern(seed: u64, start: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut pos = start;
    while out.len() < len {
        let word = splitmix(seed.rotate_left(40) ^ (pos / 8)).to_le_bytes();
        let skip = (pos % 8) as usize;
        let n = (8 - skip).min(len - out.len());
        out.extend_from_slice(&word[skip..skip + n]);
        pos += n as u64;
    }
    out
}

/// Writes pattern bytes `start..start + len` through `w`, cycling through `sizes` for chunks.
async fn write_pattern(w: &mut dyn FileWriter, seed: u64, start: u64, len: u64, sizes: &[usize]) {
    let (mut pos, end) = (start, start + len);
    for &size in sizes.iter().cycle() {
        if pos >= end {
            break;
        }
        let n = (size as u64).min(end - pos);
        w.write(Bytes::from(pattern(seed, pos, n as usize)))
            .await
            .unwrap();
        pos += n;
        assert_eq!(w.size(), pos, "size() counts every byte of the file");
    }
}

/// Streams `path` from `offset`, checking each byte against the pattern and the total length.
async fn verify_pattern(d: &dyn Driver, path: &StoragePath, seed: u64, offset: u64, len: u64) {
    let mut chunks = d.reader(path, offset).await.unwrap();
    let mut pos = offset;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= MAX_READ_CHUNK, "{} byte chunk", chunk.len());
        let expected = pattern(seed, pos, chunk.len());
        assert!(
            chunk[..] == expected[..],
            "{path}: content differs in {pos}..+{}",
            chunk.len()
        );
        pos += chunk.len() as u64;
    }
    assert_eq!(pos, len, "{path}: length read back from {offset}");
}

async fn read_all(d: &dyn Driver, path: &StoragePath, offset: u64) -> Vec<u8> {
    let mut chunks = d.reader(path, offset).await.unwrap();
    let mut out = Vec::new();
    while let Some(chunk) = chunks.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn write_all(d: &dyn Driver, path: &StoragePath, content: &[u8]) {
    let mut w = d.writer(path, false).await.unwrap();
    for chunk in content.chunks(64 * 1024) {
        w.write(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    assert_eq!(w.size(), content.len() as u64);
    w.commit().await.unwrap();
}
