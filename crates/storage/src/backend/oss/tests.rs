use base64::Engine as _;
use hmac::{KeyInit, Mac};

use super::*;
use crate::driver::Driver;
use crate::path::StoragePath;

/// A driver on the live bucket named by `WHARF_TEST_OSS_*`; without them the suite is skipped
/// (also under CI: there is no OSS emulator, and CI has no Alibaba Cloud account).
fn on_live_oss() -> Option<OssDriver> {
    let var = |name: &str| {
        std::env::var(format!("WHARF_TEST_OSS_{name}"))
            .ok()
            .filter(|v| !v.is_empty())
    };
    let (Some(access_key_id), Some(access_key_secret), Some(bucket)) =
        (var("ACCESSKEYID"), var("ACCESSKEYSECRET"), var("BUCKET"))
    else {
        eprintln!(
            "SKIP: no live OSS bucket (set WHARF_TEST_OSS_ACCESSKEYID, _ACCESSKEYSECRET, _BUCKET and _REGION or _ENDPOINT)"
        );
        return None;
    };
    let params = OssParams {
        access_key_id,
        access_key_secret,
        bucket,
        region: var("REGION").unwrap_or_default(),
        endpoint: var("ENDPOINT"),
        root_directory: format!("/wharf-test-{}", uuid::Uuid::new_v4().simple()),
        chunk_size: MIN_CHUNK_SIZE,
        ..OssParams::default()
    };
    Some(OssDriver::oss(params).unwrap())
}

crate::conformance_tests!(optional: on_live_oss());

fn params() -> OssParams {
    OssParams {
        access_key_id: "LTAI-wharf-test".into(),
        access_key_secret: "wharf-test-secret".into(),
        region: "oss-cn-beijing".into(),
        bucket: "wharf-bucket".into(),
        ..OssParams::default()
    }
}

#[test]
fn endpoint_from_region_internal_secure_and_endpoint() {
    let p = params();
    assert_eq!(
        p.endpoint(),
        (
            "https://oss-cn-beijing.aliyuncs.com".to_owned(),
            Addressing::Virtual
        )
    );
    let internal = OssParams {
        internal: true,
        secure: false,
        region: "cn-hangzhou".into(),
        ..params()
    };
    assert_eq!(
        internal.endpoint().0,
        "http://oss-cn-hangzhou-internal.aliyuncs.com"
    );
    let custom = OssParams {
        endpoint: Some("wharf-bucket.example.com/".into()),
        ..params()
    };
    assert_eq!(
        custom.endpoint(),
        (
            "https://wharf-bucket.example.com".to_owned(),
            Addressing::Cname
        )
    );
    let shared = OssParams {
        endpoint: Some("http://oss-accelerate.aliyuncs.com".into()),
        ..params()
    };
    assert_eq!(
        shared.endpoint(),
        (
            "http://oss-accelerate.aliyuncs.com".to_owned(),
            Addressing::Virtual
        )
    );
}

/// The query value `name` of `url`, percent-decoded.
fn query_value(url: &str, name: &str) -> String {
    let query = url.split_once('?').unwrap().1;
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} missing in {url}"));
    let mut out = Vec::new();
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&raw[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn redirect_url_carries_a_signature_recomputed_here() {
    let p = OssParams {
        root_directory: "/registry".into(),
        ..params()
    };
    let driver = OssDriver::oss(p.clone()).unwrap();
    let blob = StoragePath::new("/docker/registry/v2/blobs/sha256/ab/abcd/data").unwrap();
    // Presigning is local: no request leaves the process.
    let url = driver.redirect_url(&blob).await.unwrap().unwrap();
    let key = "registry/docker/registry/v2/blobs/sha256/ab/abcd/data";
    assert!(
        url.starts_with(&format!(
            "https://wharf-bucket.oss-cn-beijing.aliyuncs.com/{key}?"
        )),
        "{url}"
    );
    assert_eq!(query_value(&url, "OSSAccessKeyId"), p.access_key_id);
    let expires = query_value(&url, "Expires");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at: u64 = expires.parse().unwrap();
    assert!(
        (now + 19 * 60..=now + 21 * 60).contains(&expires_at),
        "valid for distribution's 20 minutes: {expires_at} vs now {now}"
    );
    // OSS signature V1 for a query-signed GET: no Content-MD5, no Content-Type, Expires in
    // place of Date, then the canonical resource /<bucket>/<key>.
    let to_sign = format!("GET\n\n\n{expires}\n/{}/{key}", p.bucket);
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(p.access_key_secret.as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(query_value(&url, "Signature"), expected);

    let quiet = OssDriver::oss(OssParams {
        redirect: false,
        ..p
    })
    .unwrap();
    assert_eq!(quiet.redirect_url(&blob).await.unwrap(), None);
}

#[test]
fn encrypt_and_internal_build_a_driver() {
    let driver = OssDriver::oss(OssParams {
        encrypt: true,
        internal: true,
        ..params()
    })
    .unwrap();
    assert_eq!(driver.name(), "oss");
}
