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

/// Requests hyper would refuse with an empty body (issue 15), each with the
/// status and `error.code` it gets instead.
pub fn faulty_requests() -> Vec<(String, u16, &'static str)> {
    let post = |headers: &str| format!("POST /livez HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
    vec![
        (format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(20_000)), 414, "uri_too_long"),
        (
            format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(200_000)),
            431,
            "headers_too_large",
        ),
        (post("Content-Length: abc\r\n"), 400, "bad_request"),
        (post("Transfer-Encoding: gzip, chunked\r\n"), 400, "bad_request"),
        (post("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"), 400, "bad_request"),
    ]
}

/// Sends each of [`faulty_requests`] to `addr` from `from`, on a fresh
/// connection and after a request answered on a kept-alive one: each gets
/// its status and JSON body, and the connection closes.
pub async fn assert_faulty_requests_answered_in_json(from: [u8; 4], addr: SocketAddr) {
    let wait = Duration::from_secs(5);
    for (raw, status, code) in faulty_requests() {
        let first = format!("{status} {code} first on its connection");
        let response = exchange(from, addr, &raw, wait).await;
        assert_eq!(status_of(&response), status, "{first}: {response:.300}");
        assert_eq!(error_code(&response), code, "{first}: {response:.300}");
        assert!(response.contains("\r\ncontent-type: application/json\r\n"), "{response:.300}");

        let mut stream = connect_from(from, addr).await;
        let healthy = "GET /livez HTTP/1.1\r\nHost: x\r\n\r\n";
        stream.write_all(healthy.as_bytes()).await.unwrap();
        let answered = tokio::time::timeout(wait, read_response(&mut stream)).await.unwrap();
        assert_eq!(status_of(&answered), 200, "{answered}");
        let _ = stream.write_all(raw.as_bytes()).await;
        let response = read_until_closed(&mut stream, wait).await;
        let second = format!("{status} {code} after a kept-alive request");
        assert_eq!(status_of(&response), status, "{second}: {response:.300}");
        assert_eq!(error_code(&response), code, "{second}: {response:.300}");
    }
}

/// One whole response with a `Content-Length`, the connection left open.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase().strip_prefix("content-length:").map(str::to_owned)
                })
                .and_then(|n| n.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed before a whole response: {text}");
        out.extend_from_slice(&chunk[..n]);
    }
}
