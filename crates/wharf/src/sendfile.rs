//! Zero-copy blob bodies on plain HTTP/1 connections: hyper writes the response head, and the
//! kernel moves the blob's bytes from the page cache to the socket with sendfile(2), so a pull
//! costs no read into user space, no buffer per transfer and no copy out again.
//!
//! hyper owns the socket and writes only the buffers a body hands it. A blob body sent this way
//! is therefore made of stand-in chunks: slices of one static buffer, `STAND_IN`. The body
//! queues the open file on its connection's [`Slot`] before yielding the first stand-in; the
//! connection's [`Io`] recognises stand-ins by their address when hyper writes them and sends
//! as many bytes of the queued file instead. Stand-ins leave the process only through [`Io`]:
//! a [`Slot`] is attached to HTTP/1 requests of plain TCP connections only (never TLS, never
//! HTTP/2, whose framing handles body bytes itself), and [`Io`] fails the connection
//! rather than send a stand-in it has no file for.
//!
//! A blob not in the page cache is read from disk inside the send, on the runtime's thread, as
//! nginx does with `sendfile on`; each send moves at most `MAX_SEND` (1 MiB).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustix::net::{SendAncillaryBuffer, SendFlags};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// The most one sendfile call moves: bounds how long a read from a cold disk holds the thread.
const MAX_SEND: usize = 1 << 20;

/// The stand-in bytes: a body chunk pointing into this buffer means "the next bytes of the
/// queued file". Its contents are never sent.
static STAND_IN: [u8; MAX_SEND] = [0; MAX_SEND];

/// Whether `buf` points into [`STAND_IN`]: compared by address, as only the body in this module
/// makes such slices.
fn is_stand_in(buf: &[u8]) -> bool {
    let start = STAND_IN.as_ptr() as usize;
    let at = buf.as_ptr() as usize;
    !buf.is_empty() && at >= start && at < start + STAND_IN.len()
}

/// Part of a file owed to the socket.
struct Job {
    file: File,
    offset: u64,
    left: u64,
}

/// A connection's queue of files to send, in the order their bodies started; a request carries
/// one when its body may be sent with [`body`].
#[derive(Clone, Default)]
pub struct Slot(Arc<Mutex<VecDeque<Job>>>);

impl Slot {
    fn jobs(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A response body of `len` bytes of `file` from `offset`, sent by the kernel on `slot`'s
/// connection. The caller sets `Content-Length: len`.
pub fn body(slot: &Slot, file: File, offset: u64, len: u64) -> Body {
    let job = Job {
        file,
        offset,
        left: len,
    };
    let state = (Some(job), slot.clone(), len);
    let chunks = futures::stream::unfold(state, |(job, slot, left)| async move {
        if left == 0 {
            return None;
        }
        // Queued at the first poll, not before: hyper never polls the body of a HEAD answer.
        match job {
            Some(job) => slot.jobs().push_back(job),
            // Every chunk is ready at once and the socket drains as fast as the kernel copies,
            // so without a yield one transfer could hold its worker for a hundred MiB while
            // other requests on that worker wait.
            None => tokio::task::yield_now().await,
        }
        let n = usize::try_from(left).map_or(MAX_SEND, |l| l.min(MAX_SEND));
        let chunk = Bytes::from_static(&STAND_IN[..n]);
        Some((Ok::<_, io::Error>(chunk), (None, slot, left - n as u64)))
    });
    Body::from_stream(chunks)
}

/// A plain TCP connection that sends stand-in chunks from their queued files.
pub struct Io {
    tcp: TcpStream,
    slot: Slot,
}

impl Io {
    /// Wraps an accepted connection; requests served on it get the returned slot.
    pub fn new(tcp: TcpStream) -> (Self, Slot) {
        let slot = Slot::default();
        let io = Io {
            tcp,
            slot: slot.clone(),
        };
        (io, slot)
    }

    /// Runs one non-blocking socket write once the socket is writable, again after each
    /// `EAGAIN`.
    fn poll_write_with(
        &self,
        cx: &mut Context<'_>,
        mut write: impl FnMut() -> rustix::io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_io(Interest::WRITABLE, || Ok(write()?)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    /// Writes the bytes ahead of a stand-in, telling the kernel more follows (`MSG_MORE`) so
    /// a response head and the start of its file leave in one segment.
    fn poll_send_more(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let flags = SendFlags::MORE | SendFlags::NOSIGNAL;
        self.poll_write_with(cx, || {
            let mut control = SendAncillaryBuffer::default();
            rustix::net::sendmsg(&self.tcp, bufs, &mut control, flags)
        })
    }

    /// Sends up to `max` bytes of the oldest queued file in place of a stand-in of that length.
    fn poll_send_file(&self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        let mut jobs = self.slot.jobs();
        let Some(job) = jobs.front_mut() else {
            return Poll::Ready(Err(io::Error::other(
                "a zero-copy body chunk with no file queued",
            )));
        };
        let want = usize::try_from(job.left).map_or(max, |l| l.min(max));
        let (file, offset) = (&job.file, job.offset);
        let sent = ready!(self.poll_write_with(cx, || {
            // the kernel advances its own copy; the job advances once the send is known
            let mut at = offset;
            rustix::fs::sendfile(&self.tcp, file, Some(&mut at), want)
        }))?;
        if sent == 0 {
            // the file is shorter than its size said (a corrupt store): never pad
            return Poll::Ready(Err(io::ErrorKind::UnexpectedEof.into()));
        }
        job.offset += sent as u64;
        job.left -= sent as u64;
        if job.left == 0 {
            jobs.pop_front();
        }
        Poll::Ready(Ok(sent))
    }
}

impl AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs.iter().position(|b| is_stand_in(b)) {
            None => Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs),
            Some(0) => self.poll_send_file(cx, bufs[0].len()),
            Some(i) if bufs[..i].iter().all(|b| b.is_empty()) => {
                self.poll_send_file(cx, bufs[i].len())
            }
            Some(i) => self.poll_send_more(cx, &bufs[..i]),
        }
    }

    fn is_write_vectored(&self) -> bool {
        // hyper then queues body chunks as they are instead of copying them into one buffer,
        // which is what keeps the stand-ins recognisable.
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

/// Serves `app` on a plain TCP listener until `shutdown`, with zero-copy blob bodies on
/// HTTP/1 connections; HTTP/2 (prior knowledge) is served too, with ordinary bodies.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    crate::server::accept_loop(listener, shutdown, move |tcp, peer, builder, watcher| {
        let app = app.clone();
        async move {
            // The head and a body are written apart here; no Nagle wait between them.
            let _ = tcp.set_nodelay(true);
            let (io, slot) = Io::new(tcp);
            let service =
                TowerToHyperService::new(app.map_request(move |req| tag(req, peer, &slot)));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        }
    })
    .await
}

/// Gives a request its peer address and, on HTTP/1, the connection's [`Slot`].
fn tag(req: Request<Incoming>, peer: SocketAddr, slot: &Slot) -> Request<Body> {
    let mut req = req.map(Body::new);
    req.extensions_mut().insert(ConnectInfo(peer));
    if req.version() < http::Version::HTTP_2 {
        req.extensions_mut().insert(slot.clone());
    }
    req
}
