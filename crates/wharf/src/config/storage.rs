//! `storage:`: exactly one driver key plus the reserved settings keys.
//!
//! distribution keeps `storage` as `map[string]Parameters` and panics on two driver keys; here
//! the driver becomes a typed [`DriverConfig`] from `wharf-storage`, and the reserved keys
//! (`maintenance`, `cache`, `delete`, `redirect`, `tag`) become fields. A driver wharf-storage
//! has no backend for yet is read, parameters and all, and then refused with a clear error.

use std::path::PathBuf;
use std::time::Duration;

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use wharf_storage::DriverConfig;
use wharf_storage::factory::{AzureParams, FilesystemParams, S3Params};

use super::secret::Secret;
use super::tree::MASK;

use super::de;
use super::env::STORAGE_RESERVED;
use super::tree::{Node, Params};
use super::typed::Ctx;

/// Drivers distribution has (or had); wharf reads the parameters of all and runs most.
const KNOWN_DRIVERS: &[&str] = &[
    "filesystem",
    "inmemory",
    "s3",
    "s3-aws",
    "azure",
    "gcs",
    "swift",
    "oss",
    "rados",
];

/// Drivers distribution has that wharf reads but cannot run yet.
const REFUSED_DRIVERS: &[&str] = &["s3-aws", "rados"];

/// S3 storage classes distribution accepts (`NONE` sends no class).
const S3_STORAGE_CLASSES: &[&str] = &[
    "STANDARD",
    "REDUCED_REDUNDANCY",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "OUTPOSTS",
    "GLACIER_IR",
];

/// distribution's floor for `filesystem.maxthreads`.
const MIN_FILESYSTEM_THREADS: u64 = 25;

/// `storage:` as wharf uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// The one backend (`filesystem:`, `inmemory:` …) with its parameters.
    pub driver: DriverConfig,
    /// `delete.enabled`: allow deleting manifests and blobs by digest (off by default).
    pub delete_enabled: bool,
    /// `maintenance.readonly.enabled`: refuse writes, e.g. while garbage collection runs.
    pub readonly: bool,
    /// `maintenance.uploadpurging`: background removal of abandoned uploads.
    pub upload_purging: UploadPurging,
    /// `redirect.disable`: serve blobs through wharf even when the backend could redirect.
    pub redirect_disable: bool,
    /// `cache.blobdescriptor`: `inmemory` or `redis` descriptor cache, if any.
    pub blob_descriptor_cache: Option<String>,
    /// `cache.blobdescriptorsize`: entries kept by the in-memory cache (distribution: 10000).
    pub blob_descriptor_size: Option<u64>,
    /// `tag.concurrencylimit`: parallel tag lookups when deleting a manifest (0 = CPU count).
    pub tag_concurrency_limit: usize,
}

/// `storage.maintenance.uploadpurging`; every key is optional, with distribution's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct UploadPurging {
    /// `enabled`: run the purger (default true).
    pub enabled: bool,
    /// `age`: uploads older than this are removed (default 168h).
    #[serde(with = "de::duration")]
    pub age: Duration,
    /// `interval`: time between purges (default 24h).
    #[serde(with = "de::duration")]
    pub interval: Duration,
    /// `dryrun`: only log what would be removed.
    #[serde(rename = "dryrun")]
    pub dry_run: bool,
}

impl Default for UploadPurging {
    fn default() -> Self {
        UploadPurging {
            enabled: true,
            age: Duration::from_secs(168 * 3600),
            interval: Duration::from_secs(24 * 3600),
            dry_run: false,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Delete {
    enabled: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Redirect {
    disable: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Cache {
    blobdescriptor: Option<String>,
    blobdescriptorsize: Option<u64>,
    /// The pre-2.2 name of `blobdescriptor`.
    layerinfo: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Maintenance {
    uploadpurging: UploadPurging,
    readonly: ReadOnly,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ReadOnly {
    enabled: bool,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Tag {
    concurrencylimit: u64,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawFilesystem {
    rootdirectory: Option<String>,
    maxthreads: Option<u64>,
}

/// `storage.s3` as written; every key optional so defaults and errors are ours.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawS3 {
    region: Option<String>,
    regionendpoint: Option<String>,
    forcepathstyle: Option<bool>,
    bucket: Option<String>,
    accesskey: Option<String>,
    secretkey: Option<Secret>,
    sessiontoken: Option<Secret>,
    encrypt: Option<bool>,
    keyid: Option<String>,
    secure: Option<bool>,
    skipverify: Option<bool>,
    v4auth: Option<bool>,
    chunksize: Option<u64>,
    multipartcopychunksize: Option<u64>,
    multipartcopymaxconcurrency: Option<u64>,
    multipartcopythresholdsize: Option<u64>,
    rootdirectory: Option<String>,
    storageclass: Option<String>,
    loglevel: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// `storage.azure` as written.
#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAzure {
    accountname: Option<String>,
    accountkey: Option<Secret>,
    container: Option<String>,
    realm: Option<String>,
    serviceurl: Option<String>,
    rootdirectory: Option<String>,
    chunksize: Option<u64>,
}

/// distribution's checks on `storage.azure`, all reported at once.
fn azure_from(raw: RawAzure, ctx: &mut Ctx) -> Option<AzureParams> {
    let mut p = AzureParams::default();
    let before = ctx.errors.len();
    match non_empty(raw.accountname) {
        Some(name) => p.account_name = name,
        None => ctx.error("storage.azure.accountname: required"),
    }
    match raw.accountkey.filter(|k| !k.is_empty()) {
        Some(key) => p.account_key = key.expose().to_owned(),
        None => ctx.error("storage.azure.accountkey: required"),
    }
    match non_empty(raw.container) {
        Some(container) => p.container = container,
        None => ctx.error("storage.azure.container: required"),
    }
    if let Some(realm) = non_empty(raw.realm) {
        p.realm = realm;
    }
    p.service_url = non_empty(raw.serviceurl);
    p.root_directory = raw.rootdirectory.unwrap_or_default();
    if let Some(size) = raw.chunksize {
        p.chunk_size = size;
    }
    (ctx.errors.len() == before).then_some(p)
}

/// distribution's checks on `storage.s3`, all reported at once.
fn s3_from(raw: RawS3, ctx: &mut Ctx) -> Option<S3Params> {
    let mut p = S3Params::default();
    let before = ctx.errors.len();
    match non_empty(raw.bucket) {
        Some(bucket) => p.bucket = bucket,
        None => ctx.error("storage.s3.bucket: required"),
    }
    match non_empty(raw.region) {
        Some(region) => p.region = region,
        None => ctx.error("storage.s3.region: required (any value for most S3-compatible servers)"),
    }
    p.region_endpoint = non_empty(raw.regionendpoint);
    p.force_path_style = raw.forcepathstyle.unwrap_or(p.force_path_style);
    p.access_key = non_empty(raw.accesskey);
    p.secret_key = raw
        .secretkey
        .filter(|s| !s.is_empty())
        .map(|s| s.expose().to_owned());
    p.session_token = raw
        .sessiontoken
        .filter(|s| !s.is_empty())
        .map(|s| s.expose().to_owned());
    if p.access_key.is_some() != p.secret_key.is_some() {
        ctx.error("storage.s3: accesskey and secretkey go together (leave both out for the AWS credential chain)");
    }
    p.encrypt = raw.encrypt.unwrap_or(false);
    p.key_id = non_empty(raw.keyid);
    p.secure = raw.secure.unwrap_or(p.secure);
    p.skip_verify = raw.skipverify.unwrap_or(false);
    if raw.v4auth == Some(false) {
        ctx.error("storage.s3.v4auth: false is not supported; wharf signs every request with AWS Signature V4");
    }
    if let Some(size) = raw.chunksize {
        if size < wharf_storage::backend::s3::MIN_CHUNK_SIZE {
            ctx.error(format!(
                "storage.s3.chunksize: {size} is below S3's minimum part size {}",
                wharf_storage::backend::s3::MIN_CHUNK_SIZE
            ));
        }
        p.chunk_size = size;
    }
    if let Some(size) = raw.multipartcopychunksize {
        p.multipart_copy_chunk_size = size;
    }
    if let Some(n) = raw.multipartcopymaxconcurrency {
        p.multipart_copy_max_concurrency = n.max(1);
    }
    if let Some(size) = raw.multipartcopythresholdsize {
        p.multipart_copy_threshold_size = size;
    }
    p.root_directory = raw.rootdirectory.unwrap_or_default();
    match raw.storageclass.as_deref().map(str::trim) {
        None | Some("") => {}
        Some("NONE") => p.storage_class = None,
        Some(class) if S3_STORAGE_CLASSES.contains(&class) => {
            p.storage_class = Some(class.to_owned())
        }
        Some(class) => ctx.error(format!(
            "storage.s3.storageclass: {class:?} is not one of NONE, {}",
            S3_STORAGE_CLASSES.join(", ")
        )),
    }
    if raw.loglevel.is_some_and(|l| !l.eq_ignore_ascii_case("off")) {
        ctx.warn(
            "storage.s3.loglevel is ignored; S3 requests are logged at debug level by log.level",
        );
    }
    (ctx.errors.len() == before).then_some(p)
}

/// Reads `storage:`; every problem found is recorded in `ctx`.
pub(crate) fn from_node(node: &Node, ctx: &mut Ctx) -> Option<StorageConfig> {
    let entries: Vec<(String, Node)> = match node {
        Node::Str(name) => vec![(name.clone(), Node::Null)],
        Node::Map(entries) => entries.clone(),
        Node::Null => Vec::new(),
        other => {
            ctx.error(format!(
                "storage: expected a map with one storage driver, got {}",
                other.describe()
            ));
            return None;
        }
    };
    let (reserved, drivers): (Vec<_>, Vec<_>) = entries
        .iter()
        .partition(|(k, _)| STORAGE_RESERVED.contains(&k.as_str()));
    let driver = match drivers.as_slice() {
        [] => {
            ctx.error("storage: no storage driver configured (add one, e.g. filesystem: {rootdirectory: /var/lib/registry})");
            None
        }
        [(name, params)] => driver_from(name, params, ctx),
        many => {
            let names: Vec<&str> = many.iter().map(|(k, _)| k.as_str()).collect();
            ctx.error(format!(
                "storage: exactly one storage driver must be configured, found {}",
                names.join(", ")
            ));
            None
        }
    };
    let get = |key: &str| {
        reserved
            .iter()
            .find(|(k, _)| k == key)
            .map_or(&Node::Null, |(_, v)| v)
    };
    let delete: Option<Delete> = ctx.typed(get("delete"), "storage.delete");
    let redirect: Option<Redirect> = ctx.typed(get("redirect"), "storage.redirect");
    let cache: Option<Cache> = ctx.typed(get("cache"), "storage.cache");
    let maintenance: Option<Maintenance> = ctx.typed(get("maintenance"), "storage.maintenance");
    let tag: Option<Tag> = ctx.typed(get("tag"), "storage.tag");
    let (driver, delete, redirect, cache, maintenance, tag) =
        (driver?, delete?, redirect?, cache?, maintenance?, tag?);
    let mut driver = driver;
    // distribution applies `redirect.disable` above the driver; wharf tells the backends
    // that redirect, so the API layer stays unaware of it.
    match &mut driver {
        DriverConfig::S3(p) => p.redirect = !redirect.disable,
        DriverConfig::Gcs(p) => p.redirect = !redirect.disable,
        DriverConfig::Oss(p) => p.redirect = !redirect.disable,
        DriverConfig::Swift(p) => p.redirect = !redirect.disable,
        DriverConfig::Azure(p) => p.redirect = !redirect.disable,
        _ => {}
    }

    let mut blob_descriptor_cache = cache.blobdescriptor.filter(|s| !s.is_empty());
    if let Some(old) = cache.layerinfo.filter(|s| !s.is_empty()) {
        ctx.warn("storage.cache.layerinfo is deprecated; use storage.cache.blobdescriptor");
        blob_descriptor_cache.get_or_insert(old);
    }
    if let Some(kind) = &blob_descriptor_cache
        && kind != "inmemory"
        && kind != "redis"
    {
        ctx.error(format!(
            "storage.cache.blobdescriptor: expected inmemory or redis, got {kind:?}"
        ));
        return None;
    }
    Some(StorageConfig {
        driver,
        delete_enabled: delete.enabled,
        readonly: maintenance.readonly.enabled,
        upload_purging: maintenance.uploadpurging,
        redirect_disable: redirect.disable,
        blob_descriptor_cache,
        blob_descriptor_size: cache.blobdescriptorsize,
        tag_concurrency_limit: usize::try_from(tag.concurrencylimit).unwrap_or(usize::MAX),
    })
}

fn driver_from(name: &str, params: &Node, ctx: &mut Ctx) -> Option<DriverConfig> {
    let path = format!("storage.{name}");
    let Some(params) = Params::from_node(params) else {
        ctx.error(format!(
            "{path}: expected a map of driver parameters, got {}",
            params.describe()
        ));
        return None;
    };
    match name {
        "filesystem" => {
            let raw: RawFilesystem = ctx.typed(&Node::Map(params.0), &path)?;
            let mut fs = FilesystemParams::default();
            if let Some(root) = raw.rootdirectory.filter(|r| !r.is_empty()) {
                fs.root_directory = PathBuf::from(root);
            }
            if let Some(threads) = raw.maxthreads {
                if threads < MIN_FILESYSTEM_THREADS {
                    ctx.warn(format!(
                        "storage.filesystem.maxthreads: {threads} is below the minimum; using {MIN_FILESYSTEM_THREADS}"
                    ));
                }
                fs.max_threads = threads.max(MIN_FILESYSTEM_THREADS);
            }
            Some(DriverConfig::Filesystem(fs))
        }
        "inmemory" => {
            for key in params.keys() {
                ctx.warn(format!(
                    "unknown key {path}.{key} is ignored (inmemory takes no parameters)"
                ));
            }
            Some(DriverConfig::InMemory)
        }
        "s3" => {
            let raw: RawS3 = ctx.typed(&Node::Map(params.0), &path)?;
            s3_from(raw, ctx).map(|p| DriverConfig::S3(Box::new(p)))
        }
        "azure" => {
            let raw: RawAzure = ctx.typed(&Node::Map(params.0), &path)?;
            azure_from(raw, ctx).map(|p| DriverConfig::Azure(Box::new(p)))
        }
        "gcs" => {
            let raw: gcs::RawGcs = ctx.typed(&Node::Map(params.0), &path)?;
            gcs::gcs_from(raw, ctx).map(|p| DriverConfig::Gcs(Box::new(p)))
        }
        "oss" => {
            let raw: oss::RawOss = ctx.typed(&Node::Map(params.0), &path)?;
            oss::oss_from(raw, ctx).map(|p| DriverConfig::Oss(Box::new(p)))
        }
        "swift" => {
            let raw: swift::RawSwift = ctx.typed(&Node::Map(params.0), &path)?;
            swift::swift_from(raw, ctx).map(|p| DriverConfig::Swift(Box::new(p)))
        }
        other if REFUSED_DRIVERS.contains(&other) => {
            ctx.error(format!(
                "{path}: storage driver {other} is not supported yet (wharf runs filesystem, inmemory, s3, azure, gcs, oss and swift); \
                 its {} parameter(s) were read but wharf will not start on a backend it cannot use",
                params.keys().count()
            ));
            None
        }
        other => {
            ctx.error(format!(
                "storage: unknown storage driver {other:?} (known: {})",
                KNOWN_DRIVERS.join(", ")
            ));
            None
        }
    }
}

impl Serialize for StorageConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Fs<'a> {
            rootdirectory: &'a std::path::Path,
            maxthreads: u64,
        }
        #[derive(Serialize)]
        struct Enabled {
            enabled: bool,
        }
        #[derive(Serialize)]
        struct Maint {
            uploadpurging: UploadPurging,
            readonly: Enabled,
        }
        let mut map = s.serialize_map(None)?;
        match &self.driver {
            DriverConfig::Filesystem(fs) => map.serialize_entry(
                "filesystem",
                &Fs {
                    rootdirectory: &fs.root_directory,
                    maxthreads: fs.max_threads,
                },
            )?,
            DriverConfig::S3(p) => map.serialize_entry("s3", &s3_json(p))?,
            DriverConfig::Azure(p) => map.serialize_entry(
                "azure",
                &serde_json::json!({
                    "accountname": p.account_name,
                    "accountkey": MASK,
                    "container": p.container,
                    "realm": p.realm,
                    "serviceurl": p.service_url,
                    "rootdirectory": p.root_directory,
                    "chunksize": p.chunk_size,
                }),
            )?,
            DriverConfig::Gcs(p) => map.serialize_entry("gcs", &gcs::gcs_json(p))?,
            DriverConfig::Oss(p) => map.serialize_entry("oss", &oss::oss_json(p))?,
            DriverConfig::Swift(p) => map.serialize_entry("swift", &swift::swift_json(p))?,
            other => map.serialize_entry(other.name(), &Params::default())?,
        }
        map.serialize_entry(
            "delete",
            &Enabled {
                enabled: self.delete_enabled,
            },
        )?;
        map.serialize_entry(
            "redirect",
            &serde_json::json!({ "disable": self.redirect_disable }),
        )?;
        if let Some(kind) = &self.blob_descriptor_cache {
            let mut cache = serde_json::json!({ "blobdescriptor": kind });
            if let Some(size) = self.blob_descriptor_size {
                cache["blobdescriptorsize"] = size.into();
            }
            map.serialize_entry("cache", &cache)?;
        }
        map.serialize_entry(
            "maintenance",
            &Maint {
                uploadpurging: self.upload_purging,
                readonly: Enabled {
                    enabled: self.readonly,
                },
            },
        )?;
        if self.tag_concurrency_limit != 0 {
            map.serialize_entry(
                "tag",
                &serde_json::json!({ "concurrencylimit": self.tag_concurrency_limit }),
            )?;
        }
        map.end()
    }
}

/// `storage.s3` as `config check` prints it: every effective value, secrets masked.
fn s3_json(p: &S3Params) -> serde_json::Value {
    let mask = |s: &Option<String>| s.as_ref().map(|_| MASK);
    serde_json::json!({
        "bucket": p.bucket,
        "region": p.region,
        "regionendpoint": p.region_endpoint,
        "forcepathstyle": p.force_path_style,
        "accesskey": p.access_key,
        "secretkey": mask(&p.secret_key),
        "sessiontoken": mask(&p.session_token),
        "encrypt": p.encrypt,
        "keyid": p.key_id,
        "secure": p.secure,
        "skipverify": p.skip_verify,
        "chunksize": p.chunk_size,
        "multipartcopychunksize": p.multipart_copy_chunk_size,
        "multipartcopymaxconcurrency": p.multipart_copy_max_concurrency,
        "multipartcopythresholdsize": p.multipart_copy_threshold_size,
        "rootdirectory": p.root_directory,
        "storageclass": p.storage_class.as_deref().unwrap_or("NONE"),
    })
}

mod gcs;
mod oss;
mod swift;
#[cfg(test)]
mod tests;
