//! `storage.swift`: distribution 2.x's keys onto [`SwiftParams`].

use serde::Deserialize;
use wharf_storage::factory::{SwiftAuthVersion, SwiftParams};

use super::non_empty;
use crate::config::de::OneOrMany;
use crate::config::secret::Secret;
use crate::config::tree::MASK;
use crate::config::typed::Ctx;

/// distribution's floor for `storage.swift.chunksize`.
const MIN_CHUNK_SIZE: u64 = 1 << 20;

/// `storage.swift` as written.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawSwift {
    authurl: Option<String>,
    username: Option<String>,
    password: Option<Secret>,
    tenant: Option<String>,
    tenantid: Option<String>,
    domain: Option<String>,
    domainid: Option<String>,
    tenantdomain: Option<String>,
    tenantdomainid: Option<String>,
    trustid: Option<String>,
    region: Option<String>,
    endpointtype: Option<String>,
    container: Option<String>,
    prefix: Option<String>,
    insecureskipverify: Option<bool>,
    chunksize: Option<u64>,
    authversion: Option<u64>,
    secretkey: Option<Secret>,
    accesskey: Option<String>,
    tempurlcontainerkey: Option<bool>,
    tempurlmethods: Option<OneOrMany>,
}

/// distribution's checks on `storage.swift`, all reported at once.
pub(super) fn swift_from(raw: RawSwift, ctx: &mut Ctx) -> Option<SwiftParams> {
    let mut p = SwiftParams::default();
    let before = ctx.errors.len();
    match non_empty(raw.authurl) {
        Some(url) => p.auth_url = url,
        None => ctx.error("storage.swift.authurl: required"),
    }
    match non_empty(raw.username) {
        Some(user) => p.username = user,
        None => ctx.error("storage.swift.username: required"),
    }
    match raw.password.filter(|s| !s.is_empty()) {
        Some(password) => p.password = password.expose().to_owned(),
        None => ctx.error("storage.swift.password: required"),
    }
    match non_empty(raw.container) {
        Some(container) => p.container = container,
        None => ctx.error("storage.swift.container: required"),
    }
    if non_empty(raw.trustid).is_some() {
        ctx.error("storage.swift.trustid: Keystone trust scopes are not supported by wharf");
    }
    if non_empty(raw.accesskey).is_some() {
        ctx.warn("storage.swift.accesskey is ignored (wharf signs TempURLs with secretkey only)");
    }
    p.auth_version = match raw.authversion {
        None | Some(0) => None,
        Some(1) => Some(SwiftAuthVersion::V1),
        Some(2) => {
            ctx.error(
                "storage.swift.authversion: Keystone v2.0 is not supported by wharf (use 3 or 1)",
            );
            None
        }
        Some(3) => Some(SwiftAuthVersion::V3),
        Some(other) => {
            ctx.error(format!(
                "storage.swift.authversion: expected 1, 2 or 3, got {other}"
            ));
            None
        }
    };
    if p.auth_version.is_none() && p.auth_url.to_ascii_lowercase().contains("/v2") {
        ctx.error("storage.swift.authurl: Keystone v2.0 is not supported by wharf (use a /v3 URL)");
    }
    if let Some(size) = raw.chunksize {
        if size < MIN_CHUNK_SIZE {
            ctx.error(format!(
                "storage.swift.chunksize: {size} is below the minimum {MIN_CHUNK_SIZE}"
            ));
        }
        p.chunk_size = size;
    }
    p.tenant = non_empty(raw.tenant);
    p.tenant_id = non_empty(raw.tenantid);
    p.domain = non_empty(raw.domain);
    p.domain_id = non_empty(raw.domainid);
    p.tenant_domain = non_empty(raw.tenantdomain);
    p.tenant_domain_id = non_empty(raw.tenantdomainid);
    p.region = non_empty(raw.region);
    p.endpoint_type = non_empty(raw.endpointtype);
    if let Some(kind) = &p.endpoint_type
        && !["public", "internal", "admin"].contains(&kind.as_str())
    {
        ctx.error(format!(
            "storage.swift.endpointtype: expected public, internal or admin, got {kind:?}"
        ));
    }
    p.prefix = raw.prefix.unwrap_or_default();
    p.insecure_skip_verify = raw.insecureskipverify.unwrap_or(false);
    p.secret_key = raw
        .secretkey
        .filter(|s| !s.is_empty())
        .map(|s| s.expose().to_owned());
    p.temp_url_container_key = raw.tempurlcontainerkey.unwrap_or(false);
    p.temp_url_methods = raw.tempurlmethods.map(|m| m.0).unwrap_or_default();
    (ctx.errors.len() == before).then_some(p)
}

/// `storage.swift` as `config check` prints it, secrets masked.
pub(super) fn swift_json(p: &SwiftParams) -> serde_json::Value {
    serde_json::json!({
        "authurl": p.auth_url,
        "username": p.username,
        "password": MASK,
        "tenant": p.tenant,
        "tenantid": p.tenant_id,
        "domain": p.domain,
        "domainid": p.domain_id,
        "tenantdomain": p.tenant_domain,
        "tenantdomainid": p.tenant_domain_id,
        "region": p.region,
        "endpointtype": p.endpoint_type,
        "container": p.container,
        "prefix": p.prefix,
        "insecureskipverify": p.insecure_skip_verify,
        "chunksize": p.chunk_size,
        "authversion": match p.auth_version {
            None => 0,
            Some(SwiftAuthVersion::V1) => 1,
            Some(SwiftAuthVersion::V2) => 2,
            Some(SwiftAuthVersion::V3) => 3,
        },
        "secretkey": p.secret_key.as_ref().map(|_| MASK),
        "tempurlcontainerkey": p.temp_url_container_key,
        "tempurlmethods": p.temp_url_methods,
    })
}
