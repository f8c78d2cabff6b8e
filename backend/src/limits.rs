//! Per-connection flood control: a token bucket for client frames, and a
//! watch on how often a client keeps hitting it.

use std::time::{Duration, Instant};

/// Allows `rate` frames per second with bursts of `burst`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    tokens: f32,
    rate: f32,
    burst: f32,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32, now: Instant) -> Self {
        TokenBucket { tokens: burst as f32, rate: rate as f32, burst: burst as f32, last: now }
    }

    /// Takes a token, or says how long until one is free.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f32((1.0 - self.tokens) / self.rate))
        }
    }
}

/// Counts refusals in a sliding 10-second window: a client that keeps
/// flooding after being told to slow down is closed (1008).
#[derive(Debug, Clone)]
pub struct FloodWatch {
    window_start: Instant,
    refused: u32,
    limit: u32,
}

pub const FLOOD_WINDOW: Duration = Duration::from_secs(10);

impl FloodWatch {
    pub fn new(limit: u32, now: Instant) -> Self {
        FloodWatch { window_start: now, refused: 0, limit }
    }

    /// Records a refusal; true when the client has now flooded too long.
    pub fn refused(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.window_start) > FLOOD_WINDOW {
            self.window_start = now;
            self.refused = 0;
        }
        self.refused += 1;
        self.refused > self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 20, t0);
        for _ in 0..20 {
            assert!(bucket.take(t0).is_ok());
        }
        let wait = bucket.take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(101) && wait > Duration::from_millis(90), "{wait:?}");
        assert!(bucket.take(t0 + Duration::from_millis(101)).is_ok());
        assert!(bucket.take(t0 + Duration::from_millis(101)).is_err());
        // Refill never exceeds the burst.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..20 {
            assert!(bucket.take(later).is_ok());
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn flood_watch_window() {
        let t0 = Instant::now();
        let mut watch = FloodWatch::new(3, t0);
        assert!(!watch.refused(t0));
        assert!(!watch.refused(t0));
        assert!(!watch.refused(t0));
        assert!(watch.refused(t0));
        let mut watch = FloodWatch::new(3, t0);
        for i in 0..10 {
            assert!(!watch.refused(t0 + FLOOD_WINDOW * i + Duration::from_millis(1)));
        }
    }
}
