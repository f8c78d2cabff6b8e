//! The end of a run: figures users feel (latency, throughput, losses), what
//! it cost the services (CPU seconds, resident memory), as a table, as JSON,
//! and the timeline the plot is drawn from.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::cli::Scenario;
use crate::stats::{Collected, Percentiles};
use crate::worker::RoomTail;

/// One server's `/metrics` at the three moments of a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ServiceCost {
    pub url: String,
    /// `backend` or `aux`.
    pub role: String,
    /// Process CPU seconds during the measured phase (go → drained).
    pub cpu_seconds: f64,
    /// `procfs` (clock ticks, for a server on this machine) or `metrics`
    /// (`process_cpu_seconds_total`, whole seconds only).
    pub cpu_source: String,
    pub rss_before_bytes: u64,
    pub rss_ready_bytes: u64,
    pub rss_after_bytes: u64,
    /// `instantchat_backend_connections` when drained.
    pub connections: u64,
    /// Frames the backend says it queued during the measured phase.
    pub delivered_frames: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SeriesReport {
    #[serde(flatten)]
    pub latency: Percentiles,
    /// Events per second over the measured phase.
    pub per_sec: f64,
    /// The busiest second of the timeline.
    pub peak_per_sec: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Losses {
    /// Messages lost: `gaps + tail + unacked`.
    pub total: u64,
    /// Seqs a member skipped.
    pub gaps: u64,
    /// Messages a member never got at the end (its room went further).
    pub tail: u64,
    /// Messages sent that the sender never saw come back (and that were not
    /// refused with an error frame).
    pub unacked: u64,
    pub duplicates: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ratios {
    pub deliveries_per_backend_cpu_second: Option<f64>,
    pub joins_per_backend_cpu_second: Option<f64>,
    pub backend_rss_bytes_per_connection: Option<f64>,
    pub aux_requests_per_cpu_second: Option<f64>,
}

/// A second of the timeline: per series, its events and latency.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Point {
    pub t: u64,
    pub series: BTreeMap<String, Percentiles>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Restart {
    /// From the restart command's end until `/readyz` answered 200.
    pub ready_after_s: Option<f64>,
    /// …until every sampled room was found again.
    pub all_found_after_s: Option<f64>,
    pub sampled: usize,
    pub found: usize,
    /// aux-srv's own account (`instantchat_aux_startup_rebuild_seconds`):
    /// from its start until its room map was rebuilt from the backends.
    #[serde(default)]
    pub rebuild_seconds: Option<f64>,
    /// Rooms in aux-srv's map then (`instantchat_aux_rooms_known`).
    #[serde(default)]
    pub rooms_known: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub params: Scenario,
    pub run_id: String,
    pub started_unix_ms: u64,
    pub duration_s: f64,
    pub workers: usize,
    pub sources: usize,
    pub connections_target: usize,
    pub connected: u64,
    pub join_failed: u64,
    pub series: BTreeMap<String, SeriesReport>,
    pub messages_sent: u64,
    pub losses: Losses,
    pub errors: u64,
    pub counters: BTreeMap<String, u64>,
    pub services: Vec<ServiceCost>,
    pub ratios: Ratios,
    pub timeline: Vec<Point>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Restart>,
    pub warnings: Vec<String>,
}

/// Tail losses: per room, how far each member stayed behind the furthest.
pub fn tail_losses(tails: &BTreeMap<usize, RoomTail>) -> u64 {
    tails.values().map(|r| r.members_last.iter().map(|last| r.max_seq - last).sum::<u64>()).sum()
}

/// Merges per-worker room tails.
pub fn merge_tails(into: &mut BTreeMap<usize, RoomTail>, other: &BTreeMap<usize, RoomTail>) {
    for (room, t) in other {
        let mine = into.entry(*room).or_default();
        mine.max_seq = mine.max_seq.max(t.max_seq);
        mine.members_last.extend_from_slice(&t.members_last);
    }
}

pub struct Inputs<'a> {
    pub scenario: &'a Scenario,
    pub run_id: String,
    pub started_unix_ms: u64,
    pub workers: usize,
    pub sources: usize,
    pub connected: u64,
    pub collected: &'a Collected,
    pub tails: &'a BTreeMap<usize, RoomTail>,
    pub services: Vec<ServiceCost>,
    pub restart: Option<Restart>,
    pub warnings: Vec<String>,
}

pub fn build(inp: Inputs<'_>) -> Report {
    let c = inp.collected;
    let duration = inp.scenario.common().duration.as_secs_f64().max(1e-3);
    let seconds = duration.ceil() as usize;
    let mut series = BTreeMap::new();
    for name in c.series.keys() {
        let h = c.histogram(name);
        let timeline = c.timeline.get(name);
        let in_window: u64 = timeline
            .map(|t| t.iter().take(seconds).map(|s| s.to_histogram().len()).sum())
            .unwrap_or(0);
        let peak = timeline
            .map(|t| t.iter().map(|s| s.to_histogram().len()).max().unwrap_or(0))
            .unwrap_or(0);
        let mut per_sec = in_window as f64 / duration;
        if let Scenario::Aux(a) = inp.scenario {
            // Creations fill the first part of the run, lookups the rest.
            let share = a.create_share.clamp(0.0, 1.0);
            let phase = if name == "create" { share } else { 1.0 - share };
            per_sec = in_window as f64 / (duration * phase).max(1e-3);
        }
        if name == "join" {
            // A storm is over before the duration is: its rate is joins over
            // the time they took.
            if let (Scenario::Connect(_), Some(&(_, last))) = (inp.scenario, c.marks.get("join")) {
                let span = (last.saturating_sub(inp.started_unix_ms) as f64 / 1000.0).max(1e-3);
                per_sec = in_window as f64 / span.min(duration);
            }
        }
        series.insert(
            name.clone(),
            SeriesReport {
                latency: crate::stats::Percentiles::of(&h),
                per_sec,
                peak_per_sec: peak,
            },
        );
    }
    let sent = c.counter("sent");
    let refused = c.counter("send_refused");
    let unacked = sent.saturating_sub(c.counter("acked") + refused);
    let gaps = c.counter("lost.gaps");
    let tail = tail_losses(inp.tails);
    let losses = Losses {
        total: gaps + tail + unacked,
        gaps,
        tail,
        unacked,
        duplicates: c.counter("duplicates"),
    };
    let errors = c.counter_prefix("error.")
        + c.counter_prefix("http.")
        + c.counter_prefix("join_failed.")
        + c.counter_prefix("close.")
        + c.counter("disconnected")
        + c.counter("send_failed");
    let backends: Vec<&ServiceCost> = inp.services.iter().filter(|s| s.role == "backend").collect();
    let backend_cpu: f64 = backends.iter().map(|s| s.cpu_seconds).sum();
    let rss_growth: f64 =
        backends.iter().map(|s| s.rss_after_bytes as f64 - s.rss_before_bytes as f64).sum();
    let deliveries = c.histogram("delivery").len();
    let joins_in_window: u64 =
        c.timeline.get("join").map(|t| t.iter().map(|s| s.to_histogram().len()).sum()).unwrap_or(0);
    let aux_cpu: f64 = inp.services.iter().filter(|s| s.role == "aux").map(|s| s.cpu_seconds).sum();
    let aux_requests = c.histogram("create").len() + c.histogram("lookup").len();
    let per_cpu = |n: u64, cpu: f64| (n > 0 && cpu > 0.0).then(|| n as f64 / cpu);
    let ratios = Ratios {
        deliveries_per_backend_cpu_second: per_cpu(deliveries, backend_cpu),
        joins_per_backend_cpu_second: if matches!(inp.scenario, Scenario::Connect(_)) {
            per_cpu(joins_in_window, backend_cpu)
        } else {
            None
        },
        backend_rss_bytes_per_connection: (inp.connected > 0 && !backends.is_empty())
            .then(|| rss_growth / inp.connected as f64),
        aux_requests_per_cpu_second: per_cpu(aux_requests, aux_cpu),
    };
    let len = c.timeline.values().map(Vec::len).max().unwrap_or(0);
    let timeline = (0..len)
        .map(|t| Point {
            t: t as u64,
            series: c
                .timeline
                .iter()
                .filter_map(|(name, secs)| {
                    secs.get(t).map(|d| (name.clone(), Percentiles::of(&d.to_histogram())))
                })
                .collect(),
        })
        .collect();
    let join_failed = c.counter_prefix("join_failed.");
    Report {
        scenario: inp.scenario.name().into(),
        params: inp.scenario.clone(),
        run_id: inp.run_id,
        started_unix_ms: inp.started_unix_ms,
        duration_s: duration,
        workers: inp.workers,
        sources: inp.sources,
        connections_target: inp.scenario.connections(),
        connected: inp.connected,
        join_failed,
        series,
        messages_sent: sent,
        losses,
        errors,
        counters: c.counters.clone(),
        services: inp.services,
        ratios,
        timeline,
        restart: inp.restart,
        warnings: inp.warnings,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Thousands separated by commas: 1234567 → 1,234,567.
pub fn thousands(n: f64) -> String {
    let whole = n.round() as i64;
    let digits = whole.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if whole < 0 { format!("-{out}") } else { out }
}

impl Report {
    /// Nothing lost, no duplicates, every connection joined.
    pub fn is_clean(&self) -> bool {
        self.losses.total == 0 && self.losses.duplicates == 0 && self.join_failed == 0
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "load-test {} — {:.1} s measured, {} worker(s), {} source address(es)",
            self.scenario, self.duration_s, self.workers, self.sources
        );
        if self.connections_target > 0 {
            let _ = writeln!(
                out,
                "connections: {} of {} joined, {} failed",
                self.connected, self.connections_target, self.join_failed
            );
        }
        let _ = writeln!(
            out,
            "{:<10} {:>11} {:>11} {:>11} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "series",
            "events",
            "per s",
            "peak/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        for (name, s) in &self.series {
            let l = &s.latency;
            let _ = writeln!(
                out,
                "{:<10} {:>11} {:>11} {:>11} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                name,
                thousands(l.count as f64),
                thousands(s.per_sec),
                thousands(s.peak_per_sec as f64),
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.p999_ms,
                l.max_ms
            );
        }
        if self.messages_sent > 0 || self.losses.total > 0 {
            let l = &self.losses;
            let _ = writeln!(
                out,
                "messages: {} sent, lost {} (gaps {}, tail {}, unacked {}), duplicates {}",
                thousands(self.messages_sent as f64),
                l.total,
                l.gaps,
                l.tail,
                l.unacked,
                l.duplicates
            );
        }
        let notable: Vec<String> = self
            .counters
            .iter()
            .filter(|(k, _)| {
                ["error.", "http.", "join_failed.", "close.", "closing."]
                    .iter()
                    .any(|p| k.starts_with(p))
                    || matches!(
                        k.as_str(),
                        "disconnected" | "send_failed" | "join_not_started" | "close_timeout"
                    )
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let _ = writeln!(
            out,
            "errors: {}{}",
            self.errors,
            if notable.is_empty() { String::new() } else { format!(" ({})", notable.join(", ")) }
        );
        for s in &self.services {
            let _ = writeln!(
                out,
                "{:<7} {}: cpu {:.2} s, rss {} → {} (ready {}), connections {}",
                s.role,
                s.url,
                s.cpu_seconds,
                mib(s.rss_before_bytes),
                mib(s.rss_after_bytes),
                mib(s.rss_ready_bytes),
                s.connections
            );
        }
        let r = &self.ratios;
        if let Some(v) = r.deliveries_per_backend_cpu_second {
            let _ = writeln!(out, "deliveries per backend CPU-second: {}", thousands(v));
        }
        if let Some(v) = r.joins_per_backend_cpu_second {
            let _ = writeln!(out, "joins per backend CPU-second: {}", thousands(v));
        }
        if let Some(v) = r.backend_rss_bytes_per_connection {
            let _ = writeln!(out, "backend memory per connection: {:.2} KiB", v / 1024.0);
        }
        if let Some(v) = r.aux_requests_per_cpu_second {
            let _ = writeln!(out, "aux-srv requests per CPU-second: {}", thousands(v));
        }
        if let Some(restart) = &self.restart {
            let fmt = |v: Option<f64>| v.map_or("never".to_owned(), |s| format!("{s:.3} s"));
            let _ = writeln!(
                out,
                "aux-srv restart: ready after {}, {}/{} sampled rooms found after {}; \
                 map of {} rooms rebuilt in {} (aux-srv's metric)",
                fmt(restart.ready_after_s),
                restart.found,
                restart.sampled,
                fmt(restart.all_found_after_s),
                restart.rooms_known.map_or("?".into(), |n| thousands(n as f64)),
                fmt(restart.rebuild_seconds)
            );
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_count_what_members_missed() {
        let mut all = BTreeMap::new();
        let a = BTreeMap::from([(0, RoomTail { max_seq: 10, members_last: vec![10, 8] })]);
        let b = BTreeMap::from([(0, RoomTail { max_seq: 12, members_last: vec![12] })]);
        merge_tails(&mut all, &a);
        merge_tails(&mut all, &b);
        assert_eq!(tail_losses(&all), 2 + 4);
    }

    #[test]
    fn number_format() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(12.0), "12");
        assert_eq!(thousands(-1000.0), "-1,000");
    }
}
