//! Memory per connection shrinks as connections pile up: connections opened while 32 others
//! are open get a 32 KiB read buffer instead of 128 KiB. The buffer also bounds a request
//! head, which is the part a client can see: a 64 KiB head passes on a quiet server and is
//! refused with 431 on a crowded one, while an ordinary head passes everywhere.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::Wharf;

/// The status line of `GET /v2/` sent on a new connection with a header of `pad` bytes.
fn status_with_head_of(host: &str, pad: usize) -> String {
    let mut tcp = TcpStream::connect(host).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    let head = format!(
        "GET /v2/ HTTP/1.1\r\nHost: {host}\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
        "p".repeat(pad)
    );
    // The server may answer 431 and close before it has read the whole head.
    let _ = tcp.write_all(head.as_bytes());
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    answer.lines().next().unwrap_or("").to_owned()
}

/// The status line once it contains `want`, asking again for up to 10 s: the server counts a
/// connection in or out a moment after the client opened or closed it.
fn status_once(host: &str, pad: usize, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = status_with_head_of(host, pad);
        if status.contains(want) || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connections_opened_while_many_are_open_get_small_read_buffers() {
    let w = Wharf::start();
    let host = w.host();
    assert_eq!(status_with_head_of(&host, 64 * 1024), "HTTP/1.1 200 OK");

    let crowd: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(&host).unwrap())
        .collect();
    let crowded = status_once(&host, 64 * 1024, "431");
    assert_eq!(crowded, "HTTP/1.1 431 Request Header Fields Too Large");
    assert_eq!(status_with_head_of(&host, 16 * 1024), "HTTP/1.1 200 OK");

    drop(crowd);
    let quiet = status_once(&host, 64 * 1024, "200");
    assert_eq!(
        quiet, "HTTP/1.1 200 OK",
        "closed connections are counted out"
    );
}
