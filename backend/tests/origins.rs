//! The Origin check on websocket upgrades, with raw request bytes (a client
//! library would refuse to send a malformed header).

mod support;

use common::config::BackendConfig;
use support::{quick, start_backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends an upgrade with `origin` (raw bytes); the status line's code.
async fn upgrade_with_origin(addr: std::net::SocketAddr, origin: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!(
        "GET /ws/origin HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: "
    )
    .into_bytes();
    request.extend_from_slice(origin);
    request.extend_from_slice(b"\r\n\r\n");
    stream.write_all(&request).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

#[tokio::test]
async fn an_origin_that_does_not_parse_is_refused() {
    let listed = start_backend(BackendConfig {
        allowed_origins: vec!["https://chat.example".into()],
        ..quick()
    })
    .await;
    listed.create_room("origin").await;
    assert_eq!(upgrade_with_origin(listed.public, b"https://chat.example").await, 101);
    assert_eq!(upgrade_with_origin(listed.public, b"https://ch\xe4t.evil.example").await, 403);
    assert_eq!(upgrade_with_origin(listed.public, b"https://chat.example\xff").await, 403);
    assert_eq!(upgrade_with_origin(listed.public, b"http://evil.example").await, 403);

    // With no list ("same host"), too.
    let same_host = start_backend(quick()).await;
    same_host.create_room("origin").await;
    assert_eq!(upgrade_with_origin(same_host.public, b"http://127.0.0.1:8080").await, 101);
    assert_eq!(upgrade_with_origin(same_host.public, b"http://127.0.0.1\xff:8080").await, 403);
}
