//! HTTP/1.1 written by hand over a TCP connection: for what a real client
//! refuses to send (lying headers, half-sent bodies) and for reading the
//! answer byte for byte.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::WAIT;

#[derive(Debug)]
pub struct RawReply {
    pub status: u16,
    /// Names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes that came after this reply in the same read.
    pub rest: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// The contract's error body: asserts its shape, returns its code.
    pub fn error_code(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        let v = self.json();
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        v["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// Reads one response. `head` says whether it answers a HEAD request.
pub async fn read_reply(stream: &mut (impl AsyncReadExt + Unpin), head: bool) -> RawReply {
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let mut chunk = [0; 4096];
        let n = stream.read(&mut chunk).await.expect("reading the reply");
        assert!(n > 0, "connection closed before a reply: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head_text = String::from_utf8(buf[..header_end].to_vec()).unwrap();
    let mut lines = head_text.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = buf[header_end..].to_vec();
    let mut rest = Vec::new();
    let length =
        headers.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse().unwrap());
    let bodiless = head || status == 204 || status == 304 || (100..200).contains(&status);
    if bodiless {
        rest = std::mem::take(&mut body);
    } else {
        assert!(
            !headers.iter().any(|(n, _)| n == "transfer-encoding"),
            "chunked replies unexpected"
        );
        match length {
            Some(len) if body.len() >= len => rest = body.split_off(len),
            Some(len) => {
                while body.len() < len {
                    let mut chunk = vec![0; len - body.len()];
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "body cut short");
                    body.extend_from_slice(&chunk[..n]);
                }
            }
            None => {
                stream.read_to_end(&mut body).await.unwrap();
            }
        }
    }
    RawReply { status, headers, body, rest }
}

/// Sends `head` (request line and headers, without the blank line) and
/// `body`, and reads the reply while the body is still being written: the
/// server may answer (and stop reading) before the body is through.
pub async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> RawReply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let mut request = format!("{head}\r\nHost: {addr}\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    let writer = tokio::spawn(async move {
        // Errors are expected when the server refuses early and closes.
        let _ = write.write_all(&request).await;
        write
    });
    let is_head = head.starts_with("HEAD ");
    let reply =
        tokio::time::timeout(WAIT, read_reply(&mut read, is_head)).await.expect("a reply in time");
    writer.abort();
    reply
}

/// `GET path` on a fresh connection.
pub async fn raw_get(addr: SocketAddr, path: &str) -> RawReply {
    exchange(addr, &format!("GET {path} HTTP/1.1\r\nConnection: close"), b"").await
}

/// [`raw_get`]'s status and body as text.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let reply = raw_get(addr, path).await;
    (reply.status, reply.text())
}
