//! Hot pure code of `wharf-oci`: digest parse and verify, manifest parse, name parse.
//! Ratios against distribution come from `bench/`; these track regressions in isolation.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use wharf_oci::{Algorithm, Digest, Hasher, Manifest, RepoName};

const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

fn manifest_body() -> Vec<u8> {
    let layers: Vec<String> = (0..8)
        .map(|i| {
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":{},"digest":"sha256:{:064x}"}}"#,
                1000 + i,
                i + 1
            )
        })
        .collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","size":1234,"digest":"sha256:{:064x}"}},"layers":[{}],"annotations":{{"org.opencontainers.image.created":"2026-01-01T00:00:00Z"}}}}"#,
        0xabc,
        layers.join(",")
    )
    .into_bytes()
}

fn digest(c: &mut Criterion) {
    c.bench_function("digest_parse", |b| {
        b.iter(|| black_box(DIGEST).parse::<Digest>())
    });
    let data = vec![7u8; 1024 * 1024];
    let expected = Digest::sha256(&data);
    let mut g = c.benchmark_group("digest_verify");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("sha256_1mib", |b| {
        b.iter(|| {
            let mut h = Hasher::new(Algorithm::Sha256);
            h.update(black_box(&data));
            assert_eq!(h.finish(), expected);
        })
    });
    g.finish();
}

fn manifest(c: &mut Criterion) {
    let body = manifest_body();
    let ct = Some("application/vnd.oci.image.manifest.v1+json");
    assert!(Manifest::parse(ct, &body).is_ok());
    c.bench_function("manifest_parse_8_layers", |b| {
        b.iter(|| Manifest::parse(ct, black_box(&body)))
    });
}

fn names(c: &mut Criterion) {
    c.bench_function("repo_name_parse", |b| {
        b.iter(|| black_box("library/some-team/ubuntu").parse::<RepoName>())
    });
}

criterion_group!(benches, digest, manifest, names);
criterion_main!(benches);
