//! How long to wait before the next connection attempt: doubling from
//! `base` up to `max`, each wait drawn at random from its upper half so
//! that everyone a restarted backend dropped does not come back at once.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff { base, max, failures: 0 }
    }

    /// The wait before the next attempt; each call doubles the ceiling.
    pub fn next_wait(&mut self) -> Duration {
        let ceiling = self.base.saturating_mul(1 << self.failures.min(16)).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let ceiling_ms = ceiling.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(ceiling_ms / 2..=ceiling_ms))
    }

    /// A connection worked: the next failure starts small again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_with_jitter() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let waits: Vec<u64> = (0..8).map(|_| backoff.next_wait().as_millis() as u64).collect();
        for (i, wait) in waits.iter().enumerate() {
            let ceiling = (100u64 << i).min(2000);
            assert!((ceiling / 2..=ceiling).contains(wait), "wait {i} was {wait} ms");
        }
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(100));
        // Jitter: many draws from one ceiling are not all the same.
        let draws: std::collections::HashSet<u64> = (0..20)
            .map(|_| {
                let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(1));
                b.next_wait().as_millis() as u64
            })
            .collect();
        assert!(draws.len() > 1);
    }
}
