//! One module per backend, each named by its configuration key.

pub mod azure;
pub mod filesystem;
pub mod gcs;
pub mod inmemory;
pub mod object;
pub mod oss;
pub mod s3;
pub mod swift;
