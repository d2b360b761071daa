//! The vocabulary of the OCI Distribution Spec and the Docker Registry API V2, parsed once at the
//! edge so that the rest of wharf never handles a digest, name or tag as a bare string.
//!
//! This crate does no I/O and depends on nothing of wharf.

pub mod digest;
pub mod error_code;
pub mod manifest;
pub mod media_type;
pub mod reference;

pub use digest::{Algorithm, Digest, DigestError, Hasher};
pub use error_code::{Descriptor, ErrorCode};
pub use manifest::{Manifest, ManifestDescriptor, ManifestError, ManifestKind};
pub use reference::{NameError, Reference, RepoName, Tag};
