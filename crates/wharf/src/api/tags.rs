//! end-8a/8b: the tags of a repository, paginated with `n` and `last`.

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http::{StatusCode, header};
use serde_json::json;
use wharf_oci::{ErrorCode, RepoName, media_type};

use super::{Api, ApiError, hv, query};
use crate::registry::tags::paginate;

/// `n` from the query: absent, or a non-negative integer (else PAGINATION_NUMBER_INVALID).
pub fn page_size(q: &std::collections::HashMap<String, String>) -> Result<Option<usize>, ApiError> {
    match q.get("n") {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse::<usize>()
            .map(Some)
            .map_err(|_| ApiError::new(ErrorCode::PaginationNumberInvalid, json!({ "n": s }))),
    }
}

/// A JSON list response with a `Link: <...>; rel="next"` header when more entries follow.
pub fn list_response(
    api: &Api,
    path: &str,
    body: serde_json::Value,
    next: Option<(usize, &str)>,
) -> Response {
    let mut b = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, media_type::JSON);
    if let Some((n, last)) = next {
        let last: String = form_urlencoded::byte_serialize(last.as_bytes()).collect();
        let url = format!("{}{path}?n={n}&last={last}", api.urls.prefix);
        b = b.header(header::LINK, hv(&format!("<{url}>; rel=\"next\"")));
    }
    // distribution's JSON encoder ends bodies with a newline; clients comparing lengths agree
    b.body(Body::from(format!("{body}\n"))).unwrap_or_default()
}

/// GET tags/list.
pub async fn list_tags(api: &Api, parts: &Parts, name: &RepoName) -> Result<Response, ApiError> {
    let q = query(parts);
    let n = page_size(&q)?;
    let tags = api.registry.list_tags(name).await?;
    let (page, more) = paginate(tags, n, q.get("last").map(String::as_str));
    let next = match (more, n, page.last()) {
        (true, Some(n), Some(last)) => Some((n, last.as_str())),
        _ => None,
    };
    let body = json!({ "name": name.as_str(), "tags": page });
    Ok(list_response(
        api,
        &format!("/v2/{name}/tags/list"),
        body,
        next,
    ))
}
