//! What a run measures: latency histograms (HDR, microseconds) per kind of
//! event, counted per second for the timeline, and named counters.
//!
//! One [`Collector`] per process; every connection task records into it.
//! Workers ship their [`Collected`] to the parent as JSON, which merges them
//! exactly (histograms travel as their recorded buckets, not as percentiles).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Longest latency kept exactly: one minute, in microseconds.
const MAX_MICROS: u64 = 60_000_000;

/// Nanoseconds since the Unix epoch: the clock every process on this machine
/// shares, so a stamp written by one worker is read by another.
pub fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

pub fn now_ms() -> u64 {
    now_nanos() / 1_000_000
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// A histogram as its recorded buckets: `(value, count)` pairs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HistData(pub Vec<(u64, u64)>);

impl HistData {
    pub fn of(h: &Histogram<u64>) -> Self {
        HistData(h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect())
    }

    pub fn add_to(&self, h: &mut Histogram<u64>) {
        for &(value, count) in &self.0 {
            h.saturating_record_n(value.clamp(1, MAX_MICROS), count);
        }
    }

    pub fn to_histogram(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        self.add_to(&mut h);
        h
    }
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

/// One kind of timed event (`delivery`, `join`, `create`, `lookup`).
#[derive(Debug, Clone)]
struct Series {
    total: Histogram<u64>,
    /// Index = second since the measurement started.
    per_second: Vec<Histogram<u64>>,
}

/// Events before the start (setup: joins) go in the totals only.
#[derive(Debug, Default)]
struct Inner {
    series: BTreeMap<String, Series>,
    counters: BTreeMap<String, u64>,
    marks: BTreeMap<String, (u64, u64)>,
    /// Unix ms of second 0 of the timeline; 0 while setting up.
    start_ms: u64,
}

/// Records events from any task of this process.
#[derive(Debug, Clone, Default)]
pub struct Collector {
    inner: Arc<Mutex<Inner>>,
}

/// A collector's content, shipped from a worker to the parent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Collected {
    pub series: BTreeMap<String, HistData>,
    /// `timeline[series][second]`.
    pub timeline: BTreeMap<String, Vec<HistData>>,
    pub counters: BTreeMap<String, u64>,
    /// Earliest and latest time (Unix ms) of a named moment, e.g. `join`.
    #[serde(default)]
    pub marks: BTreeMap<String, (u64, u64)>,
}

impl Collector {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts the timeline at `start_ms` (Unix ms).
    pub fn start(&self, start_ms: u64) {
        self.lock().start_ms = start_ms;
    }

    /// Records one event of `series` that took `micros`, observed at `at_ms`.
    pub fn record(&self, series: &str, micros: u64, at_ms: u64) {
        let mut inner = self.lock();
        let start = inner.start_ms;
        let s = match inner.series.get_mut(series) {
            Some(s) => s,
            None => inner
                .series
                .entry(series.to_owned())
                .or_insert_with(|| Series { total: new_histogram(), per_second: Vec::new() }),
        };
        let micros = micros.clamp(1, MAX_MICROS);
        s.total.saturating_record(micros);
        if start > 0 && at_ms >= start {
            let second = ((at_ms - start) / 1000) as usize;
            // A clock step or a very late event must not allocate without bound.
            if second < 24 * 3600 {
                while s.per_second.len() <= second {
                    s.per_second.push(new_histogram());
                }
                s.per_second[second].saturating_record(micros);
            }
        }
    }

    pub fn add(&self, counter: &str, n: u64) {
        if n == 0 {
            return;
        }
        let mut inner = self.lock();
        match inner.counters.get_mut(counter) {
            Some(c) => *c += n,
            None => {
                inner.counters.insert(counter.to_owned(), n);
            }
        }
    }

    /// Notes that `name` happened at `at_ms` (keeps the first and last).
    pub fn mark(&self, name: &str, at_ms: u64) {
        let mut inner = self.lock();
        let m = inner.marks.entry(name.to_owned()).or_insert((at_ms, at_ms));
        m.0 = m.0.min(at_ms);
        m.1 = m.1.max(at_ms);
    }

    pub fn counter(&self, counter: &str) -> u64 {
        self.lock().counters.get(counter).copied().unwrap_or(0)
    }

    /// Events of `series` recorded so far.
    pub fn count(&self, series: &str) -> u64 {
        self.lock().series.get(series).map_or(0, |s| s.total.len())
    }

    /// The histogram of `series` for one second of the timeline.
    pub fn second(&self, series: &str, second: usize) -> HistData {
        let inner = self.lock();
        inner
            .series
            .get(series)
            .and_then(|s| s.per_second.get(second))
            .map(HistData::of)
            .unwrap_or_default()
    }

    pub fn counters(&self) -> BTreeMap<String, u64> {
        self.lock().counters.clone()
    }

    pub fn collected(&self) -> Collected {
        let inner = self.lock();
        Collected {
            series: inner.series.iter().map(|(k, s)| (k.clone(), HistData::of(&s.total))).collect(),
            timeline: inner
                .series
                .iter()
                .map(|(k, s)| (k.clone(), s.per_second.iter().map(HistData::of).collect()))
                .collect(),
            counters: inner.counters.clone(),
            marks: inner.marks.clone(),
        }
    }
}

impl Collected {
    /// Adds another process's results to these.
    pub fn merge(&mut self, other: &Collected) {
        for (name, data) in &other.series {
            let mut h =
                self.series.get(name).map(HistData::to_histogram).unwrap_or_else(new_histogram);
            data.add_to(&mut h);
            self.series.insert(name.clone(), HistData::of(&h));
        }
        for (name, seconds) in &other.timeline {
            let mine = self.timeline.entry(name.clone()).or_default();
            for (i, data) in seconds.iter().enumerate() {
                if i >= mine.len() {
                    mine.push(data.clone());
                } else {
                    let mut h = mine[i].to_histogram();
                    data.add_to(&mut h);
                    mine[i] = HistData::of(&h);
                }
            }
        }
        for (name, n) in &other.counters {
            *self.counters.entry(name.clone()).or_default() += n;
        }
        for (name, &(first, last)) in &other.marks {
            let m = self.marks.entry(name.clone()).or_insert((first, last));
            m.0 = m.0.min(first);
            m.1 = m.1.max(last);
        }
    }

    pub fn histogram(&self, series: &str) -> Histogram<u64> {
        self.series.get(series).map(HistData::to_histogram).unwrap_or_else(new_histogram)
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Sum of the counters whose name starts with `prefix`.
    pub fn counter_prefix(&self, prefix: &str) -> u64 {
        self.counters.iter().filter(|(k, _)| k.starts_with(prefix)).map(|(_, v)| v).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_exact() {
        let a = Collector::default();
        let b = Collector::default();
        a.start(1000);
        b.start(1000);
        for i in 1..=100 {
            a.record("delivery", i * 10, 1500);
            b.record("delivery", i * 1000, 2500);
        }
        a.add("sent", 3);
        b.add("sent", 4);
        b.add("lost", 1);
        let mut all = a.collected();
        let from_b: Collected =
            serde_json::from_str(&serde_json::to_string(&b.collected()).unwrap()).unwrap();
        all.merge(&from_b);
        let h = all.histogram("delivery");
        assert_eq!(h.len(), 200);
        assert_eq!(all.counter("sent"), 7);
        assert_eq!(all.counter("lost"), 1);
        let timeline = &all.timeline["delivery"];
        assert_eq!(timeline.len(), 2);
        assert_eq!(timeline[0].to_histogram().len(), 100);
        assert_eq!(timeline[1].to_histogram().len(), 100);
        let p = Percentiles::of(&h);
        assert!(p.max_ms >= 99.9 && p.max_ms <= 100.1, "{p:?}");
        assert!(p.p50_ms >= 0.99 && p.p50_ms <= 1.01, "{p:?}");
    }

    #[test]
    fn events_before_the_start_count_only_in_totals() {
        let c = Collector::default();
        c.record("join", 5, 10);
        c.start(1_000);
        c.record("join", 5, 1_200);
        let all = c.collected();
        assert_eq!(all.histogram("join").len(), 2);
        assert_eq!(all.timeline["join"].len(), 1);
        assert_eq!(all.timeline["join"][0].to_histogram().len(), 1);
    }
}
