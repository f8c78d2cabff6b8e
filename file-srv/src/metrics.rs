//! The service's Prometheus metrics, in a registry of its own (tests run
//! several services in one process).

use http_listener::metrics::Registrar;
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, Registry};

/// Every value of the `result` label of `instantchat_files_uploads_total`.
pub const UPLOAD_RESULTS: &[&str] = &[
    "stored",
    "duplicate",
    "too_large",
    "not_png",
    "corrupt_png",
    "too_many_pixels",
    "rate_limited",
    "busy",
    "timeout",
    "origin_refused",
    "bad_request",
    "error",
];

/// Why a preview fetch (of a page or of its image) failed: `FetchError::code`.
pub const FETCH_FAILURES: &[&str] = &[
    "bad_url",
    "blocked_address",
    "port_not_allowed",
    "unresolved",
    "unreachable",
    "bad_status",
    "too_many_redirects",
    "wrong_type",
    "too_large",
    "timeout",
];

/// The `outcome`s of `instantchat_files_previews_total` besides [`FETCH_FAILURES`].
pub const PREVIEW_OUTCOMES: &[&str] =
    &["made", "cached", "no_title", "rate_limited", "busy", "bad_request", "unauthorized"];

/// The `outcome`s of `instantchat_files_preview_images_total` besides [`FETCH_FAILURES`].
pub const PREVIEW_IMAGE_OUTCOMES: &[&str] = &["stored", "undecodable", "error"];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    uploads: IntCounterVec,
    pub stored_bytes: IntGauge,
    pub stored_files: IntGauge,
    pub quota_bytes: IntGauge,
    sweep_removed: IntCounterVec,
    http_requests: IntCounterVec,
    pub uploads_in_flight: IntGauge,
    pub upload_seconds: Histogram,
    pub served_bytes: IntCounter,
    previews: IntCounterVec,
    preview_images: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = http_listener::metrics::registry();
        let r = Registrar(&registry);
        Self {
            uploads: r.counters_of(
                "instantchat_files_uploads_total",
                "Upload attempts by result.",
                "result",
                UPLOAD_RESULTS.iter().copied(),
            ),
            stored_bytes: r.gauge("instantchat_files_stored_bytes", "Bytes of drawings on disk."),
            stored_files: r.gauge("instantchat_files_stored", "Drawings on disk."),
            quota_bytes: r
                .gauge("instantchat_files_quota_bytes", "Disk quota for drawings, in bytes."),
            sweep_removed: r.counters_of(
                "instantchat_files_sweep_removed_total",
                "Drawings removed, by reason (expired, quota).",
                "reason",
                ["expired", "quota"],
            ),
            http_requests: r.counters(
                "instantchat_files_http_requests_total",
                "HTTP requests by route and status.",
                &["route", "status"],
            ),
            uploads_in_flight: r
                .gauge("instantchat_files_uploads_in_flight", "Uploads whose body is being read."),
            upload_seconds: r.histogram(
                "instantchat_files_upload_duration_seconds",
                "Time from request to answer of accepted uploads.",
                &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0],
            ),
            served_bytes: r
                .counter("instantchat_files_served_bytes_total", "Bytes of drawings served."),
            previews: r.counters_of(
                "instantchat_files_previews_total",
                "Link preview requests by outcome.",
                "outcome",
                PREVIEW_OUTCOMES.iter().chain(FETCH_FAILURES).copied(),
            ),
            preview_images: r.counters_of(
                "instantchat_files_preview_images_total",
                "Images of link previews by outcome.",
                "outcome",
                PREVIEW_IMAGE_OUTCOMES.iter().chain(FETCH_FAILURES).copied(),
            ),
            registry,
        }
    }

    pub fn upload(&self, result: &str) {
        self.uploads.with_label_values(&[result]).inc();
    }

    pub fn preview(&self, outcome: &str) {
        self.previews.with_label_values(&[outcome]).inc();
    }

    pub fn preview_image(&self, outcome: &str) {
        self.preview_images.with_label_values(&[outcome]).inc();
    }

    pub fn swept(&self, reason: &str, count: usize) {
        self.sweep_removed.with_label_values(&[reason]).inc_by(count as u64);
    }

    pub fn request(&self, route: &str, status: u16) {
        self.http_requests.with_label_values(&[route, &status.to_string()]).inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        http_listener::metrics::render(&self.registry)
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
