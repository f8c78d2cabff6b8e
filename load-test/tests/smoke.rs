//! A small run of every scenario against a real fleet started in this
//! process (two backends and aux-srv on 127.0.0.1:0): the report must be
//! produced — table, JSON, plot — with nothing lost.

use clap::Parser;
use common::config::AuxConfig;
use load_test::cli::{Cli, Scenario};
use load_test::{Report, Workers};
use test_support::TestFleet;

/// Two backends and aux-srv, with room creation as fast as the runs need.
async fn start_fleet() -> TestFleet {
    TestFleet::start_with(&["b1", "b2"], |config| AuxConfig {
        poll_interval_ms: 200,
        room_create_per_minute: 1_000_000,
        room_create_burst: 100_000,
        ..config
    })
    .await
}

fn scenario(fleet: &TestFleet, dir: &std::path::Path, args: &[&str]) -> Scenario {
    let aux = fleet.aux.url("");
    let json = dir.join("report.json");
    let plot = dir.join("plot.svg");
    let mut argv = vec!["load-test"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&[
        "--aux",
        &aux,
        "--json",
        json.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
        "--drain",
        "1s",
        "--quiet",
    ]);
    Cli::try_parse_from(argv).unwrap().scenario.unwrap()
}

/// Runs a scenario and checks what every run must give.
async fn run_clean(fleet: &TestFleet, args: &[&str], mode: Workers) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let report = load_test::run(scenario(fleet, dir.path(), args), mode).await.unwrap();
    let table = report.table();
    assert!(report.is_clean(), "{table}");
    assert_eq!(report.errors, 0, "{table}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(json["scenario"], report.scenario);
    assert_eq!(json["losses"]["total"], 0);
    let svg = std::fs::read_to_string(dir.path().join("plot.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("per second"), "not an SVG plot");
    for b in &fleet.backends {
        let url = format!("http://{}", b.public);
        if let Some(cost) = report.services.iter().find(|s| s.url == url) {
            assert_eq!(cost.role, "backend");
            assert!(cost.rss_after_bytes > 0, "{table}");
        }
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_small_and_loses_nothing() {
    let fleet = start_fleet().await;

    let fanout = run_clean(
        &fleet,
        &["fanout", "--members", "20", "--publishers", "4", "--rate", "40", "--duration", "1500ms"],
        Workers::InProcess,
    )
    .await;
    let deliveries = &fanout.series["delivery"];
    // 40 msg/s for 1.5 s to 20 members: about 1200 deliveries.
    assert!(deliveries.latency.count >= 600, "{}", fanout.table());
    assert_eq!(deliveries.latency.count, fanout.messages_sent * 20, "{}", fanout.table());
    assert!(fanout.ratios.deliveries_per_backend_cpu_second.is_some(), "{}", fanout.table());
    assert!(!fanout.timeline.is_empty());

    // Two in-process workers: the merge path.
    let rooms = run_clean(
        &fleet,
        &[
            "rooms",
            "--rooms",
            "10",
            "--room-size",
            "3",
            "--every-min",
            "200ms",
            "--every-max",
            "400ms",
            "--duration",
            "1500ms",
            "--workers",
            "2",
        ],
        Workers::InProcess,
    )
    .await;
    assert_eq!(rooms.connected, 30);
    assert!(rooms.messages_sent >= 60, "{}", rooms.table());
    assert_eq!(
        rooms.series["delivery"].latency.count,
        rooms.messages_sent * 3,
        "{}",
        rooms.table()
    );
    let backends_used = rooms.services.iter().filter(|s| s.role == "backend").count();
    assert!(backends_used >= 1, "the backends' costs are reported\n{}", rooms.table());

    let idle = run_clean(
        &fleet,
        &["idle", "--connections", "40", "--room-size", "4", "--duration", "1s"],
        Workers::InProcess,
    )
    .await;
    assert_eq!(idle.connected, 40);
    assert!(idle.ratios.backend_rss_bytes_per_connection.is_some(), "{}", idle.table());
    let held: u64 = idle.services.iter().map(|s| s.connections).sum();
    assert_eq!(held, 40, "connections held to the end\n{}", idle.table());

    let connect = run_clean(
        &fleet,
        &[
            "connect",
            "--connections",
            "60",
            "--room-size",
            "20",
            "--rate",
            "100",
            "--duration",
            "1s",
        ],
        Workers::InProcess,
    )
    .await;
    assert_eq!(connect.connected, 60, "{}", connect.table());
    assert!(connect.series["join"].per_sec > 30.0, "{}", connect.table());

    let aux = run_clean(
        &fleet,
        &["aux", "--concurrency", "4", "--duration", "1s", "--restart-sample", "10"],
        Workers::InProcess,
    )
    .await;
    assert!(aux.series["create"].latency.count > 10, "{}", aux.table());
    assert!(aux.series["lookup"].latency.count > 10, "{}", aux.table());
    assert!(aux.ratios.aux_requests_per_cpu_second.is_some(), "{}", aux.table());
}

/// `--workers 2` as real child processes of the built binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_report_to_the_parent() {
    let fleet = start_fleet().await;
    let exe = std::path::PathBuf::from(env!("CARGO_BIN_EXE_load-test"));
    let report = run_clean(
        &fleet,
        &[
            "fanout",
            "--members",
            "10",
            "--publishers",
            "2",
            "--rate",
            "20",
            "--duration",
            "1s",
            "--workers",
            "2",
        ],
        Workers::Processes(exe),
    )
    .await;
    assert_eq!(report.workers, 2);
    assert_eq!(report.connected, 10);
    assert_eq!(
        report.series["delivery"].latency.count,
        report.messages_sent * 10,
        "{}",
        report.table()
    );
}

/// A plan over the machine's limits is refused with a message saying what to change.
#[tokio::test]
async fn plans_beyond_the_limits_are_refused() {
    let cli = Cli::try_parse_from(["load-test", "idle", "--connections", "5000000"]).unwrap();
    let e = load_test::coordinator::check_plan(&cli.scenario.unwrap(), &Workers::InProcess)
        .unwrap_err()
        .to_string();
    assert!(e.contains("open-file limit") && e.contains("--workers"), "{e}");
}
