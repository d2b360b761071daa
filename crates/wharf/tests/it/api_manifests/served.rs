//! How a stored manifest is served back: its pushed content type, whatever parameters came
//! with it, and across a restart.

use super::*;

#[tokio::test]
async fn content_type_parameters_are_ignored() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/params", OCI_MANIFEST).await;

    // spec: "Registries SHOULD ignore any parameters if they are present" on Content-Type.
    let with_params = format!("{OCI_MANIFEST}; charset=utf-8");
    let resp = c
        .push_manifest("man/params", "v1", &with_params, &body)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = c
        .manifest(Method::GET, "man/params", "v1")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&resp, "content-type").as_deref(), Some(OCI_MANIFEST));
    assert_eq!(resp.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn manifest_without_media_type_field_is_served_with_its_pushed_content_type() {
    let w = Wharf::start();
    let c = Client::new(&w.url());
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    c.push_blob("man/nomediatype", config).await;
    // `mediaType` is only RECOMMENDED in an OCI manifest; the Content-Type names the kind.
    let body = pretty(&json!({
        "schemaVersion": 2,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [],
    }));

    assert_round_trip(&c, "man/nomediatype", "v1", OCI_MANIFEST, &body).await;
}

#[tokio::test]
async fn manifest_survives_server_restart() {
    let mut w = Wharf::start();
    let c = Client::new(&w.url());
    let body = image(&c, "man/restart", OCI_MANIFEST).await;
    let resp = c
        .push_manifest("man/restart", "v1", OCI_MANIFEST, &body)
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);

    w.restart();
    let resp = c
        .manifest(Method::GET, "man/restart", "v1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.unwrap(), body);
    assert_eq!(c.tags("man/restart").await, ["v1"]);
}
