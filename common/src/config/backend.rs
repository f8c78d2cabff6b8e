//! The backend's configuration.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Validate};

/// Every knob of a backend. Limits default to the contract's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendConfig {
    /// Stable name of this backend in aux-srv's list (`b1`).
    pub id: String,
    /// Public listener: `/ws/{room}`, `/livez`, `/readyz`, `/metrics`.
    pub listen: SocketAddr,
    /// Control listener for aux-srv (binary protocol).
    pub control_listen: SocketAddr,
    /// The websocket base URL browsers use to reach this backend.
    pub public_url: String,
    /// Origins allowed to open websockets; empty means the same host only.
    pub allowed_origins: Vec<String>,
    /// Shared secret with aux-srv; must be set.
    pub control_token: String,
    /// Messages kept per room (the ring buffer).
    pub max_messages: usize,
    /// An empty room is removed after this long without members…
    pub room_idle_secs: u64,
    /// …if it has no messages, or its last message is older than this.
    pub room_silent_secs: u64,
    /// Characters per message text.
    pub max_text_chars: usize,
    /// Bytes per websocket frame (larger frames close with 1009).
    pub max_frame_bytes: usize,
    /// Client frames per second per connection (token bucket rate)…
    pub rate_per_sec: u32,
    /// …and its burst.
    pub rate_burst: u32,
    /// Refused frames within 10 s that close a flooding connection (1008).
    pub flood_close_after: u32,
    /// Members per room.
    pub max_members: usize,
    /// Open websocket connections per backend; more are answered 503.
    pub max_connections: usize,
    /// Frames queued for one connection before it counts as too slow (1013).
    pub send_queue_frames: usize,
    /// Server pings every connection this often…
    pub ping_interval_ms: u64,
    /// …and drops a connection from which nothing arrived for this long (and
    /// closes one whose write has not finished for this long).
    pub idle_timeout_ms: u64,
    /// Time a new connection has to send `join`.
    pub join_timeout_ms: u64,
    /// Messages one `history` request may return.
    pub history_page_max: usize,
    /// Votes a room holds over all its kept messages (one per member per
    /// message); a new vote beyond it is refused with `too_many_votes`.
    pub max_votes_per_room: usize,
    /// Longest a shutdown waits for clients to take their close frames.
    pub shutdown_grace_ms: u64,
    /// On SIGTERM, first ask aux-srv (through the next load report) to move
    /// every room to the other backends, and wait for that up to
    /// `evacuate_timeout_ms`; only rooms that could not move are closed.
    pub evacuate_on_shutdown: bool,
    /// Longest a shutdown waits for its rooms to move away.
    pub evacuate_timeout_ms: u64,
    /// How long the members of a room that moved here still count as
    /// present while they reconnect: the others see no `joined` when they
    /// come back, and a `left` for those not back by then.
    pub move_arrival_secs: u64,
    /// Largest control-protocol frame.
    pub control_max_frame_bytes: usize,
    /// tungstenite's read buffer per connection (its 128 KiB default is far
    /// too big for idle chat sockets).
    pub ws_read_buffer_bytes: usize,
    /// Outgoing bytes buffered before a write reaches the socket. Longer
    /// frames go out in fragments of half this, and a connection's write
    /// buffer stays below about one and a half times it.
    pub ws_write_buffer_bytes: usize,
    /// file-srv's base URL as this backend reaches it (`http://127.0.0.1:8085`):
    /// the first http(s) link of each message gets a preview from its
    /// `POST /previews`. Empty: no previews.
    pub preview_url: String,
    /// Sent as `Authorization: Bearer` to `POST /previews` (file-srv's
    /// `preview_token`); empty sends none.
    pub preview_token: String,
    /// Previews asked for at once; links posted while all are busy get none.
    pub preview_max_concurrent: usize,
    /// Peers (CIDRs or addresses, e.g. nginx) whose `X-Forwarded-For` is
    /// believed when telling file-srv who posted a link.
    pub trusted_proxies: Vec<String>,
    /// `[http]`: connection and request-time bounds of the HTTP listener (public listener; until a websocket upgrade).
    pub http: super::HttpLimits,
    /// `[password_checks]`: room-password hashes at once, and the wait for one.
    pub password_checks: super::PasswordChecks,
    /// `[defences]`: automatic defences against abuse (join and connection
    /// limits per address, spam repeats, automatic slow mode, proof of work).
    pub defences: super::Defences,
    /// `[password_attempts]`: growing waits after wrong room passwords.
    pub password_attempts: super::PasswordAttempts,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            id: "b1".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
            control_listen: SocketAddr::from(([127, 0, 0, 1], 9101)),
            public_url: "ws://127.0.0.1:9001".into(),
            allowed_origins: Vec::new(),
            control_token: String::new(),
            max_messages: 1000,
            room_idle_secs: 600,
            room_silent_secs: 12 * 3600,
            max_text_chars: 4000,
            max_frame_bytes: 16 * 1024,
            rate_per_sec: 10,
            rate_burst: 20,
            flood_close_after: 40,
            max_members: 1000,
            max_connections: 19_000,
            send_queue_frames: 512,
            ping_interval_ms: 30_000,
            idle_timeout_ms: 75_000,
            join_timeout_ms: 10_000,
            history_page_max: 200,
            max_votes_per_room: 20_000,
            shutdown_grace_ms: 5_000,
            evacuate_on_shutdown: true,
            evacuate_timeout_ms: 20_000,
            move_arrival_secs: 30,
            control_max_frame_bytes: crate::control::DEFAULT_MAX_FRAME_BYTES,
            ws_read_buffer_bytes: 1024,
            ws_write_buffer_bytes: 4 * 1024,
            preview_url: String::new(),
            preview_token: String::new(),
            preview_max_concurrent: 16,
            trusted_proxies: Vec::new(),
            // A join storm holds many handshakes at once from each of a load
            // generator's (or a NAT's) few addresses.
            http: super::HttpLimits {
                max_connections_per_ip: 1024,
                ..super::HttpLimits::default()
            },
            password_checks: super::PasswordChecks::default(),
            defences: super::Defences::default(),
            password_attempts: super::PasswordAttempts::default(),
        }
    }
}

impl Validate for BackendConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        self.http.validate()?;
        self.password_checks.validate()?;
        self.defences.validate()?;
        self.password_attempts.validate()?;
        let positive = [
            ("max_messages", self.max_messages as u64),
            ("room_idle_secs", self.room_idle_secs),
            ("max_text_chars", self.max_text_chars as u64),
            ("max_frame_bytes", self.max_frame_bytes as u64),
            ("rate_per_sec", u64::from(self.rate_per_sec)),
            ("rate_burst", u64::from(self.rate_burst)),
            ("flood_close_after", u64::from(self.flood_close_after)),
            ("max_members", self.max_members as u64),
            ("max_connections", self.max_connections as u64),
            ("send_queue_frames", self.send_queue_frames as u64),
            ("ping_interval_ms", self.ping_interval_ms),
            ("join_timeout_ms", self.join_timeout_ms),
            ("history_page_max", self.history_page_max as u64),
            ("max_votes_per_room", self.max_votes_per_room as u64),
            ("ws_read_buffer_bytes", self.ws_read_buffer_bytes as u64),
            ("preview_max_concurrent", self.preview_max_concurrent as u64),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::new(key, "must be greater than 0"));
            }
        }
        if self.id.is_empty() || self.id.len() > 64 {
            return Err(ConfigError::new("id", "must be 1 to 64 characters"));
        }
        if self.control_token.len() < 16 {
            return Err(ConfigError::new(
                "control_token",
                "must be set to a shared secret of at least 16 characters",
            ));
        }
        if !(self.public_url.starts_with("ws://") || self.public_url.starts_with("wss://")) {
            return Err(ConfigError::new("public_url", "must start with ws:// or wss://"));
        }
        if self.idle_timeout_ms <= self.ping_interval_ms {
            return Err(ConfigError::new(
                "idle_timeout_ms",
                "must be longer than ping_interval_ms",
            ));
        }
        if self.max_frame_bytes < 256 {
            return Err(ConfigError::new("max_frame_bytes", "must be at least 256"));
        }
        if self.evacuate_timeout_ms > 600_000 {
            return Err(ConfigError::new("evacuate_timeout_ms", "must be at most 600000"));
        }
        if !(1..=3600).contains(&self.move_arrival_secs) {
            return Err(ConfigError::new("move_arrival_secs", "must be from 1 to 3600"));
        }
        if self.control_max_frame_bytes < 4096 {
            return Err(ConfigError::new("control_max_frame_bytes", "must be at least 4096"));
        }
        for origin in &self.allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(ConfigError::new(
                    "allowed_origins",
                    format!("`{origin}` must start with http:// or https://"),
                ));
            }
        }
        let preview_url = self.preview_url.as_str();
        if !(preview_url.is_empty()
            || preview_url.starts_with("http://")
            || preview_url.starts_with("https://"))
        {
            return Err(ConfigError::new("preview_url", "must be empty or an http(s) URL"));
        }
        super::parse_trusted_proxies(&self.trusted_proxies)?;
        Ok(())
    }
}
