//! End to end with the clients people use: the Docker engine, skopeo, podman and buildah push
//! to and pull from a spawned wharf, and the registry API then shows what they did.
//!
//! Set `WHARF_IT_SERVER=docker-registry` to run the same tests against distribution.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::Wharf;
use crate::harness::docker::{Docker, pushed_digest};
use crate::harness::oci::{self, Client, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, header, sha256};
use crate::harness::podman::{Buildah, Podman};
use crate::harness::skopeo::{MultiArchLayout, Skopeo, layout_blob, layout_digest, tar_gz};

/// GETs `path` and parses the JSON body, asserting 200.
async fn get_json(client: &Client, path: &str) -> Value {
    let resp = client.get(path).send().await.expect("GET");
    let resp = oci::expect_status(resp, StatusCode::OK, path).await;
    resp.json().await.expect("JSON body")
}

/// The repository names of the whole catalog.
async fn catalog(client: &Client) -> Vec<String> {
    let body = get_json(client, "/v2/_catalog").await;
    strings(&body["repositories"])
}

/// The tags of `repo`.
async fn tags(client: &Client, repo: &str) -> Vec<String> {
    let body = get_json(client, &format!("/v2/{repo}/tags/list")).await;
    assert_eq!(body["name"], repo, "tags/list names its repository");
    strings(&body["tags"])
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("expected a JSON array, got {value}"))
        .iter()
        .map(|v| v.as_str().expect("string").to_owned())
        .collect()
}

/// `HEAD /v2/<repo>/manifests/<reference>` accepting `accept`; returns status and
/// `Docker-Content-Digest`.
async fn head_manifest(
    client: &Client,
    repo: &str,
    reference: &str,
    accept: &str,
) -> (StatusCode, Option<String>) {
    let resp = client
        .head(&format!("/v2/{repo}/manifests/{reference}"))
        .header("accept", accept)
        .send()
        .await
        .expect("HEAD manifest");
    (resp.status(), header(&resp, "docker-content-digest"))
}

/// The quick start of distribution's README, as a user types it, then the API's view of it.
#[tokio::test]
async fn docker_quick_start_push_pull_inspect_delete() {
    let Some(docker) = Docker::get() else { return };
    let wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let image = format!("{}/myfirstimage", wharf.host());

    docker.ok(&["tag", docker.busybox(), &image]);
    let push = docker.ok(&["push", &image]);
    let digest = pushed_digest(&push.stdout).unwrap_or_else(|| panic!("no digest in {push}"));
    docker.ok(&["rmi", &image]);
    let pull = docker.ok(&["pull", &image]);
    assert!(
        pull.stdout.contains(&digest),
        "pull names the digest: {pull}"
    );
    assert!(
        docker
            .repo_digests(&image)
            .contains(&format!("{image}@{digest}")),
        "the engine recorded the pushed digest"
    );

    assert!(
        catalog(&client).await.contains(&"myfirstimage".to_owned()),
        "catalog lists myfirstimage"
    );
    assert_eq!(tags(&client, "myfirstimage").await, ["latest"]);
    let (status, served) = head_manifest(&client, "myfirstimage", "latest", DOCKER_MANIFEST).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        served.as_deref(),
        Some(digest.as_str()),
        "HEAD digest = pushed digest"
    );
    let body = client
        .get("/v2/myfirstimage/manifests/latest")
        .header("accept", DOCKER_MANIFEST)
        .send()
        .await
        .expect("GET manifest")
        .bytes()
        .await
        .expect("manifest body");
    assert_eq!(sha256(&body), digest, "served bytes hash to the digest");

    let resp = client
        .delete(&format!("/v2/myfirstimage/manifests/{digest}"))
        .send()
        .await
        .expect("DELETE manifest");
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let (status, _) = head_manifest(&client, "myfirstimage", "latest", DOCKER_MANIFEST).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "tag is gone with its manifest"
    );

    docker.ok(&["rmi", &image]);
    let pull = docker.run(&["pull", &image]).expect_failure();
    assert!(
        pull.all_output().contains("not found") || pull.all_output().contains("unknown"),
        "pull of a deleted image reports it missing: {pull}"
    );
}

/// A `docker build` image of three layers: pushed, re-pushed without uploads, pulled by digest
/// and run.
#[tokio::test]
async fn docker_multi_layer_build_repush_pull_by_digest_and_run() {
    let Some(docker) = Docker::get() else { return };
    let wharf = Wharf::start();
    let image = format!("{}/team/layered:v1", wharf.host());
    let salt = format!("salt-{}\n", wharf.host());
    let dockerfile = format!(
        "FROM {}\nRUN echo built-by-run > /a\nCOPY f /f\nCMD [\"cat\", \"/a\", \"/f\"]\n",
        docker.busybox()
    );
    docker.build(&image, &dockerfile, &[("f", salt.as_bytes())]);
    let image_id = docker.image_id(&image);

    let push = docker.ok(&["push", &image]);
    let digest = pushed_digest(&push.stdout).unwrap_or_else(|| panic!("no digest in {push}"));
    assert_eq!(
        push.stdout.matches(": Pushed").count(),
        3,
        "three layers: {push}"
    );
    let again = docker.ok(&["push", &image]);
    assert_eq!(
        again.stdout.matches(": Layer already exists").count(),
        3,
        "re-push uploads nothing: {again}"
    );
    assert_eq!(pushed_digest(&again.stdout), Some(digest.clone()));

    docker.ok(&["rmi", &image]);
    let by_digest = format!("{}/team/layered@{digest}", wharf.host());
    let pull = docker.ok(&["pull", &by_digest]);
    assert!(pull.stdout.contains(&digest), "pull by digest: {pull}");
    assert_eq!(
        docker.image_id(&by_digest),
        image_id,
        "same config as built"
    );
    let ran = docker.ok(&["run", "--rm", "--network", "none", &by_digest]);
    assert_eq!(ran.stdout, format!("built-by-run\n{salt}"));
}

/// A three-component repository name, through push, catalog, tags, cross-repository mount
/// and pull.
#[tokio::test]
async fn docker_nested_repository_name() {
    let Some(docker) = Docker::get() else { return };
    let wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let image = format!("{}/a/b/c:nested", wharf.host());

    docker.ok(&["tag", docker.busybox(), &image]);
    let digest = pushed_digest(&docker.ok(&["push", &image]).stdout).expect("pushed digest");
    assert_eq!(catalog(&client).await, ["a/b/c"]);
    assert_eq!(tags(&client, "a/b/c").await, ["nested"]);
    let (status, served) = head_manifest(&client, "a/b/c", "nested", DOCKER_MANIFEST).await;
    assert_eq!(
        (status, served.as_deref()),
        (StatusCode::OK, Some(digest.as_str()))
    );

    // The same layers pushed to another repository are mounted, not uploaded (end-11).
    let other = format!("{}/x/other:copy", wharf.host());
    docker.ok(&["tag", docker.busybox(), &other]);
    let push = docker.ok(&["push", &other]);
    assert!(
        push.stdout.contains("Mounted from a/b/c"),
        "cross-repo mount: {push}"
    );
    assert_eq!(pushed_digest(&push.stdout), Some(digest.clone()));
    docker.ok(&["rmi", &other]);

    docker.ok(&["rmi", &image]);
    docker.ok(&["pull", &image]);
    let ran = docker.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "echo",
        "nested ok",
    ]);
    assert_eq!(ran.stdout, "nested ok\n");
}

/// A two-platform OCI index through skopeo, there and back, then inspect, tags and delete.
#[tokio::test]
async fn skopeo_copy_all_multi_arch_round_trip_inspect_and_delete() {
    let Some(skopeo) = Skopeo::get() else { return };
    let wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let scratch = tempfile::tempdir().expect("tempdir");
    let src = MultiArchLayout::write(&scratch.path().join("src"), "v1", &wharf.host());
    let remote = format!("docker://{}/multi/arch", wharf.host());

    skopeo.copy_all(&src.reference(), &format!("{remote}:v1"));
    skopeo.copy_all(&src.reference(), &format!("{remote}:v2"));
    let (status, served) = head_manifest(&client, "multi/arch", "v1", OCI_INDEX).await;
    assert_eq!(
        (status, served.as_deref()),
        (StatusCode::OK, Some(src.index.as_str()))
    );
    for p in &src.platforms {
        let (status, served) =
            head_manifest(&client, "multi/arch", &p.manifest, OCI_MANIFEST).await;
        assert_eq!((status, served), (StatusCode::OK, Some(p.manifest.clone())));
        let layer = client
            .get(&format!("/v2/multi/arch/blobs/{}", p.layer))
            .send()
            .await
            .expect("GET layer");
        assert_eq!(layer.status(), StatusCode::OK);
        let layer = layer.bytes().await.expect("layer bytes");
        assert_eq!(layer.as_ref(), layout_blob(&src.dir, &p.layer).as_slice());
    }

    let dst = scratch.path().join("dst");
    skopeo.copy_all(
        &format!("{remote}:v1"),
        &format!("oci:{}:back", dst.display()),
    );
    assert_eq!(
        layout_digest(&dst, "back"),
        Some(src.index.clone()),
        "index digest kept"
    );
    let index: Value = serde_json::from_slice(&layout_blob(&dst, &src.index)).expect("index");
    let children: Vec<&str> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["digest"].as_str().expect("digest"))
        .collect();
    let expected: Vec<&str> = src.platforms.iter().map(|p| p.manifest.as_str()).collect();
    assert_eq!(children, expected, "child digests kept");
    for p in &src.platforms {
        assert_eq!(
            layout_blob(&dst, &p.manifest),
            layout_blob(&src.dir, &p.manifest)
        );
        assert_eq!(layout_blob(&dst, &p.layer), layout_blob(&src.dir, &p.layer));
        assert_eq!(
            layout_blob(&dst, &p.config),
            layout_blob(&src.dir, &p.config)
        );
    }

    let raw = skopeo.inspect_raw(&format!("{remote}:v1")).expect_ok();
    assert_eq!(
        sha256(raw.stdout.as_bytes()),
        src.index,
        "--raw is the index as pushed"
    );
    let inspect = skopeo.ok(&["inspect", "--tls-verify=false", &format!("{remote}:v1")]);
    let inspect: Value = serde_json::from_str(&inspect.stdout).expect("inspect JSON");
    assert_eq!(inspect["Digest"], src.index.as_str());
    assert_eq!(strings(&inspect["RepoTags"]), ["v1", "v2"]);
    let listed = skopeo.ok(&["list-tags", "--tls-verify=false", &remote]);
    let listed: Value = serde_json::from_str(&listed.stdout).expect("list-tags JSON");
    assert_eq!(strings(&listed["Tags"]), ["v1", "v2"]);

    skopeo.ok(&["delete", "--tls-verify=false", &format!("{remote}:v1")]);
    skopeo.inspect_raw(&format!("{remote}:v1")).expect_failure();
    // Deleting a manifest deletes it under every tag (distribution untags all of them).
    skopeo.inspect_raw(&format!("{remote}:v2")).expect_failure();
    let (status, _) = head_manifest(&client, "multi/arch", &src.index, OCI_INDEX).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The children were pushed by digest and stay until garbage collection.
    let (status, _) = head_manifest(
        &client,
        "multi/arch",
        &src.platforms[0].manifest,
        OCI_MANIFEST,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// podman pushes an imported image and a second podman (fresh store) pulls it back.
#[tokio::test]
async fn podman_push_then_pull_into_fresh_store() {
    let Some(podman) = Podman::new() else { return };
    let Some(fresh) = Podman::new() else { return };
    let wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let scratch = tempfile::tempdir().expect("tempdir");
    let (tar, _) = tar_gz(&[("podman.txt", b"pushed by podman\n")]);
    let tar_path = scratch.path().join("rootfs.tar");
    std::fs::write(&tar_path, &tar).expect("write rootfs tar");
    let image = format!("{}/podman/img:v1", wharf.host());
    let digest_file = scratch.path().join("digest");

    podman.ok(&["import", &tar_path.to_string_lossy(), &image]);
    podman.ok(&[
        "push",
        "--tls-verify=false",
        "--digestfile",
        &digest_file.to_string_lossy(),
        &image,
    ]);
    let digest = std::fs::read_to_string(&digest_file).expect("digest file");
    let (status, served) = head_manifest(
        &client,
        "podman/img",
        "v1",
        &format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}"),
    )
    .await;
    assert_eq!(
        (status, served),
        (StatusCode::OK, Some(digest.trim().to_owned()))
    );

    fresh.ok(&["pull", "--tls-verify=false", &image]);
    let pulled = fresh.ok(&["image", "inspect", "--format", "{{.Digest}}", &image]);
    assert_eq!(
        pulled.stdout.trim(),
        digest.trim(),
        "pulled the pushed manifest"
    );
}

/// buildah commits a Docker-format image from scratch and pushes it; the registry serves a
/// Docker schema 2 manifest whose config and layer are what buildah wrote.
#[tokio::test]
async fn buildah_push_docker_format_image() {
    let Some(buildah) = Buildah::new() else {
        return;
    };
    let wharf = Wharf::start();
    let client = Client::new(&wharf.url());
    let file = buildah.scratch().join("hello.txt");
    std::fs::write(&file, "built by buildah\n").expect("write file");

    let container = buildah.ok(&["from", "scratch"]).stdout.trim().to_owned();
    buildah.ok(&["copy", &container, &file.to_string_lossy(), "/hello.txt"]);
    buildah.ok(&[
        "config",
        "--label",
        "wharf.test=buildah",
        "--cmd",
        "/hello.txt",
        &container,
    ]);
    buildah.ok(&[
        "commit",
        "--format",
        "docker",
        &container,
        "wharf-it-buildah",
    ]);
    let digest_file = buildah.scratch().join("digest");
    let remote = format!("docker://{}/buildah/img:v1", wharf.host());
    buildah.ok(&[
        "push",
        "--tls-verify=false",
        "--digestfile",
        &digest_file.to_string_lossy(),
        "wharf-it-buildah",
        &remote,
    ]);
    let digest = std::fs::read_to_string(&digest_file).expect("digest file");

    let resp = client
        .get("/v2/buildah/img/manifests/v1")
        .header("accept", DOCKER_MANIFEST)
        .send()
        .await
        .expect("GET manifest");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "content-type").as_deref(),
        Some(DOCKER_MANIFEST)
    );
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(digest.trim())
    );
    let manifest: Value = resp.json().await.expect("manifest JSON");
    assert_eq!(manifest["mediaType"], DOCKER_MANIFEST);
    let config_digest = manifest["config"]["digest"]
        .as_str()
        .expect("config digest");
    let config = get_blob(&client, "buildah/img", config_digest).await;
    let config: Value = serde_json::from_slice(&config).expect("config JSON");
    assert_eq!(config["config"]["Labels"]["wharf.test"], "buildah");
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "one COPY, one layer");
    let layer_digest = layers[0]["digest"].as_str().expect("layer digest");
    let layer = get_blob(&client, "buildah/img", layer_digest).await;
    assert_eq!(Some(layer.len() as u64), layers[0]["size"].as_u64());
}

/// GETs a blob, asserting 200 and that its bytes hash to `digest`.
async fn get_blob(client: &Client, repo: &str, digest: &str) -> Vec<u8> {
    let resp = client
        .get(&format!("/v2/{repo}/blobs/{digest}"))
        .send()
        .await
        .expect("GET blob");
    let resp = oci::expect_status(resp, StatusCode::OK, "GET blob").await;
    let bytes = resp.bytes().await.expect("blob bytes").to_vec();
    assert_eq!(sha256(&bytes), digest, "blob content matches its digest");
    bytes
}
