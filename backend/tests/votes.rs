//! Votes: one per member per message, changed and taken back; everyone gets
//! `votes`; the counts travel with the message (welcome, history, resends,
//! the control read the HTTP API uses); refusals; eviction and the room's
//! limit; the rate limit.

mod support;

use common::config::BackendConfig;
use common::control::{RequestBody, ResponseBody};
use serde_json::{Value, json};
use support::{TestBackend, WsClient, quick, seqs_of, start_backend, test_config};

fn vote(seq: u64, value: i64) -> Value {
    json!({ "type": "vote", "seq": seq, "value": value })
}

/// `(seq, up, down)` of a `votes` frame.
fn counts(frame: &Value) -> (u64, u64, u64) {
    (frame["seq"].as_u64().unwrap(), frame["up"].as_u64().unwrap(), frame["down"].as_u64().unwrap())
}

/// Sends a vote and returns the next `votes` frame this client sees.
async fn cast(client: &mut WsClient, seq: u64, value: i64) -> (u64, u64, u64) {
    client.send(vote(seq, value)).await;
    counts(&client.expect("votes").await)
}

/// Member `who` casts a vote that changes the counts: every member gets the
/// same `votes` frame; returns its counts.
async fn cast_all(c: &mut [WsClient], who: usize, seq: u64, value: i64) -> (u64, u64, u64) {
    c[who].send(vote(seq, value)).await;
    let mut seen = Vec::new();
    for client in c.iter_mut() {
        seen.push(counts(&client.expect("votes").await));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "everyone sees one count: {seen:?}");
    seen[0]
}

/// Sends a vote that must be refused; returns the error code.
async fn refused(client: &mut WsClient, frame: Value) -> String {
    client.send(frame).await;
    client.next_of("error").await["code"].as_str().unwrap().to_owned()
}

/// A room with members `nicks`, and message 1 ("vote on me") from the first.
async fn room_with_message(backend: &TestBackend, room: &str, nicks: &[&str]) -> Vec<WsClient> {
    backend.create_room(room).await;
    let mut clients = Vec::new();
    for nick in nicks {
        clients.push(backend.member(room, nick).await.0);
    }
    clients[0].say("vote on me").await;
    for c in &mut clients {
        assert_eq!(c.expect("message").await["seq"], 1);
    }
    clients
}

async fn read_over_control(backend: &TestBackend, room: &str) -> Vec<common::ws::ChatMessage> {
    let read =
        RequestBody::ReadMessages { room: room.into(), after: None, limit: 10, password: None };
    let ResponseBody::Messages { messages, .. } = backend.request(read).await else {
        panic!("read failed")
    };
    messages.into_iter().map(Into::into).collect()
}

#[tokio::test]
async fn one_vote_per_member_that_everyone_sees_changed_and_taken_back() {
    let backend = start_backend(quick()).await;
    let mut c = room_with_message(&backend, "polls", &["ada", "bob", "cy"]).await;
    let (ada, bob, cy) = (0, 1, 2);

    assert_eq!(cast_all(&mut c, bob, 1, 1).await, (1, 1, 0));
    // Voting up again counts once; the voter alone hears the counts again.
    assert_eq!(cast(&mut c[bob], 1, 1).await, (1, 1, 0));
    assert_eq!(cast_all(&mut c, cy, 1, 1).await, (1, 2, 0));
    // bob changes his mind, then takes his vote back; cy's stays.
    assert_eq!(cast_all(&mut c, bob, 1, -1).await, (1, 1, 1));
    assert_eq!(cast_all(&mut c, bob, 1, 0).await, (1, 1, 0));
    assert_eq!(cast(&mut c[bob], 1, 0).await, (1, 1, 0), "taking back twice changes nothing");
    // The author may vote too.
    assert_eq!(cast_all(&mut c, ada, 1, -1).await, (1, 1, 1));
    // Nobody has a `votes` frame left over: the next frame is cy's message.
    c[cy].say("after").await;
    for client in &mut c {
        assert_eq!(client.next().await["text"], "after");
    }
}

#[tokio::test]
async fn counts_travel_with_the_message() {
    let backend = start_backend(quick()).await;
    let mut c = room_with_message(&backend, "counted", &["ada", "bob"]).await;
    c[0].send(json!({ "type": "send", "text": "plain", "client_id": "k2" })).await;
    c[0].expect("message").await;
    c[0].send(json!({ "type": "send", "text": "liked", "client_id": "k3" })).await;
    c[0].expect("message").await;
    cast_all(&mut c, 0, 1, -1).await;
    cast_all(&mut c, 1, 3, 1).await;
    cast_all(&mut c, 0, 3, 1).await;

    // A late joiner's welcome carries the counts; an unvoted message carries none.
    let (_late, welcome) = backend.member("counted", "late").await;
    let messages = welcome["messages"].as_array().unwrap();
    assert_eq!((&messages[0]["up"], &messages[0]["down"]), (&json!(0), &json!(1)));
    assert!(messages[1].get("up").is_none() && messages[1].get("down").is_none());
    assert_eq!((&messages[2]["up"], &messages[2]["down"]), (&json!(2), &json!(0)));

    // history pages, and the message re-sent for a repeated client_id.
    c[1].send(json!({ "type": "history", "before": 4 })).await;
    let history = c[1].expect("history").await;
    assert_eq!(history["messages"][2]["up"], 2);
    c[0].send(json!({ "type": "send", "text": "liked", "client_id": "k3" })).await;
    let resent = c[0].expect("message").await;
    assert_eq!((&resent["seq"], &resent["up"], &resent["down"]), (&json!(3), &json!(2), &json!(0)));

    // The control read (what the HTTP API serves).
    let read = read_over_control(&backend, "counted").await;
    let votes: Vec<Option<(u32, u32)>> =
        read.iter().map(|m| m.votes.map(|v| (v.up, v.down))).collect();
    assert_eq!(votes, [Some((0, 1)), None, Some((2, 0))]);

    // Taking every vote back leaves the message without counts again.
    assert_eq!(cast_all(&mut c, 0, 1, 0).await, (1, 0, 0));
    let (_later, welcome) = backend.member("counted", "later").await;
    assert!(welcome["messages"][0].get("up").is_none(), "{}", welcome["messages"][0]);
}

#[tokio::test]
async fn bad_votes_get_clear_errors_and_the_room_goes_on() {
    let backend = start_backend(quick()).await;
    let mut c = room_with_message(&backend, "strict", &["ada", "bob"]).await;
    assert_eq!(refused(&mut c[1], vote(1, 2)).await, "bad_vote");
    assert_eq!(refused(&mut c[1], vote(1, -5)).await, "bad_vote");
    assert_eq!(refused(&mut c[1], vote(2, 1)).await, "no_such_message", "not sent yet");
    assert_eq!(refused(&mut c[1], vote(0, 1)).await, "no_such_message");
    assert_eq!(refused(&mut c[1], json!({ "type": "vote", "seq": 1 })).await, "bad_request");
    assert_eq!(refused(&mut c[1], json!({"type":"vote","seq":1,"value":0.5})).await, "bad_request");
    // A vote before joining is refused like any other frame.
    let mut stranger = backend.connect("strict").await;
    assert_eq!(refused(&mut stranger, vote(1, 1)).await, "not_joined");

    // A deleted message cannot be voted on, and loses the votes it had.
    cast_all(&mut c, 1, 1, 1).await;
    c[0].send(json!({ "type": "delete", "seq": 1 })).await;
    c[0].expect("deleted").await;
    assert_eq!(refused(&mut c[1], vote(1, -1)).await, "message_deleted");
    let (_late, welcome) = backend.member("strict", "late").await;
    let tombstone = &welcome["messages"][0];
    assert_eq!(tombstone["deleted"], true);
    assert!(tombstone.get("up").is_none(), "{tombstone}");

    // The room still works for everyone.
    c[0].say("still here").await;
    assert_eq!(c[1].expect("message").await["text"], "still here");
    assert_eq!(cast(&mut c[1], 2, 1).await, (2, 1, 0));
}

#[tokio::test]
async fn votes_leave_the_ring_with_their_messages() {
    let backend = start_backend(BackendConfig { max_messages: 3, ..quick() }).await;
    let mut c = room_with_message(&backend, "short", &["ada", "bob"]).await;
    cast_all(&mut c, 1, 1, 1).await;
    for text in ["2", "3", "4"] {
        c[0].say(text).await;
        c[0].expect("message").await;
    }
    // Message 1 is gone, and its votes with it.
    assert_eq!(refused(&mut c[1], vote(1, 1)).await, "no_such_message");
    let (_late, welcome) = backend.member("short", "late").await;
    assert_eq!(seqs_of(&welcome["messages"]), [2, 3, 4]);
    assert!(welcome["messages"].as_array().unwrap().iter().all(|m| m.get("up").is_none()));
}

#[tokio::test]
async fn a_room_holds_at_most_max_votes_per_room() {
    let config = BackendConfig { max_votes_per_room: 2, ..quick() };
    let backend = start_backend(config).await;
    let mut c = room_with_message(&backend, "capped", &["ada", "bob"]).await;
    c[0].say("two").await;
    c[0].expect("message").await;
    cast_all(&mut c, 0, 1, 1).await;
    cast_all(&mut c, 1, 1, 1).await;
    assert_eq!(refused(&mut c[0], vote(2, 1)).await, "too_many_votes");
    // Changing a vote is no new ballot; taking one back frees a place.
    assert_eq!(cast_all(&mut c, 1, 1, -1).await, (1, 1, 1));
    assert_eq!(cast_all(&mut c, 1, 1, 0).await, (1, 1, 0));
    assert_eq!(cast_all(&mut c, 0, 2, 1).await, (2, 1, 0));
    let votes =
        |outcome: &str| format!(r#"instantchat_backend_votes_total{{outcome="{outcome}"}}"#);
    assert_eq!(backend.metric(&votes("changed")).await, 5.0);
    assert_eq!(backend.metric(&votes("refused")).await, 1.0);
}

#[tokio::test]
async fn votes_are_rate_limited_like_other_frames() {
    let config = BackendConfig { rate_per_sec: 1, rate_burst: 5, ..test_config() };
    let backend = start_backend(config).await;
    let (mut ada, _) = backend.create_room_and_join("slow", "ada").await;
    ada.say("one").await;
    ada.expect("message").await;
    // The join and the send took two tokens of five: ten votes get ~three through.
    for i in 0..10 {
        ada.send(vote(1, if i % 2 == 0 { 1 } else { -1 })).await;
    }
    let (mut votes, mut limited) = (0, 0);
    while votes + limited < 10 {
        let frame = ada.next().await;
        match frame["type"].as_str() {
            Some("votes") => votes += 1,
            Some("error") => {
                assert_eq!(frame["code"], "rate_limited");
                limited += 1;
            }
            _ => {}
        }
    }
    assert!((3..=5).contains(&votes), "{votes} votes got through");
    assert!(limited >= 5, "{limited} refused");
}
