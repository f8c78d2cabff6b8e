//! The HTTP API against a real file-srv: uploads, serving, refusals,
//! traversal, CORS and the operational endpoints.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn a_png_round_trips_byte_for_byte_with_safe_headers() {
    let (server, _root) = files_in_temp(|_| {}).await;
    let drawing = png(300, 200, 7);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    let request = http::Request::post(format!("http://{}/files", server.addr))
        .header("content-type", "image/png")
        .body(Full::new(Bytes::from(drawing.clone())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = expected_id(&drawing);
    assert_eq!(answer["id"], id.as_str());
    assert_eq!(answer["url"], format!("{PUBLIC_URL}/files/{id}.png").as_str());
    assert_eq!(server.stored(), vec![format!("{id}.png")]);

    let response = client
        .get(format!("http://{}/files/{id}.png", server.addr).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    let served = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(served.as_ref(), drawing.as_slice(), "byte for byte");
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["content-length"], drawing.len().to_string().as_str());
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'");
    let cache = h["cache-control"].to_str().unwrap();
    assert!(cache.contains("immutable") && cache.contains("max-age=31536000"), "{cache}");
    assert_eq!(h["etag"], format!("\"{id}\"").as_str());

    let head =
        exchange(server.addr, &format!("HEAD /files/{id}.png HTTP/1.1\r\nConnection: close"), b"")
            .await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some(drawing.len().to_string().as_str()));
    assert_eq!(head.header("content-type"), Some("image/png"));
    assert_eq!(head.header("etag"), Some(format!("\"{id}\"").as_str()));
    assert!(head.body.is_empty());

    let cached = exchange(
        server.addr,
        &format!("GET /files/{id}.png HTTP/1.1\r\nIf-None-Match: \"{id}\"\r\nConnection: close"),
        b"",
    )
    .await;
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(cached.header("etag"), Some(format!("\"{id}\"").as_str()));

    let with_query = raw_get(server.addr, &format!("/files/{id}.png?v=2")).await;
    assert_eq!((with_query.status, with_query.body.len()), (200, drawing.len()));
    server.stop().await;
}

#[tokio::test]
async fn the_same_drawing_twice_is_stored_once() {
    let (server, _root) = files_in_temp(|_| {}).await;
    let drawing = png(64, 64, 1);
    let first = upload(server.addr, &drawing).await;
    let second = upload(server.addr, &drawing).await;
    assert_eq!(first, second);
    assert_eq!(server.stored(), vec![format!("{first}.png")]);
    let other = upload(server.addr, &png(64, 64, 2)).await;
    assert_ne!(other, first);
    assert_eq!(server.metric("instantchat_files_uploads_total{result=\"duplicate\"}").await, 1.0);
    assert_eq!(server.metric("instantchat_files_uploads_total{result=\"stored\"}").await, 2.0);
    assert_eq!(server.metric("instantchat_files_stored").await, 2.0);
    let bytes = server.metric("instantchat_files_stored_bytes").await;
    assert_eq!(bytes, (drawing.len() * 2) as f64);
    server.stop().await;
}

/// Asserts a refusal and that nothing was stored, not even a temp file.
fn assert_refused(server: &TestFiles, reply: &RawReply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{code}: {:?}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.error_code(), code);
    assert!(server.stored().is_empty(), "{code}: stored {:?}", server.stored());
    assert_eq!(server.temp_files(), 0, "{code}: temp files left");
}

#[tokio::test]
async fn oversize_bodies_are_refused() {
    let (server, root) = files_in_temp(|_| {}).await;
    let big = png(800, 700, 3); // a real PNG, 560 KB > 512 KiB
    assert!(big.len() > 512 * 1024);

    let reply = post_png(server.addr, &big).await;
    assert_refused(&server, &reply, 413, "too_large");

    // A declared length over the limit is refused before the body is sent.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /files HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&big[..100]).await.unwrap();
    let reply =
        tokio::time::timeout(Duration::from_secs(5), read_reply(&mut stream, false)).await.unwrap();
    assert_refused(&server, &reply, 413, "too_large");

    // The same with `Expect: 100-continue`: no "continue", just the refusal.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head =
        "POST /files HTTP/1.1\r\nHost: x\r\nContent-Length: 600000\r\nExpect: 100-continue\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    let reply =
        tokio::time::timeout(Duration::from_secs(5), read_reply(&mut stream, false)).await.unwrap();
    assert_refused(&server, &reply, 413, "too_large");

    // A length that claims less than is sent: only the declared bytes are the
    // body (here a cut-off PNG); the rest is not a request and ends the connection.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /files HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n";
    let (mut read, mut write) = stream.split();
    let send = async {
        let _ = write.write_all(head.as_bytes()).await;
        let _ = write.write_all(&big).await;
    };
    let (_, reply) = tokio::join!(send, read_reply(&mut read, false));
    assert_refused(&server, &reply, 400, "corrupt_png");
    let mut rest = reply.rest.clone();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection is closed");
    assert!(!String::from_utf8_lossy(&rest).contains("201"), "no second request was served");

    // Chunked: no length up front; the count is kept while reading.
    let mut body = Vec::new();
    for piece in big.chunks(50_000) {
        body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        body.extend_from_slice(piece);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let reply =
        exchange(server.addr, "POST /files HTTP/1.1\r\nTransfer-Encoding: chunked", &body).await;
    assert_refused(&server, &reply, 413, "too_large");

    // One byte over a smaller limit, one byte under it.
    server.stop().await;
    let mut cfg = files_config(root.path());
    let small = png(40, 40, 9);
    cfg.max_bytes = small.len() - 1;
    let server = start_files(cfg).await;
    assert_refused(&server, &post_png(server.addr, &small).await, 413, "too_large");
    let mut cfg = files_config(root.path());
    cfg.max_bytes = small.len();
    server.stop().await;
    let server = start_files(cfg).await;
    upload(server.addr, &small).await;
    server.stop().await;
}

#[tokio::test]
async fn bad_images_are_refused_and_leave_nothing() {
    let (server, _root) = files_in_temp(|_| {}).await;
    let good = png(50, 40, 5);

    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("text", b"hello, this is not an image at all".to_vec(), 415, "not_png"),
        ("gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec(), 415, "not_png"),
        ("empty", Vec::new(), 415, "not_png"),
        ("signature only", good[..8].to_vec(), 415, "not_png"),
        ("IHDR cut", good[..20].to_vec(), 415, "not_png"),
        ("truncated", good[..good.len() / 2].to_vec(), 400, "corrupt_png"),
        ("IEND missing", good[..good.len() - 12].to_vec(), 400, "corrupt_png"),
        (
            "bit flipped",
            {
                let mut g = good.clone();
                g[100] ^= 1;
                g
            },
            400,
            "corrupt_png",
        ),
        ("data after IEND", [good.as_slice(), b"<script>"].concat(), 400, "corrupt_png"),
    ];
    for (name, body, status, code) in cases {
        let reply = post_png(server.addr, &body).await;
        assert_eq!(reply.status, status, "{name}");
        assert_refused(&server, &reply, status, code);
    }

    // A header claiming 100000×100000 is refused from the header alone: the
    // rest of the declared body is never sent, and the answer comes anyway.
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    bomb.extend(ihdr(100_000, 100_000));
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = "POST /files HTTP/1.1\r\nHost: x\r\nContent-Length: 400000\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&bomb).await.unwrap();
    let reply =
        tokio::time::timeout(Duration::from_secs(5), read_reply(&mut stream, false)).await.unwrap();
    assert_refused(&server, &reply, 400, "image_too_large");

    // Complete, well-formed, still too big; and just over the limit on one side.
    let mut whole = bomb.clone();
    whole.extend(chunk(b"IDAT", b"x"));
    whole.extend(chunk(b"IEND", b""));
    assert_refused(&server, &post_png(server.addr, &whole).await, 400, "image_too_large");
    let mut tall = b"\x89PNG\r\n\x1a\n".to_vec();
    tall.extend(ihdr(1, 2049));
    tall.extend(chunk(b"IDAT", b"x"));
    tall.extend(chunk(b"IEND", b""));
    assert_refused(&server, &post_png(server.addr, &tall).await, 400, "image_too_large");

    assert_eq!(server.metric("instantchat_files_uploads_total{result=\"not_png\"}").await, 5.0);
    assert_eq!(
        server.metric("instantchat_files_uploads_total{result=\"too_many_pixels\"}").await,
        3.0
    );
    // The largest accepted size is accepted.
    upload(server.addr, &png(2048, 1, 0)).await;
    server.stop().await;
}

#[tokio::test]
async fn no_path_reaches_outside_the_data_folder() {
    let root = tempfile::tempdir().unwrap();
    let secret_text = "TOP-SECRET-CONTENT";
    std::fs::write(root.path().join("secret.txt"), secret_text).unwrap();
    let cfg = files_config(root.path());
    std::fs::create_dir_all(&cfg.data_dir).unwrap();
    // A symlink that looks like a drawing, planted before start-up.
    let planted = "0123456789abcdef0123456789abcdef";
    std::os::unix::fs::symlink(
        root.path().join("secret.txt"),
        format!("{}/{planted}.png", cfg.data_dir),
    )
    .unwrap();
    let server = start_files(cfg).await;

    let id = upload(server.addr, &png(10, 10, 0)).await;
    let bad_ids = [
        "/files/../secret.txt",
        "/files/..%2fsecret.txt",
        "/files/%2e%2e%2fsecret.txt",
        "/files/%2E%2E/secret.txt",
        "/files/..%2F..%2F..%2Fetc%2Fpasswd",
        "/files/....//secret.txt",
        "/files/%252e%252e%252fsecret.txt",
        "/files/..\\secret.txt",
        "/files/",
        "/files/.png",
        &format!("/files/{}.png", id.to_uppercase()),
        &format!("/files/{id}.png/../../secret.txt"),
        &format!("/files/{id}.PNG"),
        &format!("/files/{id}"),
        &format!("/files/{id}.png%00"),
        &format!("/files/{id}0.png"),
    ];
    for path in bad_ids {
        let reply = raw_get(server.addr, path).await;
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.error_code(), "bad_file_id", "{path}");
    }
    for path in
        ["/../secret.txt", "/secret.txt", "/files/../../secret.txt/..", "/%2e%2e/secret.txt"]
    {
        let reply = raw_get(server.addr, path).await;
        assert!(reply.status == 400 || reply.status == 404, "{path}: {}", reply.status);
        assert!(!String::from_utf8_lossy(&reply.body).contains(secret_text), "{path}");
    }
    let reply = raw_get(server.addr, &format!("/files/{planted}.png")).await;
    assert_eq!((reply.status, reply.error_code().as_str()), (404, "file_not_found"));

    // A stored drawing swapped for a symlink behind the server's back is not followed.
    let stored = server.data_dir.join(format!("{id}.png"));
    std::fs::remove_file(&stored).unwrap();
    std::os::unix::fs::symlink(root.path().join("secret.txt"), &stored).unwrap();
    let reply = raw_get(server.addr, &format!("/files/{id}.png")).await;
    assert_eq!(reply.status, 404);
    assert!(!String::from_utf8_lossy(&reply.body).contains(secret_text));

    let unknown = raw_get(server.addr, "/files/ffffffffffffffffffffffffffffffff.png").await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (404, "file_not_found"));
    server.stop().await;
}

#[tokio::test]
async fn cors_lets_configured_origins_upload_and_no_others() {
    let (server, root) = files_in_temp(|cfg| {
        cfg.allowed_origins = vec!["http://chat.test:8080".into()];
    })
    .await;
    let drawing = png(8, 8, 8);

    const PREFLIGHT: &str = "OPTIONS /files HTTP/1.1\r\nOrigin: http://chat.test:8080\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\nConnection: close";
    let preflight = exchange(server.addr, PREFLIGHT, b"").await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("http://chat.test:8080"));
    assert!(preflight.header("access-control-allow-methods").unwrap().contains("POST"));
    assert!(preflight.header("access-control-allow-headers").unwrap().contains("content-type"));

    let reply = post_with(server.addr, &drawing, "Origin: http://chat.test:8080").await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.header("access-control-allow-origin"), Some("http://chat.test:8080"));

    let refused = exchange(
        server.addr,
        "OPTIONS /files HTTP/1.1\r\nOrigin: http://evil.test\r\nAccess-Control-Request-Method: POST\r\nConnection: close",
        b"",
    )
    .await;
    assert_eq!((refused.status, refused.error_code().as_str()), (403, "origin_not_allowed"));
    assert_eq!(refused.header("access-control-allow-origin"), None);
    let other = png(8, 8, 9);
    let reply = post_with(server.addr, &other, "Origin: http://evil.test").await;
    assert_eq!((reply.status, reply.error_code().as_str()), (403, "origin_not_allowed"));
    assert!(!server.stored().contains(&format!("{}.png", expected_id(&other))));
    server.stop().await;

    // Nothing configured: the same host as the request (the local fleet's case).
    let server = start_files(files_config(root.path())).await;
    let same = post_with(server.addr, &other, "Origin: http://127.0.0.1:8080").await;
    assert_eq!(same.status, 201);
    assert_eq!(same.header("access-control-allow-origin"), Some("http://127.0.0.1:8080"));
    let foreign = post_with(server.addr, &other, "Origin: http://evil.test").await;
    assert_eq!(foreign.status, 403);
    server.stop().await;
}

#[tokio::test]
async fn a_burst_over_the_rate_limit_gets_429() {
    let (server, root) = files_in_temp(|cfg| {
        (cfg.upload_rate_per_min, cfg.upload_burst) = (2, 3);
    })
    .await;
    for seed in 0..3 {
        upload(server.addr, &png(4, 4, seed)).await;
    }
    let reply = post_png(server.addr, &png(4, 4, 99)).await;
    assert_eq!((reply.status, reply.error_code().as_str()), (429, "rate_limited"));
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}: one token per 30 s");
    assert_eq!(server.stored().len(), 3);
    // Not a trusted proxy: its X-Forwarded-For is ignored.
    let spoofed = post_with(server.addr, &png(4, 4, 98), "X-Forwarded-For: 203.0.113.9").await;
    assert_eq!(spoofed.status, 429);
    server.stop().await;

    let mut cfg = files_config(root.path());
    (cfg.upload_rate_per_min, cfg.upload_burst) = (2, 1);
    cfg.trusted_proxies = vec!["127.0.0.0/8".into()];
    let server = start_files(cfg).await;
    let via = |ip: &str| format!("X-Forwarded-For: {ip}, 127.0.0.1");
    assert_eq!(post_with(server.addr, &png(4, 4, 10), &via("203.0.113.7")).await.status, 201);
    assert_eq!(post_with(server.addr, &png(4, 4, 11), &via("203.0.113.7")).await.status, 429);
    assert_eq!(post_with(server.addr, &png(4, 4, 12), &via("203.0.113.8")).await.status, 201);
    assert_eq!(
        server.metric("instantchat_files_uploads_total{result=\"rate_limited\"}").await,
        1.0
    );
    server.stop().await;
}

#[tokio::test]
async fn slow_and_concurrent_uploads_are_bounded() {
    let (server, _root) =
        files_in_temp(|cfg| (cfg.max_concurrent_uploads, cfg.upload_timeout_ms) = (1, 400)).await;
    let drawing = png(20, 20, 0);

    // One upload that stalls half-way holds the only slot…
    let mut slow = partial_upload(server.addr, &drawing, 50).await;
    let started = Instant::now();
    eventually_within("the slow upload to be in flight", Duration::from_secs(5), async || {
        server.metric("instantchat_files_uploads_in_flight").await == 1.0
    })
    .await;
    // …so a second one is turned away…
    let busy = post_png(server.addr, &drawing).await;
    assert_eq!((busy.status, busy.error_code().as_str()), (503, "busy"));
    assert!(busy.header("retry-after").is_some());
    // …until the stalled one runs out of time.
    let timed_out = read_reply(&mut slow, false).await;
    assert_eq!((timed_out.status, timed_out.error_code().as_str()), (408, "upload_timeout"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(server.stored().is_empty() && server.temp_files() == 0);
    upload(server.addr, &drawing).await;
    server.stop().await;
}

#[tokio::test]
async fn operational_endpoints_and_unknown_routes() {
    let (server, _root) = files_in_temp(|_| {}).await;
    assert_eq!(raw_get(server.addr, "/livez").await.status, 200);
    assert_eq!(raw_get(server.addr, "/readyz").await.status, 200);
    upload(server.addr, &png(4, 4, 0)).await;
    let metrics = server.metrics().await;
    for name in [
        "instantchat_files_uploads_total{result=\"stored\"} 1",
        "instantchat_files_stored 1",
        "instantchat_files_stored_bytes",
        "instantchat_files_quota_bytes 1073741824",
        "instantchat_files_sweep_removed_total{reason=\"expired\"} 0",
        "instantchat_files_sweep_removed_total{reason=\"quota\"} 0",
        "instantchat_files_http_requests_total{route=\"upload\",status=\"201\"} 1",
        "instantchat_files_upload_duration_seconds_count 1",
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }

    let reply = raw_get(server.addr, "/nope").await;
    assert_eq!((reply.status, reply.error_code().as_str()), (404, "not_found"));
    let reply = raw_get(server.addr, "/files").await;
    assert_eq!((reply.status, reply.error_code().as_str()), (405, "method_not_allowed"));
    assert!(reply.header("allow").unwrap().contains("POST"));
    const DELETE: &str =
        "DELETE /files/ffffffffffffffffffffffffffffffff.png HTTP/1.1\r\nConnection: close";
    let reply = exchange(server.addr, DELETE, b"").await;
    assert_eq!(reply.status, 405);
    server.stop().await;
}
