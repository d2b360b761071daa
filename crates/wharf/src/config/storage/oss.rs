//! `storage.oss`: distribution 2.x's keys onto [`OssParams`].

use serde::Deserialize;
use wharf_storage::backend::s3::MIN_CHUNK_SIZE;
use wharf_storage::factory::OssParams;

use super::non_empty;
use crate::config::secret::Secret;
use crate::config::tree::MASK;
use crate::config::typed::Ctx;

/// `storage.oss` as written.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawOss {
    accesskeyid: Option<String>,
    accesskeysecret: Option<Secret>,
    region: Option<String>,
    endpoint: Option<String>,
    internal: Option<bool>,
    bucket: Option<String>,
    encrypt: Option<bool>,
    secure: Option<bool>,
    chunksize: Option<u64>,
    rootdirectory: Option<String>,
}

/// distribution's checks on `storage.oss`, all reported at once.
pub(super) fn oss_from(raw: RawOss, ctx: &mut Ctx) -> Option<OssParams> {
    let mut p = OssParams::default();
    let before = ctx.errors.len();
    match non_empty(raw.accesskeyid) {
        Some(id) => p.access_key_id = id,
        None => ctx.error("storage.oss.accesskeyid: required"),
    }
    match raw.accesskeysecret.filter(|s| !s.is_empty()) {
        Some(secret) => p.access_key_secret = secret.expose().to_owned(),
        None => ctx.error("storage.oss.accesskeysecret: required"),
    }
    match non_empty(raw.region) {
        Some(region) => p.region = region,
        None => ctx.error("storage.oss.region: required (e.g. oss-cn-beijing)"),
    }
    match non_empty(raw.bucket) {
        Some(bucket) => p.bucket = bucket,
        None => ctx.error("storage.oss.bucket: required"),
    }
    p.endpoint = non_empty(raw.endpoint);
    p.internal = raw.internal.unwrap_or(false);
    p.encrypt = raw.encrypt.unwrap_or(false);
    p.secure = raw.secure.unwrap_or(true);
    if let Some(size) = raw.chunksize {
        if size < MIN_CHUNK_SIZE {
            ctx.error(format!(
                "storage.oss.chunksize: {size} is below OSS's minimum part size {MIN_CHUNK_SIZE}"
            ));
        }
        p.chunk_size = size;
    }
    p.root_directory = raw.rootdirectory.unwrap_or_default();
    (ctx.errors.len() == before).then_some(p)
}

/// `storage.oss` as `config check` prints it, the secret masked.
pub(super) fn oss_json(p: &OssParams) -> serde_json::Value {
    serde_json::json!({
        "accesskeyid": p.access_key_id,
        "accesskeysecret": MASK,
        "region": p.region,
        "endpoint": p.endpoint,
        "internal": p.internal,
        "bucket": p.bucket,
        "encrypt": p.encrypt,
        "secure": p.secure,
        "chunksize": p.chunk_size,
        "rootdirectory": p.root_directory,
    })
}
