//! `storage.gcs`: distribution's keys onto [`GcsParams`].

use std::collections::BTreeMap;

use serde::Deserialize;
use wharf_storage::backend::gcs::CHUNK_UNIT;
use wharf_storage::factory::GcsParams;

use super::non_empty;
use crate::config::secret::Secret;
use crate::config::tree::MASK;
use crate::config::typed::Ctx;

/// `storage.gcs` as written.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawGcs {
    bucket: Option<String>,
    keyfile: Option<String>,
    /// The service-account key inline (distribution ≥ 2.8): `type`, `private_key`, … .
    credentials: Option<BTreeMap<String, Secret>>,
    rootdirectory: Option<String>,
    chunksize: Option<u64>,
    maxconcurrency: Option<u64>,
}

/// distribution's checks on `storage.gcs`, all reported at once.
pub(super) fn gcs_from(raw: RawGcs, ctx: &mut Ctx) -> Option<GcsParams> {
    let mut p = GcsParams::default();
    let before = ctx.errors.len();
    match non_empty(raw.bucket) {
        Some(bucket) => p.bucket = bucket,
        None => ctx.error("storage.gcs.bucket: required"),
    }
    p.keyfile = non_empty(raw.keyfile);
    if let Some(credentials) = raw.credentials.filter(|c| !c.is_empty()) {
        let json: serde_json::Map<String, serde_json::Value> = credentials
            .iter()
            .map(|(k, v)| (k.clone(), v.expose().into()))
            .collect();
        if !json.contains_key("private_key") || !json.contains_key("client_email") {
            ctx.error("storage.gcs.credentials: a service-account key needs at least client_email and private_key");
        }
        if p.keyfile.is_some() {
            ctx.warn("storage.gcs: both keyfile and credentials are set; credentials win");
        }
        p.credentials = Some(serde_json::Value::Object(json).to_string());
    }
    if let Some(size) = raw.chunksize {
        if size < CHUNK_UNIT || size % CHUNK_UNIT != 0 {
            ctx.error(format!(
                "storage.gcs.chunksize: {size} must be a positive multiple of {CHUNK_UNIT} (256 KiB)"
            ));
        }
        p.chunk_size = size;
    }
    if raw.maxconcurrency.is_some() {
        ctx.warn("storage.gcs.maxconcurrency is ignored; wharf bounds requests per write itself");
    }
    p.root_directory = raw.rootdirectory.unwrap_or_default();
    (ctx.errors.len() == before).then_some(p)
}

/// `storage.gcs` as `config check` prints it, the key masked.
pub(super) fn gcs_json(p: &GcsParams) -> serde_json::Value {
    serde_json::json!({
        "bucket": p.bucket,
        "keyfile": p.keyfile,
        "credentials": p.credentials.as_ref().map(|_| MASK),
        "rootdirectory": p.root_directory,
        "chunksize": p.chunk_size,
    })
}
