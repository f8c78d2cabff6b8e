//! The placement score: how loaded a backend is, from its last load report.
//! A new room goes to the healthy, non-draining backend with the lowest score.
//!
//! Each measure is divided by its budget (`placement.*` in the config; for
//! connections, the backend's own `max_connections`), so 1.0 means "that
//! resource is full", and the fractions are weighted and added:
//!
//! | measure | weight | why |
//! |---|---|---|
//! | connections / max_connections | 0.30 | the hard limit of a backend: memory and fan-out grow with it |
//! | CPU cores / budget | 0.25 | what actually saturates under chat traffic |
//! | messages per second / budget | 0.15 | leads CPU: rising traffic shows here first |
//! | memory / budget | 0.15 | rooms keep their ring buffers in RAM |
//! | rooms / budget | 0.15 | plus rooms placed since the last report, so that a burst of creations between two polls spreads out instead of all going to the one backend that looked emptiest |
//!
//! A backend at its connection limit scores [`FULL`] and gets a room only if
//! every backend is full.

use common::config::PlacementBudgets;
use common::control::LoadReport;

pub const W_CONNECTIONS: f64 = 0.30;
pub const W_CPU: f64 = 0.25;
pub const W_RATE: f64 = 0.15;
pub const W_MEMORY: f64 = 0.15;
pub const W_ROOMS: f64 = 0.15;
/// The score of a backend that cannot take another connection.
pub const FULL: f64 = 1.0e6;

/// The load score of a backend; lower is less loaded.
pub fn score(report: &LoadReport, placed_since_report: u64, budgets: &PlacementBudgets) -> f64 {
    if report.max_connections > 0 && report.connections >= report.max_connections {
        return FULL;
    }
    let fraction = |value: f64, budget: f64| {
        if budget > 0.0 && value.is_finite() { (value / budget).max(0.0) } else { 0.0 }
    };
    let connections = fraction(report.connections as f64, report.max_connections as f64);
    let cpu = fraction(report.cpu_cores, budgets.cpu_cores);
    let rate = fraction(report.messages_per_sec, budgets.messages_per_sec);
    let memory = fraction(report.memory_bytes as f64, budgets.memory_bytes as f64);
    let rooms = fraction((report.rooms + placed_since_report) as f64, budgets.rooms as f64);
    W_CONNECTIONS * connections + W_CPU * cpu + W_RATE * rate + W_MEMORY * memory + W_ROOMS * rooms
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idle() -> LoadReport {
        LoadReport {
            backend_id: "b".into(),
            instance: 1,
            public_url: "ws://x".into(),
            draining: false,
            connections: 0,
            max_connections: 1000,
            rooms: 0,
            messages_per_sec: 0.0,
            cpu_cores: 0.0,
            memory_bytes: 0,
            removed: Vec::new(),
            removed_cursor: 0,
            removed_complete: true,
            frozen_rooms: 0,
            evacuate: false,
            pending_imports: Vec::new(),
        }
    }

    #[test]
    fn every_measure_raises_the_score() {
        let budgets = PlacementBudgets::default();
        let base = score(&idle(), 0, &budgets);
        assert_eq!(base, 0.0);
        let loaded = [
            LoadReport { connections: 100, ..idle() },
            LoadReport { cpu_cores: 0.5, ..idle() },
            LoadReport { messages_per_sec: 100.0, ..idle() },
            LoadReport { memory_bytes: 100 << 20, ..idle() },
            LoadReport { rooms: 10, ..idle() },
        ];
        for report in &loaded {
            assert!(score(report, 0, &budgets) > base, "{report:?}");
        }
        assert!(score(&idle(), 1, &budgets) > base, "pending placements count");
    }

    #[test]
    fn weights_add_up_to_one_at_full_budget() {
        let budgets = PlacementBudgets::default();
        let full = LoadReport {
            connections: 999,
            max_connections: 999 + 1,
            cpu_cores: budgets.cpu_cores,
            messages_per_sec: budgets.messages_per_sec,
            memory_bytes: budgets.memory_bytes,
            rooms: budgets.rooms,
            ..idle()
        };
        assert!((score(&full, 0, &budgets) - 1.0).abs() < 0.01);
        let at_limit = LoadReport { connections: 1000, ..idle() };
        assert_eq!(score(&at_limit, 0, &budgets), FULL);
    }

    #[test]
    fn a_busy_backend_loses_to_many_quiet_rooms() {
        // 10 % of connections in use weighs as much as 4000 idle rooms: a
        // backend with live traffic is avoided long before rooms pile up.
        let budgets = PlacementBudgets::default();
        let busy = LoadReport { connections: 100, rooms: 5, ..idle() };
        let quiet = LoadReport { rooms: 1500, ..idle() };
        assert!(score(&quiet, 0, &budgets) < score(&busy, 0, &budgets));
        let garbage = LoadReport { cpu_cores: f64::NAN, messages_per_sec: -3.0, ..idle() };
        assert_eq!(score(&garbage, 0, &budgets), 0.0);
    }
}
