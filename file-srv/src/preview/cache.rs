//! Previews already made (and failures), by URL, for a while; and the
//! per-room rate limit. Both bounded: the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::net::{Rate, TokenBucket};

/// Rooms a [`RoomLimiter`] tracks before it forgets those with full buckets.
const MAX_TRACKED_ROOMS: usize = 100_000;

pub struct Cache<V> {
    ttl: Duration,
    capacity: usize,
    inner: Mutex<Entries<V>>,
}

struct Entries<V> {
    map: HashMap<String, (Instant, V)>,
    /// Keys in insertion order, for eviction; may hold keys since replaced.
    order: VecDeque<(Instant, String)>,
}

impl<V: Clone> Cache<V> {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        let inner = Mutex::new(Entries { map: HashMap::new(), order: VecDeque::new() });
        Self { ttl, capacity, inner }
    }

    pub fn get(&self, key: &str, now: Instant) -> Option<V> {
        let entries = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (stored, value) = entries.map.get(key)?;
        (now.saturating_duration_since(*stored) < self.ttl).then(|| value.clone())
    }

    pub fn put(&self, key: String, value: V, now: Instant) {
        let mut entries = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        entries.order.push_back((now, key.clone()));
        entries.map.insert(key, (now, value));
        while entries.map.len() > self.capacity || entries.order.len() > 2 * self.capacity {
            let Some((stamp, oldest)) = entries.order.pop_front() else { break };
            // Only drop the entry if this is its latest insertion.
            if entries.map.get(&oldest).is_some_and(|(at, _)| *at == stamp) {
                entries.map.remove(&oldest);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One token bucket per room.
pub struct RoomLimiter {
    rate: Rate,
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl RoomLimiter {
    pub fn new(rate: Rate) -> Self {
        Self { rate, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes a token for `room`, or says how long until one is there.
    pub fn check(&self, room: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(room) && buckets.len() >= MAX_TRACKED_ROOMS {
            // Starting every room afresh bounds the memory; the per-client
            // limit still holds meanwhile.
            buckets.clear();
        }
        let rate = self.rate;
        buckets
            .entry(room.to_owned())
            .or_insert_with(|| TokenBucket::new(rate, now))
            .take(rate, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_oldest_go_first() {
        let cache = Cache::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        cache.put("a".into(), 1, t0);
        cache.put("b".into(), 2, t0);
        cache.put("a".into(), 3, t0 + Duration::from_secs(1));
        cache.put("c".into(), 4, t0 + Duration::from_secs(2));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("b", t0), None, "the oldest entry was evicted");
        assert_eq!(cache.get("a", t0 + Duration::from_secs(2)), Some(3));
        assert_eq!(cache.get("a", t0 + Duration::from_secs(11)), None, "expired");
    }

    #[test]
    fn a_room_gets_its_burst_then_waits() {
        let limiter = RoomLimiter::new(Rate::per_minute(2, 2));
        let now = Instant::now();
        assert!(limiter.check("r", now).is_ok() && limiter.check("r", now).is_ok());
        assert!(limiter.check("r", now).is_err());
        assert!(limiter.check("other", now).is_ok(), "rooms are counted apart");
    }
}
