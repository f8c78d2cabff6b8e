//! aux-srv's Prometheus metrics, in a registry of its own (tests run several
//! services in one process). No room name is ever a label.

use http_listener::metrics::Registrar;
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

pub struct Metrics {
    pub registry: Registry,
    /// By backend and result (`created`, `existed`, `draining`, `failed`).
    pub placements: IntCounterVec,
    /// By result: `hit` (in the map), `rebuilt` (found by asking the
    /// backends), `miss` (nobody has it), `unavailable`.
    pub lookups: IntCounterVec,
    /// `lookups`' children, resolved once: lookups are the hot path.
    pub lookup_hit: IntCounter,
    pub lookup_rebuilt: IntCounter,
    pub lookup_miss: IntCounter,
    pub lookup_unavailable: IntCounter,
    /// One sweep of one backend's room list.
    pub rebuild_seconds: Histogram,
    /// Start-up until the room map was rebuilt (or the wait gave up).
    pub startup_rebuild_seconds: prometheus::Gauge,
    /// 1 for the state each backend is in, by backend and state.
    pub backend_state: IntGaugeVec,
    pub backend_score: prometheus::GaugeVec,
    pub rooms_known: IntGauge,
    pub http_requests: IntCounterVec,
    pub http_seconds: HistogramVec,
    pub control_requests: IntCounterVec,
    pub rate_limited: IntCounterVec,
    /// The same room found on two backends: must stay 0.
    pub duplicate_rooms: prometheus::IntCounter,
    /// `http_requests` and `http_seconds` of the room API's route, resolved
    /// once: label lookups hash and lock on every request otherwise.
    room_route: RouteMetrics,
}

/// The route every room lookup and creation is counted under.
pub const ROOM_ROUTE: &str = "/api/rooms/{room}";

struct RouteMetrics {
    seconds: Histogram,
    /// By status, for the statuses the route answers most.
    statuses: Vec<(u16, IntCounter)>,
}

pub const BACKEND_STATES: &[&str] = &["unknown", "up", "down", "draining"];

impl Metrics {
    pub fn new() -> Self {
        let registry = http_listener::metrics::registry();
        let r = Registrar(&registry);
        let placements = r.counters(
            "instantchat_aux_placements_total",
            "Room placements by backend and result.",
            &["backend", "result"],
        );
        let lookups =
            r.counters("instantchat_aux_lookups_total", "Room lookups by result.", &["result"]);
        let rebuild_seconds = r.histogram(
            "instantchat_aux_rebuild_duration_seconds",
            "Time to sweep one backend's room list into the room map.",
            &[0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
        );
        let startup_rebuild_seconds = r.add(prometheus::Gauge::new(
            "instantchat_aux_startup_rebuild_seconds",
            "Time from start until the room map was rebuilt from every backend.",
        ));
        let backend_state = r.add(IntGaugeVec::new(
            Opts::new("instantchat_aux_backend_state", "1 for the state each backend is in."),
            &["backend", "state"],
        ));
        let backend_score = r.add(prometheus::GaugeVec::new(
            Opts::new("instantchat_aux_backend_score", "Placement score (lower gets new rooms)."),
            &["backend"],
        ));
        let rooms_known = r.gauge("instantchat_aux_rooms_known", "Rooms in the room map.");
        let http_requests = r.counters(
            "instantchat_aux_http_requests_total",
            "HTTP requests by route and status.",
            &["route", "status"],
        );
        let http_seconds = r.add(HistogramVec::new(
            HistogramOpts::new(
                "instantchat_aux_http_request_duration_seconds",
                "HTTP request time.",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["route"],
        ));
        let control_requests = r.counters(
            "instantchat_aux_control_requests_total",
            "Control requests to backends by kind and result (ok, error, unreachable, uncertain).",
            &["kind", "result"],
        );
        let rate_limited = r.counters(
            "instantchat_aux_rate_limited_total",
            "Requests refused with 429, by limit.",
            &["limit"],
        );
        let duplicate_rooms = r.counter(
            "instantchat_aux_duplicate_rooms_total",
            "Times one room name was found on two backends (must stay 0).",
        );
        let room_route = RouteMetrics {
            seconds: http_seconds.with_label_values(&[ROOM_ROUTE]),
            statuses: [200u16, 201, 404]
                .iter()
                .map(|s| (*s, http_requests.with_label_values(&[ROOM_ROUTE, &s.to_string()])))
                .collect(),
        };
        Metrics {
            room_route,
            registry,
            placements,
            lookup_hit: lookups.with_label_values(&["hit"]),
            lookup_rebuilt: lookups.with_label_values(&["rebuilt"]),
            lookup_miss: lookups.with_label_values(&["miss"]),
            lookup_unavailable: lookups.with_label_values(&["unavailable"]),
            lookups,
            rebuild_seconds,
            startup_rebuild_seconds,
            backend_state,
            backend_score,
            rooms_known,
            http_requests,
            http_seconds,
            control_requests,
            rate_limited,
            duplicate_rooms,
        }
    }

    pub fn set_backend_state(&self, backend: &str, state: &str) {
        for s in BACKEND_STATES {
            self.backend_state.with_label_values(&[backend, s]).set(i64::from(*s == state));
        }
    }

    pub fn forget_backend(&self, backend: &str) {
        for s in BACKEND_STATES {
            let _ = self.backend_state.remove_label_values(&[backend, s]);
        }
        let _ = self.backend_score.remove_label_values(&[backend]);
    }

    /// Counts one HTTP request under its route and status.
    pub fn http_request(&self, route: &str, status: u16, seconds: f64) {
        if route == ROOM_ROUTE {
            self.room_route.seconds.observe(seconds);
            if let Some((_, counter)) = self.room_route.statuses.iter().find(|(s, _)| *s == status)
            {
                counter.inc();
                return;
            }
        } else {
            self.http_seconds.with_label_values(&[route]).observe(seconds);
        }
        self.http_requests.with_label_values(&[route, &status.to_string()]).inc();
    }

    pub fn control(&self, kind: &str, result: &str) {
        self.control_requests.with_label_values(&[kind, result]).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        http_listener::metrics::render(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
