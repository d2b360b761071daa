//! Online garbage collection (`gc:`) while the registry serves: pushes that race the collector
//! (slow uploads, "layer already exists", mounts, index children and referrers before their
//! parents) all pull afterwards, and old garbage does get deleted; dry run; one collector among
//! instances sharing storage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::time::sleep;

use crate::harness::docker::Docker;
use crate::harness::garbage::{self, manifest_bytes, pull_all};
use crate::harness::oci::{
    self, Client, OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, descriptor,
    random_bytes, sha256,
};
use crate::harness::{Wharf, free_port};

/// Collector settings of the load test: rounds every second, six seconds of grace. Every push
/// below completes within the grace period, as the `gc.grace` contract asks.
const INTERVAL: &str = "1s";
const GRACE: Duration = Duration::from_secs(6);

/// Longer than the interval (rounds run meanwhile), shorter than the grace period.
const BETWEEN_ROUNDS: Duration = Duration::from_millis(2500);

/// Past half the grace period: a link that old is refreshed when a repository serves it, and
/// twice this is past the grace period, so only the refresh keeps such a blob alive.
const PAST_HALF_GRACE: Duration = Duration::from_millis(3500);

/// A config on `{root}`/`{port}` with online GC and Prometheus on `debug_port`.
fn config(debug_port: u16, gc: &str) -> String {
    format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{{port}}\n  debug:\n    addr: 127.0.0.1:{debug_port}\n    prometheus:\n      enabled: true\n      path: /metrics\ngc:\n{gc}"
    )
}

/// Where a blob's bytes live under a filesystem root.
fn blob_path(root: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    root.join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ))
}

/// The value of a metric line `name value`, 0 when absent.
async fn metric(debug_port: u16, name: &str) -> f64 {
    let text = reqwest::get(format!("http://127.0.0.1:{debug_port}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// An image built locally: its blobs, not yet pushed, and its manifest.
struct Image {
    config: Vec<u8>,
    layers: Vec<Vec<u8>>,
    manifest: Vec<u8>,
}

impl Image {
    /// A config, the given layers and an OCI manifest over them (plus `extra` fields).
    fn new(layers: Vec<Vec<u8>>, extra: Value) -> Image {
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "nonce": hex::encode(random_bytes(8)),
        }))
        .expect("config JSON");
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config),
            "layers": layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
        });
        if let (Value::Object(m), Value::Object(extra)) = (&mut m, extra) {
            m.extend(extra);
        }
        let manifest = serde_json::to_vec(&m).expect("manifest JSON");
        Image {
            config,
            layers,
            manifest,
        }
    }

    fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    /// Every blob digest of the image, the manifest included.
    fn blobs(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = self.layers.iter().map(|l| sha256(l)).collect();
        out.insert(sha256(&self.config));
        out.insert(self.digest());
        out
    }

    async fn push_blobs(&self, client: &Client, repo: &str) {
        client.push_blob(repo, &self.config).await;
        for l in &self.layers {
            client.push_blob(repo, l).await;
        }
    }

    async fn push_manifest(&self, client: &Client, repo: &str, reference: &str) {
        let resp = client
            .push_manifest(repo, reference, OCI_MANIFEST, &self.manifest)
            .await;
        oci::expect_status(resp, StatusCode::CREATED, "push manifest").await;
    }
}

/// `(repo, reference)` that must pull whole after the load.
type Kept = Vec<(String, String)>;

/// Uploads layers, waits across GC rounds, then pushes the manifest (race 1). One pusher sends
/// its layer in chunks with pauses, so the upload itself spans rounds.
async fn slow_pusher(url: String, i: u32) -> Kept {
    let client = Client::new(&url);
    sleep(Duration::from_millis(700) * i).await;
    let repo = format!("load/slow{i}");
    let image = Image::new(vec![random_bytes(4096), random_bytes(2048)], json!({}));
    client.push_blob(&repo, &image.config).await;
    if i == 0 {
        let mut location = client.start_upload(&repo).await;
        for (n, part) in image.layers[0].chunks(1024).enumerate() {
            let resp = client
                .patch(&location)
                .header(
                    "content-range",
                    format!("{}-{}", n * 1024, n * 1024 + part.len() - 1),
                )
                .body(part.to_vec())
                .send()
                .await
                .expect("PATCH");
            let resp = oci::expect_status(resp, StatusCode::ACCEPTED, "chunk").await;
            location = client.location(&resp);
            sleep(Duration::from_millis(300)).await;
        }
        let digest = sha256(&image.layers[0]);
        let resp = client
            .put(&oci::with_query(&location, &format!("digest={digest}")))
            .send()
            .await
            .expect("PUT");
        oci::expect_status(resp, StatusCode::CREATED, "close upload").await;
    } else {
        client.push_blob(&repo, &image.layers[0]).await;
    }
    client.push_blob(&repo, &image.layers[1]).await;
    sleep(BETWEEN_ROUNDS).await;
    image.push_manifest(&client, &repo, "v1").await;
    vec![(repo, "v1".into())]
}

/// HEADs a blob nobody references, skips its upload, pushes a manifest using it later (race 2).
async fn reuse_pusher(url: String, unreferenced: Vec<u8>) -> Kept {
    let client = Client::new(&url);
    let repo = "load/reuse";
    sleep(PAST_HALF_GRACE).await;
    let digest = sha256(&unreferenced);
    let resp = client
        .head(&format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("HEAD blob");
    assert_eq!(resp.status(), StatusCode::OK, "the layer still exists");
    sleep(PAST_HALF_GRACE).await;
    let image = Image::new(vec![unreferenced], json!({}));
    client.push_blob(repo, &image.config).await;
    image.push_manifest(&client, repo, "v1").await;
    vec![(repo.into(), "v1".into())]
}

/// Mounts a layer nothing references any more into another repository, pushes later (race 4).
async fn mount_pusher(url: String, layer: Vec<u8>) -> Kept {
    let client = Client::new(&url);
    sleep(PAST_HALF_GRACE).await;
    let digest = sha256(&layer);
    let resp = client
        .post(&format!(
            "/v2/load/mounted/blobs/uploads/?mount={digest}&from=load/mountsrc"
        ))
        .send()
        .await
        .expect("mount");
    assert_eq!(resp.status(), StatusCode::CREATED, "mounted");
    sleep(PAST_HALF_GRACE).await;
    let image = Image::new(vec![layer], json!({}));
    client.push_blob("load/mounted", &image.config).await;
    image.push_manifest(&client, "load/mounted", "v1").await;
    vec![("load/mounted".into(), "v1".into())]
}

/// Children by digest, the index later (race 5); a referrer before its subject (race 6).
async fn parents_later_pusher(url: String) -> Kept {
    let client = Client::new(&url);
    let repo = "load/multi";
    let children = [
        Image::new(vec![random_bytes(1000)], json!({})),
        Image::new(vec![random_bytes(1100)], json!({})),
    ];
    for child in &children {
        child.push_blobs(&client, repo).await;
        child.push_manifest(&client, repo, &child.digest()).await;
    }
    let subject = Image::new(vec![random_bytes(1200)], json!({}));
    let empty = b"{}".to_vec();
    let mut referrer = Image::new(
        vec![random_bytes(300)],
        json!({"artifactType": "application/vnd.example.sig",
               "subject": descriptor(OCI_MANIFEST, &subject.manifest)}),
    );
    let mut m: Value = serde_json::from_slice(&referrer.manifest).expect("JSON");
    m["config"] = descriptor(OCI_EMPTY, &empty);
    referrer.manifest = serde_json::to_vec(&m).expect("JSON");
    referrer.config = empty;
    referrer.push_blobs(&client, repo).await;
    referrer
        .push_manifest(&client, repo, &referrer.digest())
        .await;
    sleep(BETWEEN_ROUNDS).await;
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": children.iter().map(|c| descriptor(OCI_MANIFEST, &c.manifest)).collect::<Vec<_>>()});
    let index = serde_json::to_vec(&index).expect("JSON");
    let resp = client.push_manifest(repo, "index", OCI_INDEX, &index).await;
    oci::expect_status(resp, StatusCode::CREATED, "push index").await;
    subject.push_blobs(&client, repo).await;
    subject.push_manifest(&client, repo, "subject").await;
    vec![
        (repo.into(), "index".into()),
        (repo.into(), "subject".into()),
        (repo.into(), referrer.digest()),
    ]
}

/// Overwrites one tag again and again and deletes a manifest: returns what must stay and the
/// blobs that became garbage.
async fn churn(url: String) -> (Kept, BTreeSet<String>) {
    let client = Client::new(&url);
    let repo = "load/churn";
    let mut garbage = BTreeSet::new();
    let mut last = None;
    for _ in 0..5 {
        let image = Image::new(vec![random_bytes(3000)], json!({}));
        image.push_blobs(&client, repo).await;
        image.push_manifest(&client, repo, "latest").await;
        garbage.extend(last.replace(image.blobs()).unwrap_or_default());
        sleep(Duration::from_millis(400)).await;
    }
    let gone = Image::new(vec![random_bytes(500)], json!({}));
    gone.push_blobs(&client, repo).await;
    gone.push_manifest(&client, repo, "gone").await;
    let resp = client
        .delete(&format!("/v2/{repo}/manifests/{}", gone.digest()))
        .send()
        .await
        .expect("DELETE");
    oci::expect_status(resp, StatusCode::ACCEPTED, "delete manifest").await;
    garbage.extend(gone.blobs());
    (vec![(repo.into(), "latest".into())], garbage)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_gc_under_load_keeps_every_push_and_collects_old_garbage() {
    let debug_port = free_port();
    let gc = format!(
        "  enabled: true\n  interval: {INTERVAL}\n  grace: {}s\n  deleteuntagged: true\n",
        GRACE.as_secs()
    );
    let wharf = Wharf::start_with_config(&config(debug_port, &gc));
    let url = wharf.url();
    let client = Client::new(&url);

    // garbage made before the load: a blob nobody references, an image whose manifest is deleted
    let orphan = client.push_blob("load/orphan", &random_bytes(5000)).await;
    let mountable = Image::new(vec![random_bytes(2600)], json!({}));
    mountable.push_blobs(&client, "load/mountsrc").await;
    mountable
        .push_manifest(&client, "load/mountsrc", "v1")
        .await;
    let resp = client
        .delete(&format!(
            "/v2/load/mountsrc/manifests/{}",
            mountable.digest()
        ))
        .send()
        .await
        .expect("DELETE");
    oci::expect_status(resp, StatusCode::ACCEPTED, "delete manifest").await;
    let reused = random_bytes(2500);
    client.push_blob("load/reuse", &reused).await;

    let docker_image = format!("{}/load/docker:v1", wharf.host());
    let docker_push = {
        let image = docker_image.clone();
        tokio::task::spawn_blocking(move || {
            let docker = Docker::get()?;
            docker.ok(&["tag", docker.busybox(), &image]);
            docker.ok(&["push", &image]);
            Some(docker)
        })
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..3 {
        tasks.spawn(slow_pusher(url.clone(), i));
    }
    tasks.spawn(reuse_pusher(url.clone(), reused));
    tasks.spawn(mount_pusher(url.clone(), mountable.layers[0].clone()));
    tasks.spawn(parents_later_pusher(url.clone()));
    let (mut kept, mut garbage) = churn(url.clone()).await;
    while let Some(r) = tasks.join_next().await {
        kept.extend(r.expect("pusher"));
    }
    let docker = docker_push.await.expect("docker push task");
    garbage.insert(orphan);
    garbage.insert(sha256(&mountable.config));
    garbage.insert(mountable.digest());

    // garbage goes once older than the grace period; everything pushed stays
    let deadline = Instant::now() + GRACE * 4;
    let root = wharf.root();
    let left = || -> Vec<&String> {
        garbage
            .iter()
            .filter(|d| blob_path(&root, d).exists())
            .collect()
    };
    while !left().is_empty() && Instant::now() < deadline {
        sleep(Duration::from_millis(250)).await;
    }
    assert!(
        left().is_empty(),
        "garbage not collected: {:?}\n{}",
        left(),
        wharf.log()
    );
    for (repo, reference) in &kept {
        pull_all(&client, repo, reference).await;
    }
    let subject = manifest_bytes(&client, "load/multi", "subject").await;
    let referrers: Value = client
        .get(&format!("/v2/load/multi/referrers/{}", sha256(&subject)))
        .send()
        .await
        .expect("GET referrers")
        .json()
        .await
        .expect("referrers JSON");
    assert_eq!(
        referrers["manifests"].as_array().map(Vec::len),
        Some(1),
        "{referrers}"
    );
    let dangling = garbage::dangling_links(&root);
    assert!(dangling.is_empty(), "links to swept blobs: {dangling:?}");
    assert!(!wharf.log().contains("gc round failed"), "{}", wharf.log());

    assert!(metric(debug_port, "wharf_gc_runs_total").await >= 3.0);
    let deleted = metric(debug_port, "wharf_gc_blobs_deleted_total").await;
    assert!(
        deleted >= garbage.len() as f64,
        "{deleted} < {}",
        garbage.len()
    );
    assert!(
        metric(debug_port, "wharf_gc_manifests_deleted_total").await >= 4.0,
        "churned tags"
    );
    assert!(metric(debug_port, "wharf_gc_bytes_freed_total").await > 0.0);

    if let Some(docker) = docker {
        docker.ok(&["rmi", &docker_image]);
        docker.ok(&["pull", &docker_image]);
    }
}

#[tokio::test]
async fn online_gc_dry_run_reports_and_deletes_nothing() {
    let debug_port = free_port();
    let gc =
        "  enabled: true\n  interval: 1s\n  grace: 1s\n  deleteuntagged: true\n  dryrun: true\n";
    let wharf = Wharf::start_with_config(&config(debug_port, gc));
    let client = Client::new(&wharf.url());
    let orphan = client.push_blob("dry/app", &random_bytes(700)).await;
    let (_, untagged) = client.random_image("dry/app", 1).await;
    let before = garbage::tree(&wharf.root());
    let line = format!("blob={orphan}");
    let manifest_line = format!("manifest={untagged}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while !(wharf.log().contains(&line) && wharf.log().contains(&manifest_line))
        && Instant::now() < deadline
    {
        sleep(Duration::from_millis(200)).await;
    }
    let log = wharf.log();
    assert!(
        log.contains("gc (dry run): blob eligible for deletion") && log.contains(&line),
        "{log}"
    );
    assert!(
        log.contains("gc (dry run): manifest eligible for deletion")
            && log.contains(&manifest_line),
        "{log}"
    );
    sleep(Duration::from_millis(1500)).await;
    let after = garbage::tree(&wharf.root());
    // The collector's own state: its lease, and the temp file of a lease renewal caught
    // between write and rename (the interval is 1 s, so one may be in flight).
    let gc_state = "docker/registry/v2/_wharf/";
    let strip = |t: &std::collections::BTreeMap<String, u64>| {
        t.keys()
            .filter(|k| !k.starts_with(gc_state))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&after), strip(&before), "a dry run deletes nothing");
    assert!(blob_path(&wharf.root(), &orphan).exists());
    assert!(
        metric(debug_port, "wharf_gc_last_run_eligible_blobs").await >= 3.0,
        "orphan + untagged image"
    );
    assert_eq!(
        metric(debug_port, "wharf_gc_blobs_deleted_total").await,
        0.0
    );
}

/// Rounds an instance ran, from its log.
fn rounds(wharf: &Wharf) -> usize {
    wharf.log().matches("gc round done").count()
}

#[tokio::test]
async fn two_instances_sharing_storage_collect_one_at_a_time() {
    let gc = "  enabled: true\n  interval: 1s\n  grace: 1h\n";
    let mut a = Wharf::start_with_config(&config(free_port(), gc));
    let a_root = a.root();
    let shared = config(free_port(), gc).replace("{root}", &a.root().display().to_string());
    let mut b = Wharf::start_with_config(&shared);
    sleep(Duration::from_secs(5)).await;
    let (ra, rb) = (rounds(&a), rounds(&b));
    assert!(
        ra.min(rb) == 0 && ra.max(rb) >= 2,
        "rounds: {ra} and {rb}\n{}\n{}",
        a.log(),
        b.log()
    );
    let (holder, other) = if ra > 0 {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        other
            .log()
            .contains("gc: lease held by another instance, round skipped"),
        "{}",
        other.log()
    );
    let lease = a_root.join("docker/registry/v2/_wharf/gc-lease");
    assert!(lease.exists(), "lease object in the shared root");

    // the holder dies: the other takes over once the lease expires
    holder.kill();
    let deadline = Instant::now() + Duration::from_secs(15);
    while rounds(other) == 0 && Instant::now() < deadline {
        sleep(Duration::from_millis(250)).await;
    }
    assert!(rounds(other) > 0, "no takeover:\n{}", other.log());
}

#[tokio::test]
async fn a_push_refused_by_a_concurrent_sweep_is_a_clean_manifest_blob_unknown() {
    // the blob's link is gone (as after another instance's sweep, which this instance's
    // descriptor cache has not seen): with gc on, the re-check after writing reads the backend,
    // so the manifest is refused, never half-stored
    let wharf = Wharf::start_with("gc:\n  enabled: true\n  interval: 1h\n  grace: 1h\n");
    let client = Client::new(&wharf.url());
    let image = Image::new(vec![random_bytes(800)], json!({}));
    image.push_blobs(&client, "race/app").await;
    let layer = sha256(&image.layers[0]);
    let link = wharf.root().join(format!(
        "docker/registry/v2/repositories/race/app/_layers/sha256/{}",
        &layer[7..]
    ));
    std::fs::remove_dir_all(link).expect("remove link");
    let resp = client
        .push_manifest("race/app", "v1", OCI_MANIFEST, &image.manifest)
        .await;
    oci::assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    let resp = client
        .manifest(Method::HEAD, "race/app", &image.digest())
        .send()
        .await
        .expect("HEAD");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

/// Runs `wharf garbage-collect --dry-run [flags] CONFIG` under a pseudo-terminal (`script`).
fn gc_on_a_terminal(config: &Path, flags: &str) -> String {
    let cmd = format!(
        "{} garbage-collect --dry-run {flags} {}",
        env!("CARGO_BIN_EXE_wharf"),
        config.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("run script");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn garbage_collect_draws_a_progress_bar_only_on_a_terminal() {
    if crate::harness::require("script").is_none() {
        return;
    }
    let mut wharf = Wharf::start();
    Client::new(&wharf.url())
        .push_blob("bar/app", &random_bytes(100))
        .await;
    wharf.kill();
    let tty = gc_on_a_terminal(&wharf.config_path(), "");
    assert!(
        tty.contains("\r sweep [") || tty.contains("\rsweep ["),
        "{tty:?}"
    );
    assert!(tty.contains("1/1"), "{tty:?}");
    let quiet = gc_on_a_terminal(&wharf.config_path(), "--quiet");
    assert!(!quiet.contains("sweep ["), "{quiet:?}");
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["garbage-collect", "--dry-run"])
        .arg(wharf.config_path())
        .output()
        .expect("run wharf");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&piped.stdout),
        String::from_utf8_lossy(&piped.stderr)
    );
    assert!(piped.status.success() && !all.contains("sweep ["), "{all}");
    assert!(all.contains("1 blobs and 0 manifests eligible"), "{all}");
}
