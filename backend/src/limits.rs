//! Per-connection flood control: a watch on how often a client keeps hitting
//! its rate limit (the token bucket itself is `common::net::TokenBucket`).

use std::time::{Duration, Instant};

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
