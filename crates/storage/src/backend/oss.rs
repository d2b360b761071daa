//! The `oss` backend: Alibaba Cloud OSS with distribution 2.x's parameters (distribution 3
//! dropped the driver); an [`ObjectStore`] over OpenDAL's OSS service, with OSS multipart
//! uploads for streamed writes and the shared segment objects for resumed ones. No OSS
//! emulator exists, so the conformance suite runs only against a live bucket named by
//! `WHARF_TEST_OSS_*` variables; offline tests pin the endpoint mapping and URL signing.

use std::fmt;

use opendal::Operator;

use super::object::{CopyPlan, MIN_CHUNK_SIZE, ObjectStore, with_http_client};
use crate::driver::{Error, Result};

const NAME: &str = "oss";

/// The `oss` driver: an object store named `oss`.
pub type OssDriver = ObjectStore;

/// Parameters of the `oss` driver, with distribution 2.x's keys and defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct OssParams {
    /// `accesskeyid` (required).
    pub access_key_id: String,
    /// `accesskeysecret` (required).
    pub access_key_secret: String,
    /// `region` (required), e.g. `oss-cn-beijing` (`cn-beijing` is accepted too).
    pub region: String,
    /// `endpoint`: a host replacing `<bucket>.<region>[-internal].aliyuncs.com`.
    pub endpoint: Option<String>,
    /// `internal`: use the region's `-internal` endpoint (from inside Alibaba Cloud).
    pub internal: bool,
    /// `bucket` (required).
    pub bucket: String,
    /// `encrypt`: server-side encryption (AES256) of written objects.
    pub encrypt: bool,
    /// `secure`: https (default true).
    pub secure: bool,
    /// `chunksize`: multipart part size, at least 5 MiB (default 10 MiB).
    pub chunk_size: u64,
    /// `rootdirectory`: prefix below which the tree lives.
    pub root_directory: String,
    /// Blob GETs answer 307 to a signed URL (`storage.redirect.disable` turns it off).
    pub redirect: bool,
}

impl Default for OssParams {
    fn default() -> Self {
        OssParams {
            access_key_id: String::new(),
            access_key_secret: String::new(),
            region: String::new(),
            endpoint: None,
            internal: false,
            bucket: String::new(),
            encrypt: false,
            secure: true,
            chunk_size: 10 << 20,
            root_directory: String::new(),
            redirect: true,
        }
    }
}

impl fmt::Debug for OssParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OssParams")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"*****")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("internal", &self.internal)
            .field("bucket", &self.bucket)
            .field("encrypt", &self.encrypt)
            .field("secure", &self.secure)
            .field("chunk_size", &self.chunk_size)
            .field("root_directory", &self.root_directory)
            .field("redirect", &self.redirect)
            .finish()
    }
}

/// How the bucket appears in request URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `<bucket>.<endpoint host>`.
    Virtual,
    /// The endpoint host already is the bucket's (a CNAME, or `endpoint` naming the bucket).
    Cname,
}

impl Addressing {
    fn as_str(self) -> &'static str {
        match self {
            Addressing::Virtual => "virtual",
            Addressing::Cname => "cname",
        }
    }
}

impl OssParams {
    /// The service endpoint as distribution's client derives it: `endpoint` if set, else
    /// `oss-<region>[-internal].aliyuncs.com`, with `secure`'s scheme unless one is given.
    pub fn endpoint(&self) -> (String, Addressing) {
        let scheme = if self.secure { "https" } else { "http" };
        let with_scheme = |host: &str| {
            if host.contains("://") {
                host.to_owned()
            } else {
                format!("{scheme}://{host}")
            }
        };
        if let Some(endpoint) = self
            .endpoint
            .as_deref()
            .map(|e| e.trim().trim_end_matches('/'))
            && !endpoint.is_empty()
        {
            let host = endpoint.split_once("://").map_or(endpoint, |(_, h)| h);
            let addressing = if host.starts_with(&format!("{}.", self.bucket)) {
                Addressing::Cname
            } else {
                Addressing::Virtual
            };
            return (with_scheme(endpoint), addressing);
        }
        let region = self.region.trim();
        let region = if region.starts_with("oss-") {
            region.to_owned()
        } else {
            format!("oss-{region}")
        };
        let internal = if self.internal { "-internal" } else { "" };
        (
            with_scheme(&format!("{region}{internal}.aliyuncs.com")),
            Addressing::Virtual,
        )
    }
}

impl ObjectStore {
    /// The `oss` driver; connects lazily.
    pub fn oss(params: OssParams) -> Result<Self> {
        let fail = |e: opendal::Error| Error::Backend {
            driver: NAME,
            source: e.into(),
        };
        let (endpoint, addressing) = params.endpoint();
        let mut builder = opendal::services::Oss::default()
            .bucket(&params.bucket)
            .endpoint(&endpoint)
            .addressing_style(addressing.as_str())
            .access_key_id(&params.access_key_id)
            .access_key_secret(&params.access_key_secret)
            .root(&format!("/{}", params.root_directory.trim_matches('/')));
        if params.encrypt {
            builder = builder.server_side_encryption("AES256");
        }
        let op = Operator::new(builder).map_err(fail)?;
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::Backend {
                driver: NAME,
                source: e.into(),
            })?;
        Ok(ObjectStore::new(
            with_http_client(op, client),
            NAME,
            CopyPlan::whole(),
            params.chunk_size.max(MIN_CHUNK_SIZE),
            params.redirect,
        ))
    }
}

#[cfg(test)]
mod tests;
