//! Manifests (spec end-3, end-7, end-9): every manifest kind round-trips byte for byte, every
//! refusal has its code, and a refused manifest never becomes visible.

mod delete;
mod served;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::Wharf;
use crate::harness::oci::{
    Client, DOCKER_CONFIG, DOCKER_LAYER, DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_EMPTY,
    OCI_INDEX, OCI_LAYER, OCI_MANIFEST, assert_error, descriptor, header, random_bytes, sha256,
};

/// The digest of `{}`, the OCI empty descriptor's content (image-spec `manifest.md`).
const EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

/// Pretty-printed JSON, so a registry that re-serializes the body is caught.
fn pretty(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("serialize JSON")
}

/// Pushes a random config and layer of the given types; returns an image manifest over them.
async fn image(c: &Client, repo: &str, kind: &str) -> Vec<u8> {
    let (manifest_type, config_type, layer_type) = if kind == DOCKER_MANIFEST {
        (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
    } else {
        (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
    };
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","n":"{}"}}"#,
        hex::encode(random_bytes(8))
    );
    let layer = random_bytes(512);
    c.push_blob(repo, config.as_bytes()).await;
    c.push_blob(repo, &layer).await;
    pretty(&json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor(config_type, config.as_bytes()),
        "layers": [descriptor(layer_type, &layer)],
    }))
}

/// Pushes two child images by digest and returns an index (`list_type`) over them.
async fn index(c: &Client, repo: &str, list_type: &str) -> Vec<u8> {
    let child_type = if list_type == DOCKER_LIST {
        DOCKER_MANIFEST
    } else {
        OCI_MANIFEST
    };
    let mut manifests = Vec::new();
    for arch in ["amd64", "arm64"] {
        let child = image(c, repo, child_type).await;
        let resp = c
            .push_manifest(repo, &sha256(&child), child_type, &child)
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "push child manifest");
        let mut d = descriptor(child_type, &child);
        d["platform"] = json!({"architecture": arch, "os": "linux"});
        manifests.push(d);
    }
    pretty(&json!({"schemaVersion": 2, "mediaType": list_type, "manifests": manifests}))
}

/// Pushes `body` by `tag`, then checks the 201 answer and that GET and HEAD by tag and by digest
/// give back exactly `body` with its media type, digest and length.
async fn assert_round_trip(c: &Client, repo: &str, tag: &str, media_type: &str, body: &[u8]) {
    let digest = sha256(body);
    let resp = c.push_manifest(repo, tag, media_type, body).await;
    assert_eq!(resp.status(), StatusCode::CREATED, "PUT {media_type}");
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(&*digest)
    );
    assert!(
        header(&resp, "oci-subject").is_none(),
        "OCI-Subject without a subject"
    );
    let location = c.location(&resp);
    let resp = c
        .get(&location)
        .header("accept", media_type)
        .send()
        .await
        .expect("GET Location");
    assert_eq!(resp.status(), StatusCode::OK, "GET Location {location}");
    assert_eq!(
        resp.bytes().await.expect("manifest body"),
        body,
        "GET Location {location}"
    );

    for reference in [tag, digest.as_str()] {
        let resp = c
            .manifest(Method::GET, repo, reference)
            .send()
            .await
            .expect("manifest request");
        assert_eq!(resp.status(), StatusCode::OK, "GET {reference}");
        assert_eq!(
            header(&resp, "content-type").as_deref(),
            Some(media_type),
            "GET {reference}"
        );
        assert_eq!(
            header(&resp, "docker-content-digest").as_deref(),
            Some(&*digest)
        );
        assert_eq!(
            header(&resp, "content-length"),
            Some(body.len().to_string())
        );
        assert_eq!(
            resp.bytes().await.expect("manifest body"),
            body,
            "GET {reference}"
        );

        let resp = c
            .manifest(Method::HEAD, repo, reference)
            .send()
            .await
            .expect("manifest request");
        assert_eq!(resp.status(), StatusCode::OK, "HEAD {reference}");
        assert_eq!(
            header(&resp, "content-type").as_deref(),
            Some(media_type),
            "HEAD {reference}"
        );
        assert_eq!(
            header(&resp, "docker-content-digest").as_deref(),
            Some(&*digest)
        );
        assert_eq!(
            header(&resp, "content-length"),
            Some(body.len().to_string())
        );
        assert!(
            resp.bytes().await.expect("manifest body").is_empty(),
            "HEAD {reference} has a body"
        );
    }
}

/// Asserts neither `reference` nor the digest of `body` resolves in `repo`.
async fn assert_not_visible(c: &Client, repo: &str, reference: &str, body: &[u8]) {
    for r in [reference, &sha256(body)] {
        let resp = c
            .manifest(Method::GET, repo, r)
            .send()
            .await
            .expect("GET manifest");
        assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
    }
}

#[tokio::test]
async fn oci_manifest_round_trips_by_tag_and_digest() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/oci", OCI_MANIFEST).await;
    assert_round_trip(&c, "man/oci", "v1", OCI_MANIFEST, &body).await;
}

#[tokio::test]
async fn docker_schema2_manifest_round_trips_by_tag_and_digest() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/docker", DOCKER_MANIFEST).await;
    assert_round_trip(&c, "man/docker", "v1", DOCKER_MANIFEST, &body).await;
}

#[tokio::test]
async fn docker_manifest_list_round_trips_by_tag_and_digest() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = index(&c, "man/list", DOCKER_LIST).await;
    assert_round_trip(&c, "man/list", "multi", DOCKER_LIST, &body).await;
}

#[tokio::test]
async fn oci_index_round_trips_by_tag_and_digest() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = index(&c, "man/index", OCI_INDEX).await;
    assert_round_trip(&c, "man/index", "multi", OCI_INDEX, &body).await;
}

#[tokio::test]
async fn artifact_with_empty_config_round_trips() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    assert_eq!(c.push_blob("man/artifact", b"{}").await, EMPTY_DIGEST);
    let sbom = br#"{"spdxVersion":"SPDX-2.3"}"#;
    c.push_blob("man/artifact", sbom).await;
    let body = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom.v1",
        "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2, "data": "e30="},
        "layers": [descriptor("application/spdx+json", sbom)],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    }));
    assert_round_trip(&c, "man/artifact", "sbom", OCI_MANIFEST, &body).await;
}

#[tokio::test]
async fn manifest_pushed_by_digest_returns_201_and_round_trips() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/bydigest", OCI_MANIFEST).await;
    let digest = sha256(&body);

    let resp = c
        .push_manifest("man/bydigest", &digest, OCI_MANIFEST, &body)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        header(&resp, "docker-content-digest").as_deref(),
        Some(&*digest)
    );
    let location = header(&resp, "location").expect("Location");
    assert!(
        location.ends_with(&format!("/v2/man/bydigest/manifests/{digest}")),
        "{location}"
    );
    let resp = c
        .manifest(Method::GET, "man/bydigest", &digest)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn put_by_digest_of_other_content_returns_400_digest_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/wrongdigest", OCI_MANIFEST).await;
    let claimed = sha256(b"some other manifest");

    let resp = c
        .push_manifest("man/wrongdigest", &claimed, OCI_MANIFEST, &body)
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "DIGEST_INVALID").await;
    assert_not_visible(&c, "man/wrongdigest", &claimed, &body).await;
}

#[tokio::test]
async fn manifest_with_missing_layer_returns_400_manifest_blob_unknown_and_is_not_stored() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    c.push_blob("man/nolayer", config).await;
    let body = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, b"never pushed")],
    }));

    let resp = c
        .push_manifest("man/nolayer", "v1", OCI_MANIFEST, &body)
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_not_visible(&c, "man/nolayer", "v1", &body).await;
}

#[tokio::test]
async fn manifest_with_missing_config_returns_400_manifest_blob_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let layer = random_bytes(100);
    c.push_blob("man/noconfig", &layer).await;
    let body = pretty(&json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": descriptor(DOCKER_CONFIG, b"{\"never\":\"pushed\"}"),
        "layers": [descriptor(DOCKER_LAYER, &layer)],
    }));

    let resp = c
        .push_manifest("man/noconfig", "v1", DOCKER_MANIFEST, &body)
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_not_visible(&c, "man/noconfig", "v1", &body).await;
}

#[tokio::test]
async fn index_with_missing_child_returns_400_manifest_blob_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    for list_type in [OCI_INDEX, DOCKER_LIST] {
        let child_type = if list_type == DOCKER_LIST {
            DOCKER_MANIFEST
        } else {
            OCI_MANIFEST
        };
        let body = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": list_type,
            "manifests": [descriptor(child_type, b"{\"never\":\"pushed\"}")],
        }));
        let resp = c
            .push_manifest("man/noindexchild", "multi", list_type, &body)
            .await;
        assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
        assert_not_visible(&c, "man/noindexchild", "multi", &body).await;
    }
}

#[tokio::test]
async fn invalid_json_manifest_returns_400_manifest_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body =
        br#"{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json","#;

    let resp = c
        .push_manifest("man/badjson", "v1", OCI_MANIFEST, body)
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    assert_not_visible(&c, "man/badjson", "v1", body).await;
}

#[tokio::test]
async fn manifest_whose_media_type_contradicts_content_type_returns_400_manifest_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/mismatch", DOCKER_MANIFEST).await;

    // spec: "If a manifest includes a mediaType field, clients MUST set Content-Type to exactly
    // that value"; a registry that stored it would serve a Content-Type the body contradicts.
    let resp = c
        .push_manifest("man/mismatch", "v1", OCI_MANIFEST, &body)
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
    assert_not_visible(&c, "man/mismatch", "v1", &body).await;
}

/// An OCI manifest of exactly `size` bytes: a valid image padded with an annotation.
async fn manifest_of_size(c: &Client, repo: &str, size: usize) -> Vec<u8> {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    c.push_blob(repo, config).await;
    let build = |pad: usize| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [],
            "annotations": {"pad": "x".repeat(pad)},
        }))
        .expect("serialize manifest")
    };
    let overhead = build(0).len();
    let body = build(size - overhead);
    assert_eq!(body.len(), size);
    body
}

#[tokio::test]
async fn manifest_of_4_mib_is_accepted() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    // spec: "Clients and registries SHOULD expect to support manifest uploads of at least 4 MiB."
    let body = manifest_of_size(&c, "man/big", 4 << 20).await;
    assert_round_trip(&c, "man/big", "big", OCI_MANIFEST, &body).await;
}

#[tokio::test]
async fn manifest_over_4_mib_returns_413_and_is_not_stored() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = manifest_of_size(&c, "man/huge", (4 << 20) + 1).await;

    // spec: a registry over its limit "SHOULD respond with 413 Payload Too Large" (end-7).
    // The spec defines no code for it; any envelope will do. distribution 2.8.2 answers 400
    // MANIFEST_INVALID ("http: request body too large").
    // The client sends no `Expect: 100-continue` (nor do docker's): a registry that answers
    // before reading the body must still let the client read the answer.
    let resp = c
        .put("/v2/man/huge/manifests/huge")
        .header("content-type", OCI_MANIFEST)
        .body(body.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("no 413 reached the client: {e:?}"));
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    crate::harness::oci::errors(resp).await;
    assert_not_visible(&c, "man/huge", "huge", &body).await;
}

#[tokio::test]
async fn invalid_tag_returns_400_tag_invalid_and_128_characters_is_valid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/tags", OCI_MANIFEST).await;

    // spec tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. distribution 2.8.2 answers 404 with
    // a text body (its route does not match); wharf names the mistake.
    for tag in ["-lead", ".lead", "bad!tag", &"a".repeat(129)] {
        let resp = c.push_manifest("man/tags", tag, OCI_MANIFEST, &body).await;
        assert_error(resp, StatusCode::BAD_REQUEST, "TAG_INVALID").await;
    }
    let longest = format!("_{}", "A".repeat(127));
    let resp = c
        .push_manifest("man/tags", &longest, OCI_MANIFEST, &body)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(c.tags("man/tags").await, [longest]);
}

#[tokio::test]
async fn manifest_with_subject_returns_oci_subject_even_when_subject_is_missing() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.push_blob("man/subject", b"{}").await;
    let missing = descriptor(OCI_MANIFEST, b"{\"not\":\"pushed\"}");
    let (present, _) = c.random_image("man/subject", 1).await;
    let present = descriptor(OCI_MANIFEST, &present);

    // spec: a registry "must accept a manifest that includes a subject field referencing
    // another manifest that does not yet exist", and answers OCI-Subject when it processed it.
    // distribution 2.8.2 predates subject and sends no OCI-Subject.
    for (tag, subject) in [("missing", missing), ("present", present)] {
        let body = pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature.v1",
            "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}],
            "subject": subject,
        }));
        let resp = c
            .push_manifest("man/subject", tag, OCI_MANIFEST, &body)
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED, "{tag}");
        let want = subject["digest"].as_str().map(str::to_owned);
        assert_eq!(header(&resp, "oci-subject"), want, "{tag}");
    }
}

#[tokio::test]
async fn unknown_manifest_returns_404_manifest_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.random_image("man/unknown", 1).await;

    for reference in [sha256(b"never pushed"), "notag".to_owned()] {
        let resp = c
            .manifest(Method::GET, "man/unknown", &reference)
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
        let resp = c
            .manifest(Method::HEAD, "man/unknown", &reference)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn manifest_of_unknown_repository_returns_404() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let resp = c
        .manifest(Method::GET, "man/nowhere", "latest")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let codes = crate::harness::oci::errors(resp).await;
    // Either code is truthful for a repository that does not exist.
    assert!(
        codes == ["MANIFEST_UNKNOWN"] || codes == ["NAME_UNKNOWN"],
        "{codes:?}"
    );
}

#[tokio::test]
async fn pushing_a_tag_again_moves_it() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let first = image(&c, "man/retag", OCI_MANIFEST).await;
    let second = image(&c, "man/retag", OCI_MANIFEST).await;
    for body in [&first, &second] {
        let resp = c
            .push_manifest("man/retag", "latest", OCI_MANIFEST, body)
            .await;
        assert_eq!(resp.status(), StatusCode::CREATED);
    }

    let resp = c
        .manifest(Method::GET, "man/retag", "latest")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.bytes().await.unwrap(), second);
    let resp = c
        .manifest(Method::GET, "man/retag", &sha256(&first))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "the old manifest stays reachable by digest"
    );
}

#[tokio::test]
async fn manifest_referencing_blob_of_another_repository_returns_400_manifest_blob_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    // The blobs exist in the registry, but were pushed to another repository: a manifest must
    // not make them readable here (distribution links blobs per repository).
    let body = image(&c, "man/owner", OCI_MANIFEST).await;

    let resp = c
        .push_manifest("man/thief", "v1", OCI_MANIFEST, &body)
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_not_visible(&c, "man/thief", "v1", &body).await;
}

#[tokio::test]
async fn index_referencing_manifest_of_another_repository_returns_400_manifest_blob_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = index(&c, "man/indexowner", OCI_INDEX).await;

    let resp = c
        .push_manifest("man/indexthief", "v1", OCI_INDEX, &body)
        .await;
    assert_error(resp, StatusCode::BAD_REQUEST, "MANIFEST_BLOB_UNKNOWN").await;
    assert_not_visible(&c, "man/indexthief", "v1", &body).await;
}
