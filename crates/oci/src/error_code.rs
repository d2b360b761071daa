//! The error codes of the spec plus distribution's extras, each tied to exactly one HTTP status
//! and message so a code can never drift from its status.

/// An error code as it appears in `{"errors":[{"code": ...}]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// spec code-1
    BlobUnknown,
    /// spec code-2
    BlobUploadInvalid,
    /// spec code-3
    BlobUploadUnknown,
    /// spec code-4
    DigestInvalid,
    /// spec code-5
    ManifestBlobUnknown,
    /// spec code-6
    ManifestInvalid,
    /// spec code-7
    ManifestUnknown,
    /// spec code-8
    NameInvalid,
    /// spec code-9
    NameUnknown,
    /// spec code-10
    SizeInvalid,
    /// spec code-11
    Unauthorized,
    /// spec code-12
    Denied,
    /// spec code-13
    Unsupported,
    /// spec code-14
    TooManyRequests,
    /// distribution: internal failure, detail never leaks
    Unknown,
    /// distribution: service unavailable (read-only storage, failing health check)
    Unavailable,
    /// distribution: Content-Range or Range that does not fit
    RangeInvalid,
    /// distribution: tag outside the grammar
    TagInvalid,
    /// distribution: manifest signature failed
    ManifestUnverified,
    /// distribution: `n` that is not a positive number
    PaginationNumberInvalid,
    /// A manifest over the size limit: SIZE_INVALID with 413, as the spec asks for oversized
    /// manifests.
    ManifestTooLarge,
}

/// What a code puts on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// The upper-case code string.
    pub code: &'static str,
    /// The HTTP status that goes with it.
    pub status: u16,
    /// The default human-readable message.
    pub message: &'static str,
}

impl ErrorCode {
    /// The one mapping from code to wire string, status and message.
    pub const fn descriptor(self) -> Descriptor {
        use ErrorCode::*;
        let (code, status, message) = match self {
            BlobUnknown => ("BLOB_UNKNOWN", 404, "blob unknown to registry"),
            BlobUploadInvalid => ("BLOB_UPLOAD_INVALID", 400, "blob upload invalid"),
            BlobUploadUnknown => (
                "BLOB_UPLOAD_UNKNOWN",
                404,
                "blob upload unknown to registry",
            ),
            DigestInvalid => (
                "DIGEST_INVALID",
                400,
                "provided digest did not match uploaded content",
            ),
            ManifestBlobUnknown => ("MANIFEST_BLOB_UNKNOWN", 400, "blob unknown to registry"),
            ManifestInvalid => ("MANIFEST_INVALID", 400, "manifest invalid"),
            ManifestUnknown => ("MANIFEST_UNKNOWN", 404, "manifest unknown"),
            NameInvalid => ("NAME_INVALID", 400, "invalid repository name"),
            NameUnknown => ("NAME_UNKNOWN", 404, "repository name not known to registry"),
            SizeInvalid => (
                "SIZE_INVALID",
                400,
                "provided length did not match content length",
            ),
            Unauthorized => ("UNAUTHORIZED", 401, "authentication required"),
            Denied => ("DENIED", 403, "requested access to the resource is denied"),
            Unsupported => ("UNSUPPORTED", 405, "The operation is unsupported."),
            TooManyRequests => ("TOOMANYREQUESTS", 429, "too many requests"),
            Unknown => ("UNKNOWN", 500, "unknown error"),
            Unavailable => ("UNAVAILABLE", 503, "service unavailable"),
            RangeInvalid => ("RANGE_INVALID", 416, "invalid content range"),
            TagInvalid => ("TAG_INVALID", 400, "manifest tag did not match URI"),
            ManifestUnverified => (
                "MANIFEST_UNVERIFIED",
                400,
                "manifest failed signature verification",
            ),
            PaginationNumberInvalid => (
                "PAGINATION_NUMBER_INVALID",
                400,
                "invalid number of results requested",
            ),
            ManifestTooLarge => ("SIZE_INVALID", 413, "manifest exceeds the size limit"),
        };
        Descriptor {
            code,
            status,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode::*;

    #[test]
    fn spec_statuses() {
        let cases = [
            (BlobUnknown, 404),
            (BlobUploadUnknown, 404),
            (ManifestUnknown, 404),
            (NameUnknown, 404),
            (DigestInvalid, 400),
            (ManifestBlobUnknown, 400),
            (ManifestInvalid, 400),
            (NameInvalid, 400),
            (Unauthorized, 401),
            (Denied, 403),
            (Unsupported, 405),
            (RangeInvalid, 416),
            (TooManyRequests, 429),
        ];
        for (code, status) in cases {
            assert_eq!(code.descriptor().status, status, "{code:?}");
        }
    }
}
