//! Connections, whatever the socket: memory per connection shrinks as connections pile up
//! (connections opened while 32 others are open get a 32 KiB read buffer instead of 128 KiB),
//! on TCP and on a unix socket (`http.net: unix`) alike. The buffer also bounds a request
//! head, which is the part a client can see: a 64 KiB head passes on a quiet server and is
//! refused with 431 on a crowded one, while an ordinary head passes everywhere.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::Wharf;
use crate::harness::oci::{random_bytes, sha256};
use crate::harness::wharf::server_program;

/// Where a test's server listens.
enum Target {
    Tcp(String),
    Unix(PathBuf),
}

/// A connection's stream, whichever the socket.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

impl Target {
    fn connect(&self) -> Box<dyn Stream> {
        self.try_connect(Duration::from_secs(10)).expect("connect")
    }

    /// A new connection, given up after `wait`, that waits up to 10 s for each read.
    fn try_connect(&self, wait: Duration) -> std::io::Result<Box<dyn Stream>> {
        let timeout = Some(Duration::from_secs(10));
        Ok(match self {
            Target::Tcp(host) => {
                let addr = host.parse().expect("an ip:port");
                let tcp = TcpStream::connect_timeout(&addr, wait)?;
                tcp.set_read_timeout(timeout)?;
                Box::new(tcp)
            }
            Target::Unix(path) => {
                // A unix connect has no timeout: it blocks while the backlog is full. So connect
                // from a thread and give up on it after `wait`.
                let (tx, rx) = std::sync::mpsc::channel();
                let path = path.clone();
                std::thread::spawn(move || tx.send(UnixStream::connect(path)));
                let unix = rx.recv_timeout(wait).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                })??;
                unix.set_read_timeout(timeout)?;
                Box::new(unix)
            }
        })
    }

    /// Sends one request (head lines after the request line, then `body`) on a new connection
    /// and returns the answer's status line, head and body.
    fn exchange(&self, request: &str, headers: &str, body: &[u8]) -> (String, String, Vec<u8>) {
        let mut conn = self.connect();
        let head = format!(
            "{request} HTTP/1.1\r\nHost: registry\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        // The server may answer 431 and close before it has read the whole head.
        let _ = conn.write_all(head.as_bytes());
        let _ = conn.write_all(body);
        let mut answer = Vec::new();
        let _ = conn.read_to_end(&mut answer);
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(answer.len(), |at| at + 4);
        let head = String::from_utf8_lossy(&answer[..split]).into_owned();
        let status = head.lines().next().unwrap_or("").to_owned();
        (status, head, answer[split..].to_vec())
    }

    /// The status line of `GET /v2/` with a header of `pad` bytes.
    fn status_with_head_of(&self, pad: usize) -> String {
        let pad = format!("X-Pad: {}\r\n", "p".repeat(pad));
        self.exchange("GET /v2/", &pad, b"").0
    }

    /// [`Target::status_with_head_of`] once it contains `want`, asking again for up to 10 s:
    /// the server counts a connection in or out a moment after the client opened or closed it.
    fn status_once(&self, pad: usize, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self.status_with_head_of(pad);
            if status.contains(want) || Instant::now() > deadline {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A 64 KiB head passes while the server is quiet, gets 431 on a connection opened while 40
/// others are open (a 16 KiB one still passes), and passes again once they have closed.
fn read_buffers_shrink_while_crowded(target: &Target) {
    assert_eq!(target.status_with_head_of(64 * 1024), "HTTP/1.1 200 OK");

    let crowd: Vec<_> = (0..40).map(|_| target.connect()).collect();
    let crowded = target.status_once(64 * 1024, "431");
    assert_eq!(crowded, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(target.status_with_head_of(16 * 1024), "HTTP/1.1 200 OK");

    drop(crowd);
    let quiet = target.status_once(64 * 1024, "200");
    assert_eq!(
        quiet, "HTTP/1.1 200 OK",
        "closed connections are counted out"
    );
}

#[test]
fn connections_opened_while_many_are_open_get_small_read_buffers() {
    let w = Wharf::start();
    read_buffers_shrink_while_crowded(&Target::Tcp(w.host()));
}

/// Started with a soft limit of 64 open files (systemd's default is 1024) under a hard limit of
/// 4096, wharf still serves 200 connections open at once: it lifts its soft limit to the hard
/// one, as distribution (a Go program) does. Without that, the connections past the limit would
/// wait unanswered in the listen backlog.
#[test]
fn a_low_soft_limit_on_open_files_does_not_cap_connections() {
    let w = Wharf::start_with_open_files(64, 4096);
    let target = Target::Tcp(w.host());
    let mut crowd: Vec<_> = (0..200).map(|_| target.connect()).collect();
    answered_on_each(&mut crowd, || w.log());
}

/// 300 connections arriving while wharf cannot accept (stopped by SIGSTOP, as a busy loop or
/// a paused VM would be) all wait in the listen backlog and are served once it goes on. With
/// tokio's default backlog of 128 the rest of the burst would find its SYNs dropped; Go's
/// listeners, distribution's among them, take the kernel's `somaxconn` (4096 on Debian).
#[test]
fn a_burst_of_connections_waits_in_the_backlog() {
    let w = Wharf::start();
    burst_waits_in_the_backlog(&Target::Tcp(w.host()), w.pid(), || w.log());
}

#[test]
fn a_burst_of_connections_waits_in_the_unix_socket_backlog() {
    let w = UnixWharf::start();
    burst_waits_in_the_backlog(&Target::Unix(w.socket()), w.child.id(), || w.log());
}

/// Stops the server at `pid`, opens 300 connections to `target`, lets the server go on and
/// expects an answer on each.
fn burst_waits_in_the_backlog(target: &Target, pid: u32, log: impl Fn() -> String) {
    let pid = pid.to_string();
    let signal = |name: &str| {
        let ok = Command::new("kill")
            .args([name, &pid])
            .status()
            .expect("run kill")
            .success();
        assert!(ok, "kill {name} {pid}");
    };
    signal("-STOP");
    // A connect that is not queued blocks until the server goes on: give up after 3 s.
    let mut burst: Vec<Box<dyn Stream>> = (0..300)
        .map(|i| {
            target
                .try_connect(Duration::from_secs(3))
                .unwrap_or_else(|e| panic!("connection {i} of 300 was not queued: {e}"))
        })
        .collect();
    signal("-CONT");
    answered_on_each(&mut burst, log);
}

/// A client connection is probed by TCP keep-alive after 3 minutes of silence, as with
/// distribution's listener, so a client that vanished does not hold its connection for good.
/// `ss` shows the kernel's keep-alive timer on the server's end of the connection.
#[test]
fn client_connections_are_probed_by_tcp_keep_alive() {
    let w = Wharf::start();
    let target = Target::Tcp(w.host());
    let mut open = vec![target.connect()];
    answered_on_each(&mut open, || w.log());

    let port = w.host().rsplit(':').next().expect("a port").to_owned();
    let out = Command::new("ss")
        .args([
            "-tnoH",
            "state",
            "established",
            &format!("( sport = :{port} )"),
        ])
        .output()
        .expect("run ss (iproute2)");
    let listing = String::from_utf8_lossy(&out.stdout);
    let timer = listing
        .lines()
        .find_map(|l| l.split("timer:(").nth(1))
        .unwrap_or_else(|| panic!("no timer on the server's end:\n{listing}"));
    // e.g. `keepalive,2min59sec,0)`
    assert!(
        timer.starts_with("keepalive,2min") || timer.starts_with("keepalive,3min"),
        "want a keep-alive timer of about 3 minutes, got:\n{listing}"
    );
}

/// Asks `GET /v2/` on each of `crowd`, all open at once, expecting 200 on every one.
fn answered_on_each(crowd: &mut [Box<dyn Stream>], log: impl Fn() -> String) {
    let count = crowd.len();
    for (i, conn) in crowd.iter_mut().enumerate() {
        conn.write_all(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
            .expect("send a request");
        let mut answer = [0u8; 12];
        let read = conn.read_exact(&mut answer);
        assert!(
            read.is_ok() && &answer == b"HTTP/1.1 200",
            "connection {i} of {count} got no answer ({read:?}, {:?}); log:\n{}",
            String::from_utf8_lossy(&answer),
            log()
        );
    }
}

/// `wharf serve` on a unix socket (`http.net: unix`); killed when dropped.
struct UnixWharf {
    child: Child,
    dir: tempfile::TempDir,
}

impl UnixWharf {
    fn start() -> UnixWharf {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}\nhttp:\n  net: unix\n  addr: {socket}\n",
            root = dir.path().join("root").display(),
            socket = dir.path().join("wharf.sock").display(),
        );
        std::fs::write(&config, yaml).expect("write config");
        let log = std::fs::File::create(dir.path().join("wharf.log")).expect("log file");
        let child = Command::new(server_program())
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::from(log.try_clone().expect("dup log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn wharf");
        let w = UnixWharf { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(w.socket()).is_err() {
            assert!(
                Instant::now() < deadline,
                "no unix socket within 20 s; log:\n{}",
                w.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        w
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("wharf.sock")
    }

    /// The server's log so far, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("wharf.log")).unwrap_or_default()
    }
}

impl Drop for UnixWharf {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blob pushed over the unix socket in one go is pulled back byte for byte.
#[test]
fn a_unix_socket_serves_a_push_and_a_pull() {
    let w = UnixWharf::start();
    let target = Target::Unix(w.socket());
    assert_eq!(target.status_with_head_of(0), "HTTP/1.1 200 OK");

    let (status, head, _) = target.exchange("POST /v2/sock/blobs/uploads/", "", b"");
    assert_eq!(status, "HTTP/1.1 202 Accepted", "{head}");
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .expect("Location");
    // An absolute URL on `Host: registry`: the request line takes the path.
    let location = &location[location.find("/v2/").expect("a /v2/ path")..];
    let blob = random_bytes(3 * 1024 * 1024 + 17);
    let digest = sha256(&blob);
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = format!("PUT {location}{sep}digest={digest}");
    let (status, head, _) = target.exchange(&put, "", &blob);
    assert_eq!(status, "HTTP/1.1 201 Created", "{put}: {head}");

    let (status, _, body) = target.exchange(&format!("GET /v2/sock/blobs/{digest}"), "", b"");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(body == blob, "the pulled blob differs");
}

#[test]
fn unix_socket_connections_get_small_read_buffers_while_crowded() {
    let w = UnixWharf::start();
    read_buffers_shrink_while_crowded(&Target::Unix(w.socket()));
}
