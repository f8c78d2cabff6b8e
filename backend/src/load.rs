//! The load figures a backend reports to aux-srv: recent message rate and
//! CPU use, sampled once a second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// Recent averages, readable without locks.
#[derive(Debug, Default)]
pub struct LoadSampler {
    messages_per_sec: AtomicU64,
    cpu_cores: AtomicU64,
}

/// Weight of the newest sample in the moving average.
const ALPHA: f64 = 0.3;

impl LoadSampler {
    pub fn messages_per_sec(&self) -> f64 {
        f64::from_bits(self.messages_per_sec.load(Ordering::Relaxed))
    }

    pub fn cpu_cores(&self) -> f64 {
        f64::from_bits(self.cpu_cores.load(Ordering::Relaxed))
    }

    fn blend(slot: &AtomicU64, sample: f64) {
        let old = f64::from_bits(slot.load(Ordering::Relaxed));
        slot.store((old * (1.0 - ALPHA) + sample * ALPHA).to_bits(), Ordering::Relaxed);
    }

    /// Samples every second until `stop` is cancelled.
    pub async fn run(&self, metrics: &Metrics, stop: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut last = (Instant::now(), metrics.messages_received.get(), metrics.process_stats().0);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = (Instant::now(), metrics.messages_received.get(), metrics.process_stats().0);
            let secs = now.0.duration_since(last.0).as_secs_f64().max(1e-3);
            Self::blend(&self.messages_per_sec, (now.1 - last.1) as f64 / secs);
            Self::blend(&self.cpu_cores, (now.2 - last.2).max(0.0) / secs);
            last = now;
        }
    }
}
