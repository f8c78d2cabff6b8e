//! The control listener under hostile first frames: the auth frame is bounded
//! by its own size, and unauthenticated connections are bounded in number.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use backend::control::MAX_UNAUTHENTICATED;
use common::control;
use support::{TOKEN, WAIT, control_rejections, start_backend, test_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A connection from its own loopback address (per-IP limits are real).
async fn connect_from(n: u32, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from(([127, 1, (n >> 8) as u8, n as u8], 0))).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads until the server closes; how long that took.
async fn time_to_close(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(WAIT, async {
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .expect("closed in time");
    started.elapsed()
}

/// The process's resident set, in bytes.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024
}

#[tokio::test]
async fn an_oversized_first_frame_is_refused_at_once() {
    let backend = start_backend(test_config()).await;
    let mut stream = TcpStream::connect(backend.control).await.unwrap();
    // A length prefix just over the auth frame's, and a little of its body.
    let too_long = control::auth_frame(TOKEN).len() as u32 + 1;
    stream.write_all(&too_long.to_be_bytes()).await.unwrap();
    stream.write_all(b"instantchat").await.unwrap();
    assert!(time_to_close(&mut stream).await < Duration::from_secs(2), "not left waiting");
    backend.await_metric(&control_rejections("oversize"), 1.0).await;
    // The right auth frame still works.
    assert!(
        backend
            .control()
            .request(common::control::RequestBody::Load { removed_after: 0 })
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_hundred_almost_mebibyte_first_frames_are_closed_without_buffering() {
    let backend = start_backend(test_config()).await;
    const PEERS: u32 = 100;
    const DECLARED: u32 = (1 << 20) - 1;
    let before = rss_bytes();
    let mut peers = Vec::new();
    for n in 0..PEERS {
        let addr = backend.control;
        peers.push(tokio::spawn(async move {
            let mut stream = connect_from(n + 1, addr).await;
            let started = Instant::now();
            let mut frame = DECLARED.to_be_bytes().to_vec();
            frame.resize(DECLARED as usize - 100, b'x');
            // The server may close before all of it is written.
            let _ = stream.write_all(&frame).await;
            let _ = time_to_close(&mut stream).await;
            started.elapsed()
        }));
    }
    for peer in peers {
        let took = peer.await.unwrap();
        // Before the fix, each waited for the rest of its frame until the 5 s
        // auth timeout (the margin is for a busy machine writing 100 MiB).
        assert!(took < Duration::from_millis(4500), "a peer was kept for {took:?}");
    }
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 40 << 20, "RSS grew by {} MiB", grown >> 20);
}

#[tokio::test]
async fn unauthenticated_connections_are_bounded() {
    let backend = start_backend(test_config()).await;
    let mut waiting = Vec::new();
    for n in 0..MAX_UNAUTHENTICATED as u32 {
        waiting.push(connect_from(n + 1, backend.control).await);
    }
    // Wait until every one of them holds its place.
    let mut extra = connect_from(1000, backend.control).await;
    assert!(time_to_close(&mut extra).await < Duration::from_secs(2), "one too many: closed");
    backend.await_metric(&control_rejections("too_many_unauthenticated"), 1.0).await;
    // Once they are gone, aux-srv gets in again.
    drop(waiting);
    let deadline = Instant::now() + WAIT;
    loop {
        match backend
            .control()
            .request(common::control::RequestBody::Load { removed_after: 0 })
            .await
        {
            Ok(_) => break,
            Err(e) => assert!(Instant::now() < deadline, "still refused: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
