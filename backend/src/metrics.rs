//! The backend's Prometheus metrics, in a registry of its own (several
//! backends can run in one process: the local fleet, the tests).

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

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
        let registry = Registry::new_custom(None, None).expect("empty registry");
        let m = Metrics {
            connections: IntGauge::new(
                "instantchat_backend_connections",
                "Open websocket connections.",
            )
            .expect("valid metric"),
            rooms: IntGauge::new("instantchat_backend_rooms", "Rooms held in memory.")
                .expect("valid metric"),
            messages_received: IntCounter::new(
                "instantchat_backend_messages_received_total",
                "Chat messages accepted from clients and the HTTP API.",
            )
            .expect("valid metric"),
            messages_delivered: IntCounter::new(
                "instantchat_backend_messages_delivered_total",
                "Frames queued to member connections (one per member per broadcast).",
            )
            .expect("valid metric"),
            bytes_sent: IntCounter::new(
                "instantchat_backend_sent_bytes_total",
                "Payload bytes queued to member connections.",
            )
            .expect("valid metric"),
            rate_limited: IntCounter::new(
                "instantchat_backend_rate_limited_total",
                "Client frames refused by the per-connection rate limit.",
            )
            .expect("valid metric"),
            disconnects: IntCounterVec::new(
                Opts::new(
                    "instantchat_backend_disconnects_total",
                    "Websocket disconnects by reason (slow_consumer: closed 1013, queue full).",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            upgrades_refused: IntCounterVec::new(
                Opts::new(
                    "instantchat_backend_upgrades_refused_total",
                    "Websocket upgrades refused before the handshake.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            broadcast_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "instantchat_backend_broadcast_duration_seconds",
                    "Time to queue one frame to every member of a room.",
                )
                .buckets(vec![
                    1e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2, 0.1,
                ]),
            )
            .expect("valid metric"),
            control_requests: IntCounterVec::new(
                Opts::new(
                    "instantchat_backend_control_requests_total",
                    "Control-protocol requests by kind and result.",
                ),
                &["kind", "result"],
            )
            .expect("valid metric"),
            control_rejected: IntCounterVec::new(
                Opts::new(
                    "instantchat_backend_control_rejected_total",
                    "Control connections closed for a bad token, garbage or an oversize frame.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            rooms_removed: IntCounterVec::new(
                Opts::new("instantchat_backend_rooms_removed_total", "Rooms removed."),
                &["reason"],
            )
            .expect("valid metric"),
            owner_acts: IntCounterVec::new(
                Opts::new("instantchat_backend_owner_acts_total", "Room owners' acts, by act."),
                &["act"],
            )
            .expect("valid metric"),
            reports: IntCounter::new(
                "instantchat_backend_reports_total",
                "Messages reported by members (one per member and message).",
            )
            .expect("valid metric"),
            joins_barred: IntCounterVec::new(
                Opts::new(
                    "instantchat_backend_joins_barred_total",
                    "Joins refused by a ban (room or fleet-wide) or a locked room.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            refusals: IntCounterVec::new(
                Opts::new(
                    "instantchat_backend_refusals_total",
                    "Joins, connections and messages refused by the abuse defences, by reason.",
                ),
                &["reason"],
            )
            .expect("valid metric"),
            votes: IntCounterVec::new(
                Opts::new(
                    "instantchat_backend_votes_total",
                    "Vote frames by outcome: changed the counts, changed nothing, refused.",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            rooms_frozen: IntGauge::new(
                "instantchat_backend_rooms_frozen",
                "Rooms frozen for a move (writes wait).",
            )
            .expect("valid metric"),
            registry,
        };
        let r = &m.registry;
        r.register(Box::new(m.connections.clone())).expect("unique");
        r.register(Box::new(m.rooms.clone())).expect("unique");
        r.register(Box::new(m.messages_received.clone())).expect("unique");
        r.register(Box::new(m.messages_delivered.clone())).expect("unique");
        r.register(Box::new(m.bytes_sent.clone())).expect("unique");
        r.register(Box::new(m.rate_limited.clone())).expect("unique");
        r.register(Box::new(m.disconnects.clone())).expect("unique");
        r.register(Box::new(m.upgrades_refused.clone())).expect("unique");
        r.register(Box::new(m.broadcast_seconds.clone())).expect("unique");
        r.register(Box::new(m.control_requests.clone())).expect("unique");
        r.register(Box::new(m.control_rejected.clone())).expect("unique");
        r.register(Box::new(m.rooms_removed.clone())).expect("unique");
        r.register(Box::new(m.owner_acts.clone())).expect("unique");
        r.register(Box::new(m.reports.clone())).expect("unique");
        r.register(Box::new(m.joins_barred.clone())).expect("unique");
        r.register(Box::new(m.votes.clone())).expect("unique");
        r.register(Box::new(m.refusals.clone())).expect("unique");
        r.register(Box::new(m.rooms_frozen.clone())).expect("unique");
        let info = IntGauge::with_opts(
            Opts::new("instantchat_backend_info", "Constant 1, labelled with the backend id.")
                .const_label("backend", backend_id),
        )
        .expect("valid metric");
        info.set(1);
        r.register(Box::new(info)).expect("unique");
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("unique");
        m
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
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
