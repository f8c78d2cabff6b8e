//! The shipped nginx configuration in real nginx, in front of the real
//! services: a room is created, people chat over websockets and a drawing
//! goes up and comes back, all through nginx only, over plain HTTP and over
//! TLS. Also: the client's address reaches the services, the live metrics
//! pass promtool and cover every dashboard and alert
//! ([`deploy_check::shipped_metrics`]), and the scale-out script adds and
//! removes a backend while nginx runs. `nginx_conf.rs` checks the files
//! without services.

use std::net::{IpAddr, SocketAddr};

use deploy_check::chat::{
    a_drawing_goes_up_and_round, closed_with, create_room, history_over_http, next_frame, send,
    two_people_chat, ws_base, ws_refused_status,
};
use deploy_check::client::{Origin, Response, TestCa};
use deploy_check::fleet::{ADMIN_TOKEN, BackendAddr, Bound, Fleet, Settings};
use deploy_check::nginx::{Nginx, Site, Upstreams};
use deploy_check::{paths, shipped_metrics, tools};
use http::Method;
use serde_json::json;

// ---------------------------------------------------------------- set-up

/// The web UI's files for the test: nginx serves them from disk, aux-srv
/// (web_root) serves the pages.
fn web_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<!doctype html><title>home</title>\n").unwrap();
    std::fs::write(dir.path().join("room.html"), "<!doctype html><title>room</title>\n").unwrap();
    std::fs::write(dir.path().join("app.js"), "console.log('instantchat');\n".repeat(100)).unwrap();
    std::fs::write(dir.path().join("style.css"), "body { margin: 0 }\n").unwrap();
    std::fs::write(dir.path().join("favicon.svg"), "<svg xmlns=\"http://www.w3.org/2000/svg\"/>\n")
        .unwrap();
    dir
}

struct Deployment {
    nginx: Nginx,
    fleet: Fleet,
    /// What browsers use: nginx's public origin.
    public: Origin,
    _web: tempfile::TempDir,
}

/// Binds the services, starts nginx in front of them, then the services.
async fn deploy(
    site: Site,
    ca: Option<&TestCa>,
    registered: usize,
    tune: impl FnOnce(&mut Settings),
) -> Deployment {
    let web = web_root();
    let bound = Bound::new(&["b1", "b2"]).await;
    let addrs = bound.addrs();
    let upstreams = Upstreams {
        aux: addrs.aux,
        files: addrs.files,
        backends: addrs.backends[..registered].to_vec(),
    };
    let tls = ca.map(|ca| (ca.cert(), ca.key()));
    let nginx = Nginx::start(
        site,
        &upstreams,
        web.path(),
        tls.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
    );
    let public = match ca {
        None => Origin::plain(SocketAddr::from(([127, 0, 0, 1], nginx.http_port))),
        Some(ca) => {
            Origin::tls("localhost", SocketAddr::from(([127, 0, 0, 1], nginx.https_port)), ca)
        }
    };
    let mut settings = Settings::new(registered, web.path().to_owned());
    tune(&mut settings);
    let fleet = bound.start(&public, settings);
    fleet.wait_ready().await;
    Deployment { nginx, fleet, public, _web: web }
}

// ---------------------------------------------------------------- chat

/// The walk-through a user makes, through nginx: pages and assets, a
/// room, two people chatting, a drawing, the HTTP API, the per-backend
/// paths, a percent-encoded name, the Origin check. Returns the id of the
/// backend that holds `room`.
async fn chat_scenario(d: &Deployment, room: &str) -> String {
    let public = &d.public;
    pages_and_assets(public, room).await;
    let (ws_url, backend) = create_room(public, room).await;
    let (mut ada, mut bob) = two_people_chat(public, &ws_url, "hello through nginx").await;
    a_drawing_goes_up_and_round(public, &mut ada, &mut bob).await;
    history_over_http(public, room, "ada: hello through nginx").await;
    each_backend_has_its_own_path(public, room, &backend).await;
    a_percent_encoded_room(public).await;
    the_origin_check_and_unknown_backends(public, &ws_url).await;
    backend
}

/// nginx itself, the pages (aux-srv) and the assets (nginx, from disk).
async fn pages_and_assets(public: &Origin, room: &str) {
    assert_eq!(public.get("/healthz").await.status, 200);
    let home = public.get("/").await;
    assert_eq!(home.status, 200, "{}", home.text());
    assert!(home.text().contains("<title>home</title>"));
    assert_eq!(home.header("cache-control"), Some("public, max-age=60"), "pages come from aux-srv");
    let page = public.get(&format!("/{room}")).await;
    assert!(page.text().contains("<title>room</title>"), "a room's page: {}", page.text());
    for asset in ["/app.js", "/static/app.js"] {
        let js = public.request(Method::GET, asset, &[("accept-encoding", "gzip")], "").await;
        assert_eq!(js.status, 200, "{asset}");
        assert!(js.header("expires").is_some(), "{asset} is served by nginx with caching");
        assert_eq!(js.header("cache-control"), Some("max-age=3600"), "{asset}");
        assert_eq!(js.header("content-encoding"), Some("gzip"), "{asset} is compressed");
    }
    // Module scripts and stylesheets need their real types.
    for (asset, kind) in [
        ("/app.js", "application/javascript"),
        ("/style.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let response = public.get(asset).await;
        assert_eq!(response.header("content-type"), Some(kind), "{asset}");
    }
    assert_eq!(public.get("/static/missing.js").await.status, 404);
    assert_eq!(public.get("/livez").await.status, 200, "aux-srv's /livez");

    // Their metrics are not public.
    let metrics = public.get("/metrics").await;
    assert_eq!((metrics.status, metrics.error_code().as_str()), (404, "not_found"));
}

/// Each backend has its own path: the other one does not hold the room.
async fn each_backend_has_its_own_path(public: &Origin, room: &str, backend: &str) {
    let (page_origin, ws_base) = (public.url(), ws_base(&public.url()));
    let other = if backend == "b1" { "b2" } else { "b1" };
    let mut lost = public
        .websocket(&format!("{ws_base}/b/{other}/ws/{room}"), Some(&page_origin))
        .await
        .expect("the other backend answers too");
    send(&mut lost, json!({"type": "join"})).await;
    assert_eq!(next_frame(&mut lost, "error").await["code"], "room_not_found");
    assert_eq!(closed_with(&mut lost).await, 4404);
}

/// A room name that must be percent-encoded.
async fn a_percent_encoded_room(public: &Origin) {
    let page_origin = public.url();
    let unicode = public.request(Method::PUT, "/api/rooms/caf%C3%A9-d%C3%A9ploy", &[], "{}").await;
    assert_eq!(unicode.status, 201, "{}", unicode.text());
    let unicode_url = unicode.json()["ws_url"].as_str().unwrap().to_owned();
    let mut cafe =
        public.websocket(&unicode_url, Some(&page_origin)).await.expect("connect to café");
    send(&mut cafe, json!({"type": "join"})).await;
    assert_eq!(next_frame(&mut cafe, "welcome").await["room"], "café-déploy");
}

/// The backend's Origin check works behind nginx (Host is passed on); an
/// unknown backend id is a JSON error.
async fn the_origin_check_and_unknown_backends(public: &Origin, ws_url: &str) {
    let foreign =
        public.websocket(ws_url, Some("https://evil.example")).await.expect_err("foreign origin");
    let (status, body) = ws_refused_status(foreign);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("origin_not_allowed"), "{body}");

    // An unknown backend id, and a known one that is down: JSON errors.
    let unknown = public.get("/b/nope/ws/room").await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (404, "backend_not_found"));
}

fn assert_hsts(response: &Response, what: &str, expected: bool) {
    let hsts = response.header("strict-transport-security");
    if expected {
        assert_eq!(hsts, Some("max-age=31536000"), "{what} carries HSTS");
    } else {
        assert_eq!(hsts, None, "{what}: no HSTS over plain HTTP");
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_chat_client_ip_and_live_metrics() {
    let d = deploy(Site::Http, None, 2, |s| {
        s.aux.http_post_per_minute = 1;
        s.aux.http_post_burst = 3;
        s.files.upload_rate_per_min = 1;
        s.files.upload_burst = 2;
    })
    .await;
    chat_scenario(&d, "deploy-plain").await;
    for path in ["/", "/app.js", "/api/rooms/deploy-plain"] {
        assert_hsts(&d.public.get(path).await, path, false);
    }

    // A backend nginx knows but that is down: 502 with the JSON body.
    // A bound socket that never listens: connections to it are refused,
    // and no other test can take its port meanwhile.
    let closed = tokio::net::TcpSocket::new_v4().unwrap();
    closed.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let dead = closed.local_addr().unwrap();
    let b9 = BackendAddr { id: "b9".into(), public: dead, control: dead };
    deploy_check::nginx::write_backend_map(&d.nginx.backends_dir(), &b9);
    d.nginx.reload().await;
    let down = d.public.get("/b/b9/ws/room").await;
    assert_eq!(
        (down.status, down.error_code().as_str()),
        (502, "upstream_unavailable"),
        "status {}: {}\n{}",
        down.status,
        down.text(),
        d.nginx.error_log()
    );

    client_ip_reaches_the_services(&d).await;
    shipped_metrics::live_metrics_cover_dashboards_and_alerts(&d.fleet.addrs).await;
    d.fleet.stop().await;
}

/// aux-srv and file-srv rate-limit per client address: behind nginx that
/// must be the visitor's, not nginx's, and not what the visitor claims.
async fn client_ip_reaches_the_services(d: &Deployment) {
    let [one, two]: [IpAddr; 2] = [[127, 0, 0, 2].into(), [127, 0, 0, 3].into()];
    let post = |origin: Origin, spoof: bool| async move {
        let mut headers = vec![("content-type", "application/json")];
        if spoof {
            headers.push(("x-forwarded-for", "198.51.100.7"));
        }
        let body = json!({"nick": "bot", "text": "hi"}).to_string();
        origin
            .request(Method::POST, "/api/rooms/deploy-plain/messages", &headers, body)
            .await
            .status
    };
    let from_one = d.public.from_ip(one);
    for _ in 0..3 {
        assert_eq!(post(from_one.clone(), false).await, 201);
    }
    assert_eq!(post(from_one.clone(), false).await, 429, "127.0.0.2 used up its burst");
    assert_eq!(post(from_one.clone(), true).await, 429, "a forged X-Forwarded-For does not help");
    assert_eq!(post(d.public.from_ip(two), false).await, 201, "127.0.0.3 is another client");

    let upload = |origin: Origin| async move {
        let png = test_support::solid(2, 2, [0, 0, 255, 255]);
        origin.request(Method::POST, "/files", &[("content-type", "image/png")], png).await.status
    };
    assert_eq!(upload(from_one.clone()).await, 201);
    assert_eq!(upload(from_one.clone()).await, 201);
    assert_eq!(upload(from_one).await, 429, "127.0.0.2 used up its upload burst");
    assert_eq!(upload(d.public.from_ip(two)).await, 201, "127.0.0.3 may still upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_chat_with_hsts_and_http_redirect() {
    let ca = TestCa::new();
    let d = deploy(Site::Https, Some(&ca), 2, |_| {}).await;
    chat_scenario(&d, "deploy-tls").await;

    // HSTS on every kind of answer.
    let png = test_support::solid(1, 1, [1, 2, 3, 255]);
    let id = d
        .public
        .request(Method::POST, "/files", &[("content-type", "image/png")], png)
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        "/",
        "/app.js",
        "/api/rooms/deploy-tls",
        "/metrics",
        &format!("/files/{id}.png"),
        "/b/nope/ws/x",
    ] {
        assert_hsts(&d.public.get(path).await, path, true);
    }

    // Plain HTTP: redirected, except certbot's challenges.
    let http = Origin::plain(SocketAddr::from(([127, 0, 0, 1], d.nginx.http_port)));
    let redirect = http.get("/deploy-tls?x=1").await;
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("https://127.0.0.1/deploy-tls?x=1"));
    let api = http.request(Method::PUT, "/api/rooms/x", &[], "{}").await;
    assert_eq!(api.status, 301, "nothing is served over plain HTTP");
    let token = d.nginx.dir.path().join("acme/.well-known/acme-challenge/tok-en_1");
    std::fs::write(&token, "tok-en_1.key-auth").unwrap();
    let challenge = http.get("/.well-known/acme-challenge/tok-en_1").await;
    assert_eq!((challenge.status, challenge.text().as_str()), (200, "tok-en_1.key-auth"));
    assert_eq!(http.get("/.well-known/acme-challenge/missing").await.status, 404);
    assert_eq!(http.get("/healthz").await.status, 200);
    d.fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_out_and_in_with_the_script() {
    tools::require("curl");
    // aux-srv starts with b1 only; nginx routes b1 only.
    let d = deploy(Site::Http, None, 1, |_| {}).await;
    let b2 = d.fleet.addrs.backend("b2").clone();
    let work = tempfile::tempdir().unwrap();
    let env_file = work.path().join(".env");
    std::fs::write(&env_file, format!("ADMIN_TOKEN={ADMIN_TOKEN}\nBACKENDS=[]\nOTHER=kept\n"))
        .unwrap();
    let targets = work.path().join("targets");
    let script = |args: &[&str]| {
        let mut command = tools::bash(&paths::deploy_file("scripts/instantchat-backend.sh"), args);
        command
            .current_dir(work.path())
            .env("ADMIN_URL", format!("http://{}", d.fleet.addrs.admin))
            .env("ENV_FILE", &env_file)
            .env("NGINX_BACKENDS_DIR", d.nginx.backends_dir())
            .env("NGINX_RELOAD", d.nginx.reload_command())
            .env("PROM_TARGETS_DIR", &targets)
            .env_remove("ADMIN_TOKEN");
        tools::output_of(&mut command)
    };
    let ok = |args: &[&str]| {
        let output = script(args);
        assert!(
            output.status.success(),
            "instantchat-backend.sh {args:?}:\n{}",
            tools::describe(&output)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };

    // Before: /b/b2 is unknown to nginx.
    assert_eq!(d.public.get("/b/b2/ws/x").await.status, 404);

    // Scale out: nginx route + aux-srv + Prometheus target, no restart.
    let workers = d.nginx.workers();
    let added = ok(&["add", "b2", &b2.public.to_string(), &b2.control.to_string()]);
    d.nginx.wait_for_reload(&workers).await;
    assert_eq!(
        d.public.get("/b/b2/ws/x").await.status,
        400,
        "nginx routes /b/b2 (not a websocket: 400)"
    );
    assert!(added.contains("\"id\":\"b2\""), "{added}");
    let env = std::fs::read_to_string(&env_file).unwrap();
    let b1 = d.fleet.addrs.backend("b1").clone();
    let both = format!(
        "BACKENDS=[{{id=\"b1\", control_addr=\"{}\"}}, {{id=\"b2\", control_addr=\"{}\"}}]\n",
        b1.control, b2.control
    );
    assert!(env.contains(&both), "aux-srv's list for its next start: {env}");
    assert!(env.contains("OTHER=kept"));
    ok(&["target-add", "b2", &b2.public.to_string()]);
    let target = std::fs::read_to_string(targets.join("b2.yml")).unwrap();
    assert_eq!(target, format!("- targets: [\"{}\"]\n  labels: {{backend: \"b2\"}}\n", b2.public));

    // New rooms go to b2 once b1 drains, and its websockets work through nginx.
    ok(&["drain", "b1"]);
    let created = d.public.request(Method::PUT, "/api/rooms/scaled-out", &[], "{}").await;
    assert_eq!(created.status, 201, "{}", created.text());
    let ws_url = created.json()["ws_url"].as_str().unwrap().to_owned();
    assert!(ws_url.contains("/b/b2/ws/"), "{ws_url}");
    let mut ws =
        d.public.websocket(&ws_url, Some(&d.public.url())).await.expect("connect to b2 via nginx");
    send(&mut ws, json!({"type": "join"})).await;
    next_frame(&mut ws, "welcome").await;
    drop(ws);

    // Scale in: b2 holds a room, so a plain remove is refused…
    let refused = script(&["remove", "b2"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("still holds rooms"),
        "{}",
        tools::describe(&refused)
    );
    assert!(d.nginx.backends_dir().join("b2.map").exists(), "nginx keeps routing b2 meanwhile");
    // …and forced, b2 leaves aux-srv, nginx and the .env.
    ok(&["undrain", "b1"]);
    let workers = d.nginx.workers();
    ok(&["remove", "b2", "--force"]);
    d.nginx.wait_for_reload(&workers).await;
    ok(&["target-remove", "b2"]);
    assert!(!targets.join("b2.yml").exists());
    let only_b1 = format!("BACKENDS=[{{id=\"b1\", control_addr=\"{}\"}}]\n", b1.control);
    assert!(std::fs::read_to_string(&env_file).unwrap().contains(&only_b1));
    let listed = ok(&["list"]);
    assert!(!listed.contains("\"b2\""), "{listed}");
    assert_eq!(d.public.get("/b/b2/ws/x").await.status, 404, "nginx forgot /b/b2");

    // Bad input is refused before anything changes.
    let bad = script(&["add", "b/3", "127.0.0.1:1"]);
    assert!(
        !bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("bad backend id")
    );
    d.fleet.stop().await;
}
