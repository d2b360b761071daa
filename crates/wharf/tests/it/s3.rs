//! wharf on S3 (a moto server started by the tests): pushes and pulls end to end, an upload
//! continued by other instances on the same bucket, blob redirects to presigned URLs and
//! `redirect.disable`, the Docker engine, and one bucket served by distribution and wharf in turn.

use reqwest::StatusCode;

use crate::harness::Wharf;
use crate::harness::docker::{Docker, pushed_digest};
use crate::harness::moto::{self, Moto, S3Distribution};
use crate::harness::oci::{
    ACCEPT_MANIFESTS, Client, expect_status, get_blob, header, patch_round_robin, random_bytes,
    sha256, upload_path, with_query,
};

/// moto and a fresh bucket on it; `None` (after printing why) when moto is not installed.
async fn bucket() -> Option<(&'static Moto, String)> {
    let moto = moto::moto()?;
    Some((moto, moto.bucket().await))
}

fn wharf_on(moto: &Moto, bucket: &str, redirect: bool) -> Wharf {
    Wharf::start_with_config(&moto::config_template(moto, bucket, redirect))
}

async fn get_manifest(c: &Client, repo: &str, reference: &str) -> Vec<u8> {
    let resp = c
        .get(&format!("/v2/{repo}/manifests/{reference}"))
        .header("accept", ACCEPT_MANIFESTS)
        .send()
        .await
        .expect("GET manifest");
    let resp = expect_status(resp, StatusCode::OK, "get manifest").await;
    resp.bytes().await.expect("manifest body").to_vec()
}

#[tokio::test]
async fn blob_get_redirects_to_a_presigned_url_unless_disabled() {
    let Some((moto, bucket)) = bucket().await else {
        return;
    };
    let w = wharf_on(moto, &bucket, true);
    let c = Client::new(&w.url());
    let big = random_bytes((12 << 20) + 321);
    // three PATCHes: the data file grows by appends, then moves into place at the PUT
    let digest = c.push_blob_chunked("s3/app", &big, 5 << 20).await;
    let (_, manifest_digest) = c.random_image("s3/app", 2).await;

    let resp = c
        .get(&format!("/v2/s3/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT, "{}", w.log());
    let location = header(&resp, "location").expect("Location");
    assert!(location.starts_with(&moto.endpoint), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    let fetched = reqwest::get(&location).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert!(fetched.bytes().await.unwrap() == big[..], "presigned bytes");
    let head = c
        .head(&format!("/v2/s3/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK, "HEAD is answered by wharf");
    assert_eq!(
        header(&head, "content-length").as_deref(),
        Some(big.len().to_string().as_str())
    );
    drop(w);

    let w = wharf_on(moto, &bucket, false);
    let c = Client::new(&w.url());
    assert!(
        get_blob(&c, "s3/app", &digest).await == big,
        "served by wharf"
    );
    get_manifest(&c, "s3/app", &manifest_digest).await;
    let ranged = c
        .get(&format!("/v2/s3/app/blobs/{digest}"))
        .header("range", "bytes=5242880-5242899")
        .send()
        .await
        .unwrap();
    let ranged = expect_status(ranged, StatusCode::PARTIAL_CONTENT, "ranged GET").await;
    assert!(ranged.bytes().await.unwrap() == big[5 << 20..(5 << 20) + 20]);
}

#[tokio::test]
async fn an_upload_continues_on_other_instances_sharing_the_bucket() {
    let Some((moto, bucket)) = bucket().await else {
        return;
    };
    let servers: Vec<Wharf> = (0..3).map(|_| wharf_on(moto, &bucket, false)).collect();
    let clients: Vec<Client> = servers.iter().map(|w| Client::new(&w.url())).collect();
    let data = random_bytes((13 << 20) + 17);
    let digest = sha256(&data);
    let location = upload_path(&clients[0].start_upload("s3/spread").await);
    // 1 MiB and 6 MiB chunks, round-robin: parts below and above S3's 5 MiB part minimum
    let chunks = [1 << 20, 6 << 20, 1 << 20, 5 << 20, 17];
    let (location, start) = patch_round_robin(&clients, location, &data, chunks).await;
    assert_eq!(start, data.len());
    let resp = clients[1]
        .put(&with_query(&location, &format!("digest={digest}")))
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::CREATED, "PUT on yet another instance").await;
    assert!(get_blob(&clients[2], "s3/spread", &digest).await == data);
}

#[tokio::test]
async fn docker_pushes_and_pulls_with_and_without_redirect() {
    let Some(docker) = Docker::get() else {
        return;
    };
    let Some((moto, bucket)) = bucket().await else {
        return;
    };
    for redirect in [true, false] {
        let w = wharf_on(moto, &bucket, redirect);
        let image = format!("{}/s3/docker:redirect-{redirect}", w.host());
        docker.ok(&["tag", docker.busybox(), &image]);
        let push = docker.ok(&["push", &image]);
        let digest = pushed_digest(&push.all_output()).expect("push prints a digest");
        docker.ok(&["rmi", &image]);
        docker.ok(&["pull", &image]);
        let ran = docker.ok(&["run", "--rm", "--network", "none", &image, "echo", "on-s3"]);
        assert!(ran.stdout.contains("on-s3"), "{ran}");
        docker.ok(&["rmi", &image]);
        let c = Client::new(&w.url());
        get_manifest(&c, "s3/docker", &digest).await;
    }
}

#[tokio::test]
async fn distribution_and_wharf_serve_one_bucket_in_turn() {
    let Some((moto, bucket)) = bucket().await else {
        return;
    };
    let Some(dist) = S3Distribution::start(moto, &bucket) else {
        return;
    };
    let dc = Client::new(&dist.url());
    let (from_dist, from_dist_digest) = dc.random_image("shared/from-dist", 2).await;
    let big = random_bytes((7 << 20) + 5);
    let big_digest = dc
        .push_blob_chunked("shared/from-dist", &big, 3 << 20)
        .await;
    let docker = Docker::get();
    let docker_digest = docker.as_ref().map(|docker| {
        let image = format!("{}/shared/docker:v1", dist.host());
        docker.ok(&["tag", docker.busybox(), &image]);
        let push = docker.ok(&["push", &image]);
        docker.ok(&["rmi", &image]);
        pushed_digest(&push.all_output()).expect("push prints a digest")
    });
    let dist_log = dist.log();
    drop(dist);

    let w = wharf_on(moto, &bucket, false);
    let wc = Client::new(&w.url());
    let got = get_manifest(&wc, "shared/from-dist", &from_dist_digest).await;
    assert!(got == from_dist, "wharf reads distribution's manifest");
    assert!(get_blob(&wc, "shared/from-dist", &big_digest).await == big);
    if let (Some(docker), Some(digest)) = (&docker, &docker_digest) {
        let image = format!("{}/shared/docker@{digest}", w.host());
        docker.ok(&["pull", &image]);
        docker.ok(&["rmi", &image]);
    }
    let (from_wharf, from_wharf_digest) = wc.random_image("shared/from-wharf", 2).await;
    let big2 = random_bytes((9 << 20) + 3);
    let big2_digest = wc
        .push_blob_chunked("shared/from-wharf", &big2, 4 << 20)
        .await;
    drop(w);

    let dist = S3Distribution::start(moto, &bucket).expect("distribution started before");
    let dc = Client::new(&dist.url());
    let got = get_manifest(&dc, "shared/from-wharf", &from_wharf_digest).await;
    assert!(got == from_wharf, "distribution reads wharf's manifest");
    assert!(
        get_blob(&dc, "shared/from-wharf", &big2_digest).await == big2,
        "{dist_log}\n{}",
        dist.log()
    );
    let catalog: serde_json::Value = dc
        .get("/v2/_catalog")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let repos = catalog["repositories"].as_array().expect("repositories");
    for repo in ["shared/from-dist", "shared/from-wharf"] {
        assert!(repos.iter().any(|r| r == repo), "{repo} in {catalog}");
    }
}
