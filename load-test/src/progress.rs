//! The one-line progress a run shows on stderr every second: connections,
//! each latency's rate and percentiles over the last second, losses, errors.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write as _};

use crate::cli::Scenario;
use crate::report;
use crate::stats::{Percentiles, new_histogram, now_ms};
use crate::worker::Progress;

pub fn show_progress(scenario: &Scenario, start_ms: u64, latest: &BTreeMap<usize, Progress>) {
    let elapsed = now_ms().saturating_sub(start_ms) as f64 / 1000.0;
    let total = scenario.common().duration.as_secs_f64();
    let connected: u64 = latest.values().map(|p| p.connected).sum();
    let mut line = format!("[{elapsed:>5.1}s/{total:.0}s]");
    if scenario.connections() > 0 {
        line.push_str(&format!(" conns {connected}"));
    }
    let mut names: BTreeSet<&String> = BTreeSet::new();
    for p in latest.values() {
        names.extend(p.last_second.keys());
    }
    for name in names {
        let mut h = new_histogram();
        for p in latest.values() {
            if let Some(d) = p.last_second.get(name) {
                d.add_to(&mut h);
            }
        }
        let pct = Percentiles::of(&h);
        if pct.count == 0 {
            continue;
        }
        line.push_str(&format!(
            " | {name} {}/s p50 {:.1}ms p99 {:.1}ms",
            report::thousands(pct.count as f64),
            pct.p50_ms,
            pct.p99_ms
        ));
    }
    let counter =
        |k: &str| latest.values().map(|p| p.counters.get(k).copied().unwrap_or(0)).sum::<u64>();
    let prefixed = |pre: &str| {
        latest
            .values()
            .flat_map(|p| p.counters.iter())
            .filter(|(k, _)| k.starts_with(pre))
            .map(|(_, v)| v)
            .sum::<u64>()
    };
    let lost = counter("lost.gaps");
    let errors =
        prefixed("error.") + prefixed("http.") + prefixed("join_failed.") + prefixed("close.");
    line.push_str(&format!(" | lost {lost} errors {errors}"));
    if lost > 0 {
        line.push_str("  <-- LOSS");
    }
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r{line:<150}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}
