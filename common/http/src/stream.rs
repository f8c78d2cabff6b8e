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
//!
//! It also reads each request's head just before hyper does
//! ([`crate::head`]): a head hyper would answer with an empty 414, 431 or
//! 400 never reaches hyper; the stream writes the contract's JSON answer
//! itself, reads and drops what the client still sends (closing a socket
//! with unread bytes resets it, and the client could lose the answer), then
//! ends the connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::fault::Fault;
use crate::head::Framing;

/// How long a refused connection is read and dropped before it closes (the
/// [`BodyClock`] adds its second of grace).
const LINGER: Duration = Duration::from_secs(1);
/// The most bytes a refused connection is read for.
const LINGER_BYTES: usize = 1024 * 1024;

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
    /// `None` once it is off: an upgraded websocket, the most numerous and
    /// longest-lived connection there is, keeps 8 bytes of it, not ~90.
    framing: Option<Box<Framing>>,
    refusal: Option<Box<Refusal>>,
}

/// A refused request's answer on its way out.
#[derive(Debug)]
struct Refusal {
    answer: Vec<u8>,
    written: usize,
    shut: bool,
    dropped: usize,
}

impl GuardedStream {
    pub fn new(inner: TcpStream) -> Self {
        GuardedStream {
            inner,
            clock: BodyClock::new(),
            timer: None,
            framing: Some(Box::default()),
            refusal: None,
        }
    }

    /// The clock requests on this connection start and stop.
    pub fn clock(&self) -> BodyClock {
        self.clock.clone()
    }

    /// Pending, or `TimedOut` once the clock's deadline has passed.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(deadline) = self.clock.deadline() else {
            self.timer = None;
            return Poll::Pending;
        };
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
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

    /// Follows what hyper is about to read, while the framing is on.
    fn scan(&mut self, bytes: &[u8]) -> Result<(), (usize, Fault)> {
        let Some(framing) = &mut self.framing else { return Ok(()) };
        let scanned = framing.scan(bytes);
        if framing.is_off() {
            self.framing = None;
        }
        scanned
    }

    fn on_write(&mut self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            if let Some(framing) = &mut self.framing {
                framing.on_write();
            }
        }
    }

    fn refuse(&mut self, fault: Fault) {
        self.refusal = Some(Box::new(Refusal {
            answer: fault.response(),
            written: 0,
            shut: false,
            dropped: 0,
        }));
        self.clock.start(LINGER);
    }

    /// Writes the refusal, closes our side, then reads and drops until the
    /// client closes (or [`LINGER`], [`LINGER_BYTES`]); only then does hyper
    /// see the end of the stream.
    fn poll_refusal(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let Some(refusal) = self.refusal.as_mut() else { return Poll::Ready(Ok(())) };
        let inner = Pin::new(&mut self.inner);
        let progress = refusal.poll_step(inner, cx, buf);
        match progress {
            Poll::Pending => self.poll_deadline(cx),
            done => done,
        }
    }
}

impl Refusal {
    fn poll_step(
        &mut self,
        mut inner: Pin<&mut TcpStream>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.written < self.answer.len() {
            match inner.as_mut().poll_write(cx, &self.answer[self.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(n)) => self.written += n,
                other => return other.map_ok(|_| ()),
            }
        }
        if !self.shut {
            std::task::ready!(inner.as_mut().poll_shutdown(cx))?;
            self.shut = true;
        }
        loop {
            let before = buf.filled().len();
            std::task::ready!(inner.as_mut().poll_read(cx, buf))?;
            let read = buf.filled().len() - before;
            buf.set_filled(before);
            self.dropped += read;
            if read == 0 || self.dropped > LINGER_BYTES {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.refusal.is_none() {
            let before = buf.filled().len();
            match Pin::new(&mut this.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => match this.scan(&buf.filled()[before..]) {
                    Ok(()) => return Poll::Ready(Ok(())),
                    Err((at, fault)) => {
                        // hyper sees nothing of the refused request.
                        buf.set_filled(before + at);
                        this.refuse(fault);
                        if at > 0 {
                            return Poll::Ready(Ok(()));
                        }
                    }
                },
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return this.poll_deadline(cx),
            }
        }
        this.poll_refusal(cx, buf)
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.on_write(&written);
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.on_write(&written);
        written
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
