//! The public HTTP API against real backends: rooms, messages over HTTP,
//! passwords, rate limits, pages, probes and metrics.

mod support;

use common::config::AuxConfig;
use http::Method;
use serde_json::json;
use support::*;

#[tokio::test]
async fn create_open_and_look_up_rooms() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let aux = start_aux_ready(aux_config(&[&b1])).await;

    let created = aux.put_room("Team-Chat").await;
    assert_eq!(created.status, 201, "{}", created.body);
    let body = created.json();
    assert_eq!(body["name"], "Team-Chat");
    assert_eq!(body["created"], true);
    assert_eq!(body["has_password"], false);
    assert_eq!(body["files_url"], "http://127.0.0.1:8085");
    assert_eq!(body["ws_url"], format!("ws://{}/ws/Team-Chat", b1.public));
    assert_eq!(created.header("cache-control"), "no-store");

    // Case variants are the same room, under its creator's spelling.
    let opened = aux.put_room("team-CHAT").await;
    assert_eq!(opened.status, 200);
    assert_eq!(opened.json()["created"], false);
    assert_eq!(opened.json()["ws_url"], body["ws_url"]);
    let got = aux.get_room("TEAM-chat").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["name"], "Team-Chat");

    let missing = aux.get_room("nobody-here").await;
    assert_eq!((missing.status, missing.error_code().as_str()), (404, "room_not_found"));

    // Create-only: 409 with three free suggestions.
    let post = |name: &str| {
        let (url, body) = (aux.url("/api/rooms"), json!({ "name": name }).to_string());
        async move { call(Method::POST, &url, &[], Some(body)).await }
    };
    let conflict = post("team-chat").await;
    assert_eq!((conflict.status, conflict.error_code().as_str()), (409, "room_exists"));
    let suggestions = conflict.json()["suggestions"].as_array().unwrap().clone();
    assert_eq!(suggestions.len(), 3, "{}", conflict.body);
    for s in &suggestions {
        let s = s.as_str().unwrap();
        assert!(s.starts_with("team-chat-"), "{s}");
        assert_eq!(aux.get_room(s).await.status, 404, "{s} is free");
    }
    let fresh = post(suggestions[0].as_str().unwrap()).await;
    assert_eq!(fresh.status, 201);

    // Unicode names travel percent-encoded and come back as typed.
    let cafe = aux.put_room("Caf%C3%A9").await;
    assert_eq!(cafe.status, 201);
    assert_eq!(cafe.json()["name"], "Café");
    assert_eq!(cafe.json()["ws_url"], format!("ws://{}/ws/Caf%C3%A9", b1.public));
    assert_eq!(aux.get_room("CAF%C3%89").await.status, 200);

    // Bad input.
    for (name, code) in
        [("ab", "bad_room_name"), ("has%20space", "bad_room_name"), ("admin", "reserved_room_name")]
    {
        let r = aux.put_room(name).await;
        assert_eq!((r.status, r.error_code().as_str()), (400, code), "{name}");
    }
    let r =
        call(Method::PUT, &aux.url("/api/rooms/good-name"), &[], Some("{not json".into())).await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_json"));
    let big = json!({ "password": "x".repeat(20_000) }).to_string();
    let r = call(Method::PUT, &aux.url("/api/rooms/good-name"), &[], Some(big)).await;
    assert_eq!((r.status, r.error_code().as_str()), (413, "too_large"));
    let r = call(Method::DELETE, &aux.url("/api/rooms/good-name"), &[], None).await;
    assert_eq!((r.status, r.error_code().as_str()), (405, "method_not_allowed"));
    assert_eq!(get(&aux.url("/api/nothing")).await.status, 404);
}

#[tokio::test]
async fn http_post_and_read_round_trip_with_a_websocket_member() {
    init_tracing();
    let fleet = TestFleet::start(&["b1"]).await;
    let aux = &fleet.aux;
    let (mut member, welcome) = aux.member("Round-Trip", "ada").await;
    assert_eq!(welcome["room"], "Round-Trip");

    let posted = aux.post_message("round-trip", "hello from curl").await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    let seq = posted.json()["seq"].as_u64().unwrap();
    let seen = member.next_of("message").await;
    assert_eq!(
        (seen["text"].as_str(), seen["from"]["nick"].as_str()),
        (Some("hello from curl"), Some("bot"))
    );
    assert_eq!(seen["seq"].as_u64(), Some(seq));

    // The member answers; HTTP readers see both, oldest first.
    member.send(json!({ "type": "send", "text": "hi bot" })).await;
    member.next_of("message").await;
    // text/plain posts take the nick from the query; an empty nick gets a random one.
    let plain = call(
        Method::POST,
        &aux.url("/api/rooms/Round-Trip/messages?nick=shell"),
        &[("content-type", "text/plain")],
        Some("from a pipe\n".into()),
    )
    .await;
    assert_eq!(plain.status, 201, "{}", plain.body);
    let anon = call(
        Method::POST,
        &aux.url("/api/rooms/Round-Trip/messages"),
        &[],
        Some(json!({ "text": "who am I" }).to_string()),
    )
    .await;
    assert!(anon.json()["nick"].as_str().unwrap().contains('-'), "{}", anon.body);

    let read = get(&aux.url("/api/rooms/round-trip/messages")).await;
    assert_eq!(read.status, 200);
    let messages = read.json()["messages"].as_array().unwrap().clone();
    let texts: Vec<&str> = messages.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["hello from curl", "hi bot", "from a pipe", "who am I"]);
    assert_eq!(read.json()["last_seq"].as_u64(), Some(seq + 3));

    let page = get(&aux.url(&format!("/api/rooms/round-trip/messages?after={seq}&limit=1"))).await;
    let page = page.json()["messages"].as_array().unwrap().clone();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["text"], "hi bot");
    let newest = get(&aux.url("/api/rooms/round-trip/messages?limit=1")).await.json();
    assert_eq!(newest["messages"][0]["text"], "who am I", "without `after`: the newest");

    let messages = aux.url("/api/rooms/round-trip/messages");
    let text = call(Method::GET, &messages, &[("accept", "text/plain")], None).await;
    assert!(text.header("content-type").starts_with("text/plain"));
    let lines: Vec<&str> = text.body.lines().collect();
    assert_eq!(lines.len(), 4, "{}", text.body);
    assert!(
        lines[0].starts_with('[') && lines[0][6..].starts_with("] bot: hello from curl"),
        "{}",
        lines[0]
    );
    assert!(lines[1].ends_with("] ada: hi bot"), "{}", lines[1]);

    let bad = get(&aux.url("/api/rooms/round-trip/messages?after=x")).await;
    assert_eq!(bad.status, 400);
    let empty = aux.post_message("round-trip", "  ").await;
    assert_eq!((empty.status, empty.error_code().as_str()), (400, "empty_text"));
    let missing = get(&aux.url("/api/rooms/no-such-room/messages")).await;
    assert_eq!((missing.status, missing.error_code().as_str()), (404, "room_not_found"));
}

#[tokio::test]
async fn password_rooms_guard_their_messages() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let aux = start_aux_ready(aux_config(&[&b1])).await;
    let url = aux.url("/api/rooms/Secret-Room");
    let created =
        call(Method::PUT, &url, &[], Some(json!({ "password": "hunter2" }).to_string())).await;
    assert_eq!(created.status, 201);
    assert_eq!(created.json()["has_password"], true);
    assert_eq!(aux.get_room("secret-room").await.json()["has_password"], true);
    // Reopening needs no password: the page asks for it when joining.
    assert_eq!(aux.put_room("secret-room").await.status, 200);

    let messages = aux.url("/api/rooms/secret-room/messages");
    let post = |headers: Vec<(&'static str, &'static str)>| {
        let body = Some(json!({ "nick": "bot", "text": "psst" }).to_string());
        let messages = messages.clone();
        async move { call(Method::POST, &messages, &headers, body).await }
    };
    let r = post(vec![]).await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "password_required"));
    let r = post(vec![("x-room-password", "wrong")]).await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "wrong_password"));
    assert_eq!(post(vec![("x-room-password", "hunter2")]).await.status, 201);

    let r = get(&messages).await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "password_required"));
    let r = call(Method::GET, &messages, &[("x-room-password", "hunter3")], None).await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "wrong_password"));
    let r = call(Method::GET, &messages, &[("x-room-password", "hunter2")], None).await;
    assert_eq!(r.json()["messages"][0]["text"], "psst");

    // The websocket needs it too (the hash went to the backend, not the password).
    let ws_url = created.json()["ws_url"].as_str().unwrap().to_owned();
    let mut ws = WsClient::connect(&ws_url).await;
    ws.send(json!({ "type": "join", "nick": "eve", "password": "nope" })).await;
    assert_eq!(ws.next().await["type"], "error");
}

#[tokio::test]
async fn rate_limits_answer_429_and_trust_only_configured_proxies() {
    init_tracing();
    let fleet = TestFleet::start_with(&["b1"], |config| AuxConfig {
        room_create_per_minute: 1,
        room_create_burst: 2,
        http_post_per_minute: 1,
        http_post_burst: 2,
        trusted_proxies: vec!["127.0.0.1".into()],
        ..config
    })
    .await;
    let aux = &fleet.aux;

    let put = |name: &str, from: Option<&'static str>| {
        let url = aux.url(&format!("/api/rooms/{name}"));
        async move {
            let headers: Vec<(&str, &str)> =
                from.map(|ip| ("x-forwarded-for", ip)).into_iter().collect();
            call(Method::PUT, &url, &headers, Some("{}".into())).await
        }
    };
    let client = Some("198.51.100.1");
    assert_eq!(put("limit-one", client).await.status, 201);
    assert_eq!(put("limit-two", client).await.status, 201);
    let refused = put("limit-three", client).await;
    assert_eq!((refused.status, refused.error_code().as_str()), (429, "rate_limited"));
    let retry: u64 = refused.header("retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Opening an existing room is not a creation.
    assert_eq!(put("limit-one", client).await.status, 200);
    // Behind the trusted proxy, another client has its own bucket.
    assert_eq!(put("limit-three", Some("198.51.100.2")).await.status, 201);
    // Only the right-most untrusted hop counts: a spoofed left hop changes nothing.
    assert_eq!(put("limit-four", Some("10.9.9.9, 198.51.100.1")).await.status, 429);

    let post = || {
        let url = aux.url("/api/rooms/limit-one/messages");
        async move {
            let body = Some(json!({ "nick": "bot", "text": "x" }).to_string());
            call(Method::POST, &url, &[("x-forwarded-for", "198.51.100.9")], body).await
        }
    };
    assert_eq!(post().await.status, 201);
    assert_eq!(post().await.status, 201);
    let refused = post().await;
    assert_eq!(refused.status, 429);
    assert!(!refused.header("retry-after").is_empty());
    // Reads carrying a password cost a slow hash check: they count too.
    let url = aux.url("/api/rooms/limit-one/messages");
    let guess = [("x-forwarded-for", "198.51.100.9"), ("x-room-password", "guess")];
    assert_eq!(call(Method::GET, &url, &guess, None).await.status, 429);
    assert_eq!(call(Method::GET, &url, &guess[..1], None).await.status, 200);
    assert!(aux.metric("instantchat_aux_rate_limited_total{limit=\"http_post\"}").await >= 2.0);

    // Without trusted proxies, X-Forwarded-For is ignored: every "client" is 127.0.0.1.
    let untrusting =
        start_aux_ready(AuxConfig { trusted_proxies: Vec::new(), ..aux.config.clone() }).await;
    let put = |name: &str, ip: &'static str| {
        let url = untrusting.url(&format!("/api/rooms/{name}"));
        async move { call(Method::PUT, &url, &[("x-forwarded-for", ip)], Some("{}".into())).await }
    };
    assert_eq!(put("spoof-one", "203.0.113.1").await.status, 201);
    assert_eq!(put("spoof-two", "203.0.113.2").await.status, 201);
    assert_eq!(put("spoof-three", "203.0.113.3").await.status, 429);
}

#[tokio::test]
async fn pages_assets_probes_and_metrics() {
    init_tracing();
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(web.path().join("room.html"), "<h1>room</h1>").unwrap();
    std::fs::write(web.path().join("app.js"), "console.log(1)").unwrap();
    std::fs::write(web.path().join("style.css"), "body{}").unwrap();
    std::fs::write(web.path().join(".secret"), "no").unwrap();
    let b1 = start_backend(backend_config("b1")).await;
    let mut config = aux_config(&[&b1]);
    config.web_root = web.path().to_str().unwrap().into();
    let aux = start_aux_ready(config).await;

    let home = get(&aux.url("/")).await;
    assert_eq!((home.status, home.body.as_str()), (200, "<h1>home</h1>"));
    assert_eq!(home.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(home.header("cache-control"), "public, max-age=60");
    for room in ["/Some-Room", "/caf%C3%A9", "/x.y_z"] {
        let page = get(&aux.url(room)).await;
        assert_eq!((page.status, page.body.as_str()), (200, "<h1>room</h1>"), "{room}");
    }
    let js = get(&aux.url("/app.js")).await;
    assert_eq!(js.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(js.header("cache-control"), "public, max-age=3600");
    assert_eq!(js.header("x-content-type-options"), "nosniff");
    assert_eq!(
        get(&aux.url("/static/style.css")).await.header("content-type"),
        "text/css; charset=utf-8"
    );
    let etag = js.header("etag").to_owned();
    let again = call(Method::GET, &aux.url("/app.js"), &[("if-none-match", &etag)], None).await;
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    // Dot-files are never served; `.secret` is just a room name.
    assert_eq!(get(&aux.url("/.secret")).await.body, "<h1>room</h1>");
    for bad in ["/ab", "/static/.secret", "/static/../Cargo.toml", "/a/b", "/has%20space"] {
        let r = get(&aux.url(bad)).await;
        assert_eq!(r.status, 404, "{bad}");
        assert_eq!(r.error_code(), "not_found", "{bad}");
    }

    let live = get(&aux.url("/livez")).await;
    assert_eq!(live.status, 200);
    let ready = get(&aux.url("/readyz")).await;
    assert_eq!((ready.status, ready.json()["status"].as_str()), (200, Some("ready")));
    assert_eq!(ready.json()["backends_up"], 1);

    assert_eq!(aux.put_room("Metric-Room").await.status, 201);
    aux.get_room("metric-room").await;
    aux.get_room("not-there").await;
    let metrics = get(&aux.url("/metrics")).await;
    assert!(metrics.header("content-type").starts_with("text/plain"));
    let text = metrics.body;
    let aux_metric = |sample: &str| metric_of(&text, &format!("instantchat_aux_{sample}"));
    assert_eq!(aux_metric("placements_total{backend=\"b1\",result=\"created\"}"), 1.0);
    assert_eq!(aux_metric("lookups_total{result=\"miss\"}"), 2.0, "PUT's check and the GET");
    assert_eq!(aux_metric("lookups_total{result=\"hit\"}"), 1.0);
    let requests = |route: &str, status: u16| {
        aux_metric(&format!("http_requests_total{{route=\"{route}\",status=\"{status}\"}}"))
    };
    assert_eq!(requests("/api/rooms/{room}", 201), 1.0);
    assert_eq!(requests("/{room}", 200), 4.0, "three rooms and .secret");
    assert_eq!(aux_metric("backend_state{backend=\"b1\",state=\"up\"}"), 1.0);
    assert_eq!(aux_metric("rooms_known"), 1.0);
    assert!(text.contains("instantchat_aux_rebuild_duration_seconds_count"));
    assert!(text.contains("process_resident_memory_bytes"));
    assert!(!text.to_lowercase().contains("metric-room"), "room names are never labels");
}

#[tokio::test]
async fn shutdown_turns_readiness_off_before_closing() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let mut config = aux_config(&[&b1]);
    config.shutdown_drain_ms = 400;
    let mut aux = start_aux_ready(config).await;
    let url = aux.url("/readyz");
    let stopping = tokio::spawn(async move {
        aux.stop().await;
    });
    eventually("readiness is 503 while draining", || {
        let url = url.clone();
        async move { get(&url).await.status == 503 }
    })
    .await;
    assert_eq!(get(&url).await.json()["status"], "draining");
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
}
