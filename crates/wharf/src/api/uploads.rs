//! end-4a/4b/5/6/11/13 and upload cancellation: pushing blobs, monolithically or in chunks,
//! and cross-repository mounts.

use axum::body::Body;
use axum::response::Response;
use http::request::Parts;
use http::{StatusCode, header};
use wharf_oci::{Digest, ErrorCode, RepoName};

use super::range::parse_content_range;
use super::{Api, ApiError, header_str, headers, hv, query};
use crate::registry::Error;
use crate::registry::uploads::UploadId;

fn upload_path(name: &RepoName, id: &UploadId) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn blob_created(api: &Api, parts: &Parts, name: &RepoName, digest: &Digest) -> Response {
    let location = api
        .urls
        .url(&parts.headers, &format!("/v2/{name}/blobs/{digest}"));
    Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, hv(&location))
        .header(headers::CONTENT_DIGEST, hv(&digest.to_string()))
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default()
}

/// `Range: 0-<last byte>` as distribution writes it (`0-0` for an empty upload).
fn progress(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

fn upload_accepted(
    api: &Api,
    parts: &Parts,
    name: &RepoName,
    id: &UploadId,
    size: u64,
    status: StatusCode,
) -> Response {
    let location = api.urls.url(&parts.headers, &upload_path(name, id));
    Response::builder()
        .status(status)
        .header(header::LOCATION, hv(&location))
        .header(headers::RANGE, progress(size))
        .header(headers::UPLOAD_UUID, hv(id.as_str()))
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default()
}

fn parse_digest(s: Option<&String>) -> Result<Digest, ApiError> {
    let s = s.ok_or_else(|| ApiError::new(ErrorCode::DigestInvalid, "digest parameter missing"))?;
    s.parse()
        .map_err(|e: wharf_oci::DigestError| ApiError::new(ErrorCode::DigestInvalid, e.to_string()))
}

/// POST: mount from another repository, push in one request (`?digest=`), or open a session.
pub async fn start_upload(
    api: &Api,
    parts: &Parts,
    name: &RepoName,
    body: Body,
) -> Result<Response, ApiError> {
    let q = query(parts);
    if let Some(mount) = q.get("mount") {
        let digest = parse_digest(Some(mount))?;
        if let Some(from) = q.get("from") {
            let from: RepoName = from.parse().map_err(|_| {
                ApiError::new(ErrorCode::NameInvalid, serde_json::json!({ "name": from }))
            })?;
            if api
                .registry
                .mount_blob(name, &from, &digest)
                .await?
                .is_some()
            {
                return Ok(blob_created(api, parts, name, &digest));
            }
        }
    } else if q.contains_key("digest") {
        let digest = parse_digest(q.get("digest"))?;
        let id = api.registry.start_upload(name).await?;
        let result = api
            .registry
            .finish_upload(name, &id, &digest, body.into_data_stream())
            .await;
        if result.is_err() {
            // a failed one-shot push leaves no session behind
            let _ = api.registry.cancel_upload(name, &id).await;
        }
        result?;
        return Ok(blob_created(api, parts, name, &digest));
    }
    let id = api.registry.start_upload(name).await?;
    Ok(upload_accepted(
        api,
        parts,
        name,
        &id,
        0,
        StatusCode::ACCEPTED,
    ))
}

/// The chunk start a `Content-Range` names, checked against `Content-Length` when both are sent.
fn chunk_start(parts: &Parts) -> Result<Option<u64>, ApiError> {
    let Some(cr) = header_str(&parts.headers, header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let range_err = |d: String| ApiError::new(ErrorCode::RangeInvalid, d);
    let (start, end) = parse_content_range(cr)
        .ok_or_else(|| range_err(format!("malformed Content-Range {cr:?}")))?;
    if let Some(len) =
        header_str(&parts.headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<u64>().ok())
        && len != end - start + 1
    {
        return Err(range_err(format!(
            "Content-Range {cr:?} does not match Content-Length {len}"
        )));
    }
    Ok(Some(start))
}

/// PATCH: append a chunk (streamed without Content-Range, or in order with it).
pub async fn upload_chunk(
    api: &Api,
    parts: &Parts,
    name: &RepoName,
    id: &UploadId,
    body: Body,
) -> Result<Response, ApiError> {
    let start = match chunk_start(parts) {
        Ok(s) => s,
        Err(e) => {
            let size = api.registry.upload_size(name, id).await?;
            return Err(e.header(headers::RANGE, &progress(size)));
        }
    };
    let size = api
        .registry
        .append_upload(name, id, start, body.into_data_stream())
        .await?;
    Ok(upload_accepted(
        api,
        parts,
        name,
        id,
        size,
        StatusCode::ACCEPTED,
    ))
}

/// PUT `?digest=`: the last chunk (optional), verification, and commit into the blob store.
pub async fn finish_upload(
    api: &Api,
    parts: &Parts,
    name: &RepoName,
    id: &UploadId,
    body: Body,
) -> Result<Response, ApiError> {
    let q = query(parts);
    let digest = parse_digest(q.get("digest"))?;
    if let Some(start) = chunk_start(parts)? {
        let size = api.registry.upload_size(name, id).await?;
        if start != size {
            return Err(Error::RangeInvalid {
                detail: format!("chunk starts at {start} but the upload holds {size} bytes"),
                size,
            }
            .into());
        }
    }
    api.registry
        .finish_upload(name, id, &digest, body.into_data_stream())
        .await?;
    Ok(blob_created(api, parts, name, &digest))
}

/// GET: how much of the upload the registry holds (204 with Range).
pub async fn upload_status(
    api: &Api,
    parts: &Parts,
    name: &RepoName,
    id: &UploadId,
) -> Result<Response, ApiError> {
    let size = api.registry.upload_size(name, id).await?;
    Ok(upload_accepted(
        api,
        parts,
        name,
        id,
        size,
        StatusCode::NO_CONTENT,
    ))
}

/// DELETE: abandon the session and its bytes (204).
pub async fn cancel_upload(
    api: &Api,
    name: &RepoName,
    id: &UploadId,
) -> Result<Response, ApiError> {
    api.registry.cancel_upload(name, id).await?;
    Ok(Response::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default())
}
