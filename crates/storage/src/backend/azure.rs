//! The `azure` backend: Azure Blob Storage (and Azurite), with distribution's parameters; an
//! [`ObjectStore`] over OpenDAL's azblob service. Appends use the same segment objects as S3
//! (not Append Blobs), so every file is a block blob that distribution reads unchanged.

use std::fmt;

use opendal::Operator;

use super::object::{CopyPlan, MIN_CHUNK_SIZE, ObjectStore, with_http_client};
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
    /// The `azure` driver; connects lazily. Blob GETs are never redirected: that needs a SAS,
    /// which OpenDAL cannot mint from the account key.
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
        Ok(ObjectStore::new(
            with_http_client(op, client),
            NAME,
            CopyPlan::whole(),
            params.chunk_size.max(MIN_CHUNK_SIZE),
            false,
        ))
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
