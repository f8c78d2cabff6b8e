//! Wrong room passwords on the HTTP API earn growing waits, per client
//! address and per room: `429 too_many_attempts` with `Retry-After`.

mod support;

use common::config::PasswordAttempts;
use http::Method;
use serde_json::json;
use support::*;

#[tokio::test]
async fn wrong_http_passwords_earn_waits_per_address_and_per_room() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let mut config = aux_config(&[&b1]);
    config.trusted_proxies = vec!["127.0.0.1".into()];
    config.password_attempts = PasswordAttempts {
        free_per_ip: 2,
        free_per_room: 4,
        base_delay_ms: 30_000,
        max_delay_ms: 60_000,
        forget_after_secs: 600,
    };
    let aux = start_aux_ready(config).await;
    let url = aux.url("/api/rooms/Locked-Box");
    let created =
        call(Method::PUT, &url, &[], Some(json!({ "password": "hunter2" }).to_string())).await;
    assert_eq!(created.status, 201);
    let messages = aux.url("/api/rooms/locked-box/messages");
    let read = |from: &'static str, password: &'static str| {
        let messages = messages.clone();
        async move {
            let headers = [("x-forwarded-for", from), ("x-room-password", password)];
            call(Method::GET, &messages, &headers, None).await
        }
    };
    let post = |from: &'static str, password: &'static str| {
        let messages = messages.clone();
        async move {
            let headers = [("x-forwarded-for", from), ("x-room-password", password)];
            let body = Some(json!({ "nick": "bot", "text": "hi" }).to_string());
            call(Method::POST, &messages, &headers, body).await
        }
    };

    // A right password resets nothing for the room but is fine.
    assert_eq!(read("198.51.100.1", "hunter2").await.status, 200);
    for guess in ["a", "b"] {
        let r = read("198.51.100.1", guess).await;
        assert_eq!((r.status, r.error_code().as_str()), (403, "wrong_password"));
    }
    // Two wrong from this address: it waits, whatever it sends now.
    for r in [read("198.51.100.1", "c").await, post("198.51.100.1", "hunter2").await] {
        assert_eq!((r.status, r.error_code().as_str()), (429, "too_many_attempts"), "{}", r.body);
        let retry: u64 = r.header("retry-after").parse().unwrap();
        assert!((29..=30).contains(&retry), "{retry}");
    }
    // Another address may still try…
    assert_eq!(post("198.51.100.2", "hunter2").await.status, 201);
    for guess in ["d", "e"] {
        assert_eq!(post("198.51.100.2", guess).await.status, 403);
    }
    // …until the room has had its 4 wrong passwords: then everyone waits.
    let r = read("198.51.100.3", "hunter2").await;
    assert_eq!((r.status, r.error_code().as_str()), (429, "too_many_attempts"));
    assert!(!r.header("retry-after").is_empty());
    // Other rooms are not affected.
    assert_eq!(aux.put_room("open-room").await.status, 201);
    assert_eq!(aux.post_message("open-room", "hello").await.status, 201);
    let refused = aux.metric(r#"instantchat_aux_rate_limited_total{limit="password_attempts"}"#);
    assert_eq!(refused.await, 3.0);
}
