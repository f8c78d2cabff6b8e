//! Room owners through aux-srv: the owner key in the `201` that creates a
//! room (only there), the owner's HTTP calls with `X-Owner-Key` and their
//! refusals, `GET /admin/reports`, and fleet-wide address bans pushed to
//! every backend — again to one that restarts.

mod support;

use std::net::Ipv4Addr;

use http::Method;
use serde_json::json;
use support::*;

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// Creates `room` through aux-srv; its answer and owner key.
async fn create(aux: &TestAux, room: &str) -> (serde_json::Value, String) {
    let reply = aux.put_room(room).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let answer = reply.json();
    let key = answer["owner_key"].as_str().expect("the creator gets an owner key").to_owned();
    (answer, key)
}

async fn member(answer: &serde_json::Value, nick: &str, from: u8, key: &str) -> WsClient {
    let mut client = connect_from(answer["ws_url"].as_str().unwrap(), ip(from)).await;
    let extra = if key.is_empty() { json!({}) } else { json!({ "owner_key": key }) };
    let welcome = client.join_with(nick, extra).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    client
}

#[tokio::test]
async fn only_the_creating_answer_carries_the_owner_key() {
    let fleet = TestFleet::start(&["b1"]).await;
    let (answer, key) = create(&fleet.aux, "keyed").await;
    assert_eq!(key.len(), 32);
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    let again = fleet.aux.put_room("keyed").await;
    assert_eq!(again.status, 200);
    assert!(again.json().get("owner_key").is_none(), "{}", again.body);
    assert!(fleet.aux.get_room("keyed").await.json().get("owner_key").is_none());

    let posted = call(
        Method::POST,
        &fleet.aux.url("/api/rooms"),
        &[],
        Some(json!({"name": "posted"}).to_string()),
    )
    .await;
    assert_eq!(posted.status, 201);
    let other_key = posted.json()["owner_key"].as_str().unwrap().to_owned();
    assert_ne!(other_key, key, "every room has its own key");

    let mut olive = member(&answer, "olive", 2, &key).await;
    olive.send(json!({"type": "lock", "locked": true})).await;
    assert_eq!(olive.expect("settings").await["locked"], true, "the key works on the backend");
}

#[tokio::test]
async fn the_topic_and_deletes_over_http_need_the_owner_key() {
    let fleet = TestFleet::start(&["b1"]).await;
    let (answer, key) = create(&fleet.aux, "http-owner").await;
    let mut gus = member(&answer, "gus", 3, "").await;
    gus.say("delete me").await;
    let seq = gus.next_from("gus").await["seq"].as_u64().unwrap();

    let path = "/api/rooms/http-owner/topic";
    let body = Some(json!({"text": "Set over HTTP"}));
    let none = fleet.aux.owner_call(Method::PUT, path, "", body.clone()).await;
    assert_eq!((none.status, none.error_code()), (403, "not_owner".into()), "{}", none.body);
    let wrong = fleet.aux.owner_call(Method::PUT, path, &"0".repeat(32), body.clone()).await;
    assert_eq!((wrong.status, wrong.error_code()), (403, "not_owner".into()), "{}", wrong.body);
    let done = fleet.aux.owner_call(Method::PUT, path, &key, body).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(gus.expect("topic").await["text"], "Set over HTTP");
    assert_eq!(gus.next_notice().await, "The room owner set the topic");

    let delete = format!("/api/rooms/http-owner/messages/{seq}");
    let wrong = fleet.aux.owner_call(Method::DELETE, &delete, "nope", None).await;
    assert_eq!((wrong.status, wrong.error_code()), (403, "not_owner".into()));
    let done = fleet.aux.owner_call(Method::DELETE, &delete, &key, None).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(gus.expect("deleted").await["seq"], seq);
    assert_eq!(gus.next_notice().await, "The room owner removed a message by gus");
    let read = get(&fleet.aux.url("/api/rooms/http-owner/messages")).await.json();
    assert_eq!(read["messages"][0]["deleted"], true, "{read}");

    let missing =
        fleet.aux.owner_call(Method::DELETE, "/api/rooms/http-owner/messages/99", &key, None).await;
    assert_eq!((missing.status, missing.error_code()), (404, "no_such_message".into()));
    let bad =
        fleet.aux.owner_call(Method::DELETE, "/api/rooms/http-owner/messages/x", &key, None).await;
    assert_eq!(bad.status, 400);
    let nowhere = fleet
        .aux
        .owner_call(Method::PUT, "/api/rooms/nowhere/topic", &key, Some(json!({"text": "t"})))
        .await;
    assert_eq!((nowhere.status, nowhere.error_code()), (404, "room_not_found".into()));
    let get_topic = fleet.aux.owner_call(Method::GET, path, &key, None).await;
    assert_eq!((get_topic.status, get_topic.header("allow")), (405, "PUT"));
}

#[tokio::test]
async fn reported_messages_are_listed_for_operators() {
    let fleet = TestFleet::start(&["b1", "b2"]).await;
    let (answer, _) = create(&fleet.aux, "reported").await;
    let mut gus = member(&answer, "gus", 3, "").await;
    let mut ann = member(&answer, "ann", 4, "").await;
    gus.say("terrible spam").await;
    let seq = ann.next_from("gus").await["seq"].as_u64().unwrap();
    for (client, reason) in [(&mut ann, "spam"), (&mut gus, "oops")] {
        client.send(json!({"type": "report", "seq": seq, "reason": reason})).await;
        client.next_notice().await;
    }
    let list = fleet.aux.admin(Method::GET, "/admin/reports", None).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let list = list.json();
    let reports = list["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "{list}");
    let r = &reports[0];
    assert_eq!((r["room"].as_str(), r["seq"].as_u64()), (Some("reported"), Some(seq)));
    assert_eq!((r["text"].as_str(), r["from"].as_str()), (Some("terrible spam"), Some("gus")));
    assert_eq!(r["count"], 2);
    assert!(r["first_ms"].as_u64().unwrap() <= r["last_ms"].as_u64().unwrap());
    assert_eq!(r["reasons"], json!(["spam", "oops"]));
    assert_eq!(list["unavailable"], json!([]));
    let unauthorized = get(&fleet.aux.admin_url("/admin/reports")).await;
    assert_eq!(unauthorized.status, 401);
}

#[tokio::test]
async fn a_fleet_ban_reaches_every_backend_and_one_that_restarts() {
    let mut fleet = TestFleet::start(&["b1", "b2"]).await;
    let aux = &fleet.aux;
    let bad = aux.admin(Method::POST, "/admin/bans", Some(json!({"ip": "nope", "secs": 60}))).await;
    assert_eq!((bad.status, bad.error_code()), (400, "bad_ip".into()));
    let bad =
        aux.admin(Method::POST, "/admin/bans", Some(json!({"ip": "127.0.0.9", "secs": 0}))).await;
    assert_eq!((bad.status, bad.error_code()), (400, "bad_ban".into()));

    let ban = json!({"ip": "127.0.0.9", "secs": 600, "reason": "bot wave"});
    let made = aux.admin(Method::POST, "/admin/bans", Some(ban)).await;
    assert_eq!(made.status, 201, "{}", made.body);
    let mut pushed: Vec<String> = serde_json::from_value(made.json()["pushed"].clone()).unwrap();
    pushed.sort();
    assert_eq!(pushed, ["b1", "b2"]);
    let listed = aux.admin(Method::GET, "/admin/bans", None).await.json();
    assert_eq!(listed["bans"][0]["ip"], "127.0.0.9");
    assert_eq!(listed["bans"][0]["reason"], "bot wave");

    for b in &fleet.backends {
        let room = format!("banned-on-{}", b.id);
        b.create_room(&room).await;
        let mut client = connect_from(&b.ws_url(&room), ip(9)).await;
        let refusal = client.join_with("bot", json!({})).await;
        assert_eq!(refusal["code"], "banned", "{refusal}");
        assert_eq!(client.until_closed().await.1, Ending::Close(4403));
    }

    // b2 restarts empty: aux-srv sees its new instance and pushes the ban again.
    fleet.backends[1].restart_empty().await;
    let b2 = &fleet.backends[1];
    eventually("the restarted backend holds the ban again", async || {
        b2.ip_bans().await.iter().any(|b| b.ip == "127.0.0.9")
    })
    .await;
    b2.create_room("after-restart").await;
    let mut client = connect_from(&b2.ws_url("after-restart"), ip(9)).await;
    assert_eq!(client.join_with("bot", json!({})).await["code"], "banned");

    let aux = &fleet.aux;
    let lifted = aux.admin(Method::DELETE, "/admin/bans/127.0.0.9", None).await;
    assert_eq!(lifted.status, 200, "{}", lifted.body);
    let again = aux.admin(Method::DELETE, "/admin/bans/127.0.0.9", None).await;
    assert_eq!((again.status, again.error_code()), (404, "not_banned".into()));
    for b in &fleet.backends {
        assert!(b.ip_bans().await.is_empty(), "lifted on {}", b.id);
    }
    let (_client, welcome) =
        fleet.backends[1].member_from("after-restart", "human", ip(9), json!({})).await;
    assert_eq!(welcome["type"], "welcome");
}

#[tokio::test]
async fn a_restarted_aux_srv_adopts_the_bans_its_backends_hold() {
    let fleet = TestFleet::start(&["b1"]).await;
    let ban = json!({"ip": "2001:db8::7", "secs": 3600});
    assert_eq!(fleet.aux.admin(Method::POST, "/admin/bans", Some(ban)).await.status, 201);
    let mut fresh = start_aux_ready(aux_config(&[&fleet.backends[0]])).await;
    let listed = fresh.admin(Method::GET, "/admin/bans", None).await.json();
    assert_eq!(listed["bans"][0]["ip"], "2001:db8::7", "{listed}");
    assert!(listed["bans"][0]["remaining_ms"].as_u64().unwrap() > 3_000_000);
    fresh.stop().await;
}
