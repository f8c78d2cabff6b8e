//! A connection's socket with a body deadline.
//!
//! hyper times out a request's *headers*, not its body: a client that
//! declares `Content-Length: 100` and sends nothing held its connection
//! forever, even when no handler read the body (hyper waits for it before
//! the next request). [`request::check`](crate::request::check) starts the
//! [`BodyClock`] when a request with a body arrives; a read still waiting
//! once it runs out fails with `TimedOut`, and hyper closes the connection.
//! Handlers that read the body do so against the same deadline and answer
//! 408 first ([`request::read_body`](crate::request::read_body)).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// When the body being read must have arrived; shared by the stream and
/// the requests on it.
#[derive(Debug, Clone)]
pub struct BodyClock {
    origin: Instant,
    /// Milliseconds after `origin`, plus one; 0 = no body being read.
    deadline: Arc<AtomicU64>,
}

impl BodyClock {
    fn new() -> Self {
        BodyClock { origin: Instant::now(), deadline: Arc::new(AtomicU64::new(0)) }
    }

    /// A body is expected: it must be in within `limit` (plus a second's
    /// grace, so a handler reading it answers 408 before the socket fails).
    pub fn start(&self, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        let ms = (deadline + Duration::from_secs(1)).duration_since(self.origin).as_millis();
        self.deadline.store(u64::try_from(ms).unwrap_or(u64::MAX - 1) + 1, Ordering::Release);
        deadline
    }

    /// No body expected (a request without one).
    pub fn stop(&self) {
        self.deadline.store(0, Ordering::Release);
    }

    fn deadline(&self) -> Option<Instant> {
        match self.deadline.load(Ordering::Acquire) {
            0 => None,
            ms => Some(self.origin + Duration::from_millis(ms - 1)),
        }
    }
}

/// The socket hyper serves.
#[derive(Debug)]
pub struct GuardedStream {
    inner: TcpStream,
    clock: BodyClock,
    timer: Option<Pin<Box<Sleep>>>,
}

impl GuardedStream {
    pub fn new(inner: TcpStream) -> Self {
        GuardedStream { inner, clock: BodyClock::new(), timer: None }
    }

    /// The clock requests on this connection start and stop.
    pub fn clock(&self) -> BodyClock {
        self.clock.clone()
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Poll::Ready(result) = Pin::new(&mut this.inner).poll_read(cx, buf) {
            return Poll::Ready(result);
        }
        let Some(deadline) = this.clock.deadline() else {
            this.timer = None;
            return Poll::Pending;
        };
        let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request body not received in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
