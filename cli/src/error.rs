//! What can go wrong, for the binary to print and tests to match.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CliError {
    #[error("bad room link {url:?}: {why}")]
    BadRoomUrl { url: String, why: String },
    #[error("cannot read the CA file {path}: {why}")]
    CaFile { path: String, why: String },
    #[error("TLS set-up failed: {0}")]
    Tls(String),
    #[error("cannot reach {target}: {why}")]
    Unreachable { target: String, why: String },
    /// aux-srv or the backend answered with an HTTP error.
    #[error("{url} answered {status} {code}: {message}")]
    Refused { url: String, status: u16, code: String, message: String },
    #[error("unexpected answer from {url}: {why}")]
    BadAnswer { url: String, why: String },
    /// The room does not let us in (wrong password, banned, full…); retrying
    /// would not help.
    #[error("the room refused to let us in ({code}): {message}")]
    JoinRefused { code: String, message: String },
    /// The room ended for us: deleted, or we were kicked or replaced.
    #[error("the room closed the connection for good: {0}")]
    Ended(String),
    #[error("{0}")]
    Terminal(#[from] std::io::Error),
}

impl CliError {
    /// Errors that a later attempt may not repeat (the network, a backend
    /// that is restarting); the rest need a person to change something.
    pub fn is_transient(&self) -> bool {
        match self {
            CliError::Unreachable { .. } | CliError::BadAnswer { .. } => true,
            CliError::Refused { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
