//! `GET /v2/_catalog`: every repository, paginated like tags.

use axum::response::Response;
use http::request::Parts;
use serde_json::json;

use super::tags::{list_response, page_size};
use super::{Api, ApiError, query};
use crate::registry::tags::paginate;

/// distribution's `catalog.maxentries` default: the page size when `n` is absent, and its cap.
pub const MAX_ENTRIES: usize = 1000;

/// GET _catalog.
pub async fn list_repositories(api: &Api, parts: &Parts) -> Result<Response, ApiError> {
    let q = query(parts);
    let n = page_size(&q)?.unwrap_or(MAX_ENTRIES).min(MAX_ENTRIES);
    let repos = api.registry.list_repositories().await?;
    let (page, more) = paginate(repos, Some(n), q.get("last").map(String::as_str));
    let next = match (more, page.last()) {
        (true, Some(last)) => Some((n, last.as_str())),
        _ => None,
    };
    let body = json!({ "repositories": page });
    Ok(list_response(api, "/v2/_catalog", body, next))
}
