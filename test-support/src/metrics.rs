//! Reading the Prometheus text format, as far as tests need it.

use std::collections::BTreeSet;

/// The value of one sample line, e.g. `instantchat_backend_rooms` or
/// `instantchat_aux_placements_total{backend="b1",result="created"}`.
pub fn metric_sample(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
        .map(|v| v.trim().parse().unwrap_or_else(|e| panic!("{sample}: {v:?} ({e})")))
}

/// [`metric_sample`], 0 when absent (a counter no event has touched yet).
pub fn metric_of(text: &str, name: &str) -> f64 {
    metric_sample(text, name).unwrap_or(0.0)
}

/// Every sample name in a `/metrics` answer (histograms contribute their
/// `_bucket`, `_sum` and `_count` series).
pub fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        let text = "# HELP a x\n# TYPE a counter\na_total 1\nb_bucket{le=\"1\"} 2\nb_sum 3\n\n";
        let names = super::sample_names(text);
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["a_total", "b_bucket", "b_sum"]);
    }

    #[test]
    fn samples() {
        let text = "a_total 1\na_total{x=\"y\"} 2.5\n";
        assert_eq!(super::metric_sample(text, "a_total{x=\"y\"}"), Some(2.5));
        assert_eq!(super::metric_sample(text, "a"), None);
        assert_eq!(super::metric_of(text, "b_total"), 0.0);
    }
}
