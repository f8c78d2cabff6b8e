//! The Prometheus text format, as far as the checks need it.

use std::collections::BTreeSet;

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
}
