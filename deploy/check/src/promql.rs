//! The metric names a PromQL expression reads (promtool checks that it
//! parses; this finds what it names, to compare with what the services
//! expose).

/// Words that are PromQL syntax, not metric names.
const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// Metric names in `expr`, in order of first use. Label matchers (`{…}`),
/// ranges (`[…]`), strings, grouping lists (`by (…)`) and function names
/// (a name followed by `(`) are not metric names.
pub fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names: Vec<String> = Vec::new();
    let mut i = 0;
    let mut skip_list = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => i = skip_string(&chars, i),
            '{' => i = skip_until(&chars, i, '}'),
            '[' => i = skip_until(&chars, i, ']'),
            '(' if skip_list => {
                i = skip_until(&chars, i, ')');
                skip_list = false;
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                let lower = word.to_ascii_lowercase();
                // `sum by (x) (…)`: an aggregation, its grouping first.
                let after: String = chars[i..].iter().collect();
                let after = after.trim_start();
                let grouping = ["by", "without"].iter().any(|kw| {
                    after
                        .strip_prefix(kw)
                        .is_some_and(|r| r.starts_with(|c: char| c.is_whitespace() || c == '('))
                });
                if matches!(
                    lower.as_str(),
                    "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
                ) {
                    skip_list = next == Some(&'(');
                } else if lower == "offset" {
                    // `offset 5m`: skip the duration.
                    while i < chars.len() && chars[i].is_whitespace() {
                        i += 1;
                    }
                    while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '-') {
                        i += 1;
                    }
                } else if !grouping
                    && next != Some(&'(')
                    && !KEYWORDS.contains(&lower.as_str())
                    && !names.contains(&word)
                {
                    names.push(word);
                }
                continue;
            }
            c if c.is_ascii_digit() || c == '.' => {
                // Numbers, durations (5m), exponents (1e-3), hex (0x1f).
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
                if i < chars.len()
                    && matches!(chars[i], '+' | '-')
                    && chars[i - 1].eq_ignore_ascii_case(&'e')
                {
                    i += 1;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    names
}

fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

fn skip_until(chars: &[char], start: usize, close: char) -> usize {
    let mut i = start + 1;
    while i < chars.len() && chars[i] != close {
        if matches!(chars[i], '"' | '\'' | '`') {
            i = skip_string(chars, i);
            continue;
        }
        i += 1;
    }
    i + 1
}

/// An expression with Grafana's variables replaced by values PromQL
/// accepts (`$__rate_interval` → `1m`, `$backend` → `.*`, …).
pub fn without_grafana_variables(expr: &str) -> String {
    let mut out = expr
        .replace("$__rate_interval", "1m")
        .replace("${__rate_interval}", "1m")
        .replace("$__interval", "1m")
        .replace("${__interval}", "1m")
        .replace("$__range", "1h")
        .replace("${__range}", "1h");
    // Dashboard variables only stand in label matchers (`=~"$backend"`).
    while let Some(i) = out.find('$') {
        let rest = &out[i + 1..];
        let body = rest.strip_prefix('{').unwrap_or(rest);
        let len =
            body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
        let end = i + 1 + len + if rest.starts_with('{') { 2 } else { 0 };
        out.replace_range(i..end, ".*");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_metric_names_only() {
        assert_eq!(
            metric_names(
                r#"histogram_quantile(0.99, sum by (backend, le) (rate(a_bucket{x="y{", le!="1"}[5m] offset 1h)))"#
            ),
            ["a_bucket"]
        );
        assert_eq!(
            metric_names(
                "node_load1 / on (instance) count by (instance) (b{mode=\"idle\"}) > bool 1e-3"
            ),
            ["node_load1", "b"]
        );
        assert_eq!(metric_names("(sum(x) or max(up{job=\"a\"}) * 0) == 0 and Inf"), ["x", "up"]);
        assert_eq!(metric_names("max by(state) (s) unless ignoring(a) t"), ["s", "t"]);
        assert_eq!(metric_names("sum by (a) (x) + count without (b) (y)"), ["x", "y"]);
        assert_eq!(metric_names("vector(1) + 0x1f + 1.5"), Vec::<String>::new());
    }

    #[test]
    fn replaces_grafana_variables() {
        assert_eq!(
            without_grafana_variables(r#"rate(a{b=~"$backend", c=~"${host}"}[$__rate_interval])"#),
            r#"rate(a{b=~".*", c=~".*"}[1m])"#
        );
    }
}
