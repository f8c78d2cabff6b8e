//! What every server's `/metrics` is made of: a registry of its own (tests
//! and the one-process fleet run several servers in one process), filled
//! through a [`Registrar`], and its text exposition.

use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// A server's own registry, with the process collector (CPU, memory,
/// descriptors) in it: every `/metrics` shows the process figures, even when
/// several servers share a process (the `instantchat` fleet, tests).
pub fn registry() -> Registry {
    let registry = Registry::new();
    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
        .expect("a new registry");
    registry
}

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

    pub fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help))
    }

    pub fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help))
    }

    pub fn counters(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }

    /// Counters by one label, each of `values` shown (at 0) from the start,
    /// so that a rate over them has a series before the first event.
    pub fn counters_of<'v>(
        &self,
        name: &str,
        help: &str,
        label: &str,
        values: impl IntoIterator<Item = &'v str>,
    ) -> IntCounterVec {
        let counters = self.counters(name, help, &[label]);
        for value in values {
            counters.with_label_values(&[value]);
        }
        counters
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
