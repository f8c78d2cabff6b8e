//! The backend's public listener against clients that never finish their
//! requests (issue 15, item 1), in-process and as the real binary at its
//! descriptor limit; and its control listener out of descriptors.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backend::control::MAX_UNAUTHENTICATED;
use common::config::{BackendConfig, HttpLimits};
use common::control::{RequestBody, ResponseBody};
use control_client::ControlClient;
use http_listener::test_client::{
    assert_faulty_requests_answered_in_json, connect_from, exchange, status_of,
};
use support::{quick, start_backend};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc::UnboundedReceiver;

#[tokio::test]
async fn bodies_are_bounded_in_size_and_time_and_405_says_allow() {
    let http = HttpLimits { body_timeout_ms: 300, ..HttpLimits::default() };
    let backend = start_backend(BackendConfig { http, ..quick() }).await;
    let wait = Duration::from_secs(5);

    let head = "POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n";
    let response = exchange([127, 0, 6, 1], backend.public, head, Duration::from_secs(2)).await;
    assert_eq!(status_of(&response), 413, "{response}");
    assert!(response.contains("\"too_large\""));

    let head = "GET /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789";
    let response = exchange([127, 0, 6, 2], backend.public, head, wait).await;
    assert_eq!(status_of(&response), 200, "answered, then closed: {response}");

    let head = "DELETE /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let response = exchange([127, 0, 6, 3], backend.public, head, wait).await;
    assert_eq!(status_of(&response), 405, "{response}");
    assert!(response.to_ascii_lowercase().contains("\r\nallow: get, head\r\n"), "{response}");
}

#[tokio::test]
async fn heads_hyper_refuses_get_the_json_body() {
    let backend = start_backend(quick()).await;
    assert_faulty_requests_answered_in_json([127, 0, 6, 4], backend.public).await;
}

/// The backend binary run with `nofile` descriptors, its addresses and its
/// JSON log lines (read on a thread of their own, so the pipe never fills).
struct Binary {
    _child: KillOnDrop,
    public: SocketAddr,
    control: SocketAddr,
    logs: UnboundedReceiver<serde_json::Value>,
}

async fn start_binary(nofile: u32) -> Binary {
    let mut child = Command::new("prlimit")
        .arg(format!("--nofile={nofile}:{nofile}"))
        .arg(env!("CARGO_BIN_EXE_backend"))
        .env("INSTANTCHAT_LISTEN", "127.0.0.1:0")
        .env("INSTANTCHAT_CONTROL_LISTEN", "127.0.0.1:0")
        .env("INSTANTCHAT_CONTROL_TOKEN", support::TOKEN)
        .env("INSTANTCHAT_HTTP__MAX_CONNECTIONS_PER_IP", "0")
        .env("INSTANTCHAT_HTTP__BODY_TIMEOUT_MS", "60000")
        .env("INSTANTCHAT_LOG_FORMAT", "json")
        .env("RUST_LOG", "warn,backend=info")
        .stdout(Stdio::piped())
        .spawn_killed_on_drop();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (lines, mut logs) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if lines.send(serde_json::from_str(&line).unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    let listening = tokio::time::timeout(support::WAIT, async {
        loop {
            let value = logs.recv().await.expect("the backend logs its addresses");
            if value["fields"]["public"].is_string() {
                return value;
            }
        }
    })
    .await
    .expect("the backend starts");
    let addr = |name: &str| listening["fields"][name].as_str().unwrap().parse().unwrap();
    Binary { public: addr("public"), control: addr("control"), _child: child, logs }
}

/// The real binary with 128 descriptors, and 300 connections that start a
/// request head and never finish it: `/livez` and `/metrics` still answer,
/// within the health-only header deadline (1 s) of the attackers' slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_answers_at_the_descriptor_limit() {
    let backend = start_binary(128).await;
    let public = backend.public;
    let mut held = Vec::new();
    for n in 0..300u32 {
        let from = [127, 0, 7, 1 + (n % 20) as u8];
        let Ok(mut stream) =
            tokio::time::timeout(Duration::from_secs(2), connect_from(from, public)).await
        else {
            continue;
        };
        // A head that never ends: held until the header deadline.
        let head = "GET /livez HTTP/1.1\r\nHost: x\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        held.push(stream);
    }
    for path in ["/livez", "/metrics"] {
        let started = Instant::now();
        let raw = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        // A probe retries a refused connection, as a load balancer does.
        let mut response = String::new();
        while started.elapsed() < Duration::from_secs(3) && status_of(&response) != 200 {
            let attempt = exchange([127, 0, 8, 1], public, &raw, Duration::from_secs(3));
            response =
                tokio::time::timeout(Duration::from_secs(3), attempt).await.unwrap_or_default();
        }
        assert_eq!(status_of(&response), 200, "{path} within 3 s: {response}");
    }
    drop(held);
}

/// The control listener accepts as the HTTP ones do (`http_listener`): out
/// of descriptors — 64, and connections that never authenticate — it backs
/// off and logs once a second instead of spinning, and once they are free
/// aux-srv's requests are served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_listener_backs_off_out_of_descriptors() {
    let mut backend = start_binary(64).await;
    let mut held = Vec::new();
    for _ in 0..MAX_UNAUTHENTICATED + 16 {
        held.push(TcpStream::connect(backend.control).await.unwrap());
    }
    let is_control_failure = |value: &serde_json::Value| {
        value["fields"]["message"] == "accept failed; backing off"
            && value["fields"]["listener"] == "control"
    };
    let first = tokio::time::timeout(support::WAIT, async {
        loop {
            let value = backend.logs.recv().await.expect("the backend runs");
            if is_control_failure(&value) {
                return value;
            }
        }
    })
    .await
    .expect("the control listener runs out of descriptors");
    // Spinning, it logged a line per failure, 20 a second.
    let window = Duration::from_millis(2500);
    let mut lines = vec![first];
    let _ = tokio::time::timeout(window, async {
        while let Some(value) = backend.logs.recv().await {
            if is_control_failure(&value) {
                lines.push(value);
            }
        }
    })
    .await;
    assert!(lines.len() <= 4, "at most once a second in {window:?}: {lines:?}");

    drop(held);
    let client = ControlClient::new(backend.control.to_string(), support::TOKEN, support::WAIT, 1);
    let answer = client.request(RequestBody::Load { removed_after: 0 }).await;
    assert!(matches!(answer, Ok(ResponseBody::Load(_))), "served again: {answer:?}");
}

/// `spawn`, killing the child if the test panics before it does.
trait SpawnKilled {
    fn spawn_killed_on_drop(&mut self) -> KillOnDrop;
}

struct KillOnDrop(std::process::Child);

impl std::ops::Deref for KillOnDrop {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for KillOnDrop {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl SpawnKilled for Command {
    fn spawn_killed_on_drop(&mut self) -> KillOnDrop {
        KillOnDrop(self.spawn().unwrap())
    }
}
