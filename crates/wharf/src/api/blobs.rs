//! end-2 and end-10: fetching and deleting blobs.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use http::request::Parts;
use http::{StatusCode, header};
use wharf_oci::{Digest, ErrorCode, RepoName, media_type};

use super::range::{ByteRange, parse_range};
use super::{Api, ApiError, header_str, headers, hv};

/// Blobs up to this size are read whole rather than streamed (image configs, small layers).
const SMALL_BLOB: u64 = 64 * 1024;

/// GET/HEAD a blob, with single-range support and conditional requests on the digest ETag.
pub async fn get_blob(
    api: &Api,
    parts: &Parts,
    name: &RepoName,
    digest: &Digest,
    head: bool,
) -> Result<Response, ApiError> {
    let size = api.registry.stat_blob(name, digest).await?;
    let etag = format!("\"{digest}\"");
    let mut b = Response::builder()
        .header(headers::CONTENT_DIGEST, hv(&digest.to_string()))
        .header(header::ETAG, hv(&etag))
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "max-age=31536000");
    if header_str(&parts.headers, header::IF_NONE_MATCH).is_some_and(|v| v.contains(&etag)) {
        return Ok(b
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .unwrap_or_default());
    }
    if !head && let Some(url) = api.registry.blob_redirect(digest).await? {
        return Ok(b
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header(header::LOCATION, hv(&url))
            .body(Body::empty())
            .unwrap_or_default());
    }
    let (status, start, len) = match parse_range(header_str(&parts.headers, header::RANGE), size) {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial { start, end } => {
            b = b.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{size}"));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        ByteRange::Unsatisfiable => {
            return Err(
                ApiError::new(ErrorCode::RangeInvalid, format!("blob holds {size} bytes"))
                    .header(header::CONTENT_RANGE, &format!("bytes */{size}")),
            );
        }
    };
    b = b
        .status(status)
        .header(header::CONTENT_TYPE, media_type::OCTET_STREAM)
        .header(header::CONTENT_LENGTH, len);
    let body = if head || len == 0 {
        Body::empty()
    } else if size <= SMALL_BLOB {
        let whole = api.registry.read_small_blob(digest).await?;
        let (start, end) = (start as usize, (start + len) as usize);
        if whole.len() < end {
            // the blob changed size under us (only a corrupt store does that): never serve short
            return Err(crate::registry::Error::BlobUnknown(digest.clone()).into());
        }
        Body::from(whole.slice(start..end))
    } else if let Some(slot) = parts.extensions.get::<crate::sendfile::Slot>()
        && let Some(file) = api.registry.blob_file(digest).await?
    {
        crate::sendfile::body(slot, file, start, len)
    } else {
        let stream = api.registry.read_blob(digest, start).await?;
        Body::from_stream(limit(stream, len))
    };
    Ok(b.body(body).unwrap_or_default())
}

/// Ends a byte stream after `len` bytes, without asking the reader for another chunk once
/// they are out (a range would otherwise cost one more read past its end).
fn limit(
    stream: wharf_storage::ByteStream,
    len: u64,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold((stream, len), |(mut stream, left)| async move {
        if left == 0 {
            return None;
        }
        match stream.next().await? {
            Ok(mut c) => {
                if c.len() as u64 > left {
                    c.truncate(left as usize);
                }
                let left = left - c.len() as u64;
                Some((Ok(c), (stream, left)))
            }
            Err(e) => Some((Err(e), (stream, 0))),
        }
    })
}

/// end-10: removes the repository's link to the blob (202).
pub async fn delete_blob(
    api: &Api,
    name: &RepoName,
    digest: &Digest,
) -> Result<Response, ApiError> {
    api.registry.delete_blob(name, digest).await?;
    Ok(Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(headers::CONTENT_DIGEST, hv(&digest.to_string()))
        .header(header::CONTENT_LENGTH, 0)
        .body(Body::empty())
        .unwrap_or_default())
}
