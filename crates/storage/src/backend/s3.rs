//! The `s3` backend: AWS S3 and S3-compatible servers (MinIO, Ceph RGW, R2, moto), with
//! distribution's parameters; an [`ObjectStore`] over OpenDAL's S3 service (which signs with
//! SigV4 and finds credentials the usual AWS ways when no keys are configured).

use std::fmt;

use opendal::Operator;

pub use super::object::MIN_CHUNK_SIZE;
use super::object::{CopyPlan, ObjectStore, with_http_client};
use crate::driver::{Error, Result};

const NAME: &str = "s3";

/// The `s3` driver: an object store named `s3`.
pub type S3Driver = ObjectStore;

fn backend(
    driver: &'static str,
    source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> Error {
    Error::Backend {
        driver,
        source: source.into(),
    }
}

/// Parameters of the `s3` driver, with distribution's keys and defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Params {
    /// `bucket` (required).
    pub bucket: String,
    /// `region` (required; any value for most S3-compatible servers).
    pub region: String,
    /// `regionendpoint`: an S3-compatible server's URL; AWS's regional endpoint when unset.
    pub region_endpoint: Option<String>,
    /// `forcepathstyle`: `host/bucket/key` URLs instead of `bucket.host/key` (default true).
    pub force_path_style: bool,
    /// `accesskey`; with `secretkey`, static credentials. Unset: the usual AWS credential chain.
    pub access_key: Option<String>,
    /// `secretkey`.
    pub secret_key: Option<String>,
    /// `sessiontoken`, for temporary static credentials.
    pub session_token: Option<String>,
    /// `encrypt`: server-side encryption (SSE-S3, or SSE-KMS with `keyid`).
    pub encrypt: bool,
    /// `keyid`: the KMS key for `encrypt`.
    pub key_id: Option<String>,
    /// `secure`: https to the endpoint when `regionendpoint` names no scheme (default true).
    pub secure: bool,
    /// `skipverify`: accept any TLS certificate from the endpoint.
    pub skip_verify: bool,
    /// `chunksize`: multipart part size for writes, at least 5 MiB (default 10 MiB).
    pub chunk_size: u64,
    /// `multipartcopychunksize`: part size when copying large objects (default 32 MiB).
    pub multipart_copy_chunk_size: u64,
    /// `multipartcopymaxconcurrency`: parts copied in parallel (default 100).
    pub multipart_copy_max_concurrency: u64,
    /// `multipartcopythresholdsize`: objects above this are copied in parts (default 32 MiB).
    pub multipart_copy_threshold_size: u64,
    /// `rootdirectory`: key prefix below which the tree lives (default: the bucket's root).
    pub root_directory: String,
    /// `storageclass`: class of new objects (default STANDARD; `NONE` sends none).
    pub storage_class: Option<String>,
    /// Blob GETs answer 307 to a presigned URL (`storage.redirect.disable` turns it off).
    pub redirect: bool,
}

impl Default for S3Params {
    fn default() -> Self {
        S3Params {
            bucket: String::new(),
            region: String::new(),
            region_endpoint: None,
            force_path_style: true,
            access_key: None,
            secret_key: None,
            session_token: None,
            encrypt: false,
            key_id: None,
            secure: true,
            skip_verify: false,
            chunk_size: 10 << 20,
            multipart_copy_chunk_size: 32 << 20,
            multipart_copy_max_concurrency: 100,
            multipart_copy_threshold_size: 32 << 20,
            root_directory: String::new(),
            storage_class: Some("STANDARD".to_owned()),
            redirect: true,
        }
    }
}

impl fmt::Debug for S3Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let masked = |s: &Option<String>| s.as_ref().map(|_| "***");
        f.debug_struct("S3Params")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("region_endpoint", &self.region_endpoint)
            .field("force_path_style", &self.force_path_style)
            .field("access_key", &self.access_key)
            .field("secret_key", &masked(&self.secret_key))
            .field("session_token", &masked(&self.session_token))
            .field("encrypt", &self.encrypt)
            .field("key_id", &self.key_id)
            .field("secure", &self.secure)
            .field("skip_verify", &self.skip_verify)
            .field("chunk_size", &self.chunk_size)
            .field("root_directory", &self.root_directory)
            .field("storage_class", &self.storage_class)
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

impl S3Params {
    /// The endpoint URL: `regionendpoint` (with `secure`'s scheme if it names none) or AWS's.
    pub fn endpoint(&self) -> String {
        let scheme = if self.secure { "https" } else { "http" };
        match self
            .region_endpoint
            .as_deref()
            .map(|e| e.trim_end_matches('/'))
        {
            Some(e) if e.contains("://") => e.to_owned(),
            Some(e) => format!("{scheme}://{e}"),
            None if self.region == "us-east-1" => format!("{scheme}://s3.amazonaws.com"),
            None => format!("{scheme}://s3.{}.amazonaws.com", self.region),
        }
    }
}

/// The HTTP client: `skipverify` and the CA bundle (`AWS_CA_BUNDLE`, as the AWS SDKs read it)
/// apply to https endpoints only, so a bundle meant for AWS never breaks a plain-http MinIO.
fn http_client(
    params: &S3Params,
    endpoint: &str,
    ca_bundle: Option<std::ffi::OsString>,
) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder();
    if endpoint.starts_with("https://") {
        if params.skip_verify {
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        if let Some(bundle) = ca_bundle.filter(|v| !v.is_empty()) {
            let pem = std::fs::read(&bundle).map_err(|e| {
                backend(
                    NAME,
                    format!("reading AWS_CA_BUNDLE {}: {e}", bundle.to_string_lossy()),
                )
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| backend(NAME, e))? {
                builder = builder.add_root_certificate(cert);
            }
        }
    }
    builder.build().map_err(|e| backend(NAME, e))
}

impl ObjectStore {
    /// The `s3` driver; connects lazily, no request is made until the first operation.
    pub fn s3(params: S3Params) -> Result<Self> {
        let endpoint = params.endpoint();
        let mut builder = opendal::services::S3::default()
            .bucket(&params.bucket)
            .region(&params.region)
            .endpoint(&endpoint)
            .root(&format!("/{}", params.root_directory.trim_matches('/')));
        if !params.force_path_style {
            builder = builder.enable_virtual_host_style();
        }
        if let (Some(ak), Some(sk)) = (&params.access_key, &params.secret_key) {
            builder = builder.access_key_id(ak).secret_access_key(sk);
            if let Some(token) = &params.session_token {
                builder = builder.session_token(token);
            }
        }
        if params.encrypt {
            builder = match &params.key_id {
                Some(id) => builder.server_side_encryption_with_customer_managed_kms_key(id),
                None => builder.server_side_encryption_with_s3_key(),
            };
        }
        if let Some(class) = &params.storage_class {
            builder = builder.default_storage_class(class);
        }
        let op = Operator::new(builder).map_err(|e| backend(NAME, e))?;
        let client = http_client(&params, &endpoint, std::env::var_os("AWS_CA_BUNDLE"))?;
        let copy = CopyPlan::new(
            params.multipart_copy_threshold_size,
            params.multipart_copy_chunk_size,
            params.multipart_copy_max_concurrency,
        );
        Ok(ObjectStore::new(
            with_http_client(op, client),
            NAME,
            copy,
            params.chunk_size,
            params.redirect,
        ))
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::driver::Driver;
    use crate::path::StoragePath;
    use crate::testsuite::peers;

    /// A driver on a fresh moto bucket, below a `rootdirectory` as deployments often use.
    async fn on_moto() -> Option<S3Driver> {
        let moto = peers::moto()?;
        let bucket = moto.bucket().await;
        let params = S3Params {
            root_directory: "/registry/root".to_owned(),
            chunk_size: MIN_CHUNK_SIZE,
            ..moto.params(&bucket)
        };
        Some(S3Driver::s3(params).unwrap())
    }

    crate::conformance_tests!(optional: on_moto().await);

    #[test]
    fn endpoint_follows_secure_and_region() {
        let p = |region: &str, endpoint: Option<&str>, secure: bool| S3Params {
            region: region.to_owned(),
            region_endpoint: endpoint.map(str::to_owned),
            secure,
            ..S3Params::default()
        };
        assert_eq!(
            p("us-east-1", None, true).endpoint(),
            "https://s3.amazonaws.com"
        );
        assert_eq!(
            p("eu-west-1", None, false).endpoint(),
            "http://s3.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            p("x", Some("minio:9000/"), false).endpoint(),
            "http://minio:9000"
        );
        assert_eq!(
            p("x", Some("https://r2.example"), false).endpoint(),
            "https://r2.example"
        );
    }

    #[test]
    fn ca_bundle_applies_to_https_endpoints_only() {
        let p = S3Params::default();
        let missing = Some(std::ffi::OsString::from("/nonexistent/ca.pem"));
        assert!(http_client(&p, "http://127.0.0.1:9000", missing.clone()).is_ok());
        let err = http_client(&p, "https://s3.amazonaws.com", missing).unwrap_err();
        assert!(err.to_string().contains("AWS_CA_BUNDLE"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("bundle.pem");
        std::fs::write(&not_pem, "no certificates here").unwrap();
        http_client(&p, "https://s3.amazonaws.com", Some(not_pem.into())).unwrap();
    }

    #[tokio::test]
    async fn resume_from_another_driver_instance_and_redirect() {
        let Some(moto) = peers::moto() else { return };
        let bucket = moto.bucket().await;
        let (a, b) = (
            S3Driver::s3(moto.params(&bucket)).unwrap(),
            S3Driver::s3(moto.params(&bucket)).unwrap(),
        );
        let p = StoragePath::new("/_uploads/x/data").unwrap();
        let mut w = a.writer(&p, true).await.unwrap();
        w.write(Bytes::from_static(b"abc")).await.unwrap();
        w.commit().await.unwrap();
        let mut w = b.writer(&p, true).await.unwrap();
        assert_eq!(w.size(), 3);
        w.write(Bytes::from_static(b"def")).await.unwrap();
        w.commit().await.unwrap();
        assert_eq!(a.get_content(&p).await.unwrap(), &b"abcdef"[..]);
        let blob = StoragePath::new("/blobs/data").unwrap();
        b.rename(&p, &blob).await.unwrap();
        let url = a.redirect_url(&blob).await.unwrap().unwrap();
        assert!(url.contains("X-Amz-Signature="), "{url}");
        let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        assert_eq!(body, &b"abcdef"[..]);
        let quiet = S3Params {
            redirect: false,
            ..moto.params(&bucket)
        };
        let quiet = S3Driver::s3(quiet).unwrap();
        assert_eq!(quiet.redirect_url(&blob).await.unwrap(), None);
    }
}
