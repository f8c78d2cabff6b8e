//! Link previews against a real site on loopback that counts every connection
//! it accepts: with `preview_allow_private = false` no spelling of a loopback
//! address reaches it; with it on, the same links do, and a preview carries
//! the page's title, description and a re-encoded image served by file-srv.

mod support;

use std::convert::{Infallible, identity};
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::config::FileSrvConfig;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use support::{PUBLIC_URL, RawReply, TestFiles, exchange, raw_get};
use tempfile::TempDir;
use tokio::net::TcpListener;

/// A small website on `127.0.0.1:0` that counts the connections it accepts.
struct Site {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Site {
    async fn start() -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let service = service_fn(|req: Request<Incoming>| async move {
                    Ok::<_, Infallible>(page(req.uri().path()).await)
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Site { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

const PAGE: &str = r#"<!doctype html><html><head><title>Fallback</title>
<meta property="og:title" content="A cat on a mat">
<meta name="description" content="Everything about the cat.">
<meta property="og:image" content="/cat.jpg"></head><body>hello</body></html>"#;

async fn page(path: &str) -> Response<Full<Bytes>> {
    let answer = |status: u16, content_type: &str, body: Vec<u8>| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    let redirect = |to: &str| {
        Response::builder().status(302).header("location", to).body(Full::default()).unwrap()
    };
    match path {
        "/page" => answer(200, "text/html; charset=utf-8", PAGE.into()),
        "/moved" => redirect("/page"),
        "/loop" => redirect("/loop"),
        "/plain" => answer(200, "text/plain", b"just text".to_vec()),
        "/huge" => answer(200, "text/html", vec![b'a'; 600 * 1024]),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            answer(200, "text/html", PAGE.into())
        }
        "/cat.jpg" => {
            let picture = image::RgbImage::from_fn(1000, 500, |x, y| {
                image::Rgb([(x % 256) as u8, (y % 256) as u8, 99])
            });
            let mut jpeg = Vec::new();
            picture.write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
            answer(200, "image/jpeg", jpeg)
        }
        _ => answer(404, "text/plain", b"no".to_vec()),
    }
}

fn config(root: &Path, site: &Site, allow_private: bool) -> FileSrvConfig {
    FileSrvConfig {
        preview_allow_private: allow_private,
        // The site's port is allowed, so only the address check can stop a fetch.
        preview_ports: vec![site.port],
        preview_timeout_ms: 1_000,
        ..support::files_config(root)
    }
}

/// The test site, and file-srv in a folder of its own fetching from it
/// ([`config`], adjusted by `tune`).
async fn site_and_files(
    allow_private: bool,
    tune: impl FnOnce(FileSrvConfig) -> FileSrvConfig,
) -> (Site, TempDir, TestFiles) {
    let site = Site::start().await;
    let root = tempfile::tempdir().unwrap();
    let server = support::start_files(tune(config(root.path(), &site, allow_private))).await;
    (site, root, server)
}

async fn ask(server: &TestFiles, url: &str, room: &str, extra: &str) -> RawReply {
    ask_from(server, url, room, "203.0.113.7", extra).await
}

async fn ask_from(
    server: &TestFiles,
    url: &str,
    room: &str,
    client: &str,
    extra: &str,
) -> RawReply {
    let body = serde_json::json!({"url": url, "room": room, "client_ip": client}).to_string();
    let head = format!(
        "POST /previews HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close{extra}",
        body.len()
    );
    exchange(server.addr, &head, body.as_bytes()).await
}

/// A name that is not `localhost` but resolves to loopback on this machine:
/// the machine's own host name, which `/etc/hosts` maps to 127.0.0.1 here.
async fn loopback_host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap().trim().to_owned();
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 80))
        .await
        .unwrap_or_else(|e| panic!("{name} does not resolve: {e}"))
        .collect();
    assert!(
        !addresses.is_empty() && addresses.iter().all(|a| a.ip().is_loopback()),
        "the test needs a host name that resolves to loopback; {name} gives {addresses:?}"
    );
    name
}

/// Every spelling of this machine's loopback address the contract names.
async fn loopback_links(port: u16) -> Vec<String> {
    let hosts = [
        "127.0.0.1".to_owned(),
        "localhost".to_owned(),
        "2130706433".to_owned(),
        "0x7f.0.0.1".to_owned(),
        "127.1".to_owned(),
        "[::ffff:127.0.0.1]".to_owned(),
        loopback_host_name().await,
    ];
    // A query per link, or the ones the URL parser normalises alike would be cached.
    hosts.iter().enumerate().map(|(n, host)| format!("http://{host}:{port}/page?{n}")).collect()
}

#[tokio::test]
async fn loopback_in_any_spelling_reaches_nothing() {
    let (site, _root, server) = site_and_files(false, identity).await;
    for link in loopback_links(site.port).await {
        let reply = ask(&server, &link, "room", "").await;
        assert_eq!(reply.status, 422, "{link}");
        assert_eq!(reply.error_code(), "blocked_address", "{link}");
    }
    assert_eq!(site.connections(), 0, "the site was never reached");
    assert_eq!(
        server.metric("instantchat_files_previews_total{outcome=\"blocked_address\"}").await,
        7.0
    );
    assert!(server.stored().is_empty());
}

#[tokio::test]
async fn the_same_links_do_reach_the_site_when_private_addresses_are_allowed() {
    // Shows the test above is not vacuous: each of those links leads to the site.
    let (site, _root, server) = site_and_files(true, |c| FileSrvConfig {
        preview_room_per_min: 100,
        preview_ip_per_min: 100,
        ..c
    })
    .await;
    let links = loopback_links(site.port).await;
    for (n, link) in links.iter().enumerate() {
        let before = site.connections();
        let reply = ask(&server, link, "room", "").await;
        assert_eq!(reply.status, 200, "{link}: {:?}", String::from_utf8_lossy(&reply.body));
        assert_eq!(reply.json()["title"], "A cat on a mat", "{link}");
        assert!(site.connections() > before, "{link} (#{n}) reached the site");
    }
}

#[tokio::test]
async fn a_redirected_link_gets_title_description_and_a_file_srv_image() {
    let (site, _root, server) = site_and_files(true, identity).await;
    let link = format!("http://127.0.0.1:{}/moved", site.port);
    let reply = ask(&server, &link, "room", "").await;
    assert_eq!(reply.status, 200, "{:?}", String::from_utf8_lossy(&reply.body));
    let preview = reply.json();
    assert_eq!(preview["url"], link.as_str());
    assert_eq!(preview["title"], "A cat on a mat");
    assert_eq!(preview["description"], "Everything about the cat.");
    let image = preview["image"].as_str().unwrap();
    let path = image.strip_prefix(PUBLIC_URL).unwrap_or_else(|| panic!("{image} is file-srv's"));
    let served = raw_get(server.addr, path).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.header("content-type"), Some("image/png"));
    let picture =
        image::load_from_memory_with_format(&served.body, image::ImageFormat::Png).unwrap();
    assert_eq!((picture.width(), picture.height()), (400, 200), "scaled to fit 400×400");

    // Cached: asking again does not touch the site.
    let connections = site.connections();
    let again = ask(&server, &link, "other-room", "").await;
    assert_eq!(again.json(), preview);
    assert_eq!(site.connections(), connections);
    assert_eq!(server.metric("instantchat_files_previews_total{outcome=\"cached\"}").await, 1.0);
}

#[tokio::test]
async fn pages_that_break_a_limit_give_no_preview() {
    let (site, _root, server) =
        site_and_files(true, |c| FileSrvConfig { preview_timeout_ms: 300, ..c }).await;
    let cases = [
        ("/loop", "too_many_redirects"),
        ("/plain", "wrong_type"),
        ("/huge", "too_large"),
        ("/slow", "timeout"),
        ("/missing", "bad_status"),
    ];
    for (path, code) in cases {
        let reply = ask(&server, &format!("http://127.0.0.1:{}{path}", site.port), "r", "").await;
        assert_eq!((reply.status, reply.error_code()), (422, code.to_owned()), "{path}");
    }
    let other_port = ask(&server, "http://127.0.0.1:1/page", "r", "").await;
    assert_eq!(other_port.error_code(), "port_not_allowed");
    let not_http = ask(&server, "file:///etc/passwd", "r", "").await;
    assert_eq!(not_http.error_code(), "bad_url");
}

#[tokio::test]
async fn previews_are_limited_per_room_and_per_client_and_need_the_token() {
    let (site, root, server) = site_and_files(true, |c| FileSrvConfig {
        preview_room_per_min: 2,
        preview_token: "s3cret".into(),
        ..c
    })
    .await;
    let link = |n: u32| format!("http://127.0.0.1:{}/page?{n}", site.port);
    let auth = "\r\nAuthorization: Bearer s3cret";
    assert_eq!(ask(&server, &link(0), "busy-room", "").await.status, 401);
    assert_eq!(
        ask(&server, &link(0), "busy-room", "\r\nAuthorization: Bearer nope").await.status,
        401
    );
    assert_eq!(ask(&server, &link(1), "busy-room", auth).await.status, 200);
    assert_eq!(ask(&server, &link(2), "busy-room", auth).await.status, 200);
    let refused = ask(&server, &link(3), "busy-room", auth).await;
    assert_eq!((refused.status, refused.error_code()), (429, "rate_limited".to_owned()));
    assert!(refused.header("retry-after").is_some());
    assert_eq!(ask(&server, &link(3), "quiet-room", auth).await.status, 200);
    // Per client: one sender filling several rooms is refused too (IPv6 per /64).
    let limited_client =
        FileSrvConfig { preview_ip_per_min: 2, ..config(root.path(), &site, true) };
    let other_root = tempfile::tempdir().unwrap();
    let per_client = support::start_files(FileSrvConfig {
        data_dir: other_root.path().join("files").display().to_string(),
        ..limited_client
    })
    .await;
    for (n, room) in ["a", "b"].into_iter().enumerate() {
        assert_eq!(
            ask_from(&per_client, &link(10 + n as u32), room, "2001:db8::1", "").await.status,
            200
        );
    }
    let refused = ask_from(&per_client, &link(20), "c", "2001:db8::2", "").await;
    assert_eq!((refused.status, refused.error_code()), (429, "rate_limited".to_owned()));
    assert_eq!(ask_from(&per_client, &link(21), "c", "2001:db9::1", "").await.status, 200);

    let bad = exchange(
        server.addr,
        &format!("POST /previews HTTP/1.1\r\nContent-Length: 5\r\nConnection: close{auth}"),
        b"{nope",
    )
    .await;
    assert_eq!((bad.status, bad.error_code()), (400, "bad_request".to_owned()));
}
