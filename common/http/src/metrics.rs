//! What every server's `/metrics` is made of: a registry of its own (tests
//! and the one-process fleet run several servers in one process), filled
//! through a [`Registrar`], and its text exposition.

use prometheus::core::Collector;
use prometheus::{Encoder, Histogram, HistogramOpts, IntCounterVec, Opts, Registry, TextEncoder};

/// Makes metrics in one registry, each registered as it is made: none can
/// be made and then left out of `/metrics`.
pub struct Registrar<'a>(pub &'a Registry);

impl Registrar<'_> {
    /// Registers what a prometheus constructor made (names and labels are
    /// constants: an error is a bug).
    pub fn add<M: Collector + Clone + 'static>(&self, made: prometheus::Result<M>) -> M {
        let metric = made.expect("valid metric");
        self.0.register(Box::new(metric.clone())).expect("unique");
        metric
    }

    pub fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }

    pub fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        self.add(Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec())))
    }
}

/// The Prometheus text exposition of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut out) {
        tracing::warn!(error = %e, "could not encode metrics");
    }
    String::from_utf8(out).unwrap_or_default()
}
