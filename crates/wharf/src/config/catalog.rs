//! `catalog:`: limits of `GET /v2/_catalog`.

use serde::{Deserialize, Serialize};

/// distribution's page size cap when `catalog.maxentries` is unset or not positive.
pub const DEFAULT_MAX_ENTRIES: u64 = 1000;

/// `catalog:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct CatalogConfig {
    /// `maxentries`: most repositories returned by one catalog request.
    #[serde(rename = "maxentries")]
    pub max_entries: i64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        CatalogConfig {
            max_entries: DEFAULT_MAX_ENTRIES as i64,
        }
    }
}

impl CatalogConfig {
    /// The effective cap: distribution treats zero and negative values as 1000.
    pub fn limit(&self) -> u64 {
        u64::try_from(self.max_entries)
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or(DEFAULT_MAX_ENTRIES)
    }
}
