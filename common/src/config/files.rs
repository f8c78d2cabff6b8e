//! file-srv's configuration.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Validate};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSrvConfig {
    pub listen: SocketAddr,
    /// Folder the drawings are stored in.
    pub data_dir: String,
    /// Base URL browsers fetch drawings from.
    pub public_url: String,
    /// Largest upload, in bytes.
    pub max_bytes: usize,
    /// Drawings are removed this long after upload.
    pub ttl_secs: u64,
}

impl Default for FileSrvConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8085)),
            data_dir: "data/files".into(),
            public_url: "http://127.0.0.1:8085".into(),
            max_bytes: 512 * 1024,
            ttl_secs: 24 * 3600,
        }
    }
}

impl Validate for FileSrvConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.data_dir.is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        if self.max_bytes < 64 {
            return Err(ConfigError::new("max_bytes", "must be at least 64"));
        }
        if self.ttl_secs == 0 {
            return Err(ConfigError::new("ttl_secs", "must be greater than 0"));
        }
        Ok(())
    }
}
