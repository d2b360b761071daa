//! wharf: a container image registry that serves the OCI Distribution Spec and the Docker
//! Registry HTTP API V2 over distribution's storage layout and configuration.
//!
//! Layers, each depending only on those below it: `cli` → `server` → `api` → `registry` →
//! `wharf_storage::Driver`; `config` is read by `cli` and `server` only.

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod debug_server;
pub mod gc;
pub mod health;
pub mod metrics;
pub mod middleware;
pub mod notify;
pub mod registry;
pub mod reporting;
pub mod rfc3339;
pub mod sendfile;
pub mod server;
pub mod tls;
