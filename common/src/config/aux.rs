//! aux-srv's configuration.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Validate};

/// One backend aux-srv places rooms on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendEntry {
    pub id: String,
    /// Its control listener (`host:port`).
    pub control_addr: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuxConfig {
    /// Public listener: pages, `/api/…`, `/livez`, `/readyz`, `/metrics`.
    pub listen: SocketAddr,
    /// Admin API listener.
    pub admin_listen: SocketAddr,
    /// Bearer token of the admin API; empty disables the admin API.
    pub admin_token: String,
    pub backends: Vec<BackendEntry>,
    /// file-srv's public base URL, told to browsers.
    pub files_url: String,
    /// Shared secret with the backends; must be set.
    pub control_token: String,
    /// Folder of the web UI's static files.
    pub web_root: String,
}

impl Default for AuxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            admin_token: String::new(),
            backends: Vec::new(),
            files_url: "http://127.0.0.1:8085".into(),
            control_token: String::new(),
            web_root: "web".into(),
        }
    }
}

impl Validate for AuxConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.control_token.len() < 16 {
            return Err(ConfigError::new(
                "control_token",
                "must be set to a shared secret of at least 16 characters",
            ));
        }
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            return Err(ConfigError::new("admin_token", "must be empty or at least 16 characters"));
        }
        for (i, b) in self.backends.iter().enumerate() {
            if b.id.is_empty() {
                return Err(ConfigError::new(format!("backends.{i}.id"), "must not be empty"));
            }
            if b.control_addr.is_empty() {
                return Err(ConfigError::new(
                    format!("backends.{i}.control_addr"),
                    "must not be empty",
                ));
            }
            if self.backends[..i].iter().any(|other| other.id == b.id) {
                return Err(ConfigError::new(format!("backends.{i}.id"), "is listed twice"));
            }
        }
        Ok(())
    }
}
