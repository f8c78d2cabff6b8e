//! Automatic defences against abuse (config `[defences]` and
//! `[password_attempts]`; docs/OPERATIONS.md, "Abuse defences"):
//!
//! - per client address: websocket upgrades per minute and open websockets
//!   ([`Defences::admit`], before the handshake: 429 and a JSON body);
//! - wrong room passwords, per address and per room, with growing waits
//!   ([`Defences::password_wait`]: `error {code: "too_many_attempts"}`);
//! - a proof-of-work challenge at join ([`Defences::challenge`], `pow`);
//! - per member: the same text again and again ([`SendWatch`], `repeated`);
//! - per room: automatic slow mode when messages surge ([`room::RoomGuard`],
//!   `slow_mode`).
//!
//! None of it is on the fan-out path: every check runs in the reader of the
//! connection that asked, before the room's lock is taken.

pub mod room;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::config::{self, PowMode};
use common::defences::{AttemptLimiter, Backoff, RepeatWatch};
use common::http_error::ErrorBody;
use common::net::{IpRateLimiter, Rate, client_key};
use common::pow::{self, PowError, PowSolution};
use common::ws::ServerFrame;
use prometheus::IntCounterVec;
use rand::Rng;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::room::{Room, encode};

pub use self::room::RoomGuard;

/// Why a defence refused something: the `reason` label of
/// `instantchat_backend_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    JoinRate,
    ConnectionsPerIp,
    PasswordAttempts,
    Challenge,
    ChallengeFailed,
    Repeated,
    SlowMode,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::JoinRate,
        Refusal::ConnectionsPerIp,
        Refusal::PasswordAttempts,
        Refusal::Challenge,
        Refusal::ChallengeFailed,
        Refusal::Repeated,
        Refusal::SlowMode,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::JoinRate => "join_rate",
            Refusal::ConnectionsPerIp => "connections_per_ip",
            Refusal::PasswordAttempts => "password_attempts",
            Refusal::Challenge => "challenge",
            Refusal::ChallengeFailed => "challenge_failed",
            Refusal::Repeated => "repeated",
            Refusal::SlowMode => "slow_mode",
        }
    }
}

/// An upgrade refused before the handshake.
#[derive(Debug)]
pub struct UpgradeRefused {
    pub code: &'static str,
    pub message: &'static str,
    /// `Retry-After`, when known.
    pub retry_after: Option<Duration>,
}

impl UpgradeRefused {
    pub fn body(&self) -> String {
        ErrorBody::new(self.code, self.message).to_json()
    }
}

/// An open websocket counted against its address; uncounts itself.
pub struct IpSlot {
    defences: Arc<Defences>,
    key: Option<IpAddr>,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let Some(key) = self.key else { return };
        let mut open = self.defences.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&key);
            }
        }
    }
}

/// The defences' state, one per backend.
pub struct Defences {
    config: config::Defences,
    joins: IpRateLimiter,
    /// Open websockets per client address (per /64 for IPv6).
    open: Mutex<HashMap<IpAddr, usize>>,
    password_by_ip: AttemptLimiter<IpAddr>,
    password_by_room: AttemptLimiter<String>,
    /// Signs proof-of-work challenges; random per process.
    pow_secret: [u8; 32],
    refusals: IntCounterVec,
}

fn backoff(free: u32, attempts: &config::PasswordAttempts) -> Backoff {
    Backoff {
        free,
        base: Duration::from_millis(attempts.base_delay_ms),
        max: Duration::from_millis(attempts.max_delay_ms),
        forget_after: Duration::from_secs(attempts.forget_after_secs),
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn millis(wait: Duration) -> u64 {
    (wait.as_millis() as u64).max(1)
}

fn error_frame(code: &str, message: String, wait: Duration) -> Utf8Bytes {
    encode(&ServerFrame::Error {
        code: code.to_owned(),
        message,
        retry_after_ms: Some(millis(wait)),
    })
}

impl Defences {
    pub fn new(
        config: &config::Defences,
        attempts: &config::PasswordAttempts,
        metrics: &Metrics,
    ) -> Self {
        // Every reason from the start, at 0: rates and alerts see a series
        // before the first refusal.
        for why in Refusal::ALL {
            metrics.refusals.with_label_values(&[why.label()]);
        }
        Defences {
            joins: IpRateLimiter::new(Rate::per_minute(
                config.joins_per_minute,
                config.joins_burst,
            )),
            open: Mutex::new(HashMap::new()),
            password_by_ip: AttemptLimiter::new(backoff(attempts.free_per_ip, attempts)),
            password_by_room: AttemptLimiter::new(backoff(attempts.free_per_room, attempts)),
            pow_secret: rand::rng().random(),
            refusals: metrics.refusals.clone(),
            config: config.clone(),
        }
    }

    pub fn config(&self) -> &config::Defences {
        &self.config
    }

    pub fn refused(&self, why: Refusal) {
        self.refusals.with_label_values(&[why.label()]).inc();
    }

    /// Admits a websocket upgrade from `ip`: under its open-connection bound,
    /// then within its upgrades per minute. The slot is held for the life of
    /// the connection.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, now: Instant) -> Result<IpSlot, UpgradeRefused> {
        let max_open = self.config.connections_per_ip;
        if max_open == 0 && self.config.joins_per_minute == 0 {
            return Ok(IpSlot { defences: self.clone(), key: None });
        }
        let key = client_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if max_open > 0 && open.get(&key).copied().unwrap_or(0) >= max_open {
            self.refused(Refusal::ConnectionsPerIp);
            return Err(UpgradeRefused {
                code: "too_many_connections",
                message: "Too many open connections from your address; close some first.",
                retry_after: None,
            });
        }
        if self.config.joins_per_minute > 0 {
            if let Err(wait) = self.joins.check(key, now) {
                self.refused(Refusal::JoinRate);
                return Err(UpgradeRefused {
                    code: "rate_limited",
                    message: "Too many connections from your address; try again shortly.",
                    retry_after: Some(wait),
                });
            }
        }
        *open.entry(key).or_insert(0) += 1;
        Ok(IpSlot { defences: self.clone(), key: Some(key) })
    }

    /// Open websockets counted for `ip`'s address.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&client_key(ip)).copied().unwrap_or(0)
    }

    /// `Err(frame)` while `ip`, or anyone against `room`, must wait before
    /// trying a password again.
    pub fn password_wait(&self, ip: IpAddr, room: &str, now: Instant) -> Result<(), Utf8Bytes> {
        let by_ip = self.password_by_ip.check(&client_key(ip), now);
        let by_room = self.password_by_room.check(&room.to_owned(), now);
        let wait = match (by_ip, by_room) {
            (Ok(()), Ok(())) => return Ok(()),
            (Err(a), Err(b)) => a.max(b),
            (Err(w), _) | (_, Err(w)) => w,
        };
        self.refused(Refusal::PasswordAttempts);
        Err(error_frame(
            "too_many_attempts",
            format!("Too many wrong passwords; try again in {} s.", wait.as_secs().max(1)),
            wait,
        ))
    }

    /// Records a wrong password from `ip` for `room`.
    pub fn password_failed(&self, ip: IpAddr, room: &str, now: Instant) {
        self.password_by_ip.fail(&client_key(ip), now);
        self.password_by_room.fail(&room.to_owned(), now);
    }

    /// A right password: the address starts afresh (the room's count stays:
    /// one right guess among many wrong ones proves nothing about the rest).
    pub fn password_ok(&self, ip: IpAddr) {
        self.password_by_ip.clear(&client_key(ip));
    }

    /// Whether this join must carry a proof of work, and if so whether
    /// `answer` is one: `Err(frame)` is the `error {code: "challenge"}` with
    /// a fresh challenge to solve.
    pub fn challenge(
        &self,
        room: &Room,
        answer: Option<&PowSolution>,
        clock_ms: u64,
    ) -> Result<(), Utf8Bytes> {
        let joins = room.guard.record_join(clock_ms);
        let required = match self.config.pow {
            PowMode::Off => false,
            PowMode::Always => true,
            PowMode::Auto => joins > self.config.pow_auto_joins_per_minute,
        };
        if !required {
            return Ok(());
        }
        let now = unix_secs();
        let bits = self.config.pow_bits;
        let message = match answer.map(|a| pow::verify(&self.pow_secret, room.key(), a, bits, now))
        {
            Some(Ok(())) => return Ok(()),
            None => {
                self.refused(Refusal::Challenge);
                "This room asks new members to solve a small puzzle first (your app does it for you)."
                    .to_owned()
            }
            Some(Err(e)) => {
                self.refused(Refusal::ChallengeFailed);
                match e {
                    PowError::Expired | PowError::TooEasy => format!("{e}; here is a new one."),
                    PowError::Forged | PowError::Unsolved => format!("{e}."),
                }
            }
        };
        let expires = now + self.config.pow_valid_secs;
        let challenge = pow::issue(&self.pow_secret, room.key(), bits, expires);
        let frame = serde_json::json!({
            "type": "error",
            "code": "challenge",
            "message": message,
            "challenge": challenge,
        });
        Err(Utf8Bytes::from(frame.to_string()))
    }

    /// Checks a member's `send` of `text` against spam repeats and the
    /// room's slow mode; `Err(frame)` is the refusal to queue.
    pub fn before_send(
        &self,
        room: &Room,
        watch: &mut SendWatch,
        text: &str,
        now: Instant,
        clock_ms: u64,
    ) -> Result<(), Utf8Bytes> {
        if let Some(wait) = room.guard.slow_mode_wait(self, watch.last_sent_ms, clock_ms, room) {
            self.refused(Refusal::SlowMode);
            return Err(error_frame(
                "slow_mode",
                format!(
                    "Slow mode: one message every {} s; wait {} s.",
                    self.config.auto_slow_mode_secs,
                    wait.as_secs_f64().ceil() as u64
                ),
                wait,
            ));
        }
        if !text.trim().is_empty() {
            let window = Duration::from_secs(self.config.repeat_window_secs);
            if let Err(wait) = watch.repeats.check(text, self.config.repeat_max, window, now) {
                self.refused(Refusal::Repeated);
                return Err(error_frame(
                    "repeated",
                    "You sent this same text several times already; say something else.".into(),
                    wait,
                ));
            }
        }
        Ok(())
    }

    /// After a member's message was stored: its slow-mode clock, and the
    /// room's surge watch (which may turn slow mode on and announce it).
    pub fn after_post(&self, room: &Room, watch: &mut SendWatch, clock_ms: u64) {
        watch.last_sent_ms = Some(clock_ms);
        room.guard.record_message(self, room, clock_ms);
    }

    /// Forgets what no longer matters, now and then.
    fn prune(&self, now: Instant) {
        self.joins.prune(now);
        self.password_by_ip.prune(now);
        self.password_by_room.prune(now);
    }
}

/// What a connection's reader remembers for the defences: its recent texts
/// and when it last posted.
#[derive(Debug, Default)]
pub struct SendWatch {
    repeats: RepeatWatch,
    last_sent_ms: Option<u64>,
}

/// Prunes the per-address maps every minute until `stop`.
pub async fn sweep(defences: Arc<Defences>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => defences.prune(Instant::now()),
        }
    }
}
