use bytes::Bytes;

use super::*;
use crate::driver::Driver;
use crate::path::StoragePath;
use crate::testsuite::peers;

/// A driver on a fresh fake-gcs-server bucket, below a `rootdirectory`, with the smallest
/// chunk size so streamed writes use many parts and compose rounds.
async fn on_fake_gcs() -> Option<GcsDriver> {
    let gcs = peers::fake_gcs()?;
    let bucket = gcs.bucket().await;
    let params = GcsParams {
        root_directory: "/registry/root".to_owned(),
        chunk_size: CHUNK_UNIT,
        ..gcs.params(&bucket)
    };
    Some(GcsDriver::gcs(params).unwrap())
}

crate::conformance_tests!(optional: on_fake_gcs().await);

#[test]
fn emulator_host_with_or_without_scheme() {
    let p = |host: Option<&str>| GcsParams {
        emulator_host: host.map(str::to_owned),
        ..GcsParams::default()
    };
    assert_eq!(
        p(Some("127.0.0.1:4443")).emulator_url().as_deref(),
        Some("http://127.0.0.1:4443")
    );
    assert_eq!(
        p(Some("https://gcs.local/")).emulator_url().as_deref(),
        Some("https://gcs.local")
    );
    assert_eq!(p(Some(" ")).emulator_url(), None);
    assert_eq!(p(None).emulator_url(), None);
}

/// Every object name in `bucket`, read straight from the server (listings through the driver
/// hide part and segment objects, so only this shows leftovers).
async fn object_names(gcs: &peers::FakeGcs, bucket: &str) -> Vec<String> {
    let listed: serde_json::Value =
        reqwest::get(format!("{}/storage/v1/b/{bucket}/o", gcs.endpoint))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let mut names: Vec<String> = listed["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn many_parts_compose_in_rounds_and_leave_only_the_object() {
    let Some(gcs) = peers::fake_gcs() else { return };
    let bucket = gcs.bucket().await;
    let d = GcsDriver::gcs(GcsParams {
        chunk_size: CHUNK_UNIT,
        ..gcs.params(&bucket)
    })
    .unwrap();
    // 70 parts: two rounds of compose (3 intermediates, then the object)
    let len = (CHUNK_UNIT as usize) * 70 - 3;
    let content: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let p = StoragePath::new("/big/data").unwrap();
    let mut w = d.writer(&p, false).await.unwrap();
    for piece in content.chunks(100_000) {
        w.write(Bytes::copy_from_slice(piece)).await.unwrap();
    }
    w.commit().await.unwrap();
    assert_eq!(object_names(gcs, &bucket).await, ["big/data"]);
    assert!(d.get_content(&p).await.unwrap() == content[..]);

    // a cancelled write removes its parts and the file
    let q = StoragePath::new("/big/cancelled").unwrap();
    let mut w = d.writer(&q, false).await.unwrap();
    w.write(Bytes::from(vec![1u8; (CHUNK_UNIT as usize) * 3]))
        .await
        .unwrap();
    w.cancel().await.unwrap();
    assert_eq!(object_names(gcs, &bucket).await, ["big/data"]);
    d.delete(&StoragePath::new("/big").unwrap()).await.unwrap();
    assert!(object_names(gcs, &bucket).await.is_empty());
}

/// A service-account key JSON with a fresh RSA key (made by `openssl`, so no key is committed).
fn service_account_json() -> String {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .expect("openssl makes the test's RSA key");
    assert!(out.status.success(), "openssl genpkey failed");
    serde_json::json!({
        "type": "service_account",
        "project_id": "wharf-test",
        "private_key_id": "0123",
        "private_key": String::from_utf8(out.stdout).unwrap(),
        "client_email": "wharf@wharf-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    })
    .to_string()
}

#[tokio::test]
async fn resume_from_another_driver_instance_and_signed_redirect() {
    let Some(gcs) = peers::fake_gcs() else { return };
    let bucket = gcs.bucket().await;
    let small = GcsParams {
        chunk_size: CHUNK_UNIT,
        ..gcs.params(&bucket)
    };
    let (a, b) = (
        GcsDriver::gcs(small.clone()).unwrap(),
        GcsDriver::gcs(small.clone()).unwrap(),
    );
    let p = StoragePath::new("/_uploads/x/data").unwrap();
    let first = vec![7u8; (CHUNK_UNIT as usize) * 3 + 5];
    let mut w = a.writer(&p, true).await.unwrap();
    w.write(Bytes::from(first.clone())).await.unwrap();
    w.commit().await.unwrap();
    let mut w = b.writer(&p, true).await.unwrap();
    assert_eq!(w.size(), first.len() as u64);
    w.write(Bytes::from_static(b"def")).await.unwrap();
    w.commit().await.unwrap();
    let blob = StoragePath::new("/blobs/data").unwrap();
    b.rename(&p, &blob).await.unwrap();
    let mut expected = first;
    expected.extend_from_slice(b"def");
    assert!(a.get_content(&blob).await.unwrap() == expected[..]);
    assert_eq!(
        object_names(gcs, &bucket).await,
        ["blobs/data"],
        "no parts or segments left"
    );

    // No private key: nothing to sign with, so no redirect (blobs are served directly).
    assert_eq!(a.redirect_url(&blob).await.unwrap(), None);
    let signing = GcsDriver::gcs(GcsParams {
        credentials: Some(service_account_json()),
        ..small.clone()
    })
    .unwrap();
    let url = signing.redirect_url(&blob).await.unwrap().unwrap();
    assert!(url.contains("X-Goog-Signature="), "{url}");
    assert!(url.starts_with(&gcs.endpoint), "{url}");
    let resp = reqwest::get(&url).await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    assert!(resp.bytes().await.unwrap() == expected[..]);
    let quiet = GcsDriver::gcs(GcsParams {
        credentials: Some(service_account_json()),
        redirect: false,
        ..small
    })
    .unwrap();
    assert_eq!(quiet.redirect_url(&blob).await.unwrap(), None);
    a.delete(&blob).await.unwrap();
}

#[test]
fn unreadable_keys_are_clear_errors() {
    let err = GcsDriver::gcs(GcsParams {
        bucket: "b".into(),
        keyfile: Some("/nonexistent/key.json".into()),
        ..GcsParams::default()
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("/nonexistent/key.json"), "{err}");
    let err = GcsDriver::gcs(GcsParams {
        bucket: "b".into(),
        credentials: Some("{not json".into()),
        ..GcsParams::default()
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("not JSON"), "{err}");
}
