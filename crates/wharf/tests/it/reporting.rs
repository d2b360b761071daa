//! Reporting end to end against real peers: mail hooks through an aiosmtpd relay, Bugsnag
//! reports and OTLP/HTTP trace exports (the `tracing:` section, the `OTEL_*` variables and
//! `reporting.newrelic`) into HTTP sinks run by the test. The error they all react to is a real
//! storage failure: a tag's link file replaced by a symlink to itself (ELOOP, even for root).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use http::{HeaderMap, Method, StatusCode};
use serde_json::Value;

use crate::harness::oci::Client;
use crate::harness::{Wharf, free_port, in_ci, wharf::wait_for_port};

const SMTP_PASSWORD: &str = "smtp-pa55word";
const BUGSNAG_KEY: &str = "bugsnag-api-key-0123";
const NEWRELIC_KEY: &str = "newrelic-license-4567";

/// An HTTP endpoint recording every request it gets.
struct Sink {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

#[derive(Clone, Debug)]
struct Received {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

async fn record(
    State(got): State<Arc<Mutex<Vec<Received>>>>,
    method: Method,
    uri: http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    got.lock().expect("sink lock").push(Received {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    });
    StatusCode::OK
}

impl Sink {
    async fn start() -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sink");
        let port = listener.local_addr().expect("sink addr").port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new().fallback(record).with_state(got.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Sink { port, got }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Waits (up to 30 s: the OTLP batch goes out every 5 s) until `done` holds for the
    /// requests received so far.
    async fn wait_until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.got.lock().expect("sink lock").clone();
            if done(&got) {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "sink never saw {what}; got {got:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// A config with filesystem storage under `{root}`, `{port}` listening, plus `extra`.
fn config(extra: &str) -> String {
    format!(
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {{root}}\nhttp:\n  addr: 127.0.0.1:{{port}}\n{extra}"
    )
}

/// Makes `broken/app:v1` fail inside the storage driver (logged at error, 500).
async fn storage_failure(wharf: &Wharf) {
    let current = wharf
        .root()
        .join("docker/registry/v2/repositories/broken/app/_manifests/tags/v1/current");
    std::fs::create_dir_all(&current).expect("mkdir tag");
    std::os::unix::fs::symlink("link", current.join("link")).expect("symlink loop");
    let resp = Client::new(&wharf.url())
        .get("/v2/broken/app/manifests/v1")
        .send()
        .await
        .expect("GET tags");
    assert_eq!(
        resp.status(),
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        wharf.log()
    );
}

fn assert_no_secrets(text: &str, what: &str) {
    for secret in [SMTP_PASSWORD, BUGSNAG_KEY, NEWRELIC_KEY] {
        assert!(!text.contains(secret), "{what} shows a secret:\n{text}");
    }
}

/// An aiosmtpd relay on a free port, recording each mail as a JSON line.
struct Smtp {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

const SMTP_SINK: &str = r#"
import json, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
out, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
class Record:
    async def handle_DATA(self, server, session, envelope):
        mail = {"from": envelope.mail_from, "to": envelope.rcpt_tos,
                "authenticated": bool(session.authenticated),
                "data": envelope.content.decode("utf-8", "replace")}
        with open(out, "a") as f:
            f.write(json.dumps(mail) + "\n")
        return "250 OK"
def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login.decode() == user \
        and data.password.decode() == password
    return AuthResult(success=ok, handled=False)
auth = dict(authenticator=check, auth_required=True, auth_require_tls=False) if user else {}
Controller(Record(), hostname="127.0.0.1", port=port, **auth).start()
print("ready", flush=True)
while True:
    time.sleep(3600)
"#;

impl Smtp {
    /// None (with a printed SKIP, or a failure under CI) when python3-aiosmtpd is missing.
    fn start(user: &str, password: &str) -> Option<Smtp> {
        // Debian's python3-aiosmtpd belongs to /usr/bin/python3, which a pyenv may shadow.
        let Some(python) = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
            Command::new(p)
                .args(["-c", "import aiosmtpd"])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        }) else {
            assert!(!in_ci(), "python3-aiosmtpd is required when CI=true");
            eprintln!("SKIP: python3 with aiosmtpd not found");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let script = dir.path().join("sink.py");
        std::fs::write(&script, SMTP_SINK).expect("write sink.py");
        let out = dir.path().join("mails.jsonl");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("smtp.log")).expect("smtp log");
        let child = Command::new(python)
            .arg(&script)
            .arg(&out)
            .arg(port.to_string())
            .args([user, password])
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn aiosmtpd");
        let smtp = Smtp {
            child,
            port,
            out,
            _dir: dir,
        };
        wait_for_port(
            port,
            Duration::from_secs(20),
            &smtp._dir.path().join("smtp.log"),
        );
        Some(smtp)
    }

    async fn wait_for_mail(&self) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            let mails: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("mail JSON"))
                .collect();
            if !mails.is_empty() {
                return mails;
            }
            assert!(Instant::now() < deadline, "no mail arrived");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mail_hook(port: u16, username: &str, password: &str) -> String {
    format!(
        "log:\n  level: info\n  hooks:\n    - type: mail\n      levels: [error]\n      options:\n        smtp:\n          addr: 127.0.0.1:{port}\n          username: \"{username}\"\n          password: \"{password}\"\n        from: registry@wharf.test\n        to: [ops@wharf.test, oncall@wharf.test]\n"
    )
}

async fn mail_on_error(user: &str, password: &str) {
    let Some(smtp) = Smtp::start(user, password) else {
        return;
    };
    let wharf = Wharf::start_with_config(&config(&mail_hook(smtp.port, user, password)));
    assert!(
        !wharf.log().contains("not supported"),
        "log.hooks still reported unsupported:\n{}",
        wharf.log()
    );
    storage_failure(&wharf).await;
    let mails = smtp.wait_for_mail().await;
    assert_eq!(mails.len(), 1, "one error, one mail: {mails:#?}");
    let mail = &mails[0];
    assert_eq!(mail["from"], "registry@wharf.test");
    assert_eq!(
        mail["to"],
        serde_json::json!(["ops@wharf.test", "oncall@wharf.test"])
    );
    assert_eq!(mail["authenticated"], !user.is_empty());
    let data = mail["data"].as_str().expect("data");
    let subject = data
        .lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .expect("a Subject header");
    assert!(
        subject.starts_with("[error] ") && subject.ends_with(": storage failure"),
        "{subject}"
    );
    assert!(data.contains("From: registry@wharf.test"), "{data}");
    assert!(data.contains("level: error"), "{data}");
    assert!(
        data.contains("error: "),
        "the error field is in the body: {data}"
    );
    assert_no_secrets(data, "the mail");
    assert_no_secrets(&wharf.log(), "wharf's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_hook_sends_error_events_through_smtp() {
    mail_on_error("", "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_hook_authenticates_when_a_username_is_set() {
    mail_on_error("registry", SMTP_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bugsnag_gets_error_events_and_5xx_responses() {
    let sink = Sink::start().await;
    let wharf = Wharf::start_with_config(&config(&format!(
        "reporting:\n  bugsnag:\n    apikey: {BUGSNAG_KEY}\n    releasestage: it\n    endpoint: {}/notify\n",
        sink.url()
    )));
    storage_failure(&wharf).await;
    let got = sink.wait_until("two reports", |r| r.len() >= 2).await;
    let mut classes = Vec::new();
    for r in &got {
        assert_eq!((&r.method, r.path.as_str()), (&Method::POST, "/notify"));
        let h = |k: &str| r.headers.get(k).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert_eq!(h("bugsnag-api-key"), BUGSNAG_KEY);
        assert_eq!(h("bugsnag-payload-version"), "5");
        assert!(h("bugsnag-sent-at").ends_with('Z'), "{:?}", r.headers);
        assert!(h("content-type").starts_with("application/json"));
        let p: Value = serde_json::from_slice(&r.body).expect("JSON payload");
        assert_eq!(p["payloadVersion"], "5");
        assert_eq!(p["notifier"]["name"], "wharf");
        let event = &p["events"][0];
        assert_eq!(event["app"]["releaseStage"], "it");
        assert!(
            !event["device"]["hostname"]
                .as_str()
                .unwrap_or("")
                .is_empty()
        );
        let exception = &event["exceptions"][0];
        assert!(exception["message"].as_str().is_some_and(|m| !m.is_empty()));
        classes.push(exception["errorClass"].as_str().unwrap_or("").to_owned());
    }
    classes.sort();
    assert_eq!(classes, ["HTTP 500", "storage failure"]);
    assert_no_secrets(&wharf.log(), "wharf's log");
}

/// Requests that produce a named span each: base, a tag list and a missing manifest.
async fn traffic(base_url: &str) {
    let client = Client::new(base_url);
    for path in [
        "/v2/",
        "/v2/traced/app/tags/list",
        "/v2/traced/app/manifests/v1",
    ] {
        client.get(path).send().await.expect("request");
    }
}

fn is_trace_export(r: &Received, needles: &[&str]) -> bool {
    r.method == Method::POST
        && r.path == "/v1/traces"
        && r.headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/x-protobuf")
        && needles.iter().all(|n| contains(&r.body, n))
}

const SPAN_NAMES: [&str; 3] = ["GET base", "GET tags", "GET manifest"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_section_exports_a_span_per_request_over_otlp() {
    let sink = Sink::start().await;
    let wharf = Wharf::start_with_config(&config(&format!(
        "tracing:\n  endpoint: {}\n  servicename: wharf-it\n  headers:\n    x-collector-token: tok\n",
        sink.url()
    )));
    traffic(&wharf.url()).await;
    // a caller's W3C trace context: wharf's span joins that trace
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    Client::new(&wharf.url())
        .get("/v2/")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .send()
        .await
        .expect("request with traceparent");
    let mut needles = vec!["wharf-it", "traced/app", "http.route"];
    needles.extend(SPAN_NAMES);
    let got = sink
        .wait_until("a protobuf export with every span", |all| {
            all.iter().any(|r| is_trace_export(r, &needles))
        })
        .await;
    let export = got
        .iter()
        .find(|r| is_trace_export(r, &needles))
        .expect("export");
    assert_eq!(export.headers["x-collector-token"], "tok");
    let id: Vec<u8> = (0..trace_id.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&trace_id[i..i + 2], 16).expect("hex"))
        .collect();
    sink.wait_until("the caller's trace id", |all| {
        all.iter()
            .any(|r| r.body.windows(id.len()).any(|w| w == id.as_slice()))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newrelic_exports_spans_with_the_license_key() {
    let sink = Sink::start().await;
    let wharf = Wharf::start_with_config(&config(&format!(
        "reporting:\n  newrelic:\n    licensekey: {NEWRELIC_KEY}\n    name: wharf-nr\n    endpoint: {}\n",
        sink.url()
    )));
    traffic(&wharf.url()).await;
    let mut needles = vec!["wharf-nr"];
    needles.extend(SPAN_NAMES);
    let got = sink
        .wait_until("a New Relic export", |all| {
            all.iter().any(|r| is_trace_export(r, &needles))
        })
        .await;
    let export = got
        .iter()
        .find(|r| is_trace_export(r, &needles))
        .expect("export");
    assert_eq!(export.headers["api-key"], NEWRELIC_KEY);
    assert_no_secrets(&wharf.log(), "wharf's log");
}

/// distribution 3's way: no `tracing:` section, only the standard variables. The batch goes
/// out every 5 s; wharf is stopped (SIGTERM) right after the requests, so the spans arrive only
/// if the shutdown flushes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_variables_alone_turn_on_the_export_and_shutdown_flushes() {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let yaml = config("")
        .replace("{root}", &dir.path().join("root").display().to_string())
        .replace("{port}", &port.to_string());
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, yaml).expect("write config");
    let log_path = dir.path().join("wharf.log");
    let mut wharf = spawn_with_env(
        &cfg,
        &log_path,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", sink.url()),
            ("OTEL_SERVICE_NAME", "wharf-env".to_owned()),
        ],
    );
    wait_for_port(port, Duration::from_secs(20), &log_path);
    let started = Instant::now();
    traffic(&format!("http://127.0.0.1:{port}")).await;
    let term = Command::new("kill")
        .args(["-TERM", &wharf.0.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let exit = wharf.0.wait().expect("wait for wharf");
    assert!(exit.success(), "{exit:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped too late to tell a flush from the 5 s batch"
    );
    let got = sink.got.lock().expect("sink lock").clone();
    let needles = ["wharf-env", "GET tags"];
    assert!(
        got.iter().any(|r| is_trace_export(r, &needles)),
        "no export from the shutdown flush: {got:#?}\n{}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
}

/// A wharf process started by the test itself (the harness passes no environment).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_with_env(cfg: &Path, log: &Path, env: &[(&str, String)]) -> Process {
    let log = std::fs::File::create(log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.arg("serve")
        .arg(cfg)
        .stdout(Stdio::from(log.try_clone().expect("dup log")))
        .stderr(Stdio::from(log));
    for (k, v) in env {
        cmd.env(k, v);
    }
    Process(cmd.spawn().expect("spawn wharf"))
}
