//! The HTTP/1.1 listener aux-srv, file-srv and the backend's public port
//! share, hardened against clients that hold connections without finishing
//! their requests (issue 15, item 1).
//!
//! - [`accept`]: the accept loop's step — backs off on EMFILE/ENFILE instead
//!   of spinning (logging it at most once a second), and frees a reserved
//!   descriptor to take one more connection when the process is out of them.
//!   Its [`accept::Listener`] knows nothing of HTTP: the backend's control
//!   listener accepts with it too.
//! - [`limits`]: connections at once, overall and per client address; the
//!   ones beyond get only `/livez`, `/readyz` and `/metrics`.
//! - [`stream`]: the connection's socket with a body deadline; it also
//!   answers, with the JSON body, the heads hyper would refuse with an empty
//!   one (414, 431, a bad `Content-Length` or `Transfer-Encoding`: 400) —
//!   [`head`] finds them, [`fault`] words the answer.
//! - [`request`]: checks at the head of every request (413 for a body
//!   declared too large, before any byte of it is read; the health-only
//!   rule), reading a body with a deadline (408), and the JSON answers.
//! - [`metrics`]: a server's own registry, filled through a
//!   [`metrics::Registrar`] (each metric registered as it is made), and
//!   `/metrics`' text.
//! - `test_client` (feature `test-util`): a raw client for tests, and the
//!   faulty heads every server's tests send.
//!
//! Each server keeps its own routes and shutdown; it calls [`Acceptor::accept`],
//! serves the [`stream::GuardedStream`] with [`http1_builder`], and starts
//! every request with [`request::check`].

pub mod accept;
pub mod fault;
pub mod head;
pub mod limits;
pub mod metrics;
pub mod request;
#[cfg(test)]
mod served_tests;
pub mod stream;
#[cfg(any(test, feature = "test-util"))]
pub mod test_client;

use std::time::Duration;

use common::config::HttpLimits;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;

pub use accept::Acceptor;
pub use limits::{Admission, Connection};

/// A health-only connection has this long for its request's headers: its
/// slot is one of few, and a probe sends its request at once.
pub const HEALTH_ONLY_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// hyper's HTTP/1 server with the header deadline of `limits`. A
/// health-only connection gets [`HEALTH_ONLY_HEADER_TIMEOUT`] and closes
/// after its first answer (hyper then reads nothing more of it, not even a
/// body it declared), freeing its slot.
pub fn http1_builder(limits: &HttpLimits, admission: Admission) -> http1::Builder {
    let header_timeout = match admission {
        Admission::Full => Duration::from_millis(limits.header_timeout_ms),
        Admission::HealthOnly => HEALTH_ONLY_HEADER_TIMEOUT,
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(admission == Admission::Full);
    builder
}
