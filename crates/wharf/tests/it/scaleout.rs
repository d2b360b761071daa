//! Scale-out: several wharf processes sharing one moto bucket, one redis-server and one
//! `http.secret`. A 64 MiB upload spread over four instances, Docker pushing and pulling
//! through an nginx round-robin balancer, and a push whose instance is SIGKILLed midway and
//! that succeeds when retried on another.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::Wharf;
use crate::harness::docker::{Docker, pushed_digest};
use crate::harness::moto::{self, Moto};
use crate::harness::nginx::Nginx;
use crate::harness::oci::{
    Client, expect_status, header, patch_round_robin, random_bytes, sha256, upload_path, with_query,
};
use crate::harness::redis::Redis;

/// The one `http.secret` of every instance, as a fleet behind a balancer must share.
const SECRET: &str = "scale-out-shared-secret";

/// Which blob descriptor cache an instance uses.
pub enum Cache<'a> {
    /// `blobdescriptor: inmemory` (this process only).
    InMemory,
    /// `blobdescriptor: redis` on this server.
    Redis(&'a Redis),
}

/// moto and a fresh bucket on it; `None` (after printing why) when moto is not installed.
pub async fn bucket() -> Option<(&'static Moto, String)> {
    let moto = moto::moto()?;
    Some((moto, moto.bucket().await))
}

/// A wharf on `bucket` with the given cache and the fleet's shared secret; no upload purging,
/// whose listings would blur the backend request counts.
pub fn wharf_on(moto: &Moto, bucket: &str, cache: Cache<'_>) -> Wharf {
    let (kind, redis) = match cache {
        Cache::InMemory => ("inmemory", String::new()),
        Cache::Redis(r) => ("redis", r.redis_yaml()),
    };
    Wharf::start_with_config(&format!(
        "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n{storage}  cache:\n    blobdescriptor: {kind}\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{{port}}\n  secret: {SECRET}\n{redis}",
        storage = moto::storage_yaml(moto, bucket, false),
    ))
}

/// Counts the requests moto logged for one bucket (each test has its own bucket, so tests
/// running at the same time do not disturb the count).
pub struct BackendRequests {
    log: PathBuf,
    needle: String,
}

impl BackendRequests {
    /// The counter for `bucket` on `moto`.
    pub fn new(moto: &Moto, bucket: &str) -> Self {
        let port = moto
            .endpoint
            .rsplit(':')
            .next()
            .expect("endpoint has a port");
        BackendRequests {
            log: std::env::temp_dir().join(format!("wharf-moto-{port}.log")),
            needle: format!(" /{bucket}"),
        }
    }

    /// Requests so far, once moto has logged what was in flight (it logs after answering).
    pub async fn settled(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.now()
    }

    /// Requests logged so far.
    pub fn now(&self) -> usize {
        let text = std::fs::read_to_string(&self.log).expect("read moto's log");
        text.lines().filter(|l| l.contains(&self.needle)).count()
    }

    /// Lines logged so far that contain every one of `parts`.
    pub fn lines_with(&self, parts: &[&str]) -> usize {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter(|l| l.contains(&self.needle) && parts.iter().all(|p| l.contains(p)))
            .count()
    }
}

/// Three (or more) instances on one bucket and one redis.
struct Fleet {
    redis: Redis,
    moto: &'static Moto,
    bucket: String,
    servers: Vec<Wharf>,
}

impl Fleet {
    async fn start(n: usize) -> Option<Fleet> {
        let redis = Redis::start()?;
        let (moto, bucket) = bucket().await?;
        let servers = (0..n)
            .map(|_| wharf_on(moto, &bucket, Cache::Redis(&redis)))
            .collect();
        Some(Fleet {
            redis,
            moto,
            bucket,
            servers,
        })
    }

    fn hosts(&self) -> Vec<String> {
        self.servers.iter().map(Wharf::host).collect()
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, w) in self.servers.iter().enumerate() {
            out.push_str(&format!("--- instance {i}\n{}\n", w.log()));
        }
        out
    }
}

#[tokio::test]
async fn a_64_mib_blob_in_5_mib_chunks_round_robin_over_three_instances_put_on_a_fourth() {
    let Some(fleet) = Fleet::start(4).await else {
        return;
    };
    let clients: Vec<Client> = fleet
        .servers
        .iter()
        .map(|w| Client::new(&w.url()))
        .collect();
    let data = random_bytes(64 << 20);
    let digest = sha256(&data);
    let location = upload_path(&clients[0].start_upload("scale/big").await);
    let chunk = 5 << 20;
    let started = Instant::now();
    let chunks = data.chunks(chunk).map(<[u8]>::len);
    let (location, _) = patch_round_robin(&clients[..3], location, &data, chunks).await;
    let resp = clients[3]
        .put(&with_query(&location, &format!("digest={digest}")))
        .send()
        .await
        .unwrap();
    let resp = expect_status(resp, StatusCode::CREATED, "PUT on the fourth instance").await;
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(digest.as_str())
    );
    let upload_secs = started.elapsed().as_secs_f64();

    for c in [&clients[1], &clients[3]] {
        let resp = c
            .get(&format!("/v2/scale/big/blobs/{digest}"))
            .send()
            .await
            .unwrap();
        let resp = expect_status(resp, StatusCode::OK, "GET the blob back").await;
        let body = resp.bytes().await.unwrap();
        assert_eq!(body.len(), data.len());
        assert_eq!(sha256(&body), digest, "the bytes hash to the digest");
    }
    eprintln!("64 MiB in 13 PATCHes over three instances + PUT on a fourth: {upload_secs:.1}s");
    let members = fleet
        .redis
        .cli(&["SMEMBERS", "repository::scale/big::blobs"]);
    assert!(
        members.contains(&digest),
        "the commit filled redis: {members}"
    );
}

#[tokio::test]
async fn docker_pushes_and_pulls_through_an_nginx_round_robin_over_three_instances() {
    let Some(docker) = Docker::get() else { return };
    let Some(fleet) = Fleet::start(3).await else {
        return;
    };
    let Some(lb) = Nginx::start(&fleet.hosts()) else {
        return;
    };
    let big = random_bytes(12 << 20);
    let tag = format!("{}/scale/lb:v1", lb.host());
    docker.build(
        &tag,
        &format!(
            "FROM {}\nCOPY a /a\nCOPY b /b\nCOPY c /c\n",
            docker.busybox()
        ),
        &[
            ("a", &big),
            ("b", b"second layer"),
            ("c", &random_bytes(70_000)),
        ],
    );
    let push = docker.run(&["push", &tag]);
    assert!(
        push.success(),
        "{push}\nnginx:\n{}\n{}\n{}",
        lb.access_log(),
        lb.error_log(),
        fleet.logs()
    );
    let digest = pushed_digest(&push.all_output()).expect("push prints a digest");
    let access = lb.access_log();
    let served_by: std::collections::BTreeSet<&str> = access
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3))
        .map(|s| s.trim_end_matches(','))
        .collect();
    for host in fleet.hosts() {
        assert!(
            served_by.contains(host.as_str()),
            "{host} served part of the push:\n{}",
            lb.access_log()
        );
    }
    let id = docker.image_id(&tag);
    docker.ok(&["rmi", &tag]);
    docker.ok(&["pull", &tag]);
    assert_eq!(docker.image_id(&tag), id);
    let ran = docker.ok(&["run", "--rm", "--network", "none", &tag, "cat", "/b"]);
    assert!(ran.stdout.contains("second layer"), "{ran}");
    docker.ok(&["rmi", &tag]);
    // each instance alone serves what went through the balancer
    for w in &fleet.servers {
        let resp = Client::new(&w.url())
            .manifest(reqwest::Method::HEAD, "scale/lb", &digest)
            .send()
            .await
            .unwrap();
        expect_status(resp, StatusCode::OK, "manifest on every instance").await;
    }
}

#[tokio::test]
async fn a_push_whose_instance_is_killed_midway_succeeds_when_retried_on_another() {
    let Some(docker) = Docker::get() else { return };
    let Some(mut fleet) = Fleet::start(3).await else {
        return;
    };
    let requests = BackendRequests::new(fleet.moto, &fleet.bucket);
    let big = random_bytes(96 << 20);
    let local = "wharf-it/scale-kill:v1";
    docker.build(
        local,
        &format!("FROM {}\nCOPY big /big\n", docker.busybox()),
        &[("big", &big)],
    );
    let hosts = fleet.hosts();
    let on = |i: usize| format!("{}/scale/kill:v1", hosts[i]);
    let first = on(0);
    docker.ok(&["tag", local, &first]);
    let mut push = docker
        .command()
        .args(["push", &first])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn docker push");
    // wait until the big layer's bytes are flowing into the bucket (multipart parts)
    let deadline = Instant::now() + Duration::from_secs(120);
    while requests.lines_with(&["_uploads", "partNumber="]) == 0 {
        assert!(
            Instant::now() < deadline,
            "the push never started streaming:\n{}",
            fleet.logs()
        );
        if let Ok(Some(status)) = push.try_wait() {
            panic!("docker push ended ({status}) before the instance was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fleet.servers[0].kill();
    let out = push.wait_with_output().expect("docker push output");
    assert!(
        !out.status.success(),
        "the push cannot finish on a killed instance: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let second = on(1);
    docker.ok(&["tag", local, &second]);
    let retried = docker.ok(&["push", &second]);
    let digest = pushed_digest(&retried.all_output()).expect("push prints a digest");
    let id = docker.image_id(local);
    docker.ok(&["rmi", &first, &second, local]);
    let pulled = format!("{}/scale/kill@{digest}", hosts[2]);
    docker.ok(&["pull", &pulled]);
    assert_eq!(
        docker.image_id(&pulled),
        id,
        "the third instance serves the image"
    );
    let ran = docker.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &pulled,
        "wc",
        "-c",
        "/big",
    ]);
    assert!(ran.stdout.contains(&big.len().to_string()), "{ran}");
    docker.ok(&["rmi", &pulled]);
}
