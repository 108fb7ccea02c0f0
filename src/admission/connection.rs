//! One accepted connection after its TLS handshake: it must send the HTTP/2
//! preface before the handshake deadline, and it is closed once it has had
//! no request in progress for the idle time. Both are enforced where the
//! server reads from it, so a silent peer costs no task and no timer but
//! the one sleeping here. It holds its place in the connection caps until
//! it closes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::{Connected, TcpConnectInfo, TlsConnectInfo};

use super::accept::Place;
use super::Warnings;
use crate::directory::OrgCode;

/// HTTP/2's connection preface, `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`: the
/// first bytes a client sends after the TLS handshake.
const PREFACE_LEN: usize = 24;

#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub handshake: Duration,
    pub idle: Duration,
}

pub struct Connection {
    tls: TlsStream<TcpStream>,
    state: Arc<ConnectionState>,
    /// The handshake deadline until the preface is in, then the end of the
    /// idle time.
    deadline: Pin<Box<Sleep>>,
    /// Bytes of the preface still to come.
    preface_left: usize,
    timeouts: Timeouts,
    peer: Option<SocketAddr>,
    warnings: Arc<Warnings>,
    _place: Place,
}

/// What the requests of a connection share with it.
#[derive(Debug)]
pub struct ConnectionState {
    /// Requests in progress.
    streams: AtomicUsize,
    /// Since when none is.
    quiet_since: Mutex<Instant>,
    /// The organisation of its client certificate, read once.
    org: OnceLock<Option<OrgCode>>,
}

/// What a request learns of its connection: the TLS details (certificates)
/// that tonic's `Request::peer_certs` reads, and the connection's state.
/// [`super::AdmissionLayer`] unpacks it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub tls: TlsConnectInfo<TcpConnectInfo>,
    pub state: Arc<ConnectionState>,
}

impl Connection {
    pub fn new(
        tls: TlsStream<TcpStream>,
        place: Place,
        handshake_deadline: Instant,
        timeouts: Timeouts,
        warnings: Arc<Warnings>,
    ) -> Connection {
        let peer = tls.get_ref().0.peer_addr().ok();
        Connection {
            tls,
            state: Arc::new(ConnectionState {
                streams: AtomicUsize::new(0),
                quiet_since: Mutex::new(Instant::now()),
                org: OnceLock::new(),
            }),
            deadline: Box::pin(tokio::time::sleep_until(handshake_deadline)),
            preface_left: PREFACE_LEN,
            timeouts,
            peer,
            warnings,
            _place: place,
        }
    }

    /// Nothing to read: is it time to close?
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.preface_left > 0 {
                let (peer, seconds) = (self.peer, self.timeouts.handshake.as_secs_f64());
                self.warnings.limit_bit("--handshake-seconds", || {
                    format!("closed a connection from {peer:?} that sent no HTTP/2 preface within {seconds} s of connecting")
                });
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no HTTP/2 preface before the handshake deadline",
                )));
            }
            let now = Instant::now();
            match self.state.quiet_until(self.timeouts.idle) {
                None => self.deadline.as_mut().reset(now + self.timeouts.idle),
                Some(end) if end > now => self.deadline.as_mut().reset(end),
                Some(_) => {
                    tracing::debug!(peer = ?self.peer, "closing an idle connection");
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no request for the idle time",
                    )));
                }
            }
        }
    }
}

impl ConnectionState {
    /// Counts a request in progress until the returned guard is dropped.
    pub fn stream_opened(self: &Arc<Self>) -> OpenStream {
        self.streams.fetch_add(1, Ordering::AcqRel);
        OpenStream(self.clone())
    }

    /// When the connection will have been idle for `idle`; `None` while a
    /// request is in progress.
    fn quiet_until(&self, idle: Duration) -> Option<Instant> {
        if self.streams.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(*self.quiet_since.lock().unwrap_or_else(|e| e.into_inner()) + idle)
    }

    fn quiet_from_now(&self) {
        *self.quiet_since.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// The organisation of the connection's client certificate, found by
    /// `read` on the first request.
    pub fn org(&self, read: impl FnOnce() -> Option<OrgCode>) -> Option<OrgCode> {
        *self.org.get_or_init(read)
    }
}

/// A request in progress on a connection.
pub struct OpenStream(Arc<ConnectionState>);

impl Drop for OpenStream {
    fn drop(&mut self) {
        if self.0.streams.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.quiet_from_now();
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.tls).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if this.preface_left > 0 && read > 0 {
                    this.preface_left = this.preface_left.saturating_sub(read);
                    if this.preface_left == 0 {
                        // From now on, the idle time counts.
                        this.state.quiet_from_now();
                        let end = Instant::now() + this.timeouts.idle;
                        this.deadline.as_mut().reset(end);
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => this.poll_deadline(cx),
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tls).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tls).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_shutdown(cx)
    }
}

impl Connected for Connection {
    type ConnectInfo = ConnectionInfo;

    fn connect_info(&self) -> ConnectionInfo {
        ConnectionInfo {
            tls: self.tls.connect_info(),
            state: self.state.clone(),
        }
    }
}
