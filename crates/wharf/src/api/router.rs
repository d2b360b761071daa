//! The single `match` from (route, method) to handler, plus what every response carries.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use serde_json::Value;
use wharf_oci::ErrorCode;

use super::route::Route;
use super::{Api, ApiError, blobs, catalog, headers, hv, manifests, referrers, tags, uploads};

/// Entry point for every request under the API prefix.
pub async fn handle(State(api): State<Arc<Api>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    // What events need of the request is gathered only when notifications are on: building it
    // (a request id, the base URL, header copies) is a fifth of a cached manifest GET's cost.
    let handled = if api.registry.has_listener() {
        let base_url = api.urls.url(&parts.headers, "");
        let peer = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let info =
            crate::notify::RequestInfo::from_headers(&parts.method, &parts.headers, peer, base_url);
        crate::notify::scope(info, dispatch(&api, parts, body)).await
    } else {
        dispatch(&api, parts, body).await
    };
    let mut resp = match handled {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    let h = resp.headers_mut();
    h.insert(headers::API_VERSION, hv(headers::API_VERSION_VALUE));
    for (k, v) in &api.extra_headers {
        h.append(k.clone(), v.clone());
    }
    resp
}

async fn dispatch(
    api: &Api,
    parts: http::request::Parts,
    body: Body,
) -> Result<Response, ApiError> {
    let path = parts.uri.path();
    let path = path
        .strip_prefix(api.urls.prefix.as_str())
        .ok_or_else(super::error::not_found)?;
    let route = Route::parse(path)?;
    let m = &parts.method;
    if let Some(auth) = &api.auth {
        let from = super::query(&parts)
            .get("from")
            .and_then(|f| f.parse().ok());
        let access = route.access(m, from.as_ref());
        let grant = auth.authorize(&parts.headers, &access).await?;
        if let Some(user) = grant.user {
            crate::notify::set_actor(user);
        }
    }
    let head = m == Method::HEAD;
    match route {
        Route::Base if m == Method::GET || head => Ok(base()),
        Route::Catalog if m == Method::GET => catalog::list_repositories(api, &parts).await,
        Route::Blob { name, digest } => match *m {
            Method::GET | Method::HEAD => blobs::get_blob(api, &parts, &name, &digest, head).await,
            Method::DELETE => blobs::delete_blob(api, &name, &digest).await,
            _ => Err(method_not_allowed()),
        },
        Route::UploadStart { name } if m == Method::POST => {
            uploads::start_upload(api, &parts, &name, body).await
        }
        Route::Upload { name, id } => match *m {
            Method::PATCH => uploads::upload_chunk(api, &parts, &name, &id, body).await,
            Method::PUT => uploads::finish_upload(api, &parts, &name, &id, body).await,
            Method::GET => uploads::upload_status(api, &parts, &name, &id).await,
            Method::DELETE => uploads::cancel_upload(api, &name, &id).await,
            _ => Err(method_not_allowed()),
        },
        Route::Manifest { name, reference } => match *m {
            Method::GET | Method::HEAD => {
                manifests::get_manifest(api, &parts, &name, &reference, head).await
            }
            Method::PUT => manifests::put_manifest(api, &parts, &name, &reference, body).await,
            Method::DELETE => manifests::delete_manifest(api, &name, &reference).await,
            _ => Err(method_not_allowed()),
        },
        Route::Tags { name } if m == Method::GET => tags::list_tags(api, &parts, &name).await,
        Route::Referrers { name, digest } if m == Method::GET => {
            referrers::list_referrers(api, &parts, &name, &digest).await
        }
        _ => Err(method_not_allowed()),
    }
}

/// end-1: the API version check clients make before anything else.
fn base() -> Response {
    let mut r = (StatusCode::OK, "{}").into_response();
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, hv(wharf_oci::media_type::JSON));
    r
}

fn method_not_allowed() -> ApiError {
    ApiError::new(ErrorCode::Unsupported, Value::Null)
        .message("method not allowed on this endpoint")
}
