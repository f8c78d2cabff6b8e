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
    /// The websocket base URL browsers are told (`wss://b1.chat.example`);
    /// unset means the `public_url` the backend reports itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

/// What "full" means for each part of a backend's load report: the placement
/// score adds up each measured value divided by its budget, weighted (see
/// docs/ARCHITECTURE.md, "Placement").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlacementBudgets {
    /// CPU cores one backend may use (1.0 = one core).
    pub cpu_cores: f64,
    pub memory_bytes: u64,
    /// Client messages per second one backend handles comfortably.
    pub messages_per_sec: f64,
    /// Rooms one backend holds comfortably.
    pub rooms: u64,
}

impl Default for PlacementBudgets {
    fn default() -> Self {
        Self { cpu_cores: 1.0, memory_bytes: 2 << 30, messages_per_sec: 5000.0, rooms: 20_000 }
    }
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
    /// Proxies (CIDRs such as `10.0.0.0/8`, `::1/128`, or plain addresses)
    /// whose `X-Forwarded-For` is believed; empty = the peer address is the
    /// client.
    pub trusted_proxies: Vec<String>,
    /// How often each backend is asked for its load report.
    pub poll_interval_ms: u64,
    /// Longest wait between retries of an unreachable backend (the wait
    /// doubles from `poll_interval_ms` up to this).
    pub backend_retry_max_ms: u64,
    /// Deadline of one control request, connecting included.
    pub control_timeout_ms: u64,
    /// Open control connections per backend, at most.
    pub control_pool_size: usize,
    /// Longest time readiness waits for the start-up sweep of the backends'
    /// room lists.
    pub rebuild_timeout_ms: u64,
    /// Room creations per client IP per minute (token bucket rate)…
    pub room_create_per_minute: u32,
    /// …and its burst.
    pub room_create_burst: u32,
    /// Messages posted over HTTP per client IP per minute…
    pub http_post_per_minute: u32,
    /// …and its burst.
    pub http_post_burst: u32,
    /// Largest request body of the public and admin API.
    pub max_body_bytes: usize,
    /// On shutdown, readiness answers 503 this long while requests are
    /// still served (so load balancers stop sending first)…
    pub shutdown_drain_ms: u64,
    /// …then the listeners close and requests in flight get this long.
    pub shutdown_grace_ms: u64,
    /// How the load report of a backend turns into its placement score.
    pub placement: PlacementBudgets,
    /// How long a moving room stays frozen on its source at most: if the
    /// move is neither completed nor aborted by then (aux-srv died), the
    /// room takes writes again by itself. At most 60000.
    pub move_freeze_ms: u64,
    /// Rooms moved at once by an evacuation or a rebalance.
    pub move_concurrency: usize,
    /// `[http]`: connection and request-time bounds of the HTTP listeners (public and admin).
    pub http: super::HttpLimits,
    /// `[password_checks]`: room-password hashes at once, and the wait for one.
    pub password_checks: super::PasswordChecks,
    /// `[password_attempts]`: growing waits after wrong room passwords
    /// (`X-Room-Password` on the messages API).
    pub password_attempts: super::PasswordAttempts,
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
            trusted_proxies: Vec::new(),
            poll_interval_ms: 2_000,
            backend_retry_max_ms: 30_000,
            control_timeout_ms: 3_000,
            control_pool_size: 8,
            rebuild_timeout_ms: 15_000,
            room_create_per_minute: 30,
            room_create_burst: 10,
            http_post_per_minute: 120,
            http_post_burst: 20,
            max_body_bytes: 16 * 1024,
            shutdown_drain_ms: 1_000,
            shutdown_grace_ms: 5_000,
            placement: PlacementBudgets::default(),
            move_freeze_ms: 10_000,
            move_concurrency: 16,
            http: super::HttpLimits::default(),
            password_checks: super::PasswordChecks::default(),
            password_attempts: super::PasswordAttempts::default(),
        }
    }
}

impl AuxConfig {
    /// `trusted_proxies` parsed (validated at load, so this only fails for a
    /// config built by hand).
    pub fn trusted_proxy_list(&self) -> Result<crate::net::TrustedProxies, ConfigError> {
        super::parse_trusted_proxies(&self.trusted_proxies)
    }
}

fn is_host_port(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0),
        None => false,
    }
}

impl Validate for AuxConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate()?;
        self.password_checks.validate()?;
        self.password_attempts.validate()?;
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
            if let Err(message) = b.check() {
                let (field, message) = message;
                return Err(ConfigError::new(format!("backends.{i}.{field}"), message));
            }
            if self.backends[..i].iter().any(|other| other.id == b.id) {
                return Err(ConfigError::new(format!("backends.{i}.id"), "is listed twice"));
            }
        }
        if !(self.files_url.starts_with("http://") || self.files_url.starts_with("https://")) {
            return Err(ConfigError::new("files_url", "must start with http:// or https://"));
        }
        if self.web_root.is_empty() {
            return Err(ConfigError::new("web_root", "must not be empty"));
        }
        self.trusted_proxy_list()?;
        let positive = [
            ("poll_interval_ms", self.poll_interval_ms),
            ("control_timeout_ms", self.control_timeout_ms),
            ("control_pool_size", self.control_pool_size as u64),
            ("rebuild_timeout_ms", self.rebuild_timeout_ms),
            ("room_create_per_minute", u64::from(self.room_create_per_minute)),
            ("room_create_burst", u64::from(self.room_create_burst)),
            ("http_post_per_minute", u64::from(self.http_post_per_minute)),
            ("http_post_burst", u64::from(self.http_post_burst)),
            ("placement.memory_bytes", self.placement.memory_bytes),
            ("placement.rooms", self.placement.rooms),
            ("move_freeze_ms", self.move_freeze_ms),
            ("move_concurrency", self.move_concurrency as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(key, "must be greater than 0"));
            }
        }
        if self.backend_retry_max_ms < self.poll_interval_ms {
            return Err(ConfigError::new(
                "backend_retry_max_ms",
                "must be at least poll_interval_ms",
            ));
        }
        if self.shutdown_drain_ms > 600_000 || self.shutdown_grace_ms > 600_000 {
            let key = if self.shutdown_drain_ms > 600_000 {
                "shutdown_drain_ms"
            } else {
                "shutdown_grace_ms"
            };
            return Err(ConfigError::new(key, "must be at most 600000 (10 minutes)"));
        }
        if self.move_freeze_ms > 60_000 {
            return Err(ConfigError::new("move_freeze_ms", "must be at most 60000"));
        }
        if self.control_pool_size > 256 {
            return Err(ConfigError::new("control_pool_size", "must be at most 256"));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::new("max_body_bytes", "must be at least 1024"));
        }
        let budgets = [
            ("placement.cpu_cores", self.placement.cpu_cores),
            ("placement.messages_per_sec", self.placement.messages_per_sec),
        ];
        for (key, value) in budgets {
            if !(value.is_finite() && value > 0.0) {
                return Err(ConfigError::new(key, "must be a number greater than 0"));
            }
        }
        Ok(())
    }
}

impl BackendEntry {
    /// Checks one entry (also used by aux-srv's admin API when a backend is
    /// added at runtime); the error names the field.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !id_ok {
            return Err(("id", "must be 1 to 64 of A-Z a-z 0-9 - _ .".into()));
        }
        if !is_host_port(&self.control_addr) {
            return Err(("control_addr", "must be host:port".into()));
        }
        if let Some(url) = &self.public_url {
            if !(url.starts_with("ws://") || url.starts_with("wss://")) {
                return Err(("public_url", "must start with ws:// or wss://".into()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::load;
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut all = vec![("INSTANTCHAT_CONTROL_TOKEN".to_owned(), "0123456789abcdef".to_owned())];
        all.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        all
    }

    fn key_of(pairs: &[(&str, &str)]) -> String {
        load::<AuxConfig>(None, env(pairs)).unwrap_err().key
    }

    #[test]
    fn new_keys_have_defaults_and_layer() {
        let c: AuxConfig = load(None, env(&[])).unwrap();
        assert_eq!(c.poll_interval_ms, 2_000);
        assert!(c.trusted_proxies.is_empty());
        assert_eq!(c.placement.rooms, 20_000);
        let c: AuxConfig = load(
            None,
            env(&[
                ("INSTANTCHAT_POLL_INTERVAL_MS", "100"),
                ("INSTANTCHAT_TRUSTED_PROXIES", r#"["10.0.0.0/8", "::1"]"#),
                ("INSTANTCHAT_PLACEMENT__CPU_CORES", "4.0"),
                (
                    "INSTANTCHAT_BACKENDS",
                    r#"[{id = "b1", control_addr = "h:9101", public_url = "wss://b1.example"}]"#,
                ),
            ]),
        )
        .unwrap();
        assert_eq!(c.poll_interval_ms, 100);
        assert_eq!(c.placement.cpu_cores, 4.0);
        assert_eq!(c.backends[0].public_url.as_deref(), Some("wss://b1.example"));
        let proxies = c.trusted_proxy_list().unwrap();
        assert_eq!(
            proxies.client_ip("10.9.9.9".parse().unwrap(), ["1.2.3.4"]).to_string(),
            "1.2.3.4"
        );
        assert_eq!(proxies.client_ip("::1".parse().unwrap(), ["1.2.3.4"]).to_string(), "1.2.3.4");
    }

    #[test]
    fn bad_new_values_are_named() {
        assert_eq!(
            key_of(&[("INSTANTCHAT_TRUSTED_PROXIES", r#"["10.0.0.1/8"]"#)]),
            "trusted_proxies.0"
        );
        assert_eq!(
            key_of(&[("INSTANTCHAT_TRUSTED_PROXIES", r#"["::1/128", "nope"]"#)]),
            "trusted_proxies.1"
        );
        assert_eq!(
            key_of(&[("INSTANTCHAT_TRUSTED_PROXIES", r#"["1.2.3.4/33"]"#)]),
            "trusted_proxies.0"
        );
        assert_eq!(key_of(&[("INSTANTCHAT_POLL_INTERVAL_MS", "0")]), "poll_interval_ms");
        assert_eq!(key_of(&[("INSTANTCHAT_CONTROL_POOL_SIZE", "0")]), "control_pool_size");
        assert_eq!(key_of(&[("INSTANTCHAT_CONTROL_POOL_SIZE", "1000")]), "control_pool_size");
        assert_eq!(key_of(&[("INSTANTCHAT_ROOM_CREATE_BURST", "0")]), "room_create_burst");
        assert_eq!(key_of(&[("INSTANTCHAT_HTTP_POST_PER_MINUTE", "0")]), "http_post_per_minute");
        assert_eq!(key_of(&[("INSTANTCHAT_MAX_BODY_BYTES", "10")]), "max_body_bytes");
        assert_eq!(key_of(&[("INSTANTCHAT_FILES_URL", "ftp://x")]), "files_url");
        assert_eq!(key_of(&[("INSTANTCHAT_SHUTDOWN_DRAIN_MS", "9999999")]), "shutdown_drain_ms");
        assert_eq!(key_of(&[("INSTANTCHAT_SHUTDOWN_GRACE_MS", "-1")]), "shutdown_grace_ms");
        assert_eq!(
            key_of(&[
                ("INSTANTCHAT_POLL_INTERVAL_MS", "5000"),
                ("INSTANTCHAT_BACKEND_RETRY_MAX_MS", "10")
            ]),
            "backend_retry_max_ms"
        );
        assert_eq!(key_of(&[("INSTANTCHAT_PLACEMENT__CPU_CORES", "0.0")]), "placement.cpu_cores");
        assert_eq!(key_of(&[("INSTANTCHAT_PLACEMENT__ROOMS", "0")]), "placement.rooms");
        assert_eq!(key_of(&[("INSTANTCHAT_PLACEMENT__DISKS", "1")]), "placement.disks");
        let bad_backends = [
            (r#"[{id = "b 1", control_addr = "h:1"}]"#, "backends.0.id"),
            (r#"[{id = "b1", control_addr = "h"}]"#, "backends.0.control_addr"),
            (r#"[{id = "b1", control_addr = "h:0"}]"#, "backends.0.control_addr"),
            (
                r#"[{id = "b1", control_addr = "h:1", public_url = "http://x"}]"#,
                "backends.0.public_url",
            ),
        ];
        for (value, key) in bad_backends {
            assert_eq!(key_of(&[("INSTANTCHAT_BACKENDS", value)]), key, "{value}");
        }
    }
}
