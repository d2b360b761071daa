//! A single-node OpenStack Swift ("SAIO": the Debian `swift-*` packages) in a temp dir: one
//! replica, memcached, account/container/object servers and a proxy with tempauth user
//! `test:tester` / `testing`, each on a free port of 127.0.0.1. One shell watchdog runs them all
//! and, when the test process is gone, stops them and removes the directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{free_port, in_ci};

/// The programs a SAIO needs (Debian packages swift, swift-proxy, swift-object,
/// swift-container, swift-account, memcached).
const PROGRAMS: [&str; 6] = [
    "memcached",
    "swift-ring-builder",
    "swift-proxy-server",
    "swift-account-server",
    "swift-container-server",
    "swift-object-server",
];

/// A running single-node Swift.
#[derive(Debug)]
pub struct Saio {
    /// The v1 (tempauth) auth URL: `http://127.0.0.1:<port>/auth/v1.0`.
    pub auth_url: String,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

/// tempauth's account:user, as distribution's `username` names it.
pub const USER: &str = "test:tester";
/// tempauth's key (`password`).
pub const KEY: &str = "testing";

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}

fn server_conf(kind: &str, port: u16, dir: &Path, user: &str) -> String {
    format!(
        "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\ndevices = {devices}\n\
         mount_check = false\nswift_dir = {conf}\nuser = {user}\nworkers = 1\n\
         log_level = WARNING\n\n[pipeline:main]\npipeline = {kind}-server\n\n\
         [app:{kind}-server]\nuse = egg:swift#{kind}\n",
        devices = dir.join("srv").display(),
        conf = dir.display(),
    )
}

fn proxy_conf(port: u16, memcached: u16, dir: &Path, user: &str) -> String {
    format!(
        "[DEFAULT]\nbind_ip = 127.0.0.1\nbind_port = {port}\nswift_dir = {conf}\nuser = {user}\n\
         workers = 1\nlog_level = WARNING\n\n[pipeline:main]\npipeline = catch_errors gatekeeper \
         healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy slo dlo \
         proxy-logging proxy-server\n\n[app:proxy-server]\nuse = egg:swift#proxy\n\
         account_autocreate = true\nconn_timeout = 5\nnode_timeout = 60\n\n[filter:tempauth]\nuse = egg:swift#tempauth\n\
         user_test_tester = testing .admin\n\n[filter:cache]\nuse = egg:swift#memcache\n\
         memcache_servers = 127.0.0.1:{memcached}\nmemcache_max_connections = 64\n\
         connect_timeout = 5\nio_timeout = 10\npool_timeout = 10\n\n[filter:catch_errors]\n\
         use = egg:swift#catch_errors\n\n[filter:gatekeeper]\nuse = egg:swift#gatekeeper\n\n\
         [filter:healthcheck]\nuse = egg:swift#healthcheck\n\n[filter:proxy-logging]\n\
         use = egg:swift#proxy_logging\n\n[filter:listing_formats]\n\
         use = egg:swift#listing_formats\n\n[filter:bulk]\nuse = egg:swift#bulk\n\n\
         [filter:tempurl]\nuse = egg:swift#tempurl\n\n[filter:slo]\nuse = egg:swift#slo\n\n\
         [filter:dlo]\nuse = egg:swift#dlo\n\n[filter:copy]\nuse = egg:swift#copy\n",
        conf = dir.display(),
    )
}

/// Builds the three one-device rings in `dir`.
fn build_rings(dir: &Path, ports: [(&str, u16); 3]) -> Result<(), String> {
    for (kind, port) in ports {
        let builder = dir.join(format!("{kind}.builder"));
        let device = format!("r1z1-127.0.0.1:{port}/d1");
        for args in [
            vec!["create", "6", "1", "1"],
            vec!["add", device.as_str(), "100"],
            vec!["rebalance"],
        ] {
            let out = Command::new("swift-ring-builder")
                .arg(&builder)
                .args(&args)
                .output()
                .map_err(|e| format!("swift-ring-builder: {e}"))?;
            // rebalance exits 1 for "warnings" on a one-device ring; the ring is written anyway
            if !out.status.success() && args[0] != "rebalance" {
                return Err(format!(
                    "swift-ring-builder {args:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        if !dir.join(format!("{kind}.ring.gz")).exists() {
            return Err(format!("swift-ring-builder wrote no {kind} ring"));
        }
    }
    Ok(())
}

/// Starts every command of `argv_lines` (one shell line each) under one watchdog that stops
/// them all and removes `dir` when this process exits.
fn spawn_all(dir: &Path, lines: &[String]) -> bool {
    let mut script = String::from("parent=\"$1\"; dir=\"$2\"; pids=\"\"\n");
    for (i, line) in lines.iter().enumerate() {
        script.push_str(&format!(
            "{line} >\"$dir/log{i}\" 2>&1 & pids=\"$pids $!\"\n"
        ));
    }
    script.push_str(
        "trap 'kill $pids 2>/dev/null; sleep 0.5; kill -9 $pids 2>/dev/null; rm -rf \"$dir\"' EXIT\n\
         while kill -0 \"$parent\" 2>/dev/null; do sleep 0.5; done\n",
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg("watchdog")
        .arg(std::process::id().to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}

/// Waits until the proxy answers its health check.
fn wait_healthy(port: u16) -> bool {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /healthcheck HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn start() -> Result<Saio, String> {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "wharf-saio-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(dir.join("srv/d1")).map_err(|e| e.to_string())?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
    let [memcached, account, container, object, proxy] = [(); 5].map(|()| free_port());
    build_rings(
        &dir,
        [
            ("account", account),
            ("container", container),
            ("object", object),
        ],
    )?;
    let mut lines = vec![format!(
        "memcached -u {user} -l 127.0.0.1 -p {memcached} -U 0"
    )];
    for (kind, port) in [
        ("account", account),
        ("container", container),
        ("object", object),
    ] {
        let conf = dir.join(format!("{kind}-server.conf"));
        std::fs::write(&conf, server_conf(kind, port, &dir, &user)).map_err(|e| e.to_string())?;
        lines.push(format!("swift-{kind}-server {}", conf.display()));
    }
    let conf = dir.join("proxy-server.conf");
    std::fs::write(&conf, proxy_conf(proxy, memcached, &dir, &user)).map_err(|e| e.to_string())?;
    lines.push(format!("swift-proxy-server {}", conf.display()));
    if !spawn_all(&dir, &lines) {
        return Err("could not start the watchdog shell".into());
    }
    if !wait_healthy(proxy) {
        return Err(format!(
            "the proxy did not come up; logs in {}",
            dir.display()
        ));
    }
    Ok(Saio {
        auth_url: format!("http://127.0.0.1:{proxy}/auth/v1.0"),
        endpoint: format!("http://127.0.0.1:{proxy}"),
    })
}

/// The process's single-node Swift, started on first use; `None` (after printing why) when the
/// swift programs are missing. Panics under CI instead.
pub fn saio() -> Option<&'static Saio> {
    static SAIO: OnceLock<Option<Saio>> = OnceLock::new();
    SAIO.get_or_init(|| {
        if let Some(missing) = PROGRAMS.iter().find(|p| !on_path(p)) {
            assert!(
                !in_ci(),
                "{missing} is required when CI=true (.ci/install-packages.sh installs swift)"
            );
            eprintln!(
                "SKIP: {missing} not found (apt-get install swift swift-proxy swift-object \
                 swift-container swift-account memcached)"
            );
            return None;
        }
        match start() {
            Ok(saio) => Some(saio),
            Err(e) => panic!("starting a single-node Swift: {e}"),
        }
    })
    .as_ref()
}

impl Saio {
    /// Driver parameters for a fresh container on this node (v1 auth), created by the driver.
    pub fn params(&self) -> crate::backend::swift::SwiftParams {
        crate::backend::swift::SwiftParams {
            auth_url: self.auth_url.clone(),
            username: USER.to_owned(),
            password: KEY.to_owned(),
            container: format!("wharf-{}", uuid::Uuid::new_v4().simple()),
            ..crate::backend::swift::SwiftParams::default()
        }
    }

    /// Every object name in `container`, read straight from the server as `test:tester` (driver
    /// listings hide part and manifest objects, so only this shows leftovers).
    pub async fn object_names(&self, container: &str) -> Vec<String> {
        let client = reqwest::Client::new();
        let login = client
            .get(&self.auth_url)
            .header("X-Auth-User", USER)
            .header("X-Auth-Key", KEY)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("tempauth login");
        let header = |name: &str| {
            login
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .expect("tempauth answers a token and a storage URL")
                .to_owned()
        };
        let (token, storage) = (header("x-auth-token"), header("x-storage-url"));
        let names = client
            .get(format!("{storage}/{container}"))
            .header("X-Auth-Token", token)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("listing the container")
            .text()
            .await
            .expect("listing body");
        names.lines().map(str::to_owned).collect()
    }
}
