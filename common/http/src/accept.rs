//! The accept loop's step, shared by every listener of the fleet (the
//! HTTP ones through [`Acceptor`], the backend's control listener through
//! [`Listener`]).
//!
//! Out of descriptors (EMFILE, ENFILE), `accept` fails at once and keeps
//! failing: retried in a loop it spun and logged hundreds of lines a second
//! while `/livez` went unanswered. Here a failure waits (doubling, 5 ms up
//! to 1 s), is logged at most once a second with a count, and on EMFILE one
//! of [`SPARE_FILES`] held descriptors is closed so one more connection can
//! be taken (a probe waiting in the backlog gets its answer); the spares are
//! reopened once descriptors are free again.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::config::HttpLimits;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::limits::{Admission, Connection, ConnectionLimits};
use crate::stream::GuardedStream;

/// Descriptors held in reserve for the out-of-descriptors case.
pub const SPARE_FILES: usize = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const LOG_EVERY: Duration = Duration::from_secs(1);

/// A listening socket whose accept backs off instead of spinning; it knows
/// nothing of what is spoken on the connections.
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    spares: Vec<File>,
    backoff: Duration,
    failures_unlogged: u64,
    last_log: Option<Instant>,
    name: &'static str,
    /// Named in the failure log line, when the caller counts connections.
    counted: Option<Arc<ConnectionLimits>>,
}

impl Listener {
    /// `name` labels the log lines (`public`, `admin`, `control`).
    pub fn new(listener: TcpListener, name: &'static str) -> Self {
        let mut this = Listener {
            listener,
            spares: Vec::new(),
            backoff: FIRST_BACKOFF,
            failures_unlogged: 0,
            last_log: None,
            name,
            counted: None,
        };
        this.refill_spares();
        this
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection (TCP_NODELAY set: answers go out in one or a few
    /// writes; don't let Nagle hold the last one).
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(pair) => pair,
                Err(e) => {
                    let Some(pair) = self.on_error(&e).await else { continue };
                    pair
                }
            };
            self.backoff = FIRST_BACKOFF;
            self.refill_spares();
            let _ = stream.set_nodelay(true);
            return (stream, peer);
        }
    }

    /// Waits after a failed accept; on EMFILE, frees a spare descriptor and
    /// takes one more connection with it.
    async fn on_error(&mut self, e: &io::Error) -> Option<(TcpStream, SocketAddr)> {
        let out_of_files = matches!(e.raw_os_error(), Some(nix::libc::EMFILE | nix::libc::ENFILE));
        self.failures_unlogged += 1;
        let now = Instant::now();
        if self.last_log.is_none_or(|at| now.duration_since(at) >= LOG_EVERY) {
            tracing::warn!(
                listener = self.name,
                error = %e,
                failures = self.failures_unlogged,
                open = self.counted.as_ref().map(|limits| limits.open()),
                "accept failed; backing off"
            );
            self.failures_unlogged = 0;
            self.last_log = Some(now);
        }
        if out_of_files && self.spares.pop().is_some() {
            if let Ok(Ok((stream, peer))) =
                tokio::time::timeout(Duration::from_millis(1), self.listener.accept()).await
            {
                return Some((stream, peer));
            }
        }
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        None
    }

    fn refill_spares(&mut self) {
        while self.spares.len() < SPARE_FILES {
            match File::open("/dev/null") {
                Ok(file) => self.spares.push(file),
                Err(_) => return,
            }
        }
    }
}

/// One HTTP listener's accepting side: a [`Listener`] and the connection
/// bounds.
#[derive(Debug)]
pub struct Acceptor {
    listener: Listener,
    limits: Arc<ConnectionLimits>,
}

/// A connection taken: its socket, its peer and what it may do.
#[derive(Debug)]
pub struct Accepted {
    pub stream: GuardedStream,
    pub peer: SocketAddr,
    /// Holds the connection's place in the counts until dropped.
    pub connection: Connection,
}

impl Acceptor {
    /// `name` labels the log lines (`public`, `admin`).
    pub fn new(listener: TcpListener, limits: &HttpLimits, name: &'static str) -> Self {
        let limits = ConnectionLimits::new(limits);
        let mut listener = Listener::new(listener, name);
        listener.counted = Some(limits.clone());
        Acceptor { listener, limits }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The next connection to serve. Connections over every bound are
    /// closed here.
    pub async fn accept(&mut self) -> Accepted {
        loop {
            let (stream, peer) = self.listener.accept().await;
            // Dropping the socket closes it: every slot, health-only ones
            // included, is taken.
            let Some(connection) = self.limits.admit(peer.ip()) else { continue };
            return Accepted { stream: GuardedStream::new(stream), peer, connection };
        }
    }
}

impl Accepted {
    pub fn admission(&self) -> Admission {
        self.connection.admission
    }
}
