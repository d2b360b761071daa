//! wharf on Azure Blob (Azurite started by the tests): a chunked push spread over two instances
//! sharing the container, then pulls of blobs and manifests.

use reqwest::StatusCode;

use crate::harness::Wharf;
use crate::harness::azurite;
use crate::harness::oci::{ACCEPT_MANIFESTS, Client, expect_status, random_bytes, with_query};

#[tokio::test]
async fn push_spread_over_instances_then_pull() {
    let Some(azurite) = azurite::azurite() else {
        return;
    };
    let container = azurite.container().await;
    let config = azurite::config_template(azurite, &container);
    let (a, b) = (
        Wharf::start_with_config(&config),
        Wharf::start_with_config(&config),
    );
    let (ca, cb) = (Client::new(&a.url()), Client::new(&b.url()));
    let data = random_bytes((11 << 20) + 9);
    let digest = crate::harness::oci::sha256(&data);
    let mut location = ca.start_upload("az/app").await;
    let mut start = 0;
    for (i, part) in data.chunks(4 << 20).enumerate() {
        let c = if i % 2 == 0 { &cb } else { &ca };
        let path = &location[location.find("/v2/").expect("a /v2/ location")..];
        let resp = c
            .patch(path)
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{start}-{}", start + part.len() - 1),
            )
            .body(part.to_vec())
            .send()
            .await
            .unwrap();
        let resp = expect_status(resp, StatusCode::ACCEPTED, "PATCH").await;
        location = c.location(&resp);
        start += part.len();
    }
    let resp = ca
        .put(&with_query(&location, &format!("digest={digest}")))
        .send()
        .await
        .unwrap();
    expect_status(resp, StatusCode::CREATED, "PUT closes the upload").await;
    let (manifest, manifest_digest) = cb.random_image("az/app", 2).await;

    let got = ca
        .get(&format!("/v2/az/app/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    let got = expect_status(got, StatusCode::TEMPORARY_REDIRECT, "blob GET redirects").await;
    let sas = crate::harness::oci::header(&got, "location").expect("Location");
    assert!(sas.contains("&sig="), "{sas}");
    let got = reqwest::get(&sas).await.unwrap();
    let got = expect_status(got, StatusCode::OK, "SAS URL served by Azurite").await;
    assert!(got.bytes().await.unwrap() == data[..], "{}", a.log());
    let got = ca
        .get(&format!("/v2/az/app/manifests/{manifest_digest}"))
        .header("accept", ACCEPT_MANIFESTS)
        .send()
        .await
        .unwrap();
    let got = expect_status(got, StatusCode::OK, "manifest").await;
    assert!(got.bytes().await.unwrap() == manifest[..]);
}

#[tokio::test]
async fn redirect_disable_serves_blobs_from_wharf() {
    let Some(azurite) = azurite::azurite() else {
        return;
    };
    let container = azurite.container().await;
    let config = azurite::config_template(azurite, &container)
        .replace("  delete:\n", "  redirect:\n    disable: true\n  delete:\n");
    let w = Wharf::start_with_config(&config);
    let c = Client::new(&w.url());
    let data = random_bytes(5000);
    let digest = c.push_blob("az/direct", &data).await;
    let got = c
        .get(&format!("/v2/az/direct/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    let got = expect_status(got, StatusCode::OK, "blob served by wharf").await;
    assert!(got.bytes().await.unwrap() == data[..], "{}", w.log());
}
