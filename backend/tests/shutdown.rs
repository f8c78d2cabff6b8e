//! Shutdown drains: readiness turns 503, every client gets `closing` and
//! close 1001, and the process exits in time — in-process and for the real
//! binary on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{Client, Ending, TOKEN, start, test_config};

#[tokio::test]
async fn shutdown_sends_closing_and_1001_and_readiness_turns_503() {
    let mut backend = start(test_config()).await;
    backend.create_room("drain").await;
    let (mut a, _) = backend.member("drain", "a").await;
    // This one never reads: its connection outlives the others a little, so
    // the listener is still up while we ask for readiness.
    let (_lazy, _) = backend.member("drain", "lazy").await;
    a.expect("joined").await;
    let started = Instant::now();
    backend.trigger_shutdown();
    let (frames, ending) = a.until_closed().await;
    assert_eq!(frames.last().unwrap()["type"], "closing");
    assert_eq!(frames.last().unwrap()["reason"], "shutdown");
    assert_eq!(ending, Ending::Close(1001));
    let (status, body) = support::http_get(backend.public, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("shutting_down"));
    backend.shutdown().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(tokio::net::TcpStream::connect(backend.public).await.is_err(), "listener closed");
}

#[tokio::test]
async fn sigterm_closes_clients_with_1001_and_the_process_exits() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_backend"))
        .env("INSTANTCHAT_LISTEN", "127.0.0.1:0")
        .env("INSTANTCHAT_CONTROL_LISTEN", "127.0.0.1:0")
        .env("INSTANTCHAT_CONTROL_TOKEN", TOKEN)
        .env("INSTANTCHAT_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The binary logs where it listens (it bound port 0).
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (public, control) = loop {
        let line = lines.next().expect("backend exited early").unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        if event["fields"]["message"] == "backend listening" {
            let field = |k: &str| {
                event["fields"][k].as_str().unwrap().parse::<std::net::SocketAddr>().unwrap()
            };
            break (field("public"), field("control"));
        }
    };
    let control =
        backend::control_client::ControlClient::new(control.to_string(), TOKEN, support::WAIT, 1);
    control
        .request(common::control::RequestBody::CreateRoom {
            name: "sigterm".into(),
            password_hash: None,
        })
        .await
        .unwrap();
    let mut member = Client::connect(&format!("ws://{public}/ws/sigterm")).await;
    member.join("m").await;

    let started = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let (frames, ending) = member.until_closed().await;
    assert_eq!(frames.last().unwrap()["reason"], "shutdown");
    assert_eq!(ending, Ending::Close(1001));
    let status = tokio::task::spawn_blocking(move || child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status}");
    assert!(started.elapsed() < Duration::from_secs(10), "exited in {:?}", started.elapsed());
    // Drain stdout so the pipe never blocks the child (it has exited anyway).
    for _ in lines {}
}

#[test]
fn bad_config_stops_start_up_naming_the_key() {
    let output = Command::new(env!("CARGO_BIN_EXE_backend"))
        .env("INSTANTCHAT_CONTROL_TOKEN", TOKEN)
        .env("INSTANTCHAT_MAX_MESSAGES", "many")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("max_messages"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_backend"))
        .env("INSTANTCHAT_CONTROL_TOKEN", TOKEN)
        .env("INSTANTCHAT_MAX_MESAGES", "5")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("max_mesages"));
}
