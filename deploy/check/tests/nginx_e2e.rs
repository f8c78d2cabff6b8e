//! The shipped nginx configuration in real nginx, in front of the real
//! services: a room is created, people chat over websockets and a drawing
//! goes up and comes back, all through nginx only, over plain HTTP and over
//! TLS. Also: the client's address reaches the services, the live metrics
//! pass promtool and cover every dashboard and alert, and the scale-out
//! script adds and removes a backend while nginx runs.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;

use deploy_check::chat::{closed_with, next_frame, send, ws_refused_status};
use deploy_check::client::{Origin, Response, TestCa};
use deploy_check::fleet::{ADMIN_TOKEN, BackendAddr, Bound, Fleet, Settings};
use deploy_check::nginx::{Nginx, Site, Upstreams};
use deploy_check::node_exporter::NodeExporter;
use deploy_check::{exposition, paths, png, promql, tools};
use http::Method;
use serde_json::{Value, json};

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

/// Everything a user does, through nginx only. Returns the room's backend.
async fn chat_scenario(d: &Deployment, room: &str) -> String {
    let public = &d.public;
    let page_origin = public.url();
    let ws_base = page_origin.replacen("http", "ws", 1);

    // nginx itself, the pages (aux-srv) and the assets (nginx, from disk).
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

    // Create the room.
    let created = public
        .request(
            Method::PUT,
            &format!("/api/rooms/{room}"),
            &[("content-type", "application/json")],
            "{}",
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let answer = created.json();
    let ws_url = answer["ws_url"].as_str().unwrap().to_owned();
    assert_eq!(answer["files_url"], page_origin, "drawings come from the same origin");
    let backend = ws_url
        .strip_prefix(&format!("{ws_base}/b/"))
        .and_then(|rest| rest.strip_suffix(&format!("/ws/{room}")))
        .unwrap_or_else(|| panic!("ws_url {ws_url} is not {ws_base}/b/<id>/ws/{room}"))
        .to_owned();

    // Two people chat.
    let mut ada =
        public.websocket(&ws_url, Some(&page_origin)).await.expect("ada connects through nginx");
    send(&mut ada, json!({"type": "join", "nick": "ada"})).await;
    let welcome = next_frame(&mut ada, "welcome").await;
    assert_eq!(welcome["you"]["nick"], "ada");
    let mut bob = public.websocket(&ws_url, Some(&page_origin)).await.expect("bob connects");
    send(&mut bob, json!({"type": "join", "nick": "bob"})).await;
    next_frame(&mut bob, "welcome").await;
    assert_eq!(next_frame(&mut ada, "joined").await["member"]["nick"], "bob");
    send(&mut ada, json!({"type": "send", "text": "hello through nginx", "client_id": "c-1"}))
        .await;
    for ws in [&mut ada, &mut bob] {
        let message = next_frame(ws, "message").await;
        assert_eq!(
            (message["text"].as_str(), message["from"]["nick"].as_str()),
            (Some("hello through nginx"), Some("ada"))
        );
    }

    // A drawing: upload, fetch, send.
    let drawing = png::solid(4, 3, [200, 30, 30, 255]);
    let uploaded = public
        .request(
            Method::POST,
            "/files",
            &[("content-type", "image/png"), ("origin", &page_origin)],
            drawing.clone(),
        )
        .await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.text());
    let upload = uploaded.json();
    let id = upload["id"].as_str().unwrap().to_owned();
    let url = upload["url"].as_str().unwrap();
    assert_eq!(url, format!("{page_origin}/files/{id}.png"));
    let fetched = public.get(&format!("/files/{id}.png")).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.header("content-type"), Some("image/png"));
    assert!(fetched.header("cache-control").is_some_and(|c| c.contains("immutable")));
    assert_eq!(fetched.body.as_ref(), drawing.as_slice(), "the same bytes come back");
    send(&mut bob, json!({"type": "send", "text": "", "drawing": id})).await;
    assert_eq!(next_frame(&mut ada, "message").await["drawing"], id);

    // The HTTP API reads the same room.
    let history = public
        .request(
            Method::GET,
            &format!("/api/rooms/{room}/messages"),
            &[("accept", "text/plain")],
            "",
        )
        .await;
    assert_eq!(history.status, 200);
    assert!(history.text().contains("ada: hello through nginx"), "{}", history.text());

    // Each backend has its own path: the other one does not hold the room.
    let other = if backend == "b1" { "b2" } else { "b1" };
    let mut lost = public
        .websocket(&format!("{ws_base}/b/{other}/ws/{room}"), Some(&page_origin))
        .await
        .expect("the other backend answers too");
    send(&mut lost, json!({"type": "join"})).await;
    assert_eq!(next_frame(&mut lost, "error").await["code"], "room_not_found");
    assert_eq!(closed_with(&mut lost).await, 4404);

    // A room name that must be percent-encoded.
    let unicode = public.request(Method::PUT, "/api/rooms/caf%C3%A9-d%C3%A9ploy", &[], "{}").await;
    assert_eq!(unicode.status, 201, "{}", unicode.text());
    let unicode_url = unicode.json()["ws_url"].as_str().unwrap().to_owned();
    let mut cafe =
        public.websocket(&unicode_url, Some(&page_origin)).await.expect("connect to café");
    send(&mut cafe, json!({"type": "join"})).await;
    assert_eq!(next_frame(&mut cafe, "welcome").await["room"], "café-déploy");

    // The backend's Origin check works behind nginx (Host is passed on).
    let foreign =
        public.websocket(&ws_url, Some("https://evil.example")).await.expect_err("foreign origin");
    let (status, body) = ws_refused_status(foreign);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("origin_not_allowed"), "{body}");

    // An unknown backend id, and a known one that is down: JSON errors.
    let unknown = public.get("/b/nope/ws/room").await;
    assert_eq!((unknown.status, unknown.error_code().as_str()), (404, "backend_not_found"));

    for ws in [ada, bob, cafe] {
        drop(ws);
    }
    backend
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
    live_metrics_pass_promtool_and_cover_dashboards_and_alerts(&d).await;
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
        let png = png::solid(2, 2, [0, 0, 255, 255]);
        origin.request(Method::POST, "/files", &[("content-type", "image/png")], png).await.status
    };
    assert_eq!(upload(from_one.clone()).await, 201);
    assert_eq!(upload(from_one.clone()).await, 201);
    assert_eq!(upload(from_one).await, 429, "127.0.0.2 used up its upload burst");
    assert_eq!(upload(d.public.from_ip(two)).await, 201, "127.0.0.3 may still upload");
}

fn promtool_check_metrics(what: &str, text: &str) {
    let mut child = tools::command("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    // promtool lints too (e.g. a counter without _total); the services must
    // pass cleanly: any finding fails.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool check metrics on {what}:\n{said}"
    );
}

/// Every PromQL expression of the dashboards and the alert rules, with
/// where it is from.
fn shipped_expressions() -> Vec<(String, String)> {
    let mut exprs = Vec::new();
    let dashboards = paths::deploy_file("grafana/dashboards");
    for entry in std::fs::read_dir(&dashboards).unwrap() {
        let path = entry.unwrap().path();
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("every target has an expr");
                exprs.push((format!("{name}: {}", panel["title"]), expr.to_owned()));
            }
        }
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            let query = variable["query"]["query"].as_str().unwrap();
            // label_values(<selector>, label): the selector is PromQL.
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.rsplit_once(','))
                .map(|(s, _)| s);
            exprs.push((
                format!("{name}: variable {}", variable["name"]),
                inner.unwrap_or(query).to_owned(),
            ));
        }
    }
    let rules =
        std::fs::read_to_string(paths::deploy_file("prometheus/rules/instantchat.yml")).unwrap();
    // `expr:` values: one line, or a folded block (`>-`) of indented lines.
    let lines: Vec<&str> = rules.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(value) = line.trim().strip_prefix("expr:") else { continue };
        let value = value.trim();
        let expr = if value == ">-" {
            lines[i + 1..]
                .iter()
                .take_while(|l| l.starts_with("          "))
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            value.to_owned()
        };
        exprs.push(("rules/instantchat.yml".into(), expr));
    }
    exprs
}

async fn live_metrics_pass_promtool_and_cover_dashboards_and_alerts(d: &Deployment) {
    let addrs = &d.fleet.addrs;
    let node = NodeExporter::start();
    let mut targets =
        vec![("aux-srv", addrs.aux), ("file-srv", addrs.files), ("node-exporter", node.addr)];
    targets.extend(addrs.backends.iter().map(|b| ("backend", b.public)));
    let mut live = BTreeSet::new();
    for (what, addr) in targets {
        let metrics = Origin::plain(addr).get("/metrics").await;
        assert_eq!(metrics.status, 200, "{what} /metrics");
        if what != "node-exporter" {
            promtool_check_metrics(&format!("{what} at {addr}"), &metrics.text());
        }
        live.extend(exposition::sample_names(&metrics.text()));
    }
    // Prometheus adds `up` to every scrape itself.
    live.insert("up".to_owned());

    let expressions = shipped_expressions();
    assert!(expressions.len() > 30, "found only {} expressions", expressions.len());
    let mut unknown = Vec::new();
    for (origin, expr) in &expressions {
        for name in promql::metric_names(&promql::without_grafana_variables(expr)) {
            if !live.contains(&name) {
                unknown.push(format!("{origin}: `{name}` in {expr}"));
            }
        }
    }
    assert!(unknown.is_empty(), "metrics no live service exposes:\n{}", unknown.join("\n"));

    // Every expression parses: promtool checks them as recording rules.
    let dir = tempfile::tempdir().unwrap();
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, (_, expr)) in expressions.iter().enumerate() {
        let expr = promql::without_grafana_variables(expr);
        rules.push_str(&format!(
            "      - record: deploy_check:expr_{i}\n        expr: {}\n",
            serde_json::to_string(&expr).unwrap()
        ));
    }
    let file = dir.path().join("dashboards.rules.yml");
    std::fs::write(&file, rules).unwrap();
    tools::run_ok(
        "promtool check rules (dashboard expressions)",
        tools::command("promtool").args(["check", "rules"]).arg(&file),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_chat_with_hsts_and_http_redirect() {
    let ca = TestCa::new();
    let d = deploy(Site::Https, Some(&ca), 2, |_| {}).await;
    chat_scenario(&d, "deploy-tls").await;

    // HSTS on every kind of answer.
    let png = png::solid(1, 1, [1, 2, 3, 255]);
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

/// The shipped main nginx.conf (the image's), with both rendered sites:
/// `nginx -t` accepts it.
#[test]
fn shipped_main_conf_passes_nginx_t() {
    let ca = TestCa::new();
    for site in [Site::Http, Site::Https] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::copy(paths::deploy_file("nginx/nginx.conf"), d.join("nginx.conf")).unwrap();
        std::os::unix::fs::symlink(paths::deploy_file("nginx/instantchat"), d.join("instantchat"))
            .unwrap();
        std::os::unix::fs::symlink("/etc/nginx/mime.types", d.join("mime.types")).unwrap();
        std::fs::create_dir(d.join("backends.d")).unwrap();
        for (id, host) in [("b1", "10.0.0.11:9001"), ("b2", "10.0.0.12:9001")] {
            std::fs::write(
                d.join(format!("backends.d/{id}.map")),
                format!("# control x\n{id} {host};\n"),
            )
            .unwrap();
        }
        let upstreams = Upstreams {
            aux: "127.0.0.1:8080".parse().unwrap(),
            files: "127.0.0.1:8085".parse().unwrap(),
            backends: vec![],
        };
        let mut env = deploy_check::nginx::template_env(
            site,
            &upstreams,
            d,
            d,
            Some((&ca.cert(), &ca.key())),
            80,
            443,
        );
        // As in the image: names, looked up through Docker's resolver.
        for (key, value) in &mut env {
            match key.as_str() {
                "NGINX_AUX_ADDR" => *value = "aux-srv:8080".into(),
                "NGINX_FILES_ADDR" => *value = "file-srv:8085".into(),
                "NGINX_RESOLVER" => *value = "127.0.0.11".into(),
                "NGINX_SERVER_NAME" => *value = "chat.example.org".into(),
                _ => {}
            }
        }
        let rendered = deploy_check::nginx::render(&d.join("conf.d"), &env);
        assert!(rendered.status.success(), "{}", tools::describe(&rendered));
        let test = tools::output_of(
            tools::command("nginx")
                .args(["-t", "-p"])
                .arg(format!("{}/", d.display()))
                .arg("-c")
                .arg(d.join("nginx.conf")),
        );
        assert!(
            test.status.success(),
            "nginx -t of deploy/nginx/nginx.conf ({site:?}):\n{}",
            tools::describe(&test)
        );
    }
}

#[test]
fn template_renderer_refuses_missing_settings() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = Upstreams {
        aux: "127.0.0.1:1".parse().unwrap(),
        files: "127.0.0.1:2".parse().unwrap(),
        backends: vec![],
    };
    // https without a certificate.
    let env = deploy_check::nginx::template_env(
        Site::Https,
        &upstreams,
        dir.path(),
        dir.path(),
        None,
        80,
        443,
    );
    let output = deploy_check::nginx::render(dir.path(), &env);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("NGINX_TLS_CERT") && said.contains("NGINX_TLS_KEY"), "{said}");
    // An unknown site.
    let mut env = deploy_check::nginx::template_env(
        Site::Http,
        &upstreams,
        dir.path(),
        dir.path(),
        None,
        80,
        443,
    );
    env.retain(|(k, _)| k != "NGINX_SITE");
    env.push(("NGINX_SITE".into(), "gopher".into()));
    let output = deploy_check::nginx::render(dir.path(), &env);
    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("NGINX_SITE")
    );
    // nginx's own $variables are left alone.
    let env = deploy_check::nginx::template_env(
        Site::Http,
        &upstreams,
        dir.path(),
        dir.path(),
        None,
        80,
        443,
    );
    let output = deploy_check::nginx::render(dir.path(), &env);
    assert!(output.status.success(), "{}", tools::describe(&output));
    let upstream_conf =
        std::fs::read_to_string(dir.path().join("instantchat-upstreams.conf")).unwrap();
    assert!(
        upstream_conf.contains("map $instantchat_backend_id $instantchat_backend_addr"),
        "{upstream_conf}"
    );
    assert!(upstream_conf.contains("default 127.0.0.1:1;"), "{upstream_conf}");
    assert!(!upstream_conf.contains("${"), "{upstream_conf}");
}
