//! The `azure` backend: Azure Blob Storage (and Azurite), with distribution's parameters; an
//! [`ObjectStore`] over OpenDAL's azblob service. Appends use the same segment objects as S3
//! (not Append Blobs), so every file is a block blob that distribution reads unchanged.

mod sas;

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;

use opendal::Operator;

use super::object::{CopyPlan, MIN_CHUNK_SIZE, ObjectStore, REDIRECT_EXPIRY, with_http_client};
use crate::driver::{Error, Result};

const NAME: &str = "azure";

/// The `azure` driver: an object store named `azure`.
pub type AzureDriver = ObjectStore;

/// Parameters of the `azure` driver, with distribution's keys.
#[derive(Clone, PartialEq, Eq)]
pub struct AzureParams {
    /// `accountname` (required).
    pub account_name: String,
    /// `accountkey` (required): the storage account's shared key.
    pub account_key: String,
    /// `container` (required).
    pub container: String,
    /// `realm`: the domain of the blob endpoint (default `core.windows.net`).
    pub realm: String,
    /// `serviceurl`: the whole endpoint, for Azurite or private endpoints (wins over `realm`).
    pub service_url: Option<String>,
    /// `rootdirectory`: prefix below which the tree lives.
    pub root_directory: String,
    /// `chunksize`: block size of streamed writes (default 10 MiB).
    pub chunk_size: u64,
    /// Blob GETs redirect to a read-only SAS URL (off with `storage.redirect.disable`).
    pub redirect: bool,
}

impl Default for AzureParams {
    fn default() -> Self {
        AzureParams {
            account_name: String::new(),
            account_key: String::new(),
            container: String::new(),
            realm: "core.windows.net".to_owned(),
            service_url: None,
            root_directory: String::new(),
            chunk_size: 10 << 20,
            redirect: true,
        }
    }
}

impl fmt::Debug for AzureParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureParams")
            .field("account_name", &self.account_name)
            .field("account_key", &"*****")
            .field("container", &self.container)
            .field("realm", &self.realm)
            .field("service_url", &self.service_url)
            .field("root_directory", &self.root_directory)
            .field("chunk_size", &self.chunk_size)
            .field("redirect", &self.redirect)
            .finish()
    }
}

impl AzureParams {
    /// The blob endpoint: `serviceurl`, else `https://<account>.blob.<realm>`.
    pub fn endpoint(&self) -> String {
        match &self.service_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("https://{}.blob.{}", self.account_name, self.realm),
        }
    }
}

impl ObjectStore {
    /// The `azure` driver; connects lazily. Blob GETs redirect to a read-only service SAS
    /// that wharf signs with the account key (OpenDAL only presigns with a given SAS token).
    pub fn azure(params: AzureParams) -> Result<Self> {
        let builder = opendal::services::Azblob::default()
            .container(&params.container)
            .endpoint(&params.endpoint())
            .account_name(&params.account_name)
            .account_key(&params.account_key)
            .root(&format!("/{}", params.root_directory.trim_matches('/')));
        let op = Operator::new(builder).map_err(|e| Error::Backend {
            driver: NAME,
            source: e.into(),
        })?;
        let client = reqwest::Client::builder()
            .build()
            .map_err(|e| Error::Backend {
                driver: NAME,
                source: e.into(),
            })?;
        let store = ObjectStore::new(
            with_http_client(op, client),
            NAME,
            CopyPlan::whole(),
            params.chunk_size.max(MIN_CHUNK_SIZE),
            false,
        );
        if !params.redirect {
            return Ok(store);
        }
        let key = base64::engine::general_purpose::STANDARD
            .decode(params.account_key.trim())
            .map_err(|e| Error::Backend {
                driver: NAME,
                source: format!("accountkey is not base64: {e}").into(),
            })?;
        let signer = sas::SasSigner {
            endpoint: params.endpoint(),
            account: params.account_name.clone(),
            key,
            container: params.container.clone(),
        };
        let root = params.root_directory.trim_matches('/').to_owned();
        Ok(store.with_url_signer(Arc::new(move |key: &str| {
            let name = if root.is_empty() {
                key.to_owned()
            } else {
                format!("{root}/{key}")
            };
            signer.url(&name, REDIRECT_EXPIRY)
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testsuite::peers;

    /// A driver on a fresh Azurite container, below a `rootdirectory`.
    async fn on_azurite() -> Option<AzureDriver> {
        let azurite = peers::azurite()?;
        let container = azurite.container().await;
        let params = AzureParams {
            root_directory: "/registry".to_owned(),
            ..azurite.params(&container)
        };
        Some(AzureDriver::azure(params).unwrap())
    }

    crate::conformance_tests!(optional: on_azurite().await);

    #[tokio::test]
    async fn redirect_sas_url_reads_the_blob_and_a_tampered_one_is_refused() {
        use crate::{Driver, StoragePath};
        let Some(driver) = on_azurite().await else {
            return;
        };
        let path = StoragePath::new("/docker/registry/v2/blobs/sha256/ab/abcd/data").unwrap();
        driver
            .put_content(&path, bytes::Bytes::from_static(b"sas bytes"))
            .await
            .unwrap();
        let url = driver
            .redirect_url(&path)
            .await
            .unwrap()
            .expect("a SAS URL");
        assert!(
            url.contains("/registry/docker/registry/v2/blobs/sha256/ab/abcd/data?sv="),
            "{url}"
        );
        assert!(url.contains("&sr=b&sp=r&se="), "{url}");
        let http = reqwest::Client::new();
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        assert_eq!(&resp.bytes().await.unwrap()[..], b"sas bytes");

        let (head, sig) = url.rsplit_once("&sig=").unwrap();
        let flipped = if sig.starts_with('A') { "B" } else { "A" };
        let tampered = format!("{head}&sig={flipped}{}", &sig[1..]);
        let resp = http.get(&tampered).send().await.unwrap();
        assert_eq!(resp.status(), 403, "tampered signature accepted");
        let widened = url.replace("&sp=r&", "&sp=rw&");
        let resp = http.get(&widened).send().await.unwrap();
        assert_eq!(resp.status(), 403, "widened permissions accepted");
    }

    #[tokio::test]
    async fn no_redirect_when_disabled() {
        use crate::{Driver, StoragePath};
        let Some(azurite) = peers::azurite() else {
            return;
        };
        let container = azurite.container().await;
        let params = AzureParams {
            redirect: false,
            ..azurite.params(&container)
        };
        let driver = AzureDriver::azure(params).unwrap();
        let path = StoragePath::new("/a/data").unwrap();
        assert_eq!(driver.redirect_url(&path).await.unwrap(), None);
    }

    #[test]
    fn endpoint_from_realm_or_service_url() {
        let p = AzureParams {
            account_name: "acct".into(),
            ..AzureParams::default()
        };
        assert_eq!(p.endpoint(), "https://acct.blob.core.windows.net");
        let p = AzureParams {
            service_url: Some("http://127.0.0.1:10000/devstoreaccount1/".into()),
            ..p
        };
        assert_eq!(p.endpoint(), "http://127.0.0.1:10000/devstoreaccount1");
    }
}
