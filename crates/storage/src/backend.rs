//! One module per backend, each named by its configuration key.

pub mod filesystem;
pub mod inmemory;
pub mod s3;
