use super::*;

fn scan_all(reads: &[&[u8]]) -> Result<(), (usize, Fault)> {
    let mut framing = Framing::default();
    reads.iter().try_for_each(|read| framing.scan(read))
}

fn fault_of(head: &str) -> Option<Fault> {
    scan_all(&[head.as_bytes()]).err().map(|(at, fault)| {
        assert_eq!(at, 0, "a first request is refused from its first byte");
        fault
    })
}

#[test]
fn sound_heads_pass() {
    for head in [
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\nGET / HTTP/1.1\nHost: x\n\n",
        "POST /a HTTP/1.1\r\nContent-Length:  12 \r\ncontent-length: 12\r\n\r\n",
        "POST /a HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n",
        "GET / HTTP/1.0\r\nX-Transfer-Encoding: gzip\r\n\r\n",
    ] {
        assert_eq!(fault_of(head), None, "{head:?}");
    }
}

#[test]
fn faults_hyper_would_answer_with_an_empty_body() {
    let long_line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
    assert_eq!(fault_of(&long_line), Some(Fault::UriTooLong));
    let big_headers = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "b".repeat(200_000));
    assert_eq!(fault_of(&big_headers), Some(Fault::HeadTooLarge));
    let many = format!("GET / HTTP/1.1\r\n{}\r\n", "X-A: 1\r\n".repeat(MAX_HEADERS + 1));
    assert_eq!(fault_of(&many), Some(Fault::HeadTooLarge));
    let cases = [
        ("Content-Length: abc\r\n", Fault::BadContentLength),
        ("Content-Length: 5, 5\r\n", Fault::BadContentLength),
        ("Content-Length:\r\n", Fault::BadContentLength),
        ("Content-Length: 99999999999999999999999\r\n", Fault::BadContentLength),
        ("Content-Length: 5\r\nContent-Length: 6\r\n", Fault::BadContentLength),
        ("Transfer-Encoding: gzip, chunked\r\n", Fault::BadTransferEncoding),
        (
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            Fault::BadTransferEncoding,
        ),
        ("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", Fault::LengthAndEncoding),
    ];
    for (headers, fault) in cases {
        let head = format!("POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        assert_eq!(fault_of(&head), Some(fault), "{headers:?}");
    }
    let old = "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(fault_of(old), Some(Fault::BadTransferEncoding));
}

#[test]
fn the_answer_is_the_contracts_json() {
    let raw = String::from_utf8(Fault::HeadTooLarge.response()).unwrap();
    assert!(raw.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{raw}");
    assert!(raw.contains("\r\nconnection: close\r\n"), "{raw}");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())), "{raw}");
    let value: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(value["error"]["code"], "headers_too_large");
}

#[test]
fn follows_bodies_to_the_next_head_across_reads() {
    let bad = b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
    let mut framing = Framing::default();
    for byte in b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhel" {
        framing.scan(&[*byte]).unwrap();
    }
    framing.on_write();
    let mut read = b"lo".to_vec();
    read.extend_from_slice(bad);
    assert_eq!(framing.scan(&read), Err((2, Fault::BadContentLength)), "after the body");

    let mut framing = Framing::default();
    let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                    5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nTrailer: t\r\n\r\n";
    framing.scan(chunked).unwrap();
    framing.on_write();
    let mut read = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    framing.scan(&read).unwrap();
    framing.on_write();
    read.clear();
    read.extend_from_slice(b"GET /");
    framing.scan(&read).unwrap();
    let rest = format!("{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_REQUEST_LINE_BYTES));
    assert_eq!(framing.scan(rest.as_bytes()), Err((0, Fault::UriTooLong)), "began earlier");
}

#[test]
fn a_pipelined_fault_is_left_to_hyper() {
    // hyper has not answered the first request: a refusal would overtake it.
    let read = b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nContent-Length: x\r\n\r\n";
    assert_eq!(scan_all(&[read]), Ok(()));
}

#[test]
fn upgrades_and_unreadable_chunks_switch_it_off() {
    let garbage = b"\x81\x05hello Content-Length: x\r\n\r\n".as_slice();
    for head in [
        "GET /ws/a HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "CONNECT a:1 HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET / HTTP/1.1\r\nno colon\r\n\r\n",
    ] {
        let mut framing = Framing::default();
        framing.scan(head.as_bytes()).unwrap();
        framing.on_write();
        assert_eq!(framing.scan(garbage), Ok(()), "{head:?}");
        assert!(matches!(framing.state, State::Off), "{head:?}");
    }
}

#[test]
fn small_enough_to_stay_in_every_websocket() {
    // The stream (and this) lives on inside an upgraded connection.
    assert!(std::mem::size_of::<Framing>() <= 96, "{}", std::mem::size_of::<Framing>());
}
