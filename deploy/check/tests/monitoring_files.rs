//! Prometheus (promtool check config / rules / test rules) and the Grafana
//! provisioning, as shipped in deploy/.

use std::collections::BTreeSet;

use deploy_check::paths::{self, read};
use deploy_check::tools;
use serde_json::Value;

/// The Prometheus config of each layout (with its targets) and the rules.
#[test]
fn prometheus_config_and_rules_pass_promtool() {
    for layout in ["local", "single-node", "multi-node/monitoring"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::copy(paths::deploy_file("prometheus/prometheus.yml"), d.join("prometheus.yml"))
            .unwrap();
        std::os::unix::fs::symlink(paths::deploy_file("prometheus/rules"), d.join("rules"))
            .unwrap();
        std::os::unix::fs::symlink(
            paths::deploy_file(&format!("{layout}/prometheus/targets")),
            d.join("targets"),
        )
        .unwrap();
        let output = tools::run_ok(
            &format!("promtool check config ({layout})"),
            tools::command("promtool").args(["check", "config"]).arg(d.join("prometheus.yml")),
        );
        let said = tools::describe(&output);
        assert!(
            said.contains("SUCCESS: 1 rule files found"),
            "{layout}: the rules are loaded:\n{said}"
        );
        // promtool checks the file_sd files it finds, and warns about
        // those it does not: every target file must be there.
        assert!(!said.contains("WARNING"), "{layout}:\n{said}");
    }
    let rules = paths::deploy_file("prometheus/rules/instantchat.yml");
    tools::run_ok(
        "promtool check rules",
        tools::command("promtool").args(["check", "rules"]).arg(&rules),
    );
    let tests = paths::deploy_file("prometheus/tests/instantchat.test.yml");
    tools::run_ok(
        "promtool test rules",
        tools::command("promtool")
            .current_dir(paths::deploy_file("prometheus/tests"))
            .args(["test", "rules"])
            .arg(&tests),
    );
    // Each alert the issue asks for is there and unit-tested.
    let rules_text = read(&rules);
    let tests_text = read(&tests);
    for alert in [
        "InstantchatBackendDown",
        "InstantchatNoBackendAcceptingRooms",
        "InstantchatSlowConsumerClosesRising",
        "InstantchatBroadcastSlow",
        "InstantchatFilesNearQuota",
        "InstantchatAuxRebuildFailing",
    ] {
        assert!(rules_text.contains(&format!("alert: {alert}\n")), "{alert} is missing");
        assert!(tests_text.contains(&format!("alertname: {alert}\n")), "{alert} has no unit test");
    }
}

#[test]
fn a_broken_target_file_fails_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(paths::deploy_file("prometheus/prometheus.yml"), d.join("prometheus.yml"))
        .unwrap();
    std::os::unix::fs::symlink(paths::deploy_file("prometheus/rules"), d.join("rules")).unwrap();
    std::fs::create_dir_all(d.join("targets/backends")).unwrap();
    std::fs::write(
        d.join("targets/backends/b1.yml"),
        "- target: [\"10.0.0.11:9001\"]\n  labels: {backend: b1}\n",
    )
    .unwrap();
    let output = tools::output_of(
        tools::command("promtool").args(["check", "config"]).arg(d.join("prometheus.yml")),
    );
    assert!(
        !output.status.success(),
        "promtool accepted a broken target:\n{}",
        tools::describe(&output)
    );
}

#[test]
fn grafana_is_provisioned_with_the_three_dashboards() {
    let datasources = read(&paths::deploy_file("grafana/provisioning/datasources/prometheus.yml"));
    assert!(
        datasources.contains("uid: prometheus")
            && datasources.contains("url: http://prometheus:9090")
    );
    let provider = read(&paths::deploy_file("grafana/provisioning/dashboards/instantchat.yml"));
    assert!(provider.contains("path: /etc/grafana/dashboards"));
    // Each layout with Grafana mounts the provisioning and the dashboards there.
    for layout in ["local", "single-node", "multi-node/monitoring"] {
        let compose = read(&paths::deploy_file(&format!("{layout}/compose.yaml")));
        assert!(compose.contains("grafana/provisioning:/etc/grafana/provisioning:ro"), "{layout}");
        assert!(compose.contains("grafana/dashboards:/etc/grafana/dashboards:ro"), "{layout}");
    }
    let wanted: [(&str, &[&str]); 3] = [
        (
            "instantchat-overview",
            &["Rooms", "People online", "Messages per second", "Delivery time", "errors"],
        ),
        (
            "instantchat-backend",
            &["Placement score", "Connections", "Slow consumers", "CPU", "Memory"],
        ),
        ("instantchat-host", &["CPU busy", "Memory used", "Disk space", "Network"]),
    ];
    let mut uids = BTreeSet::new();
    for (uid, titles) in wanted {
        let dashboard: Value = serde_json::from_str(&read(&paths::deploy_file(&format!(
            "grafana/dashboards/{uid}.json"
        ))))
        .unwrap();
        assert_eq!(dashboard["uid"], uid);
        assert!(uids.insert(uid));
        let panels = dashboard["panels"].as_array().unwrap();
        let mut ids = BTreeSet::new();
        for panel in panels {
            assert!(ids.insert(panel["id"].as_u64().unwrap()), "{uid}: panel ids are unique");
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(panel["datasource"]["uid"], "prometheus", "{uid}: {}", panel["title"]);
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{uid}: {} has no query", panel["title"]);
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "prometheus");
            }
        }
        let all_titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
        for title in titles {
            assert!(
                all_titles.iter().any(|t| t.to_lowercase().contains(&title.to_lowercase())),
                "{uid} lacks a panel about {title}: {all_titles:?}"
            );
        }
    }
}
