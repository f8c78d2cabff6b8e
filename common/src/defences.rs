//! Pure building blocks of the automatic defences against abuse (the backend
//! and aux-srv hold them; callers pass the time in):
//!
//! - [`AttemptLimiter`]: growing waits after failures (wrong passwords), per
//!   key, in bounded memory.
//! - [`RepeatWatch`]: one member sending the same text again and again.
//! - [`SurgeWatch`]: a room's message rate jumping far above its usual one.
//! - [`MinuteCounter`]: events in the last minute, approximately, in two words.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most keys an [`AttemptLimiter`] tracks.
pub const MAX_TRACKED_KEYS: usize = 100_000;

/// How failures turn into waits.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Failures allowed before any wait (0: never wait).
    pub free: u32,
    pub base: Duration,
    pub max: Duration,
    /// A key is forgotten this long after its last failure.
    pub forget_after: Duration,
}

impl Backoff {
    /// The wait after `failures` failures: none up to `free`, then `base`,
    /// doubling with each further failure, up to `max`.
    pub fn delay(&self, failures: u32) -> Duration {
        if self.free == 0 || failures < self.free {
            return Duration::ZERO;
        }
        let doublings = (failures - self.free).min(30);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// Failures per key (a client address, a room) and the wait they earned.
#[derive(Debug)]
pub struct AttemptLimiter<K> {
    backoff: Backoff,
    entries: Mutex<HashMap<K, Failures>>,
}

impl<K: Hash + Eq + Clone> AttemptLimiter<K> {
    pub fn new(backoff: Backoff) -> Self {
        AttemptLimiter { backoff, entries: Mutex::new(HashMap::new()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Failures>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `Err(wait)` while `key` must wait before its next attempt.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.backoff.free == 0 {
            return Ok(());
        }
        let entries = self.lock();
        let Some(f) = entries.get(key) else { return Ok(()) };
        let until = f.last + self.backoff.delay(f.count);
        match until.checked_duration_since(now) {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Records a failure of `key`; returns the wait it now owes.
    pub fn fail(&self, key: &K, now: Instant) -> Duration {
        if self.backoff.free == 0 {
            return Duration::ZERO;
        }
        let forget = self.backoff.forget_after;
        let mut entries = self.lock();
        if !entries.contains_key(key) && entries.len() >= MAX_TRACKED_KEYS {
            entries.retain(|_, f| now.saturating_duration_since(f.last) < forget);
            if entries.len() >= MAX_TRACKED_KEYS {
                // Full of recent failures: forget the ones owing no wait, and
                // if that is not enough, the whole map (an attacker rotating
                // addresses gains less from this than from unbounded memory;
                // the per-room limit still holds).
                let backoff = self.backoff;
                entries.retain(|_, f| backoff.delay(f.count) > Duration::ZERO);
                if entries.len() >= MAX_TRACKED_KEYS {
                    entries.clear();
                }
            }
        }
        let f = entries.entry(key.clone()).or_insert(Failures { count: 0, last: now });
        if now.saturating_duration_since(f.last) >= forget {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        self.backoff.delay(f.count)
    }

    /// Forgets `key`'s failures (after a success).
    pub fn clear(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Drops keys whose last failure is older than `forget_after`.
    pub fn prune(&self, now: Instant) {
        let forget = self.backoff.forget_after;
        self.lock().retain(|_, f| now.saturating_duration_since(f.last) < forget);
    }

    pub fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// A text's fingerprint for spam repeats: trimmed and case-folded, hashed
/// without allocating.
pub fn text_fingerprint(text: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        hasher.write_u32(u32::from(c));
    }
    hasher.finish()
}

/// The texts one member sent recently: more than `max` of the same text
/// within `window` is a spam repeat. Holds at most `max` entries, allocated
/// on the first text (an idle connection holds none).
#[derive(Debug, Default)]
pub struct RepeatWatch {
    recent: Vec<(u64, Instant)>,
}

impl RepeatWatch {
    /// Records `text` unless it would be its `max + 1`-th time within
    /// `window`; then `Err(wait)` until the oldest of them leaves the window.
    pub fn check(
        &mut self,
        text: &str,
        max: u32,
        window: Duration,
        now: Instant,
    ) -> Result<(), Duration> {
        if max == 0 {
            return Ok(());
        }
        let fingerprint = text_fingerprint(text);
        self.recent.retain(|(_, at)| now.saturating_duration_since(*at) < window);
        let same = self.recent.iter().filter(|(f, _)| *f == fingerprint);
        if same.clone().count() >= max as usize {
            let oldest = same.map(|(_, at)| *at).min().unwrap_or(now);
            return Err((oldest + window)
                .saturating_duration_since(now)
                .max(Duration::from_millis(1)));
        }
        // Bounded: the oldest entry makes room (many different texts are the
        // rate limit's business, not this watch's).
        let cap = (max as usize * 4).clamp(4, 64);
        if self.recent.len() >= cap {
            self.recent.remove(0);
        }
        self.recent.push((fingerprint, now));
        Ok(())
    }
}

/// Events in the last minute, approximately: this minute's count plus the
/// previous minute's, weighted by how much of it the last 60 s still cover.
#[derive(Debug, Clone, Copy, Default)]
pub struct MinuteCounter {
    minute: u64,
    current: u32,
    previous: u32,
}

impl MinuteCounter {
    /// Counts an event at `now_ms` (any monotonic milliseconds) and returns
    /// the estimate of events in the last 60 s, this one included.
    pub fn record(&mut self, now_ms: u64) -> u32 {
        self.roll(now_ms);
        self.current = self.current.saturating_add(1);
        self.estimate(now_ms)
    }

    /// The estimate without counting.
    pub fn estimate(&self, now_ms: u64) -> u32 {
        let (current, previous) = match (now_ms / 60_000).checked_sub(self.minute) {
            Some(0) => (self.current, self.previous),
            Some(1) => (0, self.current),
            _ => (0, 0),
        };
        let into = (now_ms % 60_000) as f64 / 60_000.0;
        current.saturating_add((f64::from(previous) * (1.0 - into)) as u32)
    }

    fn roll(&mut self, now_ms: u64) {
        let minute = now_ms / 60_000;
        match minute.saturating_sub(self.minute) {
            0 => {}
            1 => (self.previous, self.current) = (self.current, 0),
            _ => (self.previous, self.current) = (0, 0),
        }
        self.minute = minute;
    }
}

/// Length of one [`SurgeWatch`] window.
pub const SURGE_WINDOW_MS: u64 = 10_000;
/// Weight of the newest window in the moving average.
const SURGE_ALPHA: f64 = 0.2;

/// When a room's message rate jumps far above its normal: messages are
/// counted in 10-second windows; the usual rate is an exponentially weighted
/// moving average of past windows (empty ones included). A surge is the
/// current window going above `factor` × the average and above a floor.
#[derive(Debug, Clone, Copy, Default)]
pub struct SurgeWatch {
    window: u64,
    count: u32,
    /// Messages per window, on average.
    average: f64,
}

impl SurgeWatch {
    /// Counts a message at `now_ms`; true when this message makes a surge
    /// (`floor_per_minute` is the absolute floor, scaled to the window).
    pub fn record(&mut self, now_ms: u64, factor: f64, floor_per_minute: u32) -> bool {
        let window = now_ms / SURGE_WINDOW_MS;
        if window != self.window {
            // Fold the finished window, then any empty ones after it.
            let gap = window.saturating_sub(self.window);
            self.average = self.average * (1.0 - SURGE_ALPHA) + f64::from(self.count) * SURGE_ALPHA;
            if gap > 1 {
                let empty = (gap - 1).min(1000) as i32;
                self.average *= (1.0 - SURGE_ALPHA).powi(empty);
            }
            self.window = window;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        let floor = f64::from(floor_per_minute) * SURGE_WINDOW_MS as f64 / 60_000.0;
        let threshold = (self.average * factor).max(floor);
        f64::from(self.count) > threshold
    }

    /// Forgets the surge once handled, so that it does not raise the usual
    /// rate (a flood must not make the next flood look normal).
    pub fn reset_window(&mut self) {
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff(free: u32) -> Backoff {
        Backoff {
            free,
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
            forget_after: Duration::from_secs(600),
        }
    }

    #[test]
    fn waits_grow_after_the_free_failures() {
        let b = backoff(3);
        let waits: Vec<u64> = (1..=10).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(waits, [0, 0, 1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(backoff(0).delay(1000), Duration::ZERO, "0 turns it off");
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(60), "no overflow");
    }

    #[test]
    fn attempt_limiter_per_key() {
        let limiter = AttemptLimiter::new(backoff(2));
        let t0 = Instant::now();
        let (a, b) = ("a".to_owned(), "b".to_owned());
        assert_eq!(limiter.fail(&a, t0), Duration::ZERO);
        assert!(limiter.check(&a, t0).is_ok());
        assert_eq!(limiter.fail(&a, t0), Duration::from_secs(1));
        assert_eq!(limiter.check(&a, t0), Err(Duration::from_secs(1)));
        assert!(limiter.check(&b, t0).is_ok(), "other keys are not affected");
        let t1 = t0 + Duration::from_millis(1001);
        assert!(limiter.check(&a, t1).is_ok(), "the wait is over");
        assert_eq!(limiter.fail(&a, t1), Duration::from_secs(2), "and the next one doubles");
        limiter.clear(&a);
        assert!(limiter.check(&a, t1).is_ok());
        limiter.fail(&b, t0);
        let later = t0 + Duration::from_secs(601);
        assert_eq!(limiter.fail(&b, later), Duration::ZERO, "forgotten after a quiet while");
        limiter.prune(later + Duration::from_secs(601));
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn attempt_limiter_memory_is_bounded() {
        let limiter = AttemptLimiter::new(backoff(5));
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED_KEYS as u32 + 10) {
            limiter.fail(&i, t0);
        }
        assert!(limiter.tracked() <= MAX_TRACKED_KEYS);
    }

    #[test]
    fn fingerprints_ignore_case_and_outer_space() {
        assert_eq!(text_fingerprint("  Buy NOW "), text_fingerprint("buy now"));
        assert_eq!(text_fingerprint("STRASSE"), text_fingerprint("strasse"));
        assert_ne!(text_fingerprint("buy now"), text_fingerprint("buy  now"));
    }

    #[test]
    fn repeats_beyond_max_in_the_window_are_refused() {
        let mut watch = RepeatWatch::default();
        let window = Duration::from_secs(60);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(watch.check("spam", 3, window, t0).is_ok());
        }
        let wait = watch.check(" SPAM", 3, window, t0 + Duration::from_secs(10)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(50));
        assert!(watch.check("other", 3, window, t0).is_ok());
        assert!(watch.check("spam", 3, window, t0 + window).is_ok(), "the window moved on");
        assert!(watch.check("spam", 0, window, t0).is_ok(), "0 turns it off");
        for i in 0..100 {
            assert!(watch.check(&i.to_string(), 3, window, t0 + window).is_ok());
        }
        assert!(watch.recent.len() <= 12, "bounded: {}", watch.recent.len());
    }

    #[test]
    fn minute_counter() {
        let mut c = MinuteCounter::default();
        for _ in 0..9 {
            c.record(1_000);
        }
        assert_eq!(c.record(59_000), 10);
        assert_eq!(c.estimate(90_000), 5, "half of last minute's");
        assert_eq!(c.estimate(200_000), 0);
        assert_eq!(c.record(200_000), 1);
    }

    #[test]
    fn surges_stand_out_from_the_usual_rate() {
        let mut s = SurgeWatch::default();
        let (factor, floor) = (5.0, 60); // floor: 10 per window
        // A steady 8 messages per window for a few minutes: no surge.
        for w in 0..30 {
            for i in 0..8 {
                assert!(!s.record(w * SURGE_WINDOW_MS + i * 100, factor, floor), "window {w}");
            }
        }
        // The usual rate is just under 8: a surge is about 40 in one window.
        assert!(s.average > 7.9 && s.average < 8.0, "{}", s.average);
        let w = 30 * SURGE_WINDOW_MS;
        let surged = (0..60).position(|i| s.record(w + i, factor, floor));
        assert_eq!(surged, Some(39), "the 40th message of the window");
        // A quiet room: the floor decides.
        let mut quiet = SurgeWatch::default();
        let surged = (0..20).position(|i| quiet.record(i, factor, floor));
        assert_eq!(surged, Some(10));
    }
}
