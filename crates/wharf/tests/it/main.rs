//! wharf's integration tests: one binary, so a 2-core CI links once.
//!
//! Tests that need an outside program (dockerd, skopeo, podman, docker-registry) skip with a
//! printed reason when it is missing, and fail when `CI=true`.

mod harness;

mod acme;
mod api_blobs;
mod api_blobs_sendfile;
mod api_discovery;
mod api_errors;
mod api_manifests;
mod api_uploads;
mod auth;
mod azure;
mod clients;
mod compat;
mod connections;
mod crash;
mod gc;
mod gc_online;
mod gcs;
mod health;
mod metrics;
mod middleware;
mod notify;
mod redis_cache;
mod reporting;
mod s3;
mod scaleout;
mod swift;
mod tls;
mod token_server;
