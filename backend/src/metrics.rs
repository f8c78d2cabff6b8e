//! The backend's Prometheus metrics, in a registry of its own (several
//! backends can run in one process: the local fleet, the tests).

use http_listener::metrics::Registrar;
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::disconnect::Disconnect;

pub struct Metrics {
    registry: Registry,
    pub connections: IntGauge,
    pub rooms: IntGauge,
    pub messages_received: IntCounter,
    pub messages_delivered: IntCounter,
    pub bytes_sent: IntCounter,
    pub rate_limited: IntCounter,
    pub disconnects: IntCounterVec,
    pub upgrades_refused: IntCounterVec,
    pub broadcast_seconds: Histogram,
    pub control_requests: IntCounterVec,
    pub control_rejected: IntCounterVec,
    pub rooms_removed: IntCounterVec,
    /// Room owners' acts, by act (topic, delete, kick, slow_mode, lock).
    pub owner_acts: IntCounterVec,
    /// Messages reported by members.
    pub reports: IntCounter,
    /// Joins refused by a ban or a lock, by reason.
    pub joins_barred: IntCounterVec,
    /// Votes by outcome: `changed`, `unchanged`, `refused`.
    pub votes: IntCounterVec,
    /// Refusals of the abuse defences, by reason (`crate::defences::Refusal`).
    pub refusals: IntCounterVec,
    /// Rooms frozen for a move (updated on each move step and sweep).
    pub rooms_frozen: IntGauge,
}

impl Metrics {
    pub fn new(backend_id: &str) -> Self {
        let registry = http_listener::metrics::registry();
        let r = Registrar(&registry);
        r.add(IntGauge::with_opts(
            Opts::new("instantchat_backend_info", "Constant 1, labelled with the backend id.")
                .const_label("backend", backend_id),
        ))
        .set(1);
        Metrics {
            connections: r.gauge("instantchat_backend_connections", "Open websocket connections."),
            rooms: r.gauge("instantchat_backend_rooms", "Rooms held in memory."),
            messages_received: r.counter(
                "instantchat_backend_messages_received_total",
                "Chat messages accepted from clients and the HTTP API.",
            ),
            messages_delivered: r.counter(
                "instantchat_backend_messages_delivered_total",
                "Frames queued to member connections (one per member per broadcast).",
            ),
            bytes_sent: r.counter(
                "instantchat_backend_sent_bytes_total",
                "Payload bytes queued to member connections.",
            ),
            rate_limited: r.counter(
                "instantchat_backend_rate_limited_total",
                "Client frames refused by the per-connection rate limit.",
            ),
            disconnects: r.counters(
                "instantchat_backend_disconnects_total",
                "Websocket disconnects by reason (slow_consumer: closed 1013, queue full).",
                &["reason"],
            ),
            upgrades_refused: r.counters(
                "instantchat_backend_upgrades_refused_total",
                "Websocket upgrades refused before the handshake.",
                &["reason"],
            ),
            broadcast_seconds: r.histogram(
                "instantchat_backend_broadcast_duration_seconds",
                "Time to queue one frame to every member of a room.",
                &[1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1],
            ),
            control_requests: r.counters(
                "instantchat_backend_control_requests_total",
                "Control-protocol requests by kind and result.",
                &["kind", "result"],
            ),
            control_rejected: r.counters(
                "instantchat_backend_control_rejected_total",
                "Control connections closed for a bad token, garbage or an oversize frame.",
                &["reason"],
            ),
            rooms_removed: r.counters(
                "instantchat_backend_rooms_removed_total",
                "Rooms removed.",
                &["reason"],
            ),
            owner_acts: r.counters(
                "instantchat_backend_owner_acts_total",
                "Room owners' acts, by act.",
                &["act"],
            ),
            reports: r.counter(
                "instantchat_backend_reports_total",
                "Messages reported by members (one per member and message).",
            ),
            joins_barred: r.counters(
                "instantchat_backend_joins_barred_total",
                "Joins refused by a ban (room or fleet-wide) or a locked room.",
                &["reason"],
            ),
            refusals: r.counters(
                "instantchat_backend_refusals_total",
                "Joins, connections and messages refused by the abuse defences, by reason.",
                &["reason"],
            ),
            votes: r.counters(
                "instantchat_backend_votes_total",
                "Vote frames by outcome: changed the counts, changed nothing, refused.",
                &["outcome"],
            ),
            rooms_frozen: r.gauge(
                "instantchat_backend_rooms_frozen",
                "Rooms frozen for a move (writes wait).",
            ),
            registry,
        }
    }

    pub fn disconnect(&self, reason: Disconnect) {
        self.disconnects.with_label_values(&[reason.label()]).inc();
    }

    /// Process CPU seconds and resident bytes, from the process collector.
    pub fn process_stats(&self) -> (f64, u64) {
        let mut cpu = 0.0;
        let mut rss = 0;
        for family in self.registry.gather() {
            match family.name() {
                "process_cpu_seconds_total" => {
                    cpu = family.get_metric().first().map_or(0.0, |m| m.get_counter().get_value());
                }
                "process_resident_memory_bytes" => {
                    rss = family.get_metric().first().map_or(0.0, |m| m.get_gauge().get_value())
                        as u64;
                }
                _ => {}
            }
        }
        (cpu, rss)
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        http_listener::metrics::render(&self.registry)
    }
}
