//! Hot pure code of the server: route parsing and storage layout paths, which every request
//! runs. Ratios against distribution come from `bench/`; these track regressions in isolation.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use wharf::api::route::Route;
use wharf::registry::layout::{PathSpec, parse_link};
use wharf_oci::{Digest, RepoName, Tag};

const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

fn routes(c: &mut Criterion) {
    let mut g = c.benchmark_group("route_parse");
    for (label, path) in [
        (
            "manifest_tag",
            "/v2/library/ubuntu/manifests/latest".to_string(),
        ),
        ("blob", format!("/v2/team/project/app/blobs/{DIGEST}")),
        (
            "upload",
            "/v2/library/ubuntu/blobs/uploads/0f2c5f8e-7c3e-4a52-a3a4-0a0e8d1f2b3c".to_string(),
        ),
        ("catalog", "/v2/_catalog".to_string()),
    ] {
        assert!(Route::parse(&path).is_ok(), "{path}");
        g.bench_function(label, |b| b.iter(|| Route::parse(black_box(&path))));
    }
    g.finish();
}

fn layout(c: &mut Criterion) {
    let repo: RepoName = "library/ubuntu".parse().expect("name");
    let digest: Digest = DIGEST.parse().expect("digest");
    let tag: Tag = "latest".parse().expect("tag");
    let mut g = c.benchmark_group("layout_path");
    g.bench_function("blob_data", |b| {
        b.iter(|| {
            PathSpec::BlobData {
                digest: black_box(&digest),
            }
            .path()
        })
    });
    g.bench_function("layer_link", |b| {
        b.iter(|| {
            PathSpec::LayerLink {
                repo: black_box(&repo),
                digest: &digest,
            }
            .path()
        })
    });
    g.bench_function("tag_current_link", |b| {
        b.iter(|| {
            PathSpec::TagCurrentLink {
                repo: black_box(&repo),
                tag: &tag,
            }
            .path()
        })
    });
    g.finish();
    c.bench_function("parse_link", |b| {
        b.iter(|| parse_link(black_box(DIGEST.as_bytes())))
    });
}

criterion_group!(benches, routes, layout);
criterion_main!(benches);
