//! Two config tables every server shares: `[http]`, how a listener holds up
//! under hostile clients, and `[password_checks]`, how many room-password
//! hashes run at once (backend and aux-srv).

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[http]`: bounds of an HTTP listener (env: `INSTANTCHAT_HTTP__<KEY>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// Connections served at once. More (and any beyond what the process's
    /// descriptor limit leaves after a reserve) only get `/livez`, `/readyz`
    /// and `/metrics`; anything else is answered 503 and closed.
    pub max_connections: usize,
    /// Connections at once from one client address, likewise (0: no bound).
    /// Behind a reverse proxy every client has the proxy's address: raise it.
    pub max_connections_per_ip: usize,
    /// Time a client has to send a request's headers.
    pub header_timeout_ms: u64,
    /// Time a client has to send a request's body, from its headers on (408
    /// after it, and the connection closes).
    pub body_timeout_ms: u64,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            max_connections: 8192,
            max_connections_per_ip: 256,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
        }
    }
}

impl HttpLimits {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(ConfigError::new("http.max_connections", "must be greater than 0"));
        }
        if self.header_timeout_ms == 0 {
            return Err(ConfigError::new("http.header_timeout_ms", "must be greater than 0"));
        }
        if self.body_timeout_ms == 0 {
            return Err(ConfigError::new("http.body_timeout_ms", "must be greater than 0"));
        }
        Ok(())
    }
}

/// `[password_checks]`: Argon2id checks of room passwords (each ~19 MiB and
/// tens of ms of one core).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordChecks {
    /// Checks running at once, each on its own thread with its own memory.
    pub concurrent: usize,
    /// Longest a check waits for a free thread; then `rate_limited`.
    pub wait_ms: u64,
}

impl Default for PasswordChecks {
    fn default() -> Self {
        Self { concurrent: 2, wait_ms: 5_000 }
    }
}

impl PasswordChecks {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=64).contains(&self.concurrent) {
            return Err(ConfigError::new("password_checks.concurrent", "must be 1 to 64"));
        }
        Ok(())
    }
}
