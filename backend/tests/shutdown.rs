//! Shutdown drains: readiness turns 503, every client gets `closing` and
//! close 1001, and the process exits in time — in-process and for the real
//! binary on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::config::BackendConfig;
use support::{Ending, TOKEN, WAIT, WsClient, create_room_request, start_backend, test_config};

#[tokio::test]
async fn shutdown_sends_closing_and_1001_and_readiness_turns_503() {
    let mut backend = start_backend(test_config()).await;
    let (mut a, _) = backend.create_room_and_join("drain", "a").await;
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
    let control = control_client::ControlClient::new(control.to_string(), TOKEN, support::WAIT, 1);
    control.request(create_room_request("sigterm")).await.unwrap();
    let mut member = WsClient::connect(&format!("ws://{public}/ws/sigterm")).await;
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

/// Starts the backend binary with `env` and `args`, expects it to refuse to
/// start, and returns what it said on stderr.
fn refused_start(env: &[(&str, &str)], args: &[&std::ffi::OsStr]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_backend"))
        .env("INSTANTCHAT_CONTROL_TOKEN", TOKEN)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the backend started");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn bad_config_stops_start_up_naming_the_key() {
    let said = refused_start(&[("INSTANTCHAT_MAX_MESSAGES", "many")], &[]);
    assert!(said.contains("max_messages"), "{said}");
    let said = refused_start(&[("INSTANTCHAT_MAX_MESAGES", "5")], &[]);
    assert!(said.contains("max_mesages"), "{said}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backend.toml");
    std::fs::write(&file, "max_messages = 0\n").unwrap();
    let said = refused_start(&[], &["--config".as_ref(), file.as_os_str()]);
    assert!(said.contains("max_messages"), "{said}");
    let said = refused_start(&[], &["--config".as_ref(), "/nonexistent/backend.toml".as_ref()]);
    assert!(said.contains("cannot read config file /nonexistent/backend.toml"), "{said}");
}

/// `run` checks its config itself: a caller that skipped loading through
/// `startup::load_config` (a test, the one-process fleet) gets the same
/// clear error instead of a backend with no room for messages.
#[tokio::test]
async fn run_refuses_a_bad_config_naming_the_key() {
    let listeners = backend::Listeners::bind_loopback().await.unwrap();
    let config = BackendConfig { max_messages: 0, ..listeners.configure(test_config()).unwrap() };
    let run = backend::run(listeners, config, std::future::pending());
    let error = tokio::time::timeout(WAIT, run).await.expect("run returns").unwrap_err();
    assert!(format!("{error:#}").contains("max_messages"), "{error:#}");
}
