//! The redis blob descriptor cache against real peers: wharf instances on one moto bucket
//! sharing one redis-server. Backend round trips are counted in moto's request log, filtered
//! by the test's own bucket.

use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::Wharf;
use crate::harness::certs::Pki;
use crate::harness::oci::{Client, expect_status, header, random_bytes};
use crate::harness::redis::Redis;
use crate::scaleout::{BackendRequests, Cache, bucket, wharf_on};

async fn head_status(c: &Client, repo: &str, digest: &str) -> (StatusCode, Option<String>) {
    let resp = c
        .head(&format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("HEAD blob");
    (resp.status(), header(&resp, "content-length"))
}

/// HEADs `digest` `n` times on `c`, each answered 200 with the right length; returns how many
/// backend requests they caused, and how many the first one alone caused.
async fn count_heads(
    log: &BackendRequests,
    c: &Client,
    repo: &str,
    digest: &str,
    len: usize,
    n: usize,
) -> (usize, usize) {
    let before = log.settled().await;
    let mut first = 0;
    for i in 0..n {
        let got = head_status(c, repo, digest).await;
        assert_eq!(got, (StatusCode::OK, Some(len.to_string())), "HEAD {i}");
        if i == 0 {
            first = log.settled().await - before;
        }
    }
    (log.settled().await - before, first)
}

#[tokio::test]
async fn redis_cache_answers_heads_of_known_blobs_without_backend_requests() {
    let Some(redis) = Redis::start() else { return };
    let Some((moto, bucket)) = bucket().await else {
        return;
    };
    let log = BackendRequests::new(moto, &bucket);
    let a = wharf_on(moto, &bucket, Cache::Redis(&redis));
    let b = wharf_on(moto, &bucket, Cache::Redis(&redis));
    let c = wharf_on(moto, &bucket, Cache::InMemory);
    let (ca, cb, cc) = (
        Client::new(&a.url()),
        Client::new(&b.url()),
        Client::new(&c.url()),
    );
    let blob = random_bytes((1 << 20) + 7);
    let digest = ca.push_blob("cache/app", &blob).await;

    // B never saw the blob: its answers come from what A's push put in redis
    let (shared, _) = count_heads(&log, &cb, "cache/app", &digest, blob.len(), 20).await;
    // C has only its own in-memory cache: the first HEAD asks the backend, the rest do not
    let (own, uncached) = count_heads(&log, &cc, "cache/app", &digest, blob.len(), 20).await;
    eprintln!(
        "backend requests for 20 HEADs of a known blob: redis (filled by another instance) {shared}; \
         in-memory on a fresh instance {own} (all on the first, uncached HEAD: {uncached})"
    );
    assert_eq!(shared, 0, "B asked the backend:\n{}", b.log());
    assert_eq!(
        uncached, 2,
        "an uncached HEAD reads the link and stats the data"
    );
    assert_eq!(own, uncached, "only the first HEAD reaches the backend");
    let members = redis.cli(&["SMEMBERS", "repository::cache/app::blobs"]);
    assert!(members.contains(&digest), "{members}");
    let size = redis.cli(&["HGET", &format!("blobs::{digest}"), "size"]);
    assert_eq!(size.trim(), blob.len().to_string());

    // a GET costs the data read only (the reader's stat and ranged GET)
    let before = log.settled().await;
    let resp = cb
        .get(&format!("/v2/cache/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, StatusCode::OK, "GET blob").await;
    assert!(resp.bytes().await.unwrap() == blob);
    let get = log.settled().await - before;
    eprintln!("backend requests for a GET of a known 1 MiB blob with redis: {get}");
    // without the cache the link read and the stat come on top
    assert!(
        (1..=2).contains(&get),
        "the bytes come from the backend, nothing else: {get}"
    );

    // manifest validation finds the layers in the cache too
    let (_, manifest) = cb.random_image("cache/app", 2).await;
    let resp = ca
        .head(&format!("/v2/cache/app/manifests/{manifest}"))
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::OK, "manifest pushed through B").await;
    drop((a, b, c));
}

#[tokio::test]
async fn a_delete_on_one_instance_is_seen_at_once_by_another() {
    let Some(redis) = Redis::start() else { return };
    let Some((moto, bucket)) = bucket().await else {
        return;
    };
    let a = wharf_on(moto, &bucket, Cache::Redis(&redis));
    let b = wharf_on(moto, &bucket, Cache::Redis(&redis));
    let (ca, cb) = (Client::new(&a.url()), Client::new(&b.url()));
    let blob = random_bytes(4096);
    let digest = ca.push_blob("cache/del", &blob).await;
    assert_eq!(
        head_status(&cb, "cache/del", &digest).await.0,
        StatusCode::OK
    );
    let member =
        |repo: &str| redis.cli(&["SISMEMBER", &format!("repository::{repo}::blobs"), &digest]);
    assert_eq!(member("cache/del").trim(), "1");

    let resp = ca
        .delete(&format!("/v2/cache/del/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::ACCEPTED, "DELETE on A").await;
    assert_eq!(
        member("cache/del").trim(),
        "0",
        "the entry is gone from redis"
    );
    assert_eq!(
        head_status(&cb, "cache/del", &digest).await.0,
        StatusCode::NOT_FOUND,
        "B serves no deleted blob\n{}",
        b.log()
    );
    // nor mounts it into another repository
    let resp = cb
        .post(&format!(
            "/v2/cache/other/blobs/uploads/?mount={digest}&from=cache/del"
        ))
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::ACCEPTED,
        "no mount: a plain upload"
    );

    // garbage-collect (run while both serve) clears the global descriptor as well
    let digest2 = ca.push_blob("cache/gc", &random_bytes(2048)).await;
    assert_eq!(
        head_status(&cb, "cache/gc", &digest2).await.0,
        StatusCode::OK
    );
    let key = format!("blobs::{digest2}");
    assert_eq!(redis.cli(&["EXISTS", &key]).trim(), "1");
    let gc = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("garbage-collect")
        .arg(a.config_path())
        .output()
        .expect("run wharf garbage-collect");
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert_eq!(
        redis.cli(&["EXISTS", &key]).trim(),
        "0",
        "GC cleared the descriptor"
    );
    assert_eq!(
        head_status(&cb, "cache/gc", &digest2).await.0,
        StatusCode::NOT_FOUND,
        "B serves no swept blob"
    );
}

#[tokio::test]
async fn requests_succeed_while_redis_is_down_and_the_cache_resumes_after() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let Some((moto, bucket)) = bucket().await else {
        return;
    };
    let w: Wharf = wharf_on(moto, &bucket, Cache::Redis(&redis));
    let c = Client::new(&w.url());
    let blob = random_bytes(100_000);
    let digest = c.push_blob("cache/down", &blob).await;

    redis.kill();
    for _ in 0..3 {
        assert_eq!(
            head_status(&c, "cache/down", &digest).await,
            (StatusCode::OK, Some(blob.len().to_string()))
        );
        let resp = c
            .get(&format!("/v2/cache/down/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        let resp = expect_status(resp, StatusCode::OK, "GET with redis down").await;
        assert!(resp.bytes().await.unwrap() == blob);
    }
    let (_, manifest) = c.random_image("cache/down", 1).await;
    let resp = c
        .head(&format!("/v2/cache/down/manifests/{manifest}"))
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::OK, "push with redis down").await;
    assert!(
        w.log().contains("blob descriptor cache"),
        "a redis failure is logged:\n{}",
        w.log()
    );

    redis.restart();
    let mut members = String::new();
    for _ in 0..40 {
        assert_eq!(
            head_status(&c, "cache/down", &digest).await.0,
            StatusCode::OK
        );
        members = redis.cli(&["SMEMBERS", "repository::cache/down::blobs"]);
        if members.contains(&digest) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        members.contains(&digest),
        "refilled after the restart: {members}"
    );
}

#[tokio::test]
async fn redis_over_mutual_tls_is_shared_by_instances() {
    let pki = Pki::new(&["127.0.0.1"]);
    let Some(redis) = Redis::start_tls(&pki) else {
        return;
    };
    let Some((moto, bucket)) = bucket().await else {
        return;
    };
    let a = wharf_on(moto, &bucket, Cache::Redis(&redis));
    let b = wharf_on(moto, &bucket, Cache::Redis(&redis));
    let log = BackendRequests::new(moto, &bucket);
    let blob = random_bytes(5000);
    let digest = Client::new(&a.url()).push_blob("cache/tls", &blob).await;
    let members = redis.cli(&["SMEMBERS", "repository::cache/tls::blobs"]);
    assert!(
        members.contains(&digest),
        "A filled redis over TLS: {members}\n{}",
        a.log()
    );
    let (heads, _) = count_heads(
        &log,
        &Client::new(&b.url()),
        "cache/tls",
        &digest,
        blob.len(),
        5,
    )
    .await;
    assert_eq!(heads, 0, "B answered from redis over TLS:\n{}", b.log());
    assert!(!b.log().contains("blob descriptor cache"), "{}", b.log());
}
