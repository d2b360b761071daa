//! Header names of the registry protocol, in one place.

use http::HeaderName;

/// Sent on every response so clients know they talk to a V2 registry.
pub const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
/// The value of [`API_VERSION`].
pub const API_VERSION_VALUE: &str = "registry/2.0";
/// Digest of the blob or manifest in the response.
pub const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
/// Upload session id.
pub const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
/// Subject of a pushed referrer (OCI 1.1).
pub const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
/// Filters a referrers response applied (OCI 1.1).
pub const OCI_FILTERS_APPLIED: HeaderName = HeaderName::from_static("oci-filters-applied");
/// Upload progress, `0-<last byte>`, in upload responses.
pub const RANGE: HeaderName = http::header::RANGE;
