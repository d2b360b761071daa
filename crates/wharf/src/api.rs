//! The HTTP API of the OCI Distribution Spec and Docker Registry V2, one module per spec area.
//!
//! A request is parsed once into a [`route::Route`], dispatched by the single `match` in
//! [`router`], and answered by a handler that calls the [`crate::registry`] layer. Errors map to
//! the OCI envelope only in [`error`].

pub mod blobs;
pub mod catalog;
pub mod error;
pub mod headers;
pub mod manifests;
pub mod range;
pub mod referrers;
pub mod route;
pub mod router;
pub mod tags;
pub mod uploads;

use std::collections::HashMap;

use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};

use crate::registry::Registry;

pub use error::ApiError;

/// How Location and Link URLs are written (`http.host`, `http.relativeurls`, `http.prefix`).
#[derive(Debug, Clone, Default)]
pub struct UrlPolicy {
    /// `http.prefix` without its trailing slash ("" when the API is at the root).
    pub prefix: String,
    /// `http.host`: the externally reachable base URL, overriding the request's Host.
    pub host: Option<String>,
    /// `http.relativeurls`: answer with paths instead of absolute URLs.
    pub relative: bool,
    /// Whether this listener speaks TLS, for absolute URLs built from the Host header.
    pub tls: bool,
}

impl UrlPolicy {
    /// A URL for an API path such as `/v2/<name>/blobs/<digest>`, as the client should see it.
    pub fn url(&self, headers: &HeaderMap, path: &str) -> String {
        let path = format!("{}{path}", self.prefix);
        if self.relative {
            return path;
        }
        if let Some(host) = &self.host {
            return format!("{}{path}", host.trim_end_matches('/'));
        }
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let proto = get("x-forwarded-proto")
            .and_then(|p| p.split(',').next())
            .map(str::trim)
            .unwrap_or(if self.tls { "https" } else { "http" });
        let host = get("x-forwarded-host")
            .and_then(|h| h.split(',').next())
            .map(str::trim)
            .or_else(|| get(header::HOST.as_str()));
        match host {
            Some(host) => format!("{proto}://{host}{path}"),
            None => path,
        }
    }
}

/// Everything a handler needs, shared by all requests.
#[derive(Clone)]
pub struct Api {
    /// The content model.
    pub registry: Registry,
    /// How to write URLs back to clients.
    pub urls: UrlPolicy,
    /// `http.headers`: added to every response.
    pub extra_headers: Vec<(http::HeaderName, HeaderValue)>,
    /// `auth:`: checked before every dispatch; `None` leaves the registry open.
    pub auth: Option<std::sync::Arc<dyn crate::auth::AccessController>>,
}

/// The decoded query string of a request (last value wins, as distribution reads them).
pub fn query(parts: &Parts) -> HashMap<String, String> {
    parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// A header as a string, when present and valid.
pub fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Builds a response header value from text that is always ASCII (digests, URLs we built).
pub fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests;
