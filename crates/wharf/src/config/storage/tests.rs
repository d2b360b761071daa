//! Table tests of `storage:` parsing: drivers, reserved keys, S3 and Azure parameters.

use super::*;
use crate::config::tree::parse_yaml;

fn read(yaml: &str) -> (Option<StorageConfig>, Ctx) {
    let mut ctx = Ctx::default();
    let node = parse_yaml(yaml).unwrap();
    (from_node(&node, &mut ctx), ctx)
}

#[test]
fn filesystem_with_every_reserved_key() {
    let (storage, ctx) = read(
        "filesystem:\n  rootdirectory: /data\n  maxthreads: \"50\"\ndelete:\n  enabled: \"true\"\nredirect:\n  disable: yes\ncache:\n  blobdescriptor: inmemory\n  blobdescriptorsize: 500\nmaintenance:\n  uploadpurging:\n    enabled: true\n    age: 72h\n    interval: 1h30m\n    dryrun: true\n  readonly:\n    enabled: true\ntag:\n  concurrencylimit: 8\n",
    );
    assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
    let s = storage.unwrap();
    assert_eq!(
        s.driver,
        DriverConfig::Filesystem(FilesystemParams {
            root_directory: "/data".into(),
            max_threads: 50
        })
    );
    assert!(s.delete_enabled && s.redirect_disable && s.readonly);
    assert_eq!(s.blob_descriptor_cache.as_deref(), Some("inmemory"));
    assert_eq!(s.blob_descriptor_size, Some(500));
    assert_eq!(s.tag_concurrency_limit, 8);
    assert_eq!(
        s.upload_purging,
        UploadPurging {
            enabled: true,
            age: Duration::from_secs(72 * 3600),
            interval: Duration::from_secs(5400),
            dry_run: true
        }
    );
}

#[test]
fn defaults() {
    let s = read("filesystem:\n").0.unwrap();
    assert_eq!(
        s.driver,
        DriverConfig::Filesystem(FilesystemParams::default())
    );
    assert!(!s.delete_enabled && !s.readonly && !s.redirect_disable);
    assert_eq!(s.upload_purging, UploadPurging::default());
    assert_eq!(s.blob_descriptor_cache, None);
    assert_eq!(read("inmemory").0.unwrap().driver, DriverConfig::InMemory);
    assert_eq!(
        read("inmemory:\n").0.unwrap().driver,
        DriverConfig::InMemory
    );
}

#[test]
fn driver_count_errors_name_the_drivers() {
    let (s, ctx) = read("filesystem: {}\ns3: {bucket: b}\ncache: {blobdescriptor: inmemory}\n");
    assert!(s.is_none());
    assert_eq!(
        ctx.errors,
        ["storage: exactly one storage driver must be configured, found filesystem, s3"]
    );
    let (_, ctx) = read("delete: {enabled: true}\n");
    assert!(ctx.errors[0].starts_with("storage: no storage driver configured"));
    let (_, ctx) = read("");
    assert!(ctx.errors[0].starts_with("storage: no storage driver configured"));
}

#[test]
fn s3_with_distribution_keys_and_lenient_scalars() {
    let (s, ctx) = read(
        "s3:\n  region: us-east-1\n  regionendpoint: http://127.0.0.1:9000\n  bucket: reg\n  accesskey: AK\n  secretkey: SK\n  forcepathstyle: \"false\"\n  secure: \"false\"\n  skipverify: true\n  v4auth: true\n  chunksize: \"6291456\"\n  multipartcopythresholdsize: 1000\n  rootdirectory: /a/b\n  storageclass: REDUCED_REDUNDANCY\n  encrypt: yes\n  keyid: k1\n",
    );
    assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
    let DriverConfig::S3(p) = s.unwrap().driver else {
        panic!("not s3")
    };
    assert_eq!(
        *p,
        S3Params {
            bucket: "reg".into(),
            region: "us-east-1".into(),
            region_endpoint: Some("http://127.0.0.1:9000".into()),
            force_path_style: false,
            access_key: Some("AK".into()),
            secret_key: Some("SK".into()),
            encrypt: true,
            key_id: Some("k1".into()),
            secure: false,
            skip_verify: true,
            chunk_size: 6 << 20,
            multipart_copy_threshold_size: 1000,
            root_directory: "/a/b".into(),
            storage_class: Some("REDUCED_REDUNDANCY".into()),
            ..S3Params::default()
        }
    );
    let (s, ctx) =
        read("s3: {region: r, bucket: b, storageclass: NONE}\nredirect: {disable: true}\n");
    assert!(ctx.errors.is_empty(), "{ctx:?}");
    let DriverConfig::S3(p) = s.unwrap().driver else {
        panic!("not s3")
    };
    assert_eq!(
        (
            p.storage_class,
            p.access_key,
            p.force_path_style,
            p.redirect
        ),
        (None, None, true, false)
    );
}

#[test]
fn azure_with_distribution_keys() {
    let (s, ctx) = read(
        "azure:\n  accountname: acct\n  accountkey: a2V5\n  container: reg\n  serviceurl: http://127.0.0.1:10000/acct\n  chunksize: \"6291456\"\n",
    );
    assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
    let DriverConfig::Azure(p) = s.unwrap().driver else {
        panic!("not azure")
    };
    assert_eq!(
        (
            p.account_name.as_str(),
            p.account_key.as_str(),
            p.container.as_str()
        ),
        ("acct", "a2V5", "reg")
    );
    assert_eq!(
        p.service_url.as_deref(),
        Some("http://127.0.0.1:10000/acct")
    );
    assert_eq!(
        (p.realm.as_str(), p.chunk_size),
        ("core.windows.net", 6 << 20)
    );
    let (s, ctx) = read("azure: {realm: core.chinacloudapi.cn}\n");
    assert!(s.is_none());
    assert_eq!(ctx.errors.len(), 3, "{:?}", ctx.errors);
}

#[test]
fn s3_problems_are_named_together() {
    let (s, ctx) =
        read("s3:\n  accesskey: AK\n  v4auth: false\n  chunksize: 1024\n  storageclass: COLD\n");
    assert!(s.is_none());
    assert_eq!(ctx.errors.len(), 6, "{:?}", ctx.errors);
    assert!(ctx.errors[0].starts_with("storage.s3.bucket: required"));
    assert!(ctx.errors[1].starts_with("storage.s3.region: required"));
    assert!(ctx.errors[2].contains("accesskey and secretkey go together"));
    assert!(ctx.errors[3].starts_with("storage.s3.v4auth"));
    assert!(ctx.errors[4].starts_with("storage.s3.chunksize: 1024"));
    assert!(ctx.errors[5].starts_with("storage.s3.storageclass"));
}

#[test]
fn other_drivers_are_read_then_refused() {
    for driver in ["rados", "s3-aws"] {
        let (s, ctx) = read(&format!("{driver}:\n  bucket: b\n  secretkey: k\n"));
        assert!(s.is_none());
        assert_eq!(ctx.errors.len(), 1);
        assert!(
            ctx.errors[0].starts_with(&format!(
                "storage.{driver}: storage driver {driver} is not supported yet"
            )),
            "{}",
            ctx.errors[0]
        );
    }
    let (_, ctx) = read("floppy: {}\n");
    assert!(ctx.errors[0].starts_with("storage: unknown storage driver \"floppy\""));
}

#[test]
fn wrong_values_name_their_keys_all_at_once() {
    let (_, ctx) = read(
        "filesystem:\n  maxthreads: many\ndelete:\n  enabled: perhaps\ncache:\n  blobdescriptor: memcached\n",
    );
    assert_eq!(
        ctx.errors,
        [
            "storage.filesystem.maxthreads: expected an integer, got \"many\"",
            "storage.delete.enabled: expected true or false, got \"perhaps\"",
        ]
    );
    let (_, ctx) = read("inmemory:\ncache:\n  blobdescriptor: memcached\n");
    assert_eq!(
        ctx.errors,
        ["storage.cache.blobdescriptor: expected inmemory or redis, got \"memcached\""]
    );
    let (_, ctx) = read("filesystem: /var/lib/registry\n");
    assert!(ctx.errors[0].starts_with("storage.filesystem: expected a map of driver parameters"));
}

#[test]
fn warnings() {
    let (s, ctx) =
        read("filesystem:\n  maxthreads: 3\n  rootdir: /x\ncache:\n  layerinfo: redis\n");
    let s = s.unwrap();
    assert_eq!(s.blob_descriptor_cache.as_deref(), Some("redis"));
    assert_eq!(
        ctx.warnings,
        [
            "unknown key storage.filesystem.rootdir is ignored",
            "storage.filesystem.maxthreads: 3 is below the minimum; using 25",
            "storage.cache.layerinfo is deprecated; use storage.cache.blobdescriptor",
        ]
    );
}

#[test]
fn gcs_keys_defaults_and_credentials_map() {
    let (s, ctx) = read(
        "gcs:\n  bucket: reg\n  keyfile: /etc/gcs.json\n  rootdirectory: /r\n  chunksize: \"524288\"\n",
    );
    assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
    let DriverConfig::Gcs(p) = s.unwrap().driver else {
        panic!("not gcs")
    };
    assert_eq!(p.bucket, "reg");
    assert_eq!(p.keyfile.as_deref(), Some("/etc/gcs.json"));
    assert_eq!(p.root_directory, "/r");
    assert_eq!(p.chunk_size, 512 << 10);
    assert!(p.redirect && p.credentials.is_none() && p.emulator_host.is_none());

    let (s, ctx) = read(
        "gcs:\n  bucket: reg\n  credentials:\n    type: service_account\n    client_email: a@b.iam.gserviceaccount.com\n    private_key: \"-----BEGIN PRIVATE KEY-----\\nabc\"\n    private_key_id: k1\nredirect:\n  disable: true\n",
    );
    assert!(ctx.errors.is_empty(), "{ctx:?}");
    let s = s.unwrap();
    let DriverConfig::Gcs(p) = &s.driver else {
        panic!("not gcs")
    };
    assert_eq!(p.chunk_size, 5 << 20, "distribution's default");
    assert!(!p.redirect, "redirect.disable reaches the driver");
    let json: serde_json::Value = serde_json::from_str(p.credentials.as_deref().unwrap()).unwrap();
    assert_eq!(json["type"], "service_account");
    assert_eq!(json["private_key"], "-----BEGIN PRIVATE KEY-----\nabc");
    let printed = serde_json::to_string(&s).unwrap();
    assert!(!printed.contains("BEGIN PRIVATE KEY"), "{printed}");
    assert!(printed.contains(MASK), "{printed}");
}

#[test]
fn gcs_errors_all_at_once() {
    let (s, ctx) = read("gcs:\n  chunksize: 1000\n  credentials:\n    type: service_account\n");
    assert!(s.is_none());
    assert_eq!(ctx.errors.len(), 3, "{:?}", ctx.errors);
    assert!(ctx.errors[0].starts_with("storage.gcs.bucket: required"));
    assert!(ctx.errors[1].starts_with("storage.gcs.credentials: a service-account key needs"));
    assert!(
        ctx.errors[2]
            .starts_with("storage.gcs.chunksize: 1000 must be a positive multiple of 262144")
    );
}

#[test]
fn oss_keys_defaults_and_errors() {
    let (s, ctx) = read(
        "oss:\n  accesskeyid: AK\n  accesskeysecret: SK\n  region: oss-cn-beijing\n  bucket: reg\n  internal: true\n  encrypt: \"true\"\n  secure: false\n  chunksize: 6291456\n  rootdirectory: /r\n  endpoint: reg.example.com\n",
    );
    assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
    let s = s.unwrap();
    let DriverConfig::Oss(p) = &s.driver else {
        panic!("not oss")
    };
    assert_eq!(
        (p.access_key_id.as_str(), p.access_key_secret.as_str()),
        ("AK", "SK")
    );
    assert_eq!(
        (p.region.as_str(), p.bucket.as_str()),
        ("oss-cn-beijing", "reg")
    );
    assert!(p.internal && p.encrypt && !p.secure && p.redirect);
    assert_eq!(p.chunk_size, 6 << 20);
    assert_eq!(p.endpoint.as_deref(), Some("reg.example.com"));
    let printed = serde_json::to_string(&s).unwrap();
    assert!(!printed.contains("\"SK\""), "{printed}");

    let (s, _) = read(
        "oss:\n  accesskeyid: AK\n  accesskeysecret: SK\n  region: oss-cn-beijing\n  bucket: reg\n",
    );
    let DriverConfig::Oss(p) = s.unwrap().driver else {
        panic!("not oss")
    };
    assert!(p.secure && !p.internal && !p.encrypt);
    assert_eq!(p.chunk_size, 10 << 20);

    let (s, ctx) = read("oss:\n  chunksize: 1024\n");
    assert!(s.is_none());
    assert_eq!(ctx.errors.len(), 5, "{:?}", ctx.errors);
    assert!(ctx.errors[0].starts_with("storage.oss.accesskeyid: required"));
    assert!(ctx.errors[4].starts_with("storage.oss.chunksize: 1024 is below"));
}

fn from_env(env: &[(&str, &str)]) -> DriverConfig {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let yaml = "version: 0.1\nstorage:\n  filesystem: {}\nhttp:\n  addr: :5000\n";
    match crate::config::Config::parse(yaml, &env) {
        Ok(loaded) => loaded.config.storage.driver,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn gcs_from_env_overrides() {
    let driver = from_env(&[
        ("REGISTRY_STORAGE", "gcs"),
        ("REGISTRY_STORAGE_GCS_BUCKET", "reg"),
        ("REGISTRY_STORAGE_GCS_ROOTDIRECTORY", "/r"),
        ("REGISTRY_STORAGE_GCS_CHUNKSIZE", "1048576"),
        ("REGISTRY_STORAGE_GCS_CREDENTIALS_TYPE", "service_account"),
        ("REGISTRY_STORAGE_GCS_CREDENTIALS_CLIENT_EMAIL", "a@b"),
        ("REGISTRY_STORAGE_GCS_CREDENTIALS_PRIVATE_KEY", "pem"),
        ("REGISTRY_STORAGE_GCS_CREDENTIALS_PRIVATE_KEY_ID", "k1"),
    ]);
    let DriverConfig::Gcs(p) = driver else {
        panic!("REGISTRY_STORAGE=gcs read as {driver:?}")
    };
    assert_eq!(
        (p.bucket.as_str(), p.root_directory.as_str()),
        ("reg", "/r")
    );
    assert_eq!(p.chunk_size, 1 << 20);
    let json: serde_json::Value = serde_json::from_str(p.credentials.as_deref().unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"type": "service_account", "client_email": "a@b", "private_key": "pem", "private_key_id": "k1"})
    );
    let driver = from_env(&[
        ("REGISTRY_STORAGE", "gcs"),
        ("REGISTRY_STORAGE_GCS_BUCKET", "reg"),
        ("REGISTRY_STORAGE_GCS_KEYFILE", "/secrets/key.json"),
    ]);
    let DriverConfig::Gcs(p) = driver else {
        panic!("not gcs")
    };
    assert_eq!(p.keyfile.as_deref(), Some("/secrets/key.json"));
}

#[test]
fn oss_from_env_overrides() {
    let driver = from_env(&[
        ("REGISTRY_STORAGE", "oss"),
        ("REGISTRY_STORAGE_OSS_ACCESSKEYID", "AK"),
        ("REGISTRY_STORAGE_OSS_ACCESSKEYSECRET", "SK"),
        ("REGISTRY_STORAGE_OSS_REGION", "oss-cn-hangzhou"),
        ("REGISTRY_STORAGE_OSS_BUCKET", "reg"),
        ("REGISTRY_STORAGE_OSS_INTERNAL", "true"),
        ("REGISTRY_STORAGE_OSS_SECURE", "false"),
        ("REGISTRY_STORAGE_OSS_ENCRYPT", "true"),
        ("REGISTRY_STORAGE_OSS_ENDPOINT", "reg.example.com"),
        ("REGISTRY_STORAGE_OSS_CHUNKSIZE", "5242880"),
        ("REGISTRY_STORAGE_OSS_ROOTDIRECTORY", "/r"),
    ]);
    let DriverConfig::Oss(p) = driver else {
        panic!("REGISTRY_STORAGE=oss read as {driver:?}")
    };
    assert_eq!(p.access_key_secret, "SK");
    assert_eq!(p.region, "oss-cn-hangzhou");
    assert!(p.internal && !p.secure && p.encrypt);
    assert_eq!(p.endpoint.as_deref(), Some("reg.example.com"));
    assert_eq!((p.chunk_size, p.root_directory.as_str()), (5 << 20, "/r"));
}

#[test]
fn swift_keys_defaults_and_errors() {
    let (s, ctx) = read(
        "swift:\n  authurl: https://keystone.example/v3\n  username: alice\n  password: pw\n  tenant: reg\n  tenantid: t1\n  domain: Default\n  domainid: d1\n  region: fr\n  endpointtype: internal\n  container: images\n  prefix: /r\n  insecureskipverify: true\n  chunksize: 2097152\n  authversion: 3\n  secretkey: tk\n  tempurlcontainerkey: true\n  tempurlmethods: [GET, HEAD]\n",
    );
    assert!(ctx.errors.is_empty() && ctx.warnings.is_empty(), "{ctx:?}");
    let s = s.unwrap();
    let DriverConfig::Swift(p) = &s.driver else {
        panic!("not swift")
    };
    assert_eq!(
        (
            p.auth_url.as_str(),
            p.username.as_str(),
            p.password.as_str()
        ),
        ("https://keystone.example/v3", "alice", "pw")
    );
    assert_eq!(
        (p.tenant.as_deref(), p.tenant_id.as_deref()),
        (Some("reg"), Some("t1"))
    );
    assert_eq!(
        (p.domain.as_deref(), p.domain_id.as_deref()),
        (Some("Default"), Some("d1"))
    );
    assert_eq!(
        (p.region.as_deref(), p.endpoint_type.as_deref()),
        (Some("fr"), Some("internal"))
    );
    assert_eq!((p.container.as_str(), p.prefix.as_str()), ("images", "/r"));
    assert!(p.insecure_skip_verify && p.temp_url_container_key && p.redirects());
    assert_eq!(p.chunk_size, 2 << 20);
    assert_eq!(
        p.auth_version,
        Some(wharf_storage::factory::SwiftAuthVersion::V3)
    );
    assert_eq!(p.secret_key.as_deref(), Some("tk"));
    assert_eq!(p.temp_url_methods, ["GET", "HEAD"]);
    let printed = serde_json::to_string(&s).unwrap();
    assert!(
        !printed.contains("\"pw\"") && !printed.contains("\"tk\""),
        "{printed}"
    );

    let (s, ctx) = read(
        "swift:\n  authurl: http://127.0.0.1:8080/auth/v1.0\n  username: test:tester\n  password: testing\n  container: c\n",
    );
    assert!(ctx.errors.is_empty(), "{ctx:?}");
    let DriverConfig::Swift(p) = s.unwrap().driver else {
        panic!("not swift")
    };
    assert_eq!(p.auth_version, None);
    assert_eq!(p.chunk_size, 20 << 20);
    assert!(p.redirect && !p.redirects(), "no secretkey, no redirect");
    assert!(p.prefix.is_empty() && !p.insecure_skip_verify);

    let (s, ctx) = read("swift:\n  chunksize: 1024\n  authversion: 7\n  trustid: x\n");
    assert!(s.is_none());
    assert_eq!(ctx.errors.len(), 7, "{:?}", ctx.errors);
    assert!(ctx.errors[0].starts_with("storage.swift.authurl: required"));
    assert!(ctx.errors[3].starts_with("storage.swift.container: required"));
    assert!(ctx.errors[4].starts_with("storage.swift.trustid"));
    assert!(ctx.errors[5].starts_with("storage.swift.authversion: expected 1, 2 or 3"));
    assert!(ctx.errors[6].starts_with("storage.swift.chunksize: 1024 is below"));

    let (_, ctx) =
        read("swift:\n  authurl: https://k/v2.0\n  username: u\n  password: p\n  container: c\n");
    assert!(
        ctx.errors[0].contains("Keystone v2.0 is not supported"),
        "{ctx:?}"
    );
}

#[test]
fn swift_from_env_overrides() {
    let driver = from_env(&[
        ("REGISTRY_STORAGE", "swift"),
        (
            "REGISTRY_STORAGE_SWIFT_AUTHURL",
            "http://127.0.0.1:8080/auth/v1.0",
        ),
        ("REGISTRY_STORAGE_SWIFT_USERNAME", "test:tester"),
        ("REGISTRY_STORAGE_SWIFT_PASSWORD", "testing"),
        ("REGISTRY_STORAGE_SWIFT_CONTAINER", "reg"),
        ("REGISTRY_STORAGE_SWIFT_PREFIX", "/r"),
        ("REGISTRY_STORAGE_SWIFT_AUTHVERSION", "1"),
        ("REGISTRY_STORAGE_SWIFT_CHUNKSIZE", "5242880"),
        ("REGISTRY_STORAGE_SWIFT_SECRETKEY", "tk"),
        ("REGISTRY_STORAGE_SWIFT_INSECURESKIPVERIFY", "true"),
        ("REGISTRY_STORAGE_SWIFT_TEMPURLMETHODS", "GET"),
    ]);
    let DriverConfig::Swift(p) = driver else {
        panic!("REGISTRY_STORAGE=swift read as {driver:?}")
    };
    assert_eq!(
        (
            p.username.as_str(),
            p.password.as_str(),
            p.container.as_str()
        ),
        ("test:tester", "testing", "reg")
    );
    assert_eq!(
        p.auth_version,
        Some(wharf_storage::factory::SwiftAuthVersion::V1)
    );
    assert_eq!((p.chunk_size, p.prefix.as_str()), (5 << 20, "/r"));
    assert!(p.insecure_skip_verify && p.redirects());
    assert_eq!(p.temp_url_methods, ["GET"]);
}
