//! A raw HTTP/1.1 client for the listeners' tests (feature `test-util`):
//! connects from a chosen loopback address and sends bytes as they are, so
//! tests can play clients that never finish their requests.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `addr` from the loopback address `from`.
pub async fn connect_from(from: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::from(from), 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// Everything the server sends until it closes; panics if it is still open
/// after `wait`.
pub async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> String {
    let mut out = Vec::new();
    let read = tokio::time::timeout(wait, stream.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "still open after {wait:?}; got {:?}", String::from_utf8_lossy(&out));
    String::from_utf8_lossy(&out).into_owned()
}

/// Sends `raw` from `from` (a refused connection may reset before it is all
/// sent), then [`read_until_closed`].
pub async fn exchange(from: [u8; 4], addr: SocketAddr, raw: &str, wait: Duration) -> String {
    let mut stream = connect_from(from, addr).await;
    let _ = stream.write_all(raw.as_bytes()).await;
    read_until_closed(&mut stream, wait).await
}

/// The status code of a raw response (0 if there is none).
pub fn status_of(response: &str) -> u16 {
    response.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// The `error.code` of a raw response's JSON body (empty if there is none).
pub fn error_code(response: &str) -> String {
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    let value: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    value["error"]["code"].as_str().unwrap_or("").to_owned()
}
