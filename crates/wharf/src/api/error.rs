//! The one place registry errors become OCI error responses.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use wharf_oci::{ErrorCode, media_type};

use super::headers;
use super::route::RouteError;
use crate::auth::Denial;
use crate::registry::Error;

/// A client-facing error: code, optional message override, detail, and extra headers.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: Option<String>,
    detail: Value,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with the code's default message and a detail.
    pub fn new(code: ErrorCode, detail: impl Into<Value>) -> Self {
        ApiError {
            code,
            message: None,
            detail: detail.into(),
            headers: Vec::new(),
        }
    }

    /// Overrides the code's default message.
    pub fn message(mut self, m: impl Into<String>) -> Self {
        self.message = Some(m.into());
        self
    }

    /// Adds a response header (Range on 416, WWW-Authenticate on 401).
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// The code, for tests and access logs.
    pub fn code(&self) -> ErrorCode {
        self.code
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use ErrorCode as C;
        match e {
            Error::BlobUnknown(d) => {
                ApiError::new(C::BlobUnknown, json!({ "digest": d.to_string() }))
            }
            Error::UploadUnknown => ApiError::new(C::BlobUploadUnknown, Value::Null),
            Error::UploadInvalid(m) => ApiError::new(C::BlobUploadInvalid, m),
            Error::Body(m) => ApiError::new(C::BlobUploadInvalid, format!("request body: {m}")),
            Error::DigestInvalid(m) => ApiError::new(C::DigestInvalid, m),
            Error::RangeInvalid { detail, size } => ApiError::new(C::RangeInvalid, detail)
                .header(headers::RANGE, &format!("0-{}", size.saturating_sub(1))),
            Error::SizeInvalid(m) => ApiError::new(C::SizeInvalid, m),
            Error::ManifestUnknown(r) => {
                ApiError::new(C::ManifestUnknown, json!({ "reference": r.to_string() }))
            }
            Error::ManifestInvalid(m) => ApiError::new(C::ManifestInvalid, m),
            Error::ManifestBlobUnknown(d) => {
                ApiError::new(C::ManifestBlobUnknown, json!({ "digest": d.to_string() }))
            }
            Error::TagInvalid(m) => ApiError::new(C::TagInvalid, m),
            Error::NameUnknown(n) => {
                ApiError::new(C::NameUnknown, json!({ "name": n.to_string() }))
            }
            Error::Unsupported(why) => ApiError::new(C::Unsupported, Value::Null).message(why),
            Error::Storage(e) => {
                tracing::error!(
                    error = format!("{:#}", anyhow::Error::from(e)),
                    "storage failure"
                );
                ApiError::new(C::Unknown, Value::Null)
            }
        }
    }
}

impl From<Denial> for ApiError {
    fn from(d: Denial) -> Self {
        tracing::info!(reason = d.reason, "access denied");
        // distribution's detail: the access records the request needed
        let detail: Vec<Value> = d
            .access
            .iter()
            .map(|a| {
                json!({ "Type": a.resource.kind(), "Class": "", "Name": a.resource.name(), "Action": a.action.as_str() })
            })
            .collect();
        let detail = if detail.is_empty() {
            Value::Null
        } else {
            Value::Array(detail)
        };
        ApiError::new(ErrorCode::Unauthorized, detail)
            .header(header::WWW_AUTHENTICATE, &d.challenge.header_value())
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        use ErrorCode as C;
        match e {
            RouteError::NotFound => not_found(),
            RouteError::Name(n) => ApiError::new(C::NameInvalid, json!({ "name": n })),
            RouteError::Digest(m) => ApiError::new(C::DigestInvalid, m),
            RouteError::Tag(t) => ApiError::new(C::TagInvalid, json!({ "tag": t })),
            RouteError::UploadId => ApiError::new(C::BlobUploadUnknown, Value::Null),
        }
    }
}

/// A path that is no endpoint: 404 with the JSON envelope (spec: errors are always JSON).
pub fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NameUnknown, Value::Null).message("page not found")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let d = self.code.descriptor();
        let body = json!({ "errors": [{
            "code": d.code,
            "message": self.message.as_deref().unwrap_or(d.message),
            "detail": self.detail,
        }]});
        let status = StatusCode::from_u16(d.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = Response::new(Body::from(format!("{body}\n")));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(media_type::JSON),
        );
        for (k, v) in self.headers {
            h.insert(k, v);
        }
        resp
    }
}
