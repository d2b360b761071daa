//! Storage metrics: a [`Driver`] decorator that times every operation and counts failures by
//! driver and operation, as distribution's `base` driver wrapper does. Applied only when
//! Prometheus is enabled, so an unscraped registry pays nothing.
//!
//! "Not found" is an answer, not a failure (the registry probes for absent links all the time),
//! so it is timed but not counted in `wharf_storage_errors_total`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use wharf_storage::{ByteStream, Driver, FileInfo, FileWriter, Result, StoragePath};

/// Upper bounds (seconds): storage calls are faster than API requests, so the scale starts
/// lower than the HTTP histogram's.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One operation's latency histogram and error count.
#[derive(Default)]
struct Op {
    buckets: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
    errors: u64,
}

/// Per (driver, operation) statistics, shared by the decorator and the exporter.
#[derive(Default)]
pub struct StorageOps {
    ops: Mutex<BTreeMap<(&'static str, &'static str), Op>>,
}

impl StorageOps {
    /// Records one call of `op` on `driver` that started at `start`.
    fn observe<T>(&self, driver: &'static str, op: &'static str, start: Instant, r: &Result<T>) {
        let seconds = start.elapsed().as_secs_f64();
        let failed = matches!(r, Err(e) if !e.is_not_found());
        let mut ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let o = ops.entry((driver, op)).or_default();
        for (bucket, bound) in o.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        o.sum += seconds;
        o.count += 1;
        o.errors += u64::from(failed);
    }

    /// Appends the storage series in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let ops = self.ops.lock().unwrap_or_else(|p| p.into_inner());
        let name = "wharf_storage_operation_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Storage driver call latency by driver and operation.\n# TYPE {name} histogram"
        );
        for ((driver, op), o) in ops.iter() {
            let labels = format!("driver=\"{driver}\",operation=\"{op}\"");
            for (n, bound) in o.buckets.iter().zip(BUCKETS) {
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {n}");
            }
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", o.count);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", o.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", o.count);
        }
        let name = "wharf_storage_errors_total";
        let _ = writeln!(
            out,
            "# HELP {name} Failed storage driver calls (not-found excluded) by driver and operation.\n# TYPE {name} counter"
        );
        for ((driver, op), o) in ops.iter() {
            let _ = writeln!(
                out,
                "{name}{{driver=\"{driver}\",operation=\"{op}\"}} {}",
                o.errors
            );
        }
    }
}

impl super::Source for StorageOps {
    fn render(&self, out: &mut String) {
        StorageOps::render(self, out);
    }
}

/// `driver` with every call recorded in `ops`.
pub fn instrument(driver: Arc<dyn Driver>, ops: Arc<StorageOps>) -> Arc<dyn Driver> {
    Arc::new(Instrumented { inner: driver, ops })
}

/// The decorator: same behaviour as `inner`, plus timing.
struct Instrumented {
    inner: Arc<dyn Driver>,
    ops: Arc<StorageOps>,
}

impl Instrumented {
    fn record<T>(&self, op: &'static str, start: Instant, r: Result<T>) -> Result<T> {
        self.ops.observe(self.inner.name(), op, start, &r);
        r
    }
}

#[async_trait]
impl Driver for Instrumented {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn get_content(&self, path: &StoragePath) -> Result<Bytes> {
        let start = Instant::now();
        let r = self.inner.get_content(path).await;
        self.record("get_content", start, r)
    }

    async fn put_content(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.put_content(path, content).await;
        self.record("put_content", start, r)
    }

    async fn put_contents(&self, groups: Vec<Vec<(StoragePath, Bytes)>>) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.put_contents(groups).await;
        self.record("put_contents", start, r)
    }

    async fn put_scratch(&self, path: &StoragePath, content: Bytes) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.put_scratch(path, content).await;
        self.record("put_scratch", start, r)
    }

    async fn reader(&self, path: &StoragePath, offset: u64) -> Result<ByteStream> {
        let start = Instant::now();
        let r = self.inner.reader(path, offset).await;
        self.record("reader", start, r)
    }

    async fn writer(&self, path: &StoragePath, append: bool) -> Result<Box<dyn FileWriter>> {
        let start = Instant::now();
        let r = self.inner.writer(path, append).await.map(|w| {
            Box::new(InstrumentedWriter {
                inner: w,
                driver: self.inner.name(),
                ops: self.ops.clone(),
            }) as Box<dyn FileWriter>
        });
        self.record("writer", start, r)
    }

    async fn stat(&self, path: &StoragePath) -> Result<FileInfo> {
        let start = Instant::now();
        let r = self.inner.stat(path).await;
        self.record("stat", start, r)
    }

    async fn list(&self, dir: &StoragePath) -> Result<Vec<StoragePath>> {
        let start = Instant::now();
        let r = self.inner.list(dir).await;
        self.record("list", start, r)
    }

    async fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.rename(from, to).await;
        self.record("rename", start, r)
    }

    async fn delete(&self, path: &StoragePath) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.delete(path).await;
        self.record("delete", start, r)
    }

    async fn local_file(&self, path: &StoragePath) -> Result<Option<std::fs::File>> {
        let start = Instant::now();
        let r = self.inner.local_file(path).await;
        self.record("local_file", start, r)
    }

    async fn redirect_url(&self, path: &StoragePath) -> Result<Option<String>> {
        let start = Instant::now();
        let r = self.inner.redirect_url(path).await;
        self.record("redirect_url", start, r)
    }

    async fn walk(&self, root: &StoragePath) -> Result<Vec<FileInfo>> {
        let start = Instant::now();
        let r = self.inner.walk(root).await;
        self.record("walk", start, r)
    }
}

/// A writer whose commit and cancel are timed (`writer_commit`, `writer_cancel`); chunk writes
/// are counted only when they fail (`writer_write`), as timing every chunk would cost more
/// than it tells.
struct InstrumentedWriter {
    inner: Box<dyn FileWriter>,
    driver: &'static str,
    ops: Arc<StorageOps>,
}

#[async_trait]
impl FileWriter for InstrumentedWriter {
    async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.write(chunk).await;
        if r.is_err() {
            self.ops.observe(self.driver, "writer_write", start, &r);
        }
        r
    }

    fn size(&self) -> u64 {
        self.inner.size()
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.commit().await;
        self.ops.observe(self.driver, "writer_commit", start, &r);
        r
    }

    async fn close(self: Box<Self>) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.close().await;
        self.ops.observe(self.driver, "writer_close", start, &r);
        r
    }

    async fn cancel(self: Box<Self>) -> Result<()> {
        let start = Instant::now();
        let r = self.inner.cancel().await;
        self.ops.observe(self.driver, "writer_cancel", start, &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn calls_are_timed_and_only_real_failures_counted() {
        let ops = Arc::new(StorageOps::default());
        let driver = instrument(
            Arc::new(wharf_storage::backend::inmemory::InMemoryDriver::new()),
            ops.clone(),
        );
        let path = StoragePath::new("/a/b").unwrap();
        driver
            .put_content(&path, Bytes::from_static(b"x"))
            .await
            .unwrap();
        driver.stat(&path).await.unwrap();
        let missing = StoragePath::new("/nope").unwrap();
        assert!(driver.stat(&missing).await.unwrap_err().is_not_found());
        let mut w = driver
            .writer(&StoragePath::new("/w").unwrap(), false)
            .await
            .unwrap();
        w.write(Bytes::from_static(b"y")).await.unwrap();
        w.commit().await.unwrap();
        let mut text = String::new();
        ops.render(&mut text);
        let d = driver.name();
        for (op, n) in [
            ("put_content", 1),
            ("stat", 2),
            ("writer", 1),
            ("writer_commit", 1),
        ] {
            let series = format!(
                "wharf_storage_operation_duration_seconds_count{{driver=\"{d}\",operation=\"{op}\"}} {n}\n"
            );
            assert!(text.contains(&series), "{series} in {text}");
        }
        assert!(
            text.contains(&format!(
                "wharf_storage_errors_total{{driver=\"{d}\",operation=\"stat\"}} 0\n"
            )),
            "not-found is no error: {text}"
        );
    }
}
