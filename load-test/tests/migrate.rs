//! `load-test migrate` against a real fleet in this process: one room moved
//! while its members talk, then a backend evacuated; every member follows,
//! nothing is lost.

use clap::Parser;
use load_test::cli::{Cli, Scenario};
use test_support::{ADMIN_TOKEN, TestFleet};

async fn run(fleet: &TestFleet, args: &[&str]) -> load_test::migrate::MigrateReport {
    let (aux, admin) = (fleet.aux.url(""), fleet.aux.admin_url(""));
    let mut argv = vec!["load-test", "migrate", "--aux", &aux, "--admin", &admin];
    argv.extend_from_slice(&[
        "--admin-token",
        ADMIN_TOKEN,
        "--warmup",
        "500ms",
        "--after",
        "500ms",
    ]);
    argv.extend_from_slice(&["--drain", "3s"]);
    argv.extend_from_slice(args);
    let Some(Scenario::Migrate(args)) = Cli::try_parse_from(argv).unwrap().scenario else {
        panic!("not migrate");
    };
    load_test::migrate::run(&args).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_room_and_an_evacuated_backend_lose_nothing() {
    let fleet = TestFleet::start(&["b1", "b2"]).await;
    let one = run(&fleet, &["--members", "50", "--senders", "5", "--rate", "50"]).await;
    let table = one.table();
    println!("{table}");
    assert_eq!((one.lost, one.duplicates, one.failed_members), (0, 0, 0), "{table}");
    assert_eq!(one.members_followed, 50, "{table}");
    assert!(one.messages_sent > 20, "{table}");
    assert!(one.pause_ms.count == 50 && one.pause_ms.max_ms > 0.0, "{table}");

    let many =
        run(&fleet, &["--rooms", "40", "--room-size", "3", "--every", "200ms", "--from", "b2"])
            .await;
    let table = many.table();
    assert_eq!((many.lost, many.duplicates, many.failed_members), (0, 0, 0), "{table}");
    // The first run's room moved to b2 as well.
    assert_eq!(many.move_answer["moved"], 41, "{table}");
    assert_eq!(many.move_answer["failed"], 0, "{table}");
    assert_eq!(many.members_followed, 120, "{table}");
}
