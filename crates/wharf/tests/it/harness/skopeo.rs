//! skopeo, and the OCI image layouts the tests feed it.
//!
//! [`MultiArchLayout`] writes an OCI image layout by hand (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) holding a two-platform image index whose layers are real gzip'd tars, so
//! a test knows every digest before any client touches the bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use super::docker::{Outcome, run};
use super::oci::sha256;
use super::require;

/// A skopeo that trusts any image (`--insecure-policy`) and speaks plain HTTP to registries.
#[derive(Clone, Copy)]
pub struct Skopeo;

impl Skopeo {
    /// `None` when skopeo is missing on a laptop (panics under CI).
    pub fn get() -> Option<Skopeo> {
        require("skopeo").map(|_| Skopeo)
    }

    /// Runs `skopeo --insecure-policy ARGS…`; registry flags are the caller's business, as
    /// they differ per subcommand (`--tls-verify`, `--src-tls-verify`, `--dest-tls-verify`).
    pub fn run(&self, args: &[&str]) -> Outcome {
        run(Command::new("skopeo").arg("--insecure-policy").args(args))
    }

    /// Runs skopeo and panics unless it succeeds.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Outcome {
        self.run(args).expect_ok()
    }

    /// `skopeo copy --all` between two references, either side may be a registry over HTTP.
    #[track_caller]
    pub fn copy_all(&self, from: &str, to: &str) -> Outcome {
        self.ok(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            from,
            to,
        ])
    }

    /// `skopeo inspect --raw`: the manifest bytes exactly as the registry serves them.
    pub fn inspect_raw(&self, reference: &str) -> Outcome {
        self.run(&["inspect", "--raw", "--tls-verify=false", reference])
    }
}

/// One platform of a [`MultiArchLayout`].
#[derive(Debug, Clone)]
pub struct Platform {
    /// GOARCH-style name, e.g. `amd64`.
    pub architecture: String,
    /// Digest of this platform's image manifest.
    pub manifest: String,
    /// Digest of the config blob.
    pub config: String,
    /// Digest of the one gzip'd layer.
    pub layer: String,
}

/// An OCI image layout on disk holding one multi-platform image index under one tag.
#[derive(Debug)]
pub struct MultiArchLayout {
    /// The layout directory.
    pub dir: PathBuf,
    /// The tag (`org.opencontainers.image.ref.name`) of the index in `index.json`.
    pub tag: String,
    /// Digest of the image index.
    pub index: String,
    /// The index's children, in index order.
    pub platforms: Vec<Platform>,
}

impl MultiArchLayout {
    /// Writes a layout at `dir` (created) with an index for linux/amd64 and linux/arm64 under
    /// `tag`; `salt` goes into every layer so separate calls give distinct digests.
    pub fn write(dir: &Path, tag: &str, salt: &str) -> MultiArchLayout {
        let blobs = dir.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).expect("create layout blobs dir");
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        let put = |bytes: &[u8]| -> (String, usize) {
            let digest = sha256(bytes);
            let hex = digest.trim_start_matches("sha256:");
            std::fs::write(blobs.join(hex), bytes).expect("write blob");
            (digest, bytes.len())
        };

        let mut platforms = Vec::new();
        let mut children = Vec::new();
        for arch in ["amd64", "arm64"] {
            let content = format!("hello from {arch} ({salt})\n");
            let (tar, gz) = tar_gz(&[(&format!("hello-{arch}.txt"), content.as_bytes())]);
            let (layer, layer_size) = put(&gz);
            let config = json!({
                "architecture": arch,
                "os": "linux",
                "config": { "Cmd": ["/bin/sh"] },
                "rootfs": { "type": "layers", "diff_ids": [sha256(&tar)] },
            });
            let (config, config_size) = put(&serde_json::to_vec(&config).expect("json"));
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": config, "size": config_size,
                },
                "layers": [{
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer, "size": layer_size,
                }],
            });
            let (manifest, manifest_size) = put(&serde_json::to_vec(&manifest).expect("json"));
            children.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest, "size": manifest_size,
                "platform": { "architecture": arch, "os": "linux" },
            }));
            platforms.push(Platform {
                architecture: arch.to_owned(),
                manifest,
                config,
                layer,
            });
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": children,
        });
        let (index, index_size) = put(&serde_json::to_vec(&index).expect("json"));
        let top = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": index, "size": index_size,
                "annotations": { "org.opencontainers.image.ref.name": tag },
            }],
        });
        std::fs::write(
            dir.join("index.json"),
            serde_json::to_vec(&top).expect("json"),
        )
        .expect("write index.json");
        MultiArchLayout {
            dir: dir.to_owned(),
            tag: tag.to_owned(),
            index,
            platforms,
        }
    }

    /// The skopeo reference of the tagged index, `oci:DIR:TAG`.
    pub fn reference(&self) -> String {
        format!("oci:{}:{}", self.dir.display(), self.tag)
    }
}

/// Reads an OCI layout's `index.json` and returns the digest stored under `tag`.
pub fn layout_digest(dir: &Path, tag: &str) -> Option<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).ok()?).ok()?;
    index["manifests"].as_array()?.iter().find_map(|m| {
        (m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .then(|| m["digest"].as_str().map(str::to_owned))
            .flatten()
    })
}

/// Reads a blob of an OCI layout by digest.
pub fn layout_blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.trim_start_matches("sha256:");
    std::fs::read(dir.join("blobs").join("sha256").join(hex))
        .unwrap_or_else(|e| panic!("read blob {digest} of layout {}: {e}", dir.display()))
}

/// A tar holding `files` at its root, and the same tar gzip'd, made with the system `tar` and
/// `gzip` (both in every Debian base image).
pub fn tar_gz(files: &[(&str, &[u8])]) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    for (name, content) in files {
        std::fs::write(root.join(name), content).expect("write file");
    }
    let tar = dir.path().join("layer.tar");
    run(Command::new("tar")
        .args([
            "--sort=name",
            "--mtime=@0",
            "--owner=0",
            "--group=0",
            "--numeric-owner",
        ])
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg("."))
    .expect_ok();
    run(Command::new("gzip").arg("-n").arg("-k").arg(&tar)).expect_ok();
    let plain = std::fs::read(&tar).expect("read tar");
    let gz = std::fs::read(dir.path().join("layer.tar.gz")).expect("read tar.gz");
    (plain, gz)
}
