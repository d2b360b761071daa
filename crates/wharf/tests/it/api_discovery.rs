//! Discovery (spec end-1, end-8a/b, end-12a/b, and distribution's `_catalog`): the version check,
//! tag and repository lists with pagination, and the referrers index.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::Wharf;
use crate::harness::oci::{
    Client, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST, assert_error, descriptor, errors, escape, header,
    sha256,
};

/// Pushes one image to `repo` and points every tag in `tags` at it.
async fn tag_all(c: &Client, repo: &str, tags: &[&str]) {
    let (body, _) = c.random_image(repo, 1).await;
    for tag in tags {
        let resp = c.push_manifest(repo, tag, OCI_MANIFEST, &body).await;
        assert_eq!(resp.status(), StatusCode::CREATED, "tag {tag}");
    }
}

/// The `rel="next"` target of a `Link` header (RFC 5988), if any.
fn next_link(resp: &Response) -> Option<String> {
    let link = header(resp, "link")?;
    let (target, params) = link.split_once(';')?;
    assert!(
        params.contains("rel=\"next\""),
        "Link without rel=\"next\": {link}"
    );
    Some(
        target
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_owned(),
    )
}

/// The query parameters of `url`, in order, percent-decoded (distribution sends `last=a%2Fb`).
fn query(url: &str) -> Vec<(String, String)> {
    let Some((_, q)) = url.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (unescape(k), unescape(v)))
        .collect()
}

/// Reverses percent-encoding (and `+` for space) in a query component.
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ASCII escape");
                out.push(u8::from_str_radix(hex, 16).expect("hex escape"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 query")
}

/// Follows `Link` headers from `first`, returning each page's `field` list; asserts every link
/// targets `path` and carries `n` and `last` = the page's last entry.
async fn pages(c: &Client, first: &str, path: &str, field: &str, n: usize) -> Vec<Vec<String>> {
    let mut url = first.to_owned();
    let mut out = Vec::new();
    loop {
        let resp = c.get(&url).send().await.expect("GET page");
        assert_eq!(resp.status(), StatusCode::OK, "{url}");
        let link = next_link(&resp);
        let body: Value = resp.json().await.expect("page JSON");
        let page: Vec<String> = body[field]
            .as_array()
            .unwrap_or_else(|| panic!("{url}: no {field} array in {body}"))
            .iter()
            .map(|v| v.as_str().expect("string entry").to_owned())
            .collect();
        let Some(link) = link else {
            out.push(page);
            return out;
        };
        assert!(
            link.starts_with(&format!("{path}?")),
            "Link {link} is not under {path}"
        );
        let mut params = query(&link);
        params.sort();
        let last = page
            .last()
            .expect("a page with a Link is not empty")
            .clone();
        assert_eq!(
            params,
            [("last".to_owned(), last), ("n".to_owned(), n.to_string())]
        );
        out.push(page);
        assert!(out.len() < 20, "Link loop");
        url = link;
    }
}

#[tokio::test]
async fn base_returns_200_with_api_version_header() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let resp = c.get("/v2/").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        header(&resp, "docker-distribution-api-version").as_deref(),
        Some("registry/2.0")
    );
}

#[tokio::test]
async fn tags_list_is_sorted_lexically() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let tags = [
        "zeta", "alpha", "beta", "1.0", "10", "9", "alpha-1", "alpha_1", "alpha.1",
    ];
    tag_all(&c, "disc/sorted", &tags).await;

    // spec: tags "MUST be sorted in lexical ... or ASCIIbetical order"; lower-case tags make the
    // two agree. distribution 2.8.2 answers in directory order.
    let mut want: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    want.sort();
    assert_eq!(c.tags("disc/sorted").await, want);
}

#[tokio::test]
async fn tags_list_paginates_with_n_last_and_link() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    tag_all(&c, "disc/pages", &["t5", "t3", "t1", "t4", "t2"]).await;

    // distribution 2.8.2 ignores `n` on tags/list; spec end-8b requires it.
    let got = pages(
        &c,
        "/v2/disc/pages/tags/list?n=2",
        "/v2/disc/pages/tags/list",
        "tags",
        2,
    )
    .await;
    assert_eq!(got, [vec!["t1", "t2"], vec!["t3", "t4"], vec!["t5"]]);
}

#[tokio::test]
async fn tags_list_with_last_returns_only_later_tags() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    tag_all(&c, "disc/last", &["t1", "t2", "t3", "t4", "t5"]).await;

    // spec end-8b: "up to <int> tags *after* <tagname>"; `n` is optional with `last`.
    // distribution 2.8.2 ignores `last` on tags/list.

    for (q, want) in [
        ("last=t2", vec!["t3", "t4", "t5"]),
        ("last=t25", vec!["t3", "t4", "t5"]),
        ("n=1&last=t3", vec!["t4"]),
        ("last=zzz", vec![]),
    ] {
        let resp = c
            .get(&format!("/v2/disc/last/tags/list?{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{q}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["tags"], json!(want), "{q}");
    }
}

#[tokio::test]
async fn tags_list_with_n_zero_returns_empty_list_without_link() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    tag_all(&c, "disc/zero", &["a", "b"]).await;

    // spec: "When n is zero, this endpoint MUST return an empty list, and MUST NOT include a
    // Link header."
    let resp = c.get("/v2/disc/zero/tags/list?n=0").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(header(&resp, "link").is_none(), "Link on n=0");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"name": "disc/zero", "tags": []}));
}

#[tokio::test]
async fn tags_list_of_unknown_repository_returns_404_name_unknown() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let resp = c.get("/v2/disc/nothing/tags/list").send().await.unwrap();
    assert_error(resp, StatusCode::NOT_FOUND, "NAME_UNKNOWN").await;
}

#[tokio::test]
async fn tags_list_with_invalid_n_returns_400_pagination_number_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    tag_all(&c, "disc/badn", &["a"]).await;

    // distribution 2.8.2 ignores `n` on tags/list (3.x refuses a bad one like this).

    for n in ["abc", "-1", "1.5"] {
        let resp = c
            .get(&format!("/v2/disc/badn/tags/list?n={n}"))
            .send()
            .await
            .unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID").await;
    }
}

#[tokio::test]
async fn catalog_of_empty_registry_is_empty() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let resp = c.get("/v2/_catalog").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"repositories": []}));
}

#[tokio::test]
async fn catalog_lists_repositories_sorted_including_nested_names() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let repos = [
        "b",
        "a/c",
        "a",
        "a/b/c/d",
        "a-b",
        "x/manifests",
        "x/blobs/y",
    ];
    for repo in repos {
        c.random_image(repo, 1).await;
    }

    // No spec covers `_catalog`. Byte order (Go's sort.Strings, as the spec asks of tags) and
    // distribution's order (a sorted depth-first walk: `a/c` before `a-b`) are both accepted.
    let mut bytewise: Vec<String> = repos.iter().map(|r| r.to_string()).collect();
    bytewise.sort();
    let mut walk = bytewise.clone();
    walk.sort_by(|a, b| a.split('/').cmp(b.split('/')));
    let resp = c.get("/v2/_catalog").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let got = &body["repositories"];
    assert!(*got == json!(bytewise) || *got == json!(walk), "{got}");
}

#[tokio::test]
async fn catalog_paginates_with_n_last_and_link() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    for repo in ["r5", "r3", "r1", "r4", "r2"] {
        c.random_image(&format!("cat/{repo}"), 0).await;
    }

    let got = pages(&c, "/v2/_catalog?n=2", "/v2/_catalog", "repositories", 2).await;
    assert_eq!(
        got,
        [
            vec!["cat/r1", "cat/r2"],
            vec!["cat/r3", "cat/r4"],
            vec!["cat/r5"]
        ]
    );
}

#[tokio::test]
async fn catalog_with_invalid_n_returns_400_pagination_number_invalid() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.random_image("cat/one", 0).await;

    // distribution 2.8.2 ignores an `n` it cannot parse and answers 200 with everything.
    for n in ["abc", "-1"] {
        let resp = c.get(&format!("/v2/_catalog?n={n}")).send().await.unwrap();
        assert_error(resp, StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID").await;
    }
}

/// Pushes (by digest, untagged) a manifest referring to `subject`, with `config_type` as its
/// config's media type; returns the body.
async fn push_referrer(
    c: &Client,
    repo: &str,
    subject: &Value,
    artifact_type: Option<&str>,
    config_type: &str,
    annotations: Value,
) -> Vec<u8> {
    let config = br#"{"kind":"test referrer"}"#;
    c.push_blob(repo, config).await;
    c.push_blob(repo, b"{}").await;
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_type, config),
        "layers": [descriptor(OCI_EMPTY, b"{}")],
        "subject": subject,
        "annotations": annotations,
    });
    if let Some(t) = artifact_type {
        manifest["artifactType"] = json!(t);
    }
    let body = serde_json::to_vec(&manifest).expect("serialize referrer");
    let resp = c
        .push_manifest(repo, &sha256(&body), OCI_MANIFEST, &body)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED, "push referrer");
    body
}

/// GET the referrers of `digest` (with `query`), asserting a 200 OCI index; returns the
/// `OCI-Filters-Applied` header and the descriptors sorted by digest, projected onto the fields
/// the spec names.
async fn referrers(
    c: &Client,
    repo: &str,
    digest: &str,
    query: &str,
) -> (Option<String>, Vec<Value>) {
    let resp = c
        .get(&format!("/v2/{repo}/referrers/{digest}{query}"))
        .send()
        .await
        .expect("GET referrers");
    // distribution 2.8.2 has no referrers API and answers 404.
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "referrers of {digest}{query}"
    );
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_INDEX));
    let filters = header(&resp, "oci-filters-applied");
    let body: Value = resp.json().await.expect("referrers JSON");
    assert_eq!(body["schemaVersion"], 2, "{body}");
    assert_eq!(body["mediaType"], OCI_INDEX, "{body}");
    let mut list: Vec<Value> = body["manifests"]
        .as_array()
        .unwrap_or_else(|| panic!("no manifests array in {body}"))
        .iter()
        .map(|d| {
            let mut p = json!({});
            for key in ["mediaType", "digest", "size", "artifactType", "annotations"] {
                if let Some(v) = d.get(key) {
                    p[key] = v.clone();
                }
            }
            p
        })
        .collect();
    list.sort_by_key(|d| d["digest"].as_str().unwrap_or_default().to_owned());
    (filters, list)
}

/// The descriptor the referrers API must list for `body`.
fn listed(media_type: &str, body: &[u8], artifact_type: Option<&str>, annotations: Value) -> Value {
    let mut d = descriptor(media_type, body);
    if let Some(t) = artifact_type {
        d["artifactType"] = json!(t);
    }
    d["annotations"] = annotations;
    d
}

/// Sorts descriptors by digest, as [`referrers`] does.
fn by_digest(mut list: Vec<Value>) -> Vec<Value> {
    list.sort_by_key(|d| d["digest"].as_str().unwrap_or_default().to_owned());
    list
}

const SBOM: &str = "application/vnd.example.sbom.v1";
const SIG_CONFIG: &str = "application/vnd.example.signature.config.v1+json";

#[tokio::test]
async fn referrers_list_manifests_with_that_subject_as_an_oci_index() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let repo = "disc/refs";
    let (subject_body, subject) = c.random_image(repo, 1).await;
    let subject_desc = descriptor(OCI_MANIFEST, &subject_body);

    // An artifact with artifactType, one without (listed under its config's media type), an
    // index referrer (artifactType omitted), and an unrelated image that must not be listed.
    let sbom_notes = json!({"org.example.kind": "sbom"});
    let sbom = push_referrer(
        &c,
        repo,
        &subject_desc,
        Some(SBOM),
        OCI_EMPTY,
        sbom_notes.clone(),
    )
    .await;
    let sig_notes = json!({"org.example.kind": "signature"});
    let sig = push_referrer(&c, repo, &subject_desc, None, SIG_CONFIG, sig_notes.clone()).await;
    let (child, _) = c.random_image(repo, 1).await;
    let index_notes = json!({"org.example.kind": "index"});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, &child)],
        "subject": subject_desc,
        "annotations": index_notes,
    }))
    .unwrap();
    let resp = c
        .push_manifest(repo, &sha256(&index), OCI_INDEX, &index)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    c.random_image(repo, 1).await;

    let (_, got) = referrers(&c, repo, &subject, "").await;
    let want = by_digest(vec![
        listed(OCI_MANIFEST, &sbom, Some(SBOM), sbom_notes),
        listed(OCI_MANIFEST, &sig, Some(SIG_CONFIG), sig_notes),
        listed(OCI_INDEX, &index, None, index_notes),
    ]);
    assert_eq!(got, want);
}

#[tokio::test]
async fn referrers_filtered_by_artifact_type_say_so_in_oci_filters_applied() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let repo = "disc/filter";
    let (subject_body, subject) = c.random_image(repo, 1).await;
    let subject_desc = descriptor(OCI_MANIFEST, &subject_body);
    let notes = json!({"n": "1"});
    let sbom = push_referrer(
        &c,
        repo,
        &subject_desc,
        Some(SBOM),
        OCI_EMPTY,
        notes.clone(),
    )
    .await;
    push_referrer(&c, repo, &subject_desc, None, SIG_CONFIG, json!({"n": "2"})).await;

    let (filters, got) = referrers(
        &c,
        repo,
        &subject,
        &format!("?artifactType={}", escape(SBOM)),
    )
    .await;
    assert_eq!(filters.as_deref(), Some("artifactType"));
    assert_eq!(got, [listed(OCI_MANIFEST, &sbom, Some(SBOM), notes)]);

    // A config media type counts as the artifactType of a manifest without one.
    let (_, got) = referrers(
        &c,
        repo,
        &subject,
        &format!("?artifactType={}", escape(SIG_CONFIG)),
    )
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (_, got) = referrers(&c, repo, &subject, "?artifactType=application%2Fnone").await;
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn referrers_of_unknown_subject_are_an_empty_index() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.random_image("disc/norefs", 1).await;

    // spec: "A registry that supports the referrers API MUST NOT return 404 Not Found".
    let (filters, got) = referrers(&c, "disc/norefs", &sha256(b"no such subject"), "").await;
    assert!(got.is_empty(), "{got:?}");
    assert!(filters.is_none(), "OCI-Filters-Applied without a filter");
}

#[tokio::test]
async fn deleted_referrer_disappears_from_referrers() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let repo = "disc/refdel";
    let (subject_body, subject) = c.random_image(repo, 1).await;
    let subject_desc = descriptor(OCI_MANIFEST, &subject_body);
    let gone = push_referrer(
        &c,
        repo,
        &subject_desc,
        Some(SBOM),
        OCI_EMPTY,
        json!({"a": "1"}),
    )
    .await;
    let kept = push_referrer(
        &c,
        repo,
        &subject_desc,
        Some(SBOM),
        OCI_EMPTY,
        json!({"a": "2"}),
    )
    .await;

    let resp = c
        .manifest(Method::DELETE, repo, &sha256(&gone))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let (_, got) = referrers(&c, repo, &subject, "").await;
    assert_eq!(
        got,
        [listed(OCI_MANIFEST, &kept, Some(SBOM), json!({"a": "2"}))]
    );
}

#[tokio::test]
async fn referrers_are_scoped_to_the_repository() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let (subject_body, subject) = c.random_image("disc/scope-a", 1).await;
    c.random_image("disc/scope-b", 1).await;
    let subject_desc = descriptor(OCI_MANIFEST, &subject_body);
    push_referrer(
        &c,
        "disc/scope-a",
        &subject_desc,
        Some(SBOM),
        OCI_EMPTY,
        json!({}),
    )
    .await;

    let (_, got) = referrers(&c, "disc/scope-b", &subject, "").await;
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test]
async fn referrers_with_invalid_digest_return_400() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    c.random_image("disc/refbad", 1).await;

    // spec: "If the request is invalid (for example, <digest> has invalid syntax), the registry
    // MUST return 400 Bad Request".
    for digest in ["sha256:zz", "notadigest", "latest"] {
        let resp = c
            .get(&format!("/v2/disc/refbad/referrers/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{digest}");
        assert_eq!(errors(resp).await, ["DIGEST_INVALID"], "{digest}");
    }
}
