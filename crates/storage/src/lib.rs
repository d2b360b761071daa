//! Bytes at validated paths, behind one [`Driver`] trait with one module per backend.
//!
//! This crate knows nothing of OCI: digests, repositories and the `docker/registry/v2` layout
//! belong to the registry layer above it. Every backend passes the same conformance suite
//! (module `testsuite`, behind the `testsuite` feature).

pub mod backend;
pub mod driver;
pub mod factory;
pub mod path;
#[cfg(any(test, feature = "testsuite"))]
pub mod testsuite;

pub use driver::{ByteStream, Driver, Error, FileInfo, FileWriter, Result};
pub use factory::DriverConfig;
pub use path::StoragePath;
