use bytes::Bytes;

use super::*;
use crate::driver::Driver;
use crate::path::StoragePath;
use crate::testsuite::peers;

/// A driver on a fresh container of the single-node Swift (v1 auth), below a `prefix`, with a
/// small chunk size so streamed writes use many parts.
async fn on_saio() -> Option<SwiftDriver> {
    let saio = peers::saio()?;
    let params = SwiftParams {
        prefix: "/registry/root".to_owned(),
        chunk_size: 256 << 10,
        ..saio.params()
    };
    Some(SwiftDriver::swift(params).await.unwrap())
}

crate::conformance_tests!(optional: on_saio().await);

#[tokio::test]
async fn resumed_chunked_write_is_one_plain_object_and_leaves_nothing() {
    let Some(saio) = peers::saio() else { return };
    let params = SwiftParams {
        chunk_size: 64 << 10,
        ..saio.params()
    };
    let container = params.container.clone();
    let driver = SwiftDriver::swift(params).await.unwrap();
    let upload = StoragePath::new("/uploads/u1/data").unwrap();
    let pattern = |n: usize, seed: u8| -> Bytes {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(7) ^ seed)
            .collect::<Vec<u8>>()
            .into()
    };
    let first = pattern(200_000, 1);
    let second = pattern(150_001, 2);
    let mut w = driver.writer(&upload, false).await.unwrap();
    w.write(first.clone()).await.unwrap();
    w.commit().await.unwrap();
    let mut w = driver.writer(&upload, true).await.unwrap();
    w.write(second.clone()).await.unwrap();
    w.commit().await.unwrap();
    let blob = StoragePath::new("/blobs/ab/data").unwrap();
    driver.rename(&upload, &blob).await.unwrap();
    let got = driver.get_content(&blob).await.unwrap();
    assert_eq!(got.len(), first.len() + second.len());
    assert_eq!(&got[..first.len()], &first[..]);
    assert_eq!(&got[first.len()..], &second[..]);
    // one plain object, no part, segment or SLO manifest left
    assert_eq!(saio.object_names(&container).await, ["blobs/ab/data"]);
}

#[tokio::test]
async fn expired_token_is_renewed_on_401() {
    let Some(saio) = peers::saio() else { return };
    let (driver, account) = SwiftDriver::swift_account(saio.params()).await.unwrap();
    let path = StoragePath::new("/a/file").unwrap();
    driver
        .put_content(&path, Bytes::from_static(b"before"))
        .await
        .unwrap();
    assert_eq!(account.logins(), 1);
    account.spoil_token().await;
    assert_eq!(
        driver.get_content(&path).await.unwrap(),
        Bytes::from_static(b"before")
    );
    assert_eq!(account.logins(), 2);
}

#[tokio::test]
async fn wrong_password_is_a_clear_start_up_error() {
    let Some(saio) = peers::saio() else { return };
    let params = SwiftParams {
        password: "wrong".into(),
        ..saio.params()
    };
    let err = SwiftDriver::swift(params).await.err().unwrap().to_string();
    assert!(err.contains("401"), "{err}");
}

#[tokio::test]
async fn redirect_is_a_working_temp_url() {
    let Some(saio) = peers::saio() else { return };
    let params = SwiftParams {
        secret_key: Some("wharf-tempurl-key".into()),
        temp_url_container_key: true,
        ..saio.params()
    };
    let driver = SwiftDriver::swift(params).await.unwrap();
    let path = StoragePath::new("/blobs/cd/data").unwrap();
    driver
        .put_content(&path, Bytes::from_static(b"redirected"))
        .await
        .unwrap();
    let url = driver.redirect_url(&path).await.unwrap().unwrap();
    assert!(url.contains("temp_url_sig="), "{url}");
    let body = reqwest::get(&url).await.unwrap();
    assert_eq!(body.status(), 200, "{url}");
    assert_eq!(
        body.bytes().await.unwrap(),
        Bytes::from_static(b"redirected")
    );
    let without = SwiftDriver::swift(saio.params()).await.unwrap();
    assert_eq!(without.redirect_url(&path).await.unwrap(), None);
}
