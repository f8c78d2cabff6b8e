//! The shipped Prometheus side against live services: the metrics every
//! service exposes pass promtool, and the dashboards and alert rules read
//! only metrics that exist.

use std::collections::BTreeSet;
use std::process::Stdio;

use serde_json::Value;

use crate::client::Origin;
use crate::fleet::Addrs;
use crate::node_exporter::NodeExporter;
use crate::{paths, promql, tools};

/// `promtool check metrics` on `text`: any finding (lints too) fails.
pub fn promtool_check_metrics(what: &str, text: &str) {
    let mut child = tools::command("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    // promtool lints too (e.g. a counter without _total); the services must
    // pass cleanly: any finding fails.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics on {what}:\n{said}"
    );
}

/// Every PromQL expression of the dashboards and the alert rules, with
/// where it is from.
pub fn shipped_expressions() -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    let dashboards = paths::deploy_file("grafana/dashboards");
    for entry in std::fs::read_dir(&dashboards).unwrap() {
        let path = entry.unwrap().path();
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("every target has an expr");
                exprs.push((format!("{name}: {}", panel["title"]), expr.to_owned()));
            }
        }
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            let query = variable["query"]["query"].as_str().unwrap();
            // label_values(<selector>, label): the selector is PromQL.
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map(|(s, _)| s);
            exprs.push((
                format!("{name}: variable {}", variable["name"]),
                inner.unwrap_or(query).to_owned(),
            ));
        }
    }
    let rules =
        std::fs::read_to_string(paths::deploy_file("prometheus/rules/instantchat.yml")).unwrap();
    // `expr:` values: one line, or a folded block (`>-`) of indented lines.
    let lines: Vec<&str> = rules.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim().strip_prefix("expr:") else { continue };
        let value = value.trim();
        let expr = if value == ">-" {
            lines[i + 1..]
                .iter()
                .take_while(|l| l.starts_with("          "))
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            value.to_owned()
        };
        exprs.push(("rules/instantchat.yml".into(), expr));
    }
    exprs
}

/// The live `/metrics` of every service (and a node-exporter) pass
/// `promtool check metrics` cleanly, and every metric the dashboards and
/// alert rules read is one that a live service exposes; every expression
/// parses.
pub async fn live_metrics_cover_dashboards_and_alerts(addrs: &Addrs) {
    let node = NodeExporter::start();
    let mut targets =
        vec![("aux-srv", addrs.aux), ("file-srv", addrs.files), ("node-exporter", node.addr)];
    targets.extend(addrs.backends.iter().map(|b| ("backend", b.public)));
    let mut live = BTreeSet::new();
    for (what, addr) in targets {
        let metrics = Origin::plain(addr).get("/metrics").await;
        assert_eq!(metrics.status, 200, "{what} /metrics");
        if what != "node-exporter" {
            promtool_check_metrics(&format!("{what} at {addr}"), &metrics.text());
        }
        live.extend(test_support::sample_names(&metrics.text()));
    }
    // Prometheus adds `up` to every scrape itself.
    live.insert("up".to_owned());

    let expressions = shipped_expressions();
    assert!(expressions.len() > 30, "found only {} expressions", expressions.len());
    let mut unknown = Vec::new();
    for (origin, expr) in &expressions {
        for name in promql::metric_names(&promql::without_grafana_variables(expr)) {
            if !live.contains(&name) {
                unknown.push(format!("{origin}: `{name}` in {expr}"));
            }
        }
    }
    assert!(unknown.is_empty(), "metrics no live service exposes:\n{}", unknown.join("\n"));

    // Every expression parses: promtool checks them as recording rules.
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, (_, expr)) in expressions.iter().enumerate() {
        let expr = promql::without_grafana_variables(expr);
        rules.push_str(&format!(
            "      - record: deploy_check:expr_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let file = dir.path().join("dashboards.rules.yml");
    std::fs::write(&file, rules).unwrap();
    tools::run_ok(
        "promtool check rules (dashboard expressions)",
        tools::command("promtool").args(["check", "rules"]).arg(&file),
    );
}
