//! Picks the backend named in the configuration; the one place a config becomes a driver.

use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::azure::AzureDriver;
pub use crate::backend::azure::AzureParams;
pub use crate::backend::gcs::GcsParams;
use crate::backend::object::ObjectStore;
pub use crate::backend::oss::OssParams;
pub use crate::backend::s3::S3Params;
pub use crate::backend::swift::{AuthVersion as SwiftAuthVersion, SwiftParams};
use crate::backend::{filesystem::FilesystemDriver, inmemory::InMemoryDriver, s3::S3Driver};
use crate::driver::{Driver, Result};

/// Parameters of the `filesystem` driver (distribution's keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesystemParams {
    /// `rootdirectory`: where `docker/registry/v2` lives; default `/var/lib/registry`.
    pub root_directory: PathBuf,
    /// `maxthreads`: bound on concurrent blocking file operations; default 100, minimum 25.
    pub max_threads: u64,
}

impl Default for FilesystemParams {
    fn default() -> Self {
        FilesystemParams {
            root_directory: PathBuf::from("/var/lib/registry"),
            max_threads: 100,
        }
    }
}

/// The one storage driver key of `storage:` with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverConfig {
    /// `filesystem:`
    Filesystem(FilesystemParams),
    /// `inmemory:` (a single process only; content is lost on exit).
    InMemory,
    /// `s3:` (AWS S3 and S3-compatible servers); boxed, it is by far the largest.
    S3(Box<S3Params>),
    /// `azure:` (Azure Blob Storage, Azurite).
    Azure(Box<AzureParams>),
    /// `gcs:` (Google Cloud Storage, fake-gcs-server via `STORAGE_EMULATOR_HOST`).
    Gcs(Box<GcsParams>),
    /// `oss:` (Alibaba Cloud OSS, distribution 2.x's driver).
    Oss(Box<OssParams>),
    /// `swift:` (OpenStack Swift, distribution 2.x's driver).
    Swift(Box<SwiftParams>),
}

impl DriverConfig {
    /// The configuration key naming this backend.
    pub fn name(&self) -> &'static str {
        match self {
            DriverConfig::Filesystem(_) => "filesystem",
            DriverConfig::InMemory => "inmemory",
            DriverConfig::S3(_) => "s3",
            DriverConfig::Azure(_) => "azure",
            DriverConfig::Gcs(_) => "gcs",
            DriverConfig::Oss(_) => "oss",
            DriverConfig::Swift(_) => "swift",
        }
    }

    /// Builds the driver, creating what the backend needs (the root directory) up front.
    pub async fn build(&self) -> Result<Arc<dyn Driver>> {
        Ok(match self {
            DriverConfig::Filesystem(p) => Arc::new(FilesystemDriver::new(p.clone()).await?),
            DriverConfig::InMemory => Arc::new(InMemoryDriver::new()),
            DriverConfig::S3(p) => Arc::new(S3Driver::s3(S3Params::clone(p))?),
            DriverConfig::Azure(p) => Arc::new(AzureDriver::azure(AzureParams::clone(p))?),
            DriverConfig::Gcs(p) => {
                let mut p = GcsParams::clone(p);
                // The Go GCS client (hence distribution) reaches an emulator through this.
                if p.emulator_host.is_none() {
                    p.emulator_host = std::env::var("STORAGE_EMULATOR_HOST").ok();
                }
                Arc::new(ObjectStore::gcs(p)?)
            }
            DriverConfig::Oss(p) => Arc::new(ObjectStore::oss(OssParams::clone(p))?),
            DriverConfig::Swift(p) => Arc::new(ObjectStore::swift(SwiftParams::clone(p)).await?),
        })
    }
}
