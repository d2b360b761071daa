//! end-3, end-7 and end-9: fetching, pushing and deleting manifests.

use axum::body::Body;
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use http::request::Parts;
use http::{StatusCode, header};
use wharf_oci::{ErrorCode, Reference, RepoName};

use super::{Api, ApiError, header_str, headers, hv};

/// The largest manifest accepted; the spec asks registries to take at least 4 MiB.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// GET/HEAD a manifest by tag or digest, served as the exact bytes pushed.
pub async fn get_manifest(
    api: &Api,
    parts: &Parts,
    name: &RepoName,
    reference: &Reference,
    head: bool,
) -> Result<Response, ApiError> {
    let m = api.registry.get_manifest(name, reference).await?;
    let etag = format!("\"{}\"", m.digest);
    let b = Response::builder()
        .header(header::CONTENT_TYPE, hv(&m.media_type))
        .header(headers::CONTENT_DIGEST, hv(&m.digest.to_string()))
        .header(header::ETAG, hv(&etag))
        .header(header::CONTENT_LENGTH, m.bytes.len());
    if header_str(&parts.headers, header::IF_NONE_MATCH).is_some_and(|v| v.contains(&etag)) {
        return Ok(b
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default());
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(m.bytes)
    };
    Ok(b.status(StatusCode::OK).body(body).unwrap_or_default())
}

/// Reads a manifest body, refusing it as soon as it passes the size limit.
async fn read_limited(body: Body) -> Result<Bytes, ApiError> {
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::new(ErrorCode::ManifestInvalid, e.to_string()))?;
        seen += chunk.len();
        if seen <= MAX_MANIFEST_BYTES {
            buf.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > MAX_MANIFEST_BYTES {
        return Err(too_large());
    }
    Ok(buf.freeze())
}

/// Oversized bodies are read and dropped up to here, so the client gets to read the 413
/// instead of a reset connection; past it the connection is closed.
const DRAIN_LIMIT: usize = 4 * MAX_MANIFEST_BYTES;

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::ManifestTooLarge,
        format!("manifests are limited to {MAX_MANIFEST_BYTES} bytes"),
    )
}

/// PUT a manifest by tag or digest (201 with Location, digest and OCI-Subject).
pub async fn put_manifest(
    api: &Api,
    parts: &Parts,
    name: &RepoName,
    reference: &Reference,
    body: Body,
) -> Result<Response, ApiError> {
    let declared =
        header_str(&parts.headers, header::CONTENT_LENGTH).and_then(|l| l.parse::<usize>().ok());
    if declared.is_some_and(|l| l > DRAIN_LIMIT) {
        return Err(too_large());
    }
    let bytes = read_limited(body).await?;
    let content_type = header_str(&parts.headers, header::CONTENT_TYPE);
    let put = api
        .registry
        .put_manifest(name, reference, content_type, bytes)
        .await?;
    let location = api.urls.url(
        &parts.headers,
        &format!("/v2/{name}/manifests/{}", put.digest),
    );
    let mut b = Response::builder()
        .status(StatusCode::CREATED)
        .header(header::LOCATION, hv(&location))
        .header(headers::CONTENT_DIGEST, hv(&put.digest.to_string()))
        .header(header::CONTENT_LENGTH, 0);
    if let Some(subject) = put.subject {
        b = b.header(headers::OCI_SUBJECT, hv(&subject.to_string()));
    }
    Ok(b.body(Body::empty()).unwrap_or_default())
}

/// DELETE by digest (the manifest and its tags) or by tag (only the tag): 202.
pub async fn delete_manifest(
    api: &Api,
    name: &RepoName,
    reference: &Reference,
) -> Result<Response, ApiError> {
    api.registry.delete_manifest(name, reference).await?;
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default())
}
