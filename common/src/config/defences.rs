//! Automatic defences against abuse: `[defences]` (backend) and
//! `[password_attempts]` (backend and aux-srv). Every limit can be turned off
//! with 0 (or `pow = "off"`); docs/OPERATIONS.md, "Abuse defences".

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// When joins must carry a proof of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PowMode {
    /// Never.
    Off,
    /// In a room whose join attempts in the last minute exceed
    /// `pow_auto_joins_per_minute`.
    Auto,
    /// In every room.
    Always,
}

/// `[defences]` of a backend (env: `INSTANTCHAT_DEFENCES__<KEY>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Defences {
    /// Websocket upgrades per client address per minute (0: no limit)…
    pub joins_per_minute: u32,
    /// …and their burst.
    pub joins_burst: u32,
    /// Open websockets per client address on one backend (0: no limit).
    pub connections_per_ip: usize,
    /// The same text (trimmed, case-folded) one member may send this many
    /// times within `repeat_window_secs`; the next is refused `repeated`
    /// (0: no limit).
    pub repeat_max: u32,
    pub repeat_window_secs: u64,
    /// A room whose messages in the last 10 s exceed this many times its
    /// usual rate (a moving average)… (0: no automatic slow mode)
    pub surge_factor: f64,
    /// …and this many per minute (so that a quiet room is not slowed by a
    /// short conversation) gets slow mode…
    pub surge_min_per_minute: u32,
    /// …for this long…
    pub auto_slow_mode_for_secs: u64,
    /// …allowing each member one message per this many seconds.
    pub auto_slow_mode_secs: u64,
    /// When joins must carry a solved proof-of-work puzzle.
    pub pow: PowMode,
    /// Leading zero bits of the puzzle's SHA-256 (16: about 65 000 hashes,
    /// well under a second in a browser).
    pub pow_bits: u8,
    /// `pow = "auto"`: join attempts per room per minute above which joins
    /// are challenged.
    pub pow_auto_joins_per_minute: u32,
    /// How long a challenge may be answered.
    pub pow_valid_secs: u64,
}

impl Default for Defences {
    fn default() -> Self {
        Self {
            joins_per_minute: 60,
            joins_burst: 30,
            connections_per_ip: 64,
            repeat_max: 3,
            repeat_window_secs: 60,
            surge_factor: 8.0,
            surge_min_per_minute: 1200,
            auto_slow_mode_for_secs: 120,
            auto_slow_mode_secs: 5,
            pow: PowMode::Auto,
            pow_bits: 16,
            pow_auto_joins_per_minute: 300,
            pow_valid_secs: 120,
        }
    }
}

impl Defences {
    /// Every defence off (tests that act as many users from one address;
    /// load generators).
    pub fn off() -> Self {
        Self {
            joins_per_minute: 0,
            connections_per_ip: 0,
            repeat_max: 0,
            surge_factor: 0.0,
            pow: PowMode::Off,
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.joins_per_minute > 0 && self.joins_burst == 0 {
            return Err(ConfigError::new(
                "defences.joins_burst",
                "must be greater than 0 when joins_per_minute is set",
            ));
        }
        if self.repeat_max > 100 {
            return Err(ConfigError::new("defences.repeat_max", "must be at most 100"));
        }
        if self.repeat_max > 0 && self.repeat_window_secs == 0 {
            return Err(ConfigError::new("defences.repeat_window_secs", "must be greater than 0"));
        }
        if !(self.surge_factor == 0.0 || (1.0..=1000.0).contains(&self.surge_factor)) {
            return Err(ConfigError::new("defences.surge_factor", "must be 0 (off) or 1 to 1000"));
        }
        if self.surge_factor > 0.0 {
            let positive = [
                ("defences.surge_min_per_minute", u64::from(self.surge_min_per_minute)),
                ("defences.auto_slow_mode_for_secs", self.auto_slow_mode_for_secs),
                ("defences.auto_slow_mode_secs", self.auto_slow_mode_secs),
            ];
            for (key, value) in positive {
                if value == 0 {
                    return Err(ConfigError::new(key, "must be greater than 0"));
                }
            }
        }
        if !(1..=32).contains(&self.pow_bits) {
            return Err(ConfigError::new("defences.pow_bits", "must be 1 to 32"));
        }
        if self.pow_valid_secs == 0 {
            return Err(ConfigError::new("defences.pow_valid_secs", "must be greater than 0"));
        }
        if self.pow == PowMode::Auto && self.pow_auto_joins_per_minute == 0 {
            return Err(ConfigError::new(
                "defences.pow_auto_joins_per_minute",
                "must be greater than 0 with pow = \"auto\"",
            ));
        }
        Ok(())
    }
}

/// `[password_attempts]`: wrong room passwords, per client address and per
/// room, answered with growing waits (env: `INSTANTCHAT_PASSWORD_ATTEMPTS__<KEY>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordAttempts {
    /// Wrong passwords from one address before waits begin (0: no limit)…
    pub free_per_ip: u32,
    /// …and against one room, from anyone (0: no limit).
    pub free_per_room: u32,
    /// The first wait; each further wrong password doubles it…
    pub base_delay_ms: u64,
    /// …up to this.
    pub max_delay_ms: u64,
    /// An address or room is forgotten this long after its last wrong password.
    pub forget_after_secs: u64,
}

impl Default for PasswordAttempts {
    fn default() -> Self {
        Self {
            free_per_ip: 5,
            free_per_room: 30,
            base_delay_ms: 1_000,
            max_delay_ms: 300_000,
            forget_after_secs: 900,
        }
    }
}

impl PasswordAttempts {
    /// No waits, however many wrong passwords (tests that are not about it).
    pub fn off() -> Self {
        Self { free_per_ip: 0, free_per_room: 0, ..Self::default() }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.base_delay_ms == 0 {
            return Err(ConfigError::new(
                "password_attempts.base_delay_ms",
                "must be greater than 0",
            ));
        }
        if self.max_delay_ms < self.base_delay_ms {
            return Err(ConfigError::new(
                "password_attempts.max_delay_ms",
                "must be at least base_delay_ms",
            ));
        }
        if self.forget_after_secs.saturating_mul(1000) < self.max_delay_ms {
            return Err(ConfigError::new(
                "password_attempts.forget_after_secs",
                "must be at least max_delay_ms",
            ));
        }
        Ok(())
    }
}
