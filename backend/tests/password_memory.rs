//! A storm of wrong room passwords must not leave the backend holding
//! hundreds of megabytes: checks run a few at a time on threads that reuse
//! their hashing memory and free it when idle (issue 15, item 0).
//!
//! One test in this file, so the process's RSS is this backend's alone.

mod support;

use std::time::{Duration, Instant};

use common::config::BackendConfig;
use common::ws::ClientFrame;
use support::{WsClient, quick, start_backend};

/// Resident set size of this process, from /proc/self/status.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rss_returns_near_its_start_after_100_wrong_passwords() {
    // Join deadline out of the way: this test is about memory, not time.
    let backend = start_backend(BackendConfig { join_timeout_ms: 120_000, ..quick() }).await;
    let hash = common::password::hash_password("sesame", &[7; 16]).unwrap();
    backend.create_room_with("vault", Some(hash)).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(WsClient::connect(&backend.ws_url("vault")).await);
    }
    let before = rss_bytes();

    // 20 connections at once, 5 wrong guesses each (a guess after the
    // answer to the one before, as a client must).
    let guesses = clients.into_iter().enumerate().map(|(n, mut client)| {
        tokio::spawn(async move {
            let mut codes = Vec::new();
            for guess in 0..5 {
                let password = Some(format!("guess-{n}-{guess}"));
                client
                    .send(&ClientFrame::Join {
                        nick: None,
                        password,
                        resume: None,
                        reclaim: None,
                        pow: None,
                    })
                    .await;
                codes.push(client.expect("error").await["code"].as_str().unwrap().to_owned());
            }
            codes
        })
    });
    let mut wrong = 0;
    for task in guesses.collect::<Vec<_>>() {
        wrong += task.await.unwrap().iter().filter(|c| *c == "wrong_password").count();
    }
    assert_eq!(wrong, 100, "every guess was checked and refused");
    let peak = rss_bytes();

    // Idle workers free their memory after RELEASE_AFTER_IDLE (2 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut after = rss_bytes();
    while after > before + 16 * MIB && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        after = rss_bytes();
    }
    eprintln!(
        "RSS before {} MiB, right after the storm {} MiB, idle {} MiB",
        before / MIB,
        peak / MIB,
        after / MIB
    );
    assert!(peak < before + 80 * MIB, "the storm held at most a few buffers: {} MiB", peak / MIB);
    assert!(after <= before + 16 * MIB, "RSS back near its start: {} MiB", after / MIB);
}
