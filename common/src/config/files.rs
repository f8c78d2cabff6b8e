//! file-srv's configuration.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Validate};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileSrvConfig {
    /// `/files`, `/files/{id}.png`, `/livez`, `/readyz`, `/metrics`.
    pub listen: SocketAddr,
    /// Folder the drawings are stored in (`{id}.png`, temp files in `tmp/`).
    pub data_dir: String,
    /// Base URL browsers fetch drawings from (`{public_url}/files/{id}.png`).
    pub public_url: String,
    /// Largest upload, in bytes.
    pub max_bytes: usize,
    /// Drawings are removed this long after their last upload.
    pub ttl_secs: u64,
    /// Largest width and height a PNG may declare.
    pub max_dimension: u32,
    /// Disk use of all stored drawings; the oldest go first when over it.
    pub quota_bytes: u64,
    /// How often the background sweep removes expired drawings.
    pub sweep_interval_ms: u64,
    /// Browser origins that may upload and fetch across origins; empty means
    /// the same host as the request's `Host` (any port).
    pub allowed_origins: Vec<String>,
    /// Peers (CIDRs like `10.0.0.0/8` or single addresses) whose
    /// `X-Forwarded-For` is believed when finding the client's address.
    pub trusted_proxies: Vec<String>,
    /// Uploads per minute per client address (token bucket rate)…
    pub upload_rate_per_min: u32,
    /// …and its burst.
    pub upload_burst: u32,
    /// Uploads read at the same time; more are answered 503.
    pub max_concurrent_uploads: usize,
    /// Time an upload's body has to arrive in full (408 after it).
    pub upload_timeout_ms: u64,
    /// Longest a shutdown waits for requests in flight.
    pub shutdown_grace_ms: u64,
    /// Link previews (`POST /previews`, called by backends): lets fetches
    /// reach loopback, private and other non-public addresses. Only for tests
    /// that run a site on loopback; never in production.
    pub preview_allow_private: bool,
    /// When set, `POST /previews` needs `Authorization: Bearer {token}` (the
    /// backends' `preview_token`). Set it whenever anyone but the backends
    /// can reach this listener directly.
    pub preview_token: String,
    /// Ports a previewed link (or a redirect) may point at.
    pub preview_ports: Vec<u16>,
    /// Time for one fetch (the page, or its image), redirects included.
    pub preview_timeout_ms: u64,
    /// Largest page, and largest image, a preview reads.
    pub preview_max_bytes: usize,
    /// A preview image is scaled to fit in this many pixels on each side.
    pub preview_image_max_side: u32,
    /// Previews (and failures) remembered, by URL…
    pub preview_cache_entries: usize,
    /// …for this long.
    pub preview_cache_ttl_secs: u64,
    /// Previews fetched per minute per room (burst: the same number)…
    pub preview_room_per_min: u32,
    /// …and per client address of the message's sender.
    pub preview_ip_per_min: u32,
    /// Previews being fetched at once; more are answered 503.
    pub preview_max_concurrent: usize,
    /// `[http]`: connection and request-time bounds of the HTTP listener.
    pub http: super::HttpLimits,
}

impl Default for FileSrvConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8085)),
            data_dir: "data/files".into(),
            public_url: "http://127.0.0.1:8085".into(),
            max_bytes: 512 * 1024,
            ttl_secs: 24 * 3600,
            max_dimension: 2048,
            quota_bytes: 1024 * 1024 * 1024,
            sweep_interval_ms: 60_000,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            upload_rate_per_min: 30,
            upload_burst: 10,
            max_concurrent_uploads: 64,
            upload_timeout_ms: 30_000,
            shutdown_grace_ms: 5_000,
            preview_allow_private: false,
            preview_token: String::new(),
            preview_ports: vec![80, 443],
            preview_timeout_ms: 3_000,
            preview_max_bytes: 512 * 1024,
            preview_image_max_side: 400,
            preview_cache_entries: 10_000,
            preview_cache_ttl_secs: 3_600,
            preview_room_per_min: 30,
            preview_ip_per_min: 10,
            preview_max_concurrent: 16,
            http: super::HttpLimits::default(),
        }
    }
}

impl Validate for FileSrvConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate()?;
        let positive = [
            ("ttl_secs", self.ttl_secs),
            ("max_dimension", u64::from(self.max_dimension)),
            ("upload_rate_per_min", u64::from(self.upload_rate_per_min)),
            ("upload_burst", u64::from(self.upload_burst)),
            ("max_concurrent_uploads", self.max_concurrent_uploads as u64),
            ("preview_timeout_ms", self.preview_timeout_ms),
            ("preview_max_bytes", self.preview_max_bytes as u64),
            ("preview_image_max_side", u64::from(self.preview_image_max_side)),
            ("preview_cache_entries", self.preview_cache_entries as u64),
            ("preview_room_per_min", u64::from(self.preview_room_per_min)),
            ("preview_ip_per_min", u64::from(self.preview_ip_per_min)),
            ("preview_max_concurrent", self.preview_max_concurrent as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(key, "must be greater than 0"));
            }
        }
        if self.data_dir.is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        if !(self.public_url.starts_with("http://") || self.public_url.starts_with("https://")) {
            return Err(ConfigError::new("public_url", "must start with http:// or https://"));
        }
        if self.max_bytes < 64 {
            return Err(ConfigError::new("max_bytes", "must be at least 64"));
        }
        if self.quota_bytes < self.max_bytes as u64 {
            return Err(ConfigError::new("quota_bytes", "must be at least max_bytes"));
        }
        if self.sweep_interval_ms < 10 {
            return Err(ConfigError::new("sweep_interval_ms", "must be at least 10"));
        }
        if self.upload_timeout_ms < 100 {
            return Err(ConfigError::new("upload_timeout_ms", "must be at least 100"));
        }
        for origin in &self.allowed_origins {
            if !is_origin(origin) {
                return Err(ConfigError::new(
                    "allowed_origins",
                    format!("`{origin}` must look like http://host[:port] or https://host[:port]"),
                ));
            }
        }
        super::parse_trusted_proxies(&self.trusted_proxies)?;
        if self.preview_ports.is_empty() || self.preview_ports.contains(&0) {
            return Err(ConfigError::new("preview_ports", "must list ports between 1 and 65535"));
        }
        if self.preview_image_max_side > self.max_dimension {
            return Err(ConfigError::new(
                "preview_image_max_side",
                "must be at most max_dimension",
            ));
        }
        Ok(())
    }
}

/// A browser origin: scheme and authority, no path, no trailing slash.
fn is_origin(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("http://").or_else(|| s.strip_prefix("https://")) else {
        return false;
    };
    !rest.is_empty() && !rest.contains(['/', '?', '#', ' ', '@'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn key_of(pairs: &[(&str, &str)]) -> String {
        load::<FileSrvConfig>(None, env(pairs)).unwrap_err().key
    }

    #[test]
    fn defaults_keep_the_contract() {
        let c: FileSrvConfig = load(None, env(&[])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8085");
        assert_eq!((c.max_bytes, c.ttl_secs, c.max_dimension), (512 * 1024, 86_400, 2048));
        assert!(c.allowed_origins.is_empty() && c.trusted_proxies.is_empty());
        assert!(!c.preview_allow_private, "previews never reach private addresses by default");
        assert_eq!((c.preview_ports.as_slice(), c.preview_timeout_ms), (&[80, 443][..], 3_000));
    }

    #[test]
    fn new_keys_load_from_env() {
        let c: FileSrvConfig = load(
            None,
            env(&[
                ("INSTANTCHAT_QUOTA_BYTES", "1048576"),
                ("INSTANTCHAT_SWEEP_INTERVAL_MS", "50"),
                ("INSTANTCHAT_TRUSTED_PROXIES", r#"["10.0.0.0/8", "::1", "fd00::/8"]"#),
                ("INSTANTCHAT_ALLOWED_ORIGINS", r#"["https://chat.example"]"#),
                ("INSTANTCHAT_UPLOAD_RATE_PER_MIN", "5"),
            ]),
        )
        .unwrap();
        assert_eq!((c.quota_bytes, c.sweep_interval_ms, c.upload_rate_per_min), (1 << 20, 50, 5));
        assert_eq!(c.trusted_proxies.len(), 3);
        assert_eq!(c.allowed_origins, vec!["https://chat.example".to_owned()]);
    }

    #[test]
    fn bad_values_are_named() {
        assert_eq!(key_of(&[("INSTANTCHAT_TTL_SECS", "0")]), "ttl_secs");
        assert_eq!(key_of(&[("INSTANTCHAT_MAX_DIMENSION", "0")]), "max_dimension");
        assert_eq!(key_of(&[("INSTANTCHAT_UPLOAD_BURST", "0")]), "upload_burst");
        assert_eq!(key_of(&[("INSTANTCHAT_PUBLIC_URL", "ftp://x")]), "public_url");
        assert_eq!(key_of(&[("INSTANTCHAT_QUOTA_BYTES", "1000")]), "quota_bytes");
        assert_eq!(key_of(&[("INSTANTCHAT_SWEEP_INTERVAL_MS", "1")]), "sweep_interval_ms");
        assert_eq!(key_of(&[("INSTANTCHAT_UPLOAD_TIMEOUT_MS", "5")]), "upload_timeout_ms");
        assert_eq!(key_of(&[("INSTANTCHAT_DATA_DIR", r#""""#)]), "data_dir");
        let origins = [r#"["chat.example"]"#, r#"["https://chat.example/"]"#, r#"["https://"]"#];
        for bad in origins {
            assert_eq!(key_of(&[("INSTANTCHAT_ALLOWED_ORIGINS", bad)]), "allowed_origins", "{bad}");
        }
        let proxies = [r#"["10.0.0.0/33"]"#, r#"["10.0.0/8"]"#, r#"["::1/129"]"#, r#"["x"]"#];
        for bad in proxies {
            assert_eq!(
                key_of(&[("INSTANTCHAT_TRUSTED_PROXIES", bad)]),
                "trusted_proxies.0",
                "{bad}"
            );
        }
        assert_eq!(
            key_of(&[("INSTANTCHAT_TRUSTED_PROXIES", r#"["::1", "10.0.0.1/8"]"#)]),
            "trusted_proxies.1"
        );
        assert_eq!(key_of(&[("INSTANTCHAT_QUOTA", "5")]), "quota", "unknown keys are named");
        assert_eq!(key_of(&[("INSTANTCHAT_PREVIEW_PORTS", "[]")]), "preview_ports");
        assert_eq!(key_of(&[("INSTANTCHAT_PREVIEW_TIMEOUT_MS", "0")]), "preview_timeout_ms");
        assert_eq!(
            key_of(&[("INSTANTCHAT_PREVIEW_IMAGE_MAX_SIDE", "4096")]),
            "preview_image_max_side"
        );
    }
}
