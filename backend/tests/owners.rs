//! Room owners over the websocket: the owner key at join, topic, deleting
//! anyone's message, kick (with a ban by member and by address), slow mode,
//! lock, every refusal and its close code; reports; fleet-wide address bans
//! pushed over the control protocol. Members connect from their own
//! 127.x.y.z so that address bans tell them apart.

mod support;

use std::net::Ipv4Addr;

use common::config::BackendConfig;
use common::control::{IpBan, RequestBody, ResponseBody};
use serde_json::{Value, json};
use support::*;

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn owner() -> Value {
    json!({ "owner_key": KEY })
}

/// A backend with one owned room, its owner "olive" (from 127.0.0.2) and a
/// guest "gus" (from 127.0.0.3), both joined.
async fn owned_room(name: &str) -> (TestBackend, WsClient, WsClient) {
    let backend = start_backend(quick()).await;
    backend.create_owned_room(name, KEY).await;
    let (mut olive, welcome) = backend.member_from(name, "olive", ip(2), owner()).await;
    assert_eq!(welcome["you"]["owner"], true, "{welcome}");
    let (gus, welcome) = backend.member_from(name, "gus", ip(3), json!({})).await;
    assert_eq!(welcome["type"], "welcome");
    olive.expect("joined").await;
    (backend, olive, gus)
}

fn assert_refused(answer: &Value, code: &str) {
    assert_eq!(
        (answer["type"].as_str(), answer["code"].as_str()),
        (Some("error"), Some(code)),
        "{answer}"
    );
}

/// Sends `frame`, which the room must refuse with the error `code`.
async fn assert_refuses(client: &mut WsClient, frame: Value, code: &str) {
    client.send(frame).await;
    assert_refused(&client.next_of("error").await, code);
}

#[tokio::test]
async fn the_owner_key_makes_an_owner_and_welcome_carries_topic_and_settings() {
    let backend = start_backend(quick()).await;
    backend.create_owned_room("keys", KEY).await;
    let (_olive, welcome) = backend.member_from("keys", "olive", ip(2), owner()).await;
    assert_eq!(welcome["you"]["owner"], true);
    assert_eq!(welcome["topic"], "");
    assert_eq!(welcome["settings"], json!({"slow_mode_secs": 0, "locked": false}));
    let (_gus, welcome) = backend.member_from("keys", "gus", ip(3), json!({})).await;
    assert!(welcome["you"].get("owner").is_none(), "no key, no owner: {welcome}");
    let wrong = json!({ "owner_key": "ffffffffffffffffffffffffffffffff" });
    let (mut eve, welcome) = backend.member_from("keys", "eve", ip(4), wrong).await;
    assert!(welcome["you"].get("owner").is_none(), "a wrong key is no owner: {welcome}");
    assert_refuses(&mut eve, json!({"type": "topic", "text": "mine now"}), "not_owner").await;

    // A room created without a key (before owners existed) has no owner.
    backend.create_room("ownerless").await;
    let (mut any, welcome) = backend.member_from("ownerless", "any", ip(5), owner()).await;
    assert!(welcome["you"].get("owner").is_none(), "{welcome}");
    assert_refuses(&mut any, json!({"type": "lock", "locked": true}), "not_owner").await;
}

#[tokio::test]
async fn the_topic_is_told_to_everyone_with_a_notice_and_kept_for_newcomers() {
    let (backend, mut olive, mut gus) = owned_room("topics").await;
    olive.send(json!({"type": "topic", "text": "  Friday: release  "})).await;
    for client in [&mut olive, &mut gus] {
        assert_eq!(client.expect("topic").await["text"], "Friday: release");
        assert_eq!(client.next_notice().await, "olive set the topic");
    }
    let (_late, welcome) = backend.member_from("topics", "late", ip(4), json!({})).await;
    assert_eq!(welcome["topic"], "Friday: release");

    assert_refuses(&mut gus, json!({"type": "topic", "text": "gus rules"}), "not_owner").await;
    assert_refuses(&mut olive, json!({"type": "topic", "text": "x".repeat(301)}), "bad_request")
        .await;
    olive.send(json!({"type": "topic", "text": ""})).await;
    assert_eq!(gus.expect("topic").await["text"], "");
    assert_eq!(gus.next_notice().await, "olive cleared the topic");
    assert_eq!(backend.metric("instantchat_backend_owner_acts_total{act=\"topic\"}").await, 2.0);
}

#[tokio::test]
async fn an_owner_deletes_anyones_message_and_a_guest_only_its_own() {
    let (_backend, mut olive, mut gus) = owned_room("deletes").await;
    olive.say("owner's words").await;
    let own = gus.next_from("olive").await["seq"].as_u64().unwrap();
    assert_refuses(&mut gus, json!({"type": "delete", "seq": own}), "not_your_message").await;

    gus.say("something nasty").await;
    let seq = olive.next_from("gus").await["seq"].as_u64().unwrap();
    olive.send(json!({"type": "delete", "seq": seq})).await;
    for client in [&mut olive, &mut gus] {
        assert_eq!(client.expect("deleted").await["seq"], seq);
        assert_eq!(client.next_notice().await, "olive removed a message by gus");
    }
    assert_refuses(&mut olive, json!({"type": "delete", "seq": seq}), "message_deleted").await;
}

#[tokio::test]
async fn a_kick_tells_the_guest_in_words_and_closes_4403() {
    let (backend, mut olive, mut gus) = owned_room("kicks").await;
    assert_refuses(&mut gus, json!({"type": "kick", "member": 1}), "not_owner").await;
    let gus_id = gus_id(&mut olive, "kicks", &backend).await;
    assert_refuses(&mut olive, json!({"type": "kick", "member": 999_999}), "no_such_member").await;

    olive.send(json!({"type": "kick", "member": gus_id, "reason": "be nice"})).await;
    let (frames, ending) = gus.until_closed().await;
    assert_eq!(ending, Ending::Close(4403));
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "notice"
                && f["text"] == "olive removed you from this room: be nice"),
        "{frames:?}"
    );
    assert_eq!(frames.last(), Some(&json!({"type": "closing", "reason": "kicked"})), "{frames:?}");
    assert_eq!(olive.expect("left").await["member"]["nick"], "gus");
    assert_eq!(olive.next_notice().await, "gus was removed by olive: be nice");
    backend.await_metric(&disconnects("kicked"), 1.0).await;

    // No ban: gus may come straight back, from the same address.
    let (_gus, welcome) = backend.member_from("kicks", "gus", ip(3), json!({})).await;
    assert_eq!(welcome["type"], "welcome");
}

/// Gus's member id, as olive sees it in the member list.
async fn gus_id(olive: &mut WsClient, room: &str, backend: &TestBackend) -> u64 {
    // A fresh welcome lists everyone; the owner's client is still joined.
    let (_peek, welcome) = backend.member_from(room, "peek", ip(200), json!({})).await;
    olive.expect("joined").await;
    welcome["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["nick"] == "gus")
        .and_then(|m| m["id"].as_u64())
        .expect("gus is a member")
}

#[tokio::test]
async fn a_ban_keeps_out_the_address_for_its_time_but_not_others_or_the_owner() {
    let (backend, mut olive, mut gus) = owned_room("bans").await;
    let gus_id = gus_id(&mut olive, "bans", &backend).await;
    olive.send(json!({"type": "kick", "member": gus_id, "ban_secs": 600, "reason": "spam"})).await;
    let (frames, ending) = gus.until_closed().await;
    assert_eq!(ending, Ending::Close(4403));
    assert!(
        frames
            .iter()
            .any(|f| f["text"]
                == "olive removed you from this room and banned you for 10 minutes: spam"),
        "{frames:?}"
    );
    assert_eq!(
        olive.next_notice().await,
        "gus was removed by olive and banned for 10 minutes: spam"
    );

    let mut again = connect_from(&backend.ws_url("bans"), ip(3)).await;
    let refusal = again.join_with("gus2", json!({})).await;
    assert_refused(&refusal, "banned");
    let wait = refusal["retry_after_ms"].as_u64().unwrap();
    assert!((590_000..=600_001).contains(&wait), "{refusal}");
    assert!(refusal["message"].as_str().unwrap().contains("spam"), "{refusal}");
    assert_eq!(again.until_closed().await.1, Ending::Close(4403));

    let (_other, welcome) = backend.member_from("bans", "other", ip(4), json!({})).await;
    assert_eq!(welcome["type"], "welcome", "another address is not banned");
    let (_owner, welcome) = backend.member_from("bans", "co-owner", ip(3), owner()).await;
    assert_eq!(welcome["you"]["owner"], true, "the owner key passes a ban");
    assert_eq!(
        backend.metric("instantchat_backend_joins_barred_total{reason=\"room_ban\"}").await,
        1.0
    );

    assert_refuses(
        &mut olive,
        json!({"type": "kick", "member": 1, "ban_secs": 8 * 24 * 3600}),
        "bad_request",
    )
    .await;
}

#[tokio::test]
async fn slow_mode_spaces_a_members_messages_and_spares_owners() {
    let (_backend, mut olive, mut gus) = owned_room("slow").await;
    assert_refuses(&mut gus, json!({"type": "slow_mode", "secs": 30}), "not_owner").await;
    olive.send(json!({"type": "slow_mode", "secs": 30})).await;
    for client in [&mut olive, &mut gus] {
        let settings = client.expect("settings").await;
        assert_eq!(settings, json!({"type": "settings", "slow_mode_secs": 30, "locked": false}));
        assert_eq!(
            client.next_notice().await,
            "olive turned slow mode on: one message every 30 seconds"
        );
    }
    gus.say("first").await;
    gus.next_from("gus").await;
    gus.say("second").await;
    let refusal = gus.next_of("error").await;
    assert_refused(&refusal, "slow_mode");
    let wait = refusal["retry_after_ms"].as_u64().unwrap();
    assert!((1..=30_001).contains(&wait), "{refusal}");
    olive.say("one").await;
    olive.say("two").await;
    assert_eq!(olive.next_from("olive").await["text"], "one");
    assert_eq!(olive.next_from("olive").await["text"], "two", "owners are not slowed");

    assert_refuses(&mut olive, json!({"type": "slow_mode", "secs": 3601}), "bad_request").await;
    olive.send(json!({"type": "slow_mode", "secs": 0})).await;
    assert_eq!(gus.expect("settings").await["slow_mode_secs"], 0);
    gus.say("free again").await;
    assert_eq!(gus.next_from("gus").await["text"], "free again");
}

#[tokio::test]
async fn a_locked_room_refuses_newcomers_with_4403_but_not_owners() {
    let (backend, mut olive, mut gus) = owned_room("locked").await;
    assert_refuses(&mut gus, json!({"type": "lock", "locked": true}), "not_owner").await;
    olive.send(json!({"type": "lock", "locked": true})).await;
    assert_eq!(gus.expect("settings").await["locked"], true);
    assert_eq!(gus.next_notice().await, "olive locked the room");

    let mut late = connect_from(&backend.ws_url("locked"), ip(4)).await;
    assert_refused(&late.join_with("late", json!({})).await, "room_locked");
    assert_eq!(late.until_closed().await.1, Ending::Close(4403));
    let (_co, welcome) = backend.member_from("locked", "co", ip(5), owner()).await;
    assert_eq!(welcome["settings"]["locked"], true);

    olive.send(json!({"type": "lock", "locked": false})).await;
    assert_eq!(gus.expect("settings").await["locked"], false);
    let (_late, welcome) = backend.member_from("locked", "late", ip(4), json!({})).await;
    assert_eq!(welcome["type"], "welcome");
}

#[tokio::test]
async fn reports_are_counted_once_per_member_and_listed_for_operators() {
    let (backend, mut olive, mut gus) = owned_room("reports").await;
    gus.say("buy cheap pills").await;
    let seq = olive.next_from("gus").await["seq"].as_u64().unwrap();
    olive.send(json!({"type": "report", "seq": seq, "reason": "spam"})).await;
    assert_eq!(olive.next_notice().await, format!("Message {seq} was reported to the operators."));
    assert_refuses(&mut olive, json!({"type": "report", "seq": seq}), "already_reported").await;
    gus.send(json!({"type": "report", "seq": seq})).await;
    gus.next_notice().await;
    assert_refuses(&mut gus, json!({"type": "report", "seq": 9999}), "no_such_message").await;
    assert_refuses(
        &mut gus,
        json!({"type": "report", "seq": seq, "reason": "r".repeat(201)}),
        "bad_request",
    )
    .await;
    assert_eq!(backend.metric("instantchat_backend_reports_total").await, 2.0);

    let ResponseBody::Reports { reports } =
        backend.request(RequestBody::ListReports { limit: 10 }).await
    else {
        panic!("no reports answer");
    };
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!((r.room.as_str(), r.seq, r.count), ("reports", seq, 2));
    assert_eq!((r.text.as_str(), r.from_nick.as_str()), ("buy cheap pills", "gus"));
    assert!(r.first_ms <= r.last_ms && r.first_ms > 0);
    assert_eq!(r.reasons, vec!["spam".to_owned()]);

    // Bounded per member: the 21st report is refused.
    for i in 0..20 {
        olive.say(&format!("line {i}")).await;
    }
    let mut seqs = Vec::new();
    for _ in 0..20 {
        seqs.push(gus.next_from("olive").await["seq"].as_u64().unwrap());
    }
    for s in &seqs[..19] {
        gus.send(json!({"type": "report", "seq": s})).await;
        gus.next_notice().await;
    }
    assert_refuses(&mut gus, json!({"type": "report", "seq": seqs[19]}), "too_many_reports").await;
}

#[tokio::test]
async fn a_fleet_ban_closes_the_address_and_refuses_its_joins_until_lifted() {
    let (backend, mut olive, mut gus) = owned_room("fleet").await;
    let ban = IpBan { ip: "127.0.0.3".into(), remaining_ms: 60_000, reason: Some("abuse".into()) };
    let ResponseBody::Bans { bans } =
        backend.request(RequestBody::Bans { set: vec![ban], lift: Vec::new() }).await
    else {
        panic!("no bans answer");
    };
    assert_eq!(bans.len(), 1);
    let (frames, ending) = gus.until_closed().await;
    assert_eq!(ending, Ending::Close(4403));
    assert!(frames.iter().any(|f| f["code"] == "banned"), "{frames:?}");
    assert_eq!(olive.expect("left").await["member"]["nick"], "gus");

    let mut again = connect_from(&backend.ws_url("fleet"), ip(3)).await;
    let refusal = again.join_with("gus", json!({})).await;
    assert_refused(&refusal, "banned");
    assert!(refusal["retry_after_ms"].as_u64().unwrap() > 50_000, "{refusal}");
    assert_eq!(again.until_closed().await.1, Ending::Close(4403));
    let mut owner_too = connect_from(&backend.ws_url("fleet"), ip(3)).await;
    assert_refused(&owner_too.join_with("olive2", owner()).await, "banned");

    let bad = IpBan { ip: "not-an-ip".into(), remaining_ms: 1, reason: None };
    let answer = backend.request(RequestBody::Bans { set: vec![bad], lift: Vec::new() }).await;
    assert!(matches!(answer, ResponseBody::Error { .. }), "{answer:?}");

    backend.request(RequestBody::Bans { set: Vec::new(), lift: vec!["127.0.0.3".into()] }).await;
    assert!(backend.ip_bans().await.is_empty());
    let (_gus, welcome) = backend.member_from("fleet", "gus", ip(3), json!({})).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(
        backend.metric("instantchat_backend_joins_barred_total{reason=\"fleet_ban\"}").await,
        2.0
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_ban_is_on_the_real_client_address() {
    let config = BackendConfig { trusted_proxies: vec!["127.0.0.0/8".into()], ..quick() };
    let backend = start_backend(config).await;
    backend.create_owned_room("proxied", KEY).await;
    let url = backend.ws_url("proxied");
    let via_proxy = |client: &'static str| {
        let url = url.clone();
        async move { connect_with_headers(&url, &[("x-forwarded-for", client)]).await }
    };
    let mut olive = via_proxy("203.0.113.1").await;
    assert_eq!(olive.join_with("olive", owner()).await["you"]["owner"], true);
    let mut gus = via_proxy("203.0.113.5").await;
    let gus_id = gus.join_with("gus", json!({})).await["you"]["id"].as_u64().unwrap();
    olive.send(json!({"type": "kick", "member": gus_id, "ban_secs": 60})).await;
    assert_eq!(gus.until_closed().await.1, Ending::Close(4403));

    let mut again = via_proxy("203.0.113.5").await;
    assert_refused(&again.join_with("gus", json!({})).await, "banned");
    let mut neighbour = via_proxy("203.0.113.6").await;
    let welcome = neighbour.join_with("ann", json!({})).await;
    assert_eq!(welcome["type"], "welcome", "same proxy, another client: not banned");
}
