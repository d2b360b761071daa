//! end-12a/12b: the referrers of a subject as an OCI image index.

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http::{StatusCode, header};
use serde_json::json;
use wharf_oci::{Digest, RepoName, media_type};

use super::{Api, ApiError, headers, query};

/// GET `referrers/<digest>`, optionally filtered by `artifactType`.
pub async fn list_referrers(
    api: &Api,
    parts: &Parts,
    name: &RepoName,
    digest: &Digest,
) -> Result<Response, ApiError> {
    let q = query(parts);
    let filter = q
        .get("artifactType")
        .map(String::as_str)
        .filter(|s| !s.is_empty());
    let manifests = api.registry.list_referrers(name, digest, filter).await?;
    let body = json!({
        "schemaVersion": 2,
        "mediaType": media_type::OCI_INDEX,
        "manifests": manifests,
    });
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, media_type::OCI_INDEX);
    if filter.is_some() {
        b = b.header(headers::OCI_FILTERS_APPLIED, "artifactType");
    }
    Ok(b.body(Body::from(body.to_string())).unwrap_or_default())
}
