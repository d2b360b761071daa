//! `reporting:`: distribution 2.x error reporting to Bugsnag and New Relic, sent by
//! `crate::reporting` (New Relic as OTLP traces to its OTLP endpoint, not through the Go agent).

use serde::{Deserialize, Serialize};

use super::secret::{self, Secret};

/// `reporting:`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ReportingConfig {
    /// `bugsnag`: error reports.
    pub bugsnag: Bugsnag,
    /// `newrelic`: APM.
    #[serde(rename = "newrelic")]
    pub new_relic: NewRelic,
}

/// `reporting.bugsnag`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Bugsnag {
    /// `apikey`: masked everywhere.
    #[serde(
        rename = "apikey",
        deserialize_with = "secret::non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub api_key: Option<Secret>,
    /// `releasestage`: production, staging…
    #[serde(rename = "releasestage")]
    pub release_stage: String,
    /// `endpoint`: an on-premises Bugsnag.
    pub endpoint: String,
}

/// `reporting.newrelic`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct NewRelic {
    /// `licensekey`: masked everywhere.
    #[serde(
        rename = "licensekey",
        deserialize_with = "secret::non_empty",
        skip_serializing_if = "Option::is_none"
    )]
    pub license_key: Option<Secret>,
    /// `name`: application name.
    pub name: String,
    /// `verbose`: log each export at info instead of debug.
    pub verbose: bool,
    /// `endpoint`: wharf's addition, the OTLP base URL (default New Relic's US endpoint
    /// `https://otlp.nr-data.net:4318`; the EU region is `https://otlp.eu01.nr-data.net:4318`).
    pub endpoint: String,
}
