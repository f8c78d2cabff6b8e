//! Wrong room passwords on the HTTP API (`X-Room-Password`), per client
//! address and per room, answered with growing waits: `429
//! too_many_attempts` and `Retry-After` (config `[password_attempts]`; the
//! backend does the same for websocket joins).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use common::config::PasswordAttempts;
use common::defences::{AttemptLimiter, Backoff};
use common::net::client_key;
use http::StatusCode;

use crate::http::respond::ApiError;

/// The failures seen by this aux-srv.
#[derive(Debug)]
pub struct PasswordLimiter {
    by_ip: AttemptLimiter<IpAddr>,
    by_room: AttemptLimiter<String>,
}

fn backoff(free: u32, config: &PasswordAttempts) -> Backoff {
    Backoff {
        free,
        base: Duration::from_millis(config.base_delay_ms),
        max: Duration::from_millis(config.max_delay_ms),
        forget_after: Duration::from_secs(config.forget_after_secs),
    }
}

impl PasswordLimiter {
    pub fn new(config: &PasswordAttempts) -> Self {
        PasswordLimiter {
            by_ip: AttemptLimiter::new(backoff(config.free_per_ip, config)),
            by_room: AttemptLimiter::new(backoff(config.free_per_room, config)),
        }
    }

    /// The refusal while `ip`, or anyone against `room_key`, must wait.
    pub fn check(&self, ip: IpAddr, room_key: &str) -> Result<(), ApiError> {
        let now = Instant::now();
        let by_ip = self.by_ip.check(&client_key(ip), now).err();
        let by_room = self.by_room.check(&room_key.to_owned(), now).err();
        let Some(wait) = by_ip.max(by_room) else { return Ok(()) };
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!("Too many wrong passwords; try again in {} s.", wait.as_secs().max(1)),
        );
        e.retry_after = Some(wait);
        Err(e)
    }

    pub fn failed(&self, ip: IpAddr, room_key: &str) {
        let now = Instant::now();
        self.by_ip.fail(&client_key(ip), now);
        self.by_room.fail(&room_key.to_owned(), now);
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.by_ip.clear(&client_key(ip));
    }

    /// Forgets addresses and rooms quiet for long enough.
    pub fn prune(&self) {
        let now = Instant::now();
        self.by_ip.prune(now);
        self.by_room.prune(now);
    }
}
