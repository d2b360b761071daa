//! The `gcs` backend: Google Cloud Storage (and fake-gcs-server) with distribution's
//! parameters; an [`ObjectStore`] over OpenDAL's GCS service. Writes are streamed as part
//! objects joined by native compose (OpenDAL's chunked GCS writes use the XML multipart API),
//! so memory stays at a few chunks whatever the blob size.
//!
//! `STORAGE_EMULATOR_HOST` (what the Go client, hence distribution, honours) points the driver
//! at an emulator: requests then go unauthenticated, as the emulator expects. Redirect URLs are
//! V4-signed locally with the service account's private key (`keyfile` or `credentials`);
//! without one blobs are served through the registry, as distribution does.

use std::fmt;

use base64::Engine as _;
use opendal::Operator;

use super::object::{CopyPlan, ObjectStore, with_http_client};
use crate::driver::{Error, Result};

const NAME: &str = "gcs";

/// GCS resumable-upload granularity, distribution's floor and unit for `chunksize`.
pub const CHUNK_UNIT: u64 = 256 << 10;
/// distribution's default `chunksize` (20 × 256 KiB).
pub const DEFAULT_CHUNK_SIZE: u64 = 20 * CHUNK_UNIT;

/// The `gcs` driver: an object store named `gcs`.
pub type GcsDriver = ObjectStore;

fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
    Error::Backend {
        driver: NAME,
        source: source.into(),
    }
}

/// Parameters of the `gcs` driver, with distribution's keys.
#[derive(Clone, PartialEq, Eq)]
pub struct GcsParams {
    /// `bucket` (required).
    pub bucket: String,
    /// `keyfile`: path of a service-account JSON key.
    pub keyfile: Option<String>,
    /// `credentials`: the service-account key given inline, as JSON text.
    pub credentials: Option<String>,
    /// `rootdirectory`: prefix below which the tree lives.
    pub root_directory: String,
    /// `chunksize`: bytes per part object of a streamed write (multiple of 256 KiB; 5 MiB).
    pub chunk_size: u64,
    /// `STORAGE_EMULATOR_HOST`: `host:port` or URL of an emulator (env, not a config key).
    pub emulator_host: Option<String>,
    /// Blob GETs answer 307 to a signed URL when a private key is known.
    pub redirect: bool,
}

impl Default for GcsParams {
    fn default() -> Self {
        GcsParams {
            bucket: String::new(),
            keyfile: None,
            credentials: None,
            root_directory: String::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            emulator_host: None,
            redirect: true,
        }
    }
}

impl fmt::Debug for GcsParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsParams")
            .field("bucket", &self.bucket)
            .field("keyfile", &self.keyfile)
            .field("credentials", &self.credentials.as_ref().map(|_| "*****"))
            .field("root_directory", &self.root_directory)
            .field("chunk_size", &self.chunk_size)
            .field("emulator_host", &self.emulator_host)
            .field("redirect", &self.redirect)
            .finish()
    }
}

impl GcsParams {
    /// The emulator's base URL (`http://` added to a bare `host:port`, as the Go client does).
    pub fn emulator_url(&self) -> Option<String> {
        let host = self.emulator_host.as_deref()?.trim().trim_end_matches('/');
        if host.is_empty() {
            return None;
        }
        Some(if host.contains("://") {
            host.to_owned()
        } else {
            format!("http://{host}")
        })
    }

    /// The service-account key JSON from `credentials` or `keyfile`, if either is set.
    fn key_json(&self) -> Result<Option<String>> {
        if let Some(json) = &self.credentials {
            return Ok(Some(json.clone()));
        }
        match &self.keyfile {
            Some(path) => std::fs::read_to_string(path)
                .map(Some)
                .map_err(|e| backend(format!("reading keyfile {path}: {e}"))),
            None => Ok(None),
        }
    }
}

/// Whether a key JSON can sign URLs itself (a service account with a private key).
fn has_private_key(json: &str) -> Result<bool> {
    let value: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| backend(format!("service-account key is not JSON: {e}")))?;
    Ok(value
        .get("private_key")
        .and_then(|k| k.as_str())
        .is_some_and(|k| !k.is_empty()))
}

fn builder(params: &GcsParams, endpoint: Option<&str>) -> opendal::services::Gcs {
    let mut b = opendal::services::Gcs::default()
        .bucket(&params.bucket)
        .root(&format!("/{}", params.root_directory.trim_matches('/')));
    if let Some(endpoint) = endpoint {
        b = b.endpoint(endpoint);
    }
    b
}

fn operator(b: opendal::services::Gcs) -> Result<Operator> {
    let op = Operator::new(b).map_err(backend)?;
    let client = reqwest::Client::builder().build().map_err(backend)?;
    Ok(with_http_client(op, client))
}

impl ObjectStore {
    /// The `gcs` driver; connects lazily.
    pub fn gcs(params: GcsParams) -> Result<Self> {
        let emulator = params.emulator_url();
        let key = params.key_json()?;
        let signing_key = match &key {
            Some(json) if has_private_key(json)? => Some(json.clone()),
            _ => None,
        };
        let with_key = |b: opendal::services::Gcs, json: &str| {
            b.credential(&base64::engine::general_purpose::STANDARD.encode(json))
                .disable_vm_metadata()
                .disable_config_load()
        };
        if let Some(url) = &emulator {
            tracing::info!(%url, "gcs: STORAGE_EMULATOR_HOST is set; requests go unauthenticated to the emulator");
        }
        if params.redirect && signing_key.is_none() {
            tracing::info!(
                "gcs: no service-account private key to sign URLs with; blobs are served through wharf"
            );
        }
        let data = builder(&params, emulator.as_deref());
        let data = match (&emulator, &key) {
            (Some(_), _) => data
                .skip_signature()
                .disable_vm_metadata()
                .disable_config_load(),
            (None, Some(json)) => with_key(data, json),
            (None, None) => data,
        };
        let mut store = ObjectStore::new(
            operator(data)?,
            NAME,
            CopyPlan::whole(),
            params.chunk_size,
            params.redirect && signing_key.is_some(),
        )
        .with_compose(params.chunk_size.max(CHUNK_UNIT));
        if let Some(json) = &signing_key {
            let signer = with_key(builder(&params, emulator.as_deref()), json);
            store = store.with_presigner(operator(signer)?);
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests;
