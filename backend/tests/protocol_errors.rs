//! Websocket protocol violations, sent as raw frames over TCP: each gets a
//! close frame with 1002 (protocol error) before the connection drops.

mod support;

use std::net::SocketAddr;

use support::{TestBackend, WAIT, disconnects, quick, start_backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Opens a websocket to `room` by hand; returns the stream after the 101.
async fn handshake(addr: SocketAddr, room: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET /ws/{room} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    stream
}

/// A client frame: `first` is the FIN/RSV/opcode byte; masked unless told.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mut out = vec![first, payload.len() as u8 | if masked { 0x80 } else { 0 }];
    if masked {
        let key = [0x11, 0x22, 0x33, 0x44];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads server frames until the connection ends; the close frame's code,
/// if one came.
async fn close_code(stream: &mut TcpStream) -> Option<u16> {
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut bytes)).await.expect("closed");
    let mut rest = &bytes[..];
    while rest.len() >= 2 {
        let opcode = rest[0] & 0x0f;
        let (len, header) = match rest[1] & 0x7f {
            126 => (u16::from_be_bytes([rest[2], rest[3]]) as usize, 4),
            127 => (u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize, 10),
            n => (n as usize, 2),
        };
        let payload = &rest[header..header + len];
        if opcode == 0x8 {
            return (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
        }
        rest = &rest[header + len..];
    }
    None
}

async fn violation(backend: &TestBackend, bytes: &[u8]) -> Option<u16> {
    let mut stream = handshake(backend.public, "proto").await;
    stream.write_all(&frame(0x81, br#"{"type":"join","nick":"raw"}"#, true)).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    close_code(&mut stream).await
}

#[tokio::test]
async fn protocol_violations_get_close_1002() {
    let backend = start_backend(quick()).await;
    backend.create_room("proto").await;
    let cases: [(&str, Vec<u8>); 6] = [
        ("reserved data opcode", frame(0x83, b"x", true)),
        ("reserved control opcode", frame(0x8b, b"", true)),
        ("RSV1 without an extension", frame(0xc1, b"{}", true)),
        ("unmasked client frame", frame(0x81, b"{}", false)),
        ("continuation out of order", frame(0x80, b"x", true)),
        ("close payload of one byte", frame(0x88, b"\x03", true)),
    ];
    for (what, bytes) in cases {
        assert_eq!(violation(&backend, &bytes).await, Some(1002), "{what}");
    }
    // A close code no one may send is answered with 1002 too.
    assert_eq!(violation(&backend, &frame(0x88, &999u16.to_be_bytes(), true)).await, Some(1002));
    // A text frame where a continuation is due.
    let mut interleaved = frame(0x01, b"{\"ty", true);
    interleaved.extend(frame(0x81, b"{}", true));
    assert_eq!(violation(&backend, &interleaved).await, Some(1002), "data frame mid-message");
    backend.await_metric(&disconnects("protocol_error"), 7.0).await;
}
