//! The automatic defences against abuse, each refusal as the protocol says:
//! per-address upgrade and connection limits (429 before the handshake),
//! spam repeats, automatic slow mode (announced), wrong-password back-off,
//! and the proof-of-work challenge solved by a real client.

mod support;

use std::net::IpAddr;
use std::time::Duration;

use common::config::{BackendConfig, Defences, PasswordAttempts, PowMode};
use common::pow::{Challenge, PowSolution};
use common::ws::ClientFrame;
use serde_json::{Value, json};
use support::{TestBackend, WsClient, eventually, quick, refusals, start_backend, with_defences};
use tokio_tungstenite::tungstenite::Error as WsError;

fn ip(last: [u8; 3]) -> IpAddr {
    [127, last[0], last[1], last[2]].into()
}

/// The HTTP refusal of an upgrade: status, `Retry-After`, error code.
fn refusal(result: Result<WsClient, WsError>) -> (u16, Option<String>, String) {
    let Err(WsError::Http(response)) = result else {
        panic!("expected an HTTP refusal, got {:?}", result.map(|_| "a websocket"));
    };
    let retry = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
    (response.status().as_u16(), retry, body["error"]["code"].as_str().unwrap().to_owned())
}

/// A backend with `defences` on, and `room` with its first member `nick`.
async fn defended_room(defences: Defences, room: &str, nick: &str) -> (TestBackend, WsClient) {
    let backend = start_backend(with_defences(defences)).await;
    let (member, _) = backend.create_room_and_join(room, nick).await;
    (backend, member)
}

/// Reads the next error, which must be `code`; returns the wait it asks for
/// (`retry_after_ms`).
async fn next_refusal_wait(client: &mut WsClient, code: &str) -> u64 {
    let error = client.next_of("error").await;
    assert_eq!(error["code"], code);
    error["retry_after_ms"].as_u64().unwrap()
}

fn join_frame(password: Option<&str>, pow: Option<PowSolution>) -> ClientFrame {
    ClientFrame::Join {
        nick: None,
        password: password.map(Into::into),
        resume: None,
        reclaim: None,
        pow,
    }
}

#[tokio::test]
async fn upgrades_per_minute_are_limited_per_client_address() {
    let defences = Defences { joins_per_minute: 6, joins_burst: 3, ..Defences::off() };
    let backend = start_backend(with_defences(defences)).await;
    backend.create_room("doors").await;
    let url = backend.ws_url("doors");
    let mut kept = Vec::new();
    for _ in 0..3 {
        kept.push(WsClient::connect_from(&url, ip([1, 0, 2])).await.expect("within the burst"));
    }
    let (status, retry, code) = refusal(WsClient::connect_from(&url, ip([1, 0, 2])).await);
    assert_eq!((status, code.as_str()), (429, "rate_limited"));
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=10).contains(&retry), "one upgrade per 10 s refills: {retry}");
    let mut other = WsClient::connect_from(&url, ip([1, 0, 3])).await.expect("another address");
    other.join("other").await;
    for mut client in kept {
        client.join("early").await;
    }
    assert_eq!(backend.metric(&refusals("join_rate")).await, 1.0);
}

#[tokio::test]
async fn open_websockets_are_limited_per_client_address() {
    let defences = Defences { connections_per_ip: 2, ..Defences::off() };
    let backend = start_backend(with_defences(defences)).await;
    backend.create_room("crowd").await;
    let url = backend.ws_url("crowd");
    let from = ip([1, 1, 2]);
    let mut first = WsClient::connect_from(&url, from).await.unwrap();
    first.join("one").await;
    let mut second = WsClient::connect_from(&url, from).await.unwrap();
    second.join("two").await;
    let (status, _, code) = refusal(WsClient::connect_from(&url, from).await);
    assert_eq!((status, code.as_str()), (429, "too_many_connections"));
    WsClient::connect_from(&url, ip([1, 1, 3])).await.expect("another address").join("x").await;
    // Closing one frees its place once the server has seen it go.
    first.ws.close(None).await.unwrap();
    eventually("a freed place", async || WsClient::connect_from(&url, from).await.is_ok()).await;
    second.say_and_await_echo("still here").await;
    assert!(backend.metric(&refusals("connections_per_ip")).await >= 1.0);
}

#[tokio::test]
async fn the_same_text_sent_again_and_again_is_refused() {
    let defences = Defences { repeat_max: 2, repeat_window_secs: 60, ..Defences::off() };
    let (backend, mut spammer) = defended_room(defences, "spam", "spammer").await;
    let (mut other, _) = backend.member("spam", "other").await;
    spammer.say("Buy now!").await;
    spammer.say("buy NOW!  ").await;
    assert_eq!(spammer.expect("message").await["text"], "Buy now!");
    assert_eq!(spammer.expect("message").await["text"], "buy NOW!  ");
    spammer.say("  BUY now!").await;
    let retry = next_refusal_wait(&mut spammer, "repeated").await;
    assert!(retry > 50_000 && retry <= 60_000, "until the first leaves the window: {retry}");
    spammer.say_and_await_echo("something else").await;
    // Another member's texts are its own.
    other.say("buy now!").await;
    assert_eq!(other.next_from("other").await["text"], "buy now!");
    assert_eq!(backend.metric(&refusals("repeated")).await, 1.0);
}

#[tokio::test]
async fn a_message_surge_turns_on_slow_mode_and_the_room_is_told() {
    let defences = Defences {
        surge_factor: 2.0,
        surge_min_per_minute: 30, // 5 per 10-second window
        auto_slow_mode_for_secs: 120,
        auto_slow_mode_secs: 30,
        ..Defences::off()
    };
    let (backend, mut flooder) = defended_room(defences, "surge", "flooder").await;
    let (mut calm, _) = backend.member("surge", "calm").await;
    let (mut watcher, _) = backend.member("surge", "watcher").await;
    // 12 messages at once: whatever 10-second window boundary they straddle,
    // one window holds at least 6 > 5.
    for i in 0..12 {
        flooder.say(&format!("flood {i}")).await;
    }
    let notice = watcher.next_of("notice").await;
    let text = notice["text"].as_str().unwrap();
    assert!(text.contains("slow mode is on for 2 minutes"), "{text}");
    assert!(text.contains("one message every 30 s"), "{text}");
    assert_eq!(flooder.next_of("notice").await["text"], notice["text"]);

    flooder.say("one more").await;
    let retry = next_refusal_wait(&mut flooder, "slow_mode").await;
    assert!(retry > 20_000 && retry <= 30_000, "{retry}");
    // Someone who has not posted may post once, then waits too.
    calm.say("hello").await;
    assert_eq!(calm.next_from("calm").await["text"], "hello");
    calm.say("hello again").await;
    assert_eq!(calm.next_of("error").await["code"], "slow_mode");
    assert!(backend.metric(&refusals("slow_mode")).await >= 2.0);
}

#[tokio::test]
async fn a_steady_conversation_gets_no_slow_mode() {
    let defences = Defences { surge_factor: 2.0, surge_min_per_minute: 30, ..Defences::off() };
    let (backend, mut a) = defended_room(defences, "steady", "a").await;
    for i in 0..5 {
        a.say(&format!("line {i}")).await;
        assert_eq!(a.next_of("message").await["text"], format!("line {i}"));
    }
    assert_eq!(backend.metric(&refusals("slow_mode")).await, 0.0);
}

fn hash(password: &str) -> String {
    common::password::hash_password(password, &[7; 16]).unwrap()
}

#[tokio::test]
async fn wrong_passwords_earn_growing_waits_per_address_and_per_room() {
    let config = BackendConfig {
        password_attempts: PasswordAttempts {
            free_per_ip: 3,
            free_per_room: 5,
            base_delay_ms: 1_000,
            max_delay_ms: 60_000,
            forget_after_secs: 600,
        },
        ..quick()
    };
    let backend = start_backend(config).await;
    backend.create_room_with("vault", Some(hash("sesame"))).await;
    let url = backend.ws_url("vault");
    let mut guesser = WsClient::connect_from(&url, ip([2, 0, 2])).await.unwrap();
    for guess in ["a", "b", "c"] {
        guesser.send(&join_frame(Some(guess), None)).await;
        assert_eq!(guesser.expect("error").await["code"], "wrong_password", "{guess}");
    }
    // The third wrong one costs a second: even the right password waits.
    guesser.send(&join_frame(Some("sesame"), None)).await;
    let wait = next_refusal_wait(&mut guesser, "too_many_attempts").await;
    assert!(wait > 500 && wait <= 1_000, "{wait}");
    // Another address is not held back by this one…
    let mut second = WsClient::connect_from(&url, ip([2, 0, 3])).await.unwrap();
    for guess in ["d", "e"] {
        second.send(&join_frame(Some(guess), None)).await;
        assert_eq!(second.expect("error").await["code"], "wrong_password");
    }
    // …but the room has had its 5 free wrong passwords, from anyone: every
    // address now waits, the growing waits of the room.
    let mut third = WsClient::connect_from(&url, ip([2, 0, 4])).await.unwrap();
    third.send(&join_frame(Some("sesame"), None)).await;
    let wait = next_refusal_wait(&mut third, "too_many_attempts").await;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    third.send(&join_frame(Some("sesame"), None)).await;
    third.expect("welcome").await;
    assert_eq!(backend.metric(&refusals("password_attempts")).await, 2.0);
}

fn challenge_of(error: &Value) -> Challenge {
    assert_eq!(error["code"], "challenge", "{error}");
    assert!(!error["message"].as_str().unwrap().is_empty());
    serde_json::from_value(error["challenge"].clone()).unwrap()
}

#[tokio::test]
async fn a_challenged_join_is_let_in_once_the_puzzle_is_solved() {
    let defences = Defences { pow: PowMode::Always, pow_bits: 12, ..Defences::off() };
    let backend = start_backend(with_defences(defences)).await;
    backend.create_room("fort").await;
    let mut client = backend.connect("fort").await;
    client.send(&join_frame(None, None)).await;
    let challenge = challenge_of(&client.expect("error").await);
    assert_eq!(challenge.bits, 12);

    // A wrong nonce and a forged token are refused with a new challenge.
    let unsolved = (0u32..)
        .map(|n| n.to_string())
        .find(|n| common::pow::leading_zero_bits(&common::pow::work_hash(&challenge.token, n)) < 12)
        .unwrap();
    let wrong = PowSolution { challenge: challenge.token.clone(), nonce: unsolved };
    client.send(&join_frame(None, Some(wrong))).await;
    let again = client.expect("error").await;
    assert!(again["message"].as_str().unwrap().contains("does not solve"), "{again}");
    challenge_of(&again);
    let forged = PowSolution { challenge: "9999999999999.1.00".into(), nonce: "1".into() };
    client.send(&join_frame(None, Some(forged))).await;
    challenge_of(&client.expect("error").await);

    let solved = common::pow::solve(&challenge);
    client.send(&join_frame(None, Some(solved.clone()))).await;
    client.expect("welcome").await;
    // The token is for this room only.
    backend.create_room("other-fort").await;
    let mut elsewhere = backend.connect("other-fort").await;
    elsewhere.send(&join_frame(None, Some(solved))).await;
    challenge_of(&elsewhere.expect("error").await);
    assert_eq!(backend.metric(&refusals("challenge")).await, 1.0);
    assert_eq!(backend.metric(&refusals("challenge_failed")).await, 3.0);
}

#[tokio::test]
async fn automatic_challenges_begin_when_a_room_gets_a_join_wave() {
    let defences = Defences {
        pow: PowMode::Auto,
        pow_bits: 8,
        pow_auto_joins_per_minute: 3,
        ..Defences::off()
    };
    let backend = start_backend(with_defences(defences)).await;
    backend.create_room("wave").await;
    backend.create_room("calm").await;
    for i in 0..3 {
        backend.member("wave", &format!("early{i}")).await;
    }
    let mut late = backend.connect("wave").await;
    late.send(&json!({"type": "join", "nick": "late"})).await;
    let challenge = challenge_of(&late.expect("error").await);
    late.send(&join_frame(None, Some(common::pow::solve(&challenge)))).await;
    late.expect("welcome").await;
    backend.member("calm", "unbothered").await;
}
