//! Members keep who they are: `welcome.you.token` and `join {reclaim}` give
//! back the same id, nick and rights; an older connection holding the token
//! is replaced; a wrong token makes a new member; ids are per room.

mod support;

use common::config::BackendConfig;
use common::ws::ClientFrame;
use serde_json::json;
use support::{Ending, WsClient, disconnects, join_frame, quick, start_backend, token_of};

#[tokio::test]
async fn a_reclaimed_member_keeps_its_id_nick_and_may_edit_its_old_messages() {
    let backend = start_backend(quick()).await;
    let (mut ada, welcome) = backend.create_room_and_join("keep", "ada").await;
    let id = welcome["you"]["id"].as_u64().unwrap();
    let token = token_of(&welcome);
    assert_eq!(token.len(), 32, "128 bits as hex: {token}");
    assert!(token.chars().all(|c| c.is_ascii_hexdigit()));
    let (mut bob, _) = backend.member("keep", "bob").await;
    ada.say("first draft").await;
    let seq = ada.expect("message").await["seq"].as_u64().unwrap();
    bob.expect("message").await;
    drop(ada);
    assert_eq!(bob.expect("left").await["member"]["id"], id);

    // A reload: a new connection, no nick given, the token.
    let mut again = backend.connect("keep").await;
    let welcome = again.reclaim(&token, None).await;
    assert_eq!(welcome["you"]["id"], id, "same member id");
    assert_eq!(welcome["you"]["nick"], "ada", "same nick");
    assert_eq!(token_of(&welcome), token, "the same token goes on naming the member");
    assert_eq!(bob.expect("joined").await["member"]["id"], id);
    again.send(&ClientFrame::Edit { seq, text: "final".into() }).await;
    assert_eq!(again.expect("edited").await["text"], "final");
    again.send(&ClientFrame::Delete { seq }).await;
    assert_eq!(again.expect("deleted").await["seq"], seq);
    // Bob may not: rights stay with the member.
    bob.send(&ClientFrame::Edit { seq: 1, text: "mine now".into() }).await;
    assert_eq!(bob.expect("error").await["code"], "not_your_message");

    // A reclaim may rename: everyone sees the new nick.
    drop(again);
    bob.expect("left").await;
    let mut renamed = backend.connect("keep").await;
    let welcome = renamed.reclaim(&token, Some("ada2")).await;
    assert_eq!(
        (welcome["you"]["id"].as_u64(), welcome["you"]["nick"].as_str()),
        (Some(id), Some("ada2"))
    );
    assert_eq!(bob.expect("joined").await["member"]["nick"], "ada2");
}

#[tokio::test]
async fn an_older_connection_holding_the_token_is_replaced() {
    let backend = start_backend(quick()).await;
    let (mut first, welcome) = backend.create_room_and_join("twice", "ada").await;
    let id = welcome["you"]["id"].clone();
    let token = token_of(&welcome);
    first.say("before").await;
    let seq = first.expect("message").await["seq"].as_u64().unwrap();
    let (mut bob, _) = backend.member("twice", "bob").await;
    first.expect("joined").await;

    let mut second = backend.connect("twice").await;
    let welcome = second.reclaim(&token, None).await;
    assert_eq!(welcome["you"]["id"], id);
    let members = welcome["members"].as_array().unwrap();
    assert_eq!(members.len(), 2, "the member is listed once: {members:?}");

    let (frames, ending) = first.until_closed().await;
    assert_eq!(ending, Ending::Close(4409));
    assert_eq!(frames.last().unwrap(), &json!({"type": "closing", "reason": "replaced"}));

    // The others saw no one leave or join; the new connection acts as the member.
    second.send(&ClientFrame::Edit { seq, text: "after".into() }).await;
    assert_eq!(bob.expect("edited").await["text"], "after");
    bob.say("still here").await;
    let next = bob.expect("message").await;
    assert_eq!(next["text"], "still here");
    assert_eq!(backend.lookup("twice").await.unwrap().members, 2);
    backend.await_metric(&disconnects("replaced"), 1.0).await;
}

#[tokio::test]
async fn a_wrong_token_is_ignored_and_makes_a_new_member() {
    let backend = start_backend(quick()).await;
    let (mut ada, welcome) = backend.create_room_and_join("strangers", "ada").await;
    let ada_id = welcome["you"]["id"].as_u64().unwrap();
    ada.say("mine").await;
    let seq = ada.expect("message").await["seq"].as_u64().unwrap();

    for token in ["0".repeat(32), "x".repeat(5000), String::new()] {
        let mut mallory = backend.connect("strangers").await;
        let welcome = mallory.reclaim(&token, Some("mallory")).await;
        let id = welcome["you"]["id"].as_u64().unwrap();
        assert_ne!(id, ada_id, "a guessed token gets no one's identity");
        assert_ne!(token_of(&welcome), token);
        mallory.send(&ClientFrame::Edit { seq, text: "pwned".into() }).await;
        assert_eq!(mallory.expect("error").await["code"], "not_your_message");
    }
    // Ada was not replaced.
    ada.say_and_await_echo("still me").await;
}

#[tokio::test]
async fn member_ids_are_per_room_and_a_token_names_a_member_of_one_room() {
    let backend = start_backend(quick()).await;
    backend.create_room("one").await;
    backend.create_room("two").await;
    let (_a, w1) = backend.member("one", "a").await;
    let (_b, w2) = backend.member("two", "b").await;
    assert_eq!((w1["you"]["id"].as_u64(), w2["you"]["id"].as_u64()), (Some(1), Some(1)));
    let mut other = backend.connect("two").await;
    let w = other.reclaim(&token_of(&w1), None).await;
    assert_eq!(w["you"]["id"], 2, "room one's token means nothing in room two");
}

#[tokio::test]
async fn a_reclaim_needs_no_free_seat_when_it_replaces_its_own() {
    let config = BackendConfig { max_members: 2, ..quick() };
    let backend = start_backend(config).await;
    let (_a, wa) = backend.create_room_and_join("small", "a").await;
    let (_b, _) = backend.member("small", "b").await;
    let mut third = backend.connect("small").await;
    third.send(&join_frame(None, None, None)).await;
    assert_eq!(third.expect("error").await["code"], "room_full");
    let mut again = WsClient::connect(&backend.ws_url("small")).await;
    let w = again.reclaim(&token_of(&wa), None).await;
    assert_eq!(w["you"]["id"], wa["you"]["id"]);
}

#[tokio::test]
async fn forgotten_members_are_bounded() {
    // 4 × max_members records at most: the member gone longest is forgotten
    // first, and its token then makes a new member.
    let config = BackendConfig { max_members: 4, ..quick() };
    let backend = start_backend(config).await;
    let (first, w) = backend.create_room_and_join("churn", "first").await;
    let first_token = token_of(&w);
    drop(first);
    let mut last = None;
    for i in 0..20 {
        let (member, w) = backend.member("churn", &format!("m{i}")).await;
        drop(member);
        last = Some(token_of(&w));
    }
    let mut late = backend.connect("churn").await;
    let w = late.reclaim(&first_token, None).await;
    assert_ne!(w["you"]["nick"], "first", "the oldest record went");
    let mut recent = backend.connect("churn").await;
    let w = recent.reclaim(&last.unwrap(), None).await;
    assert_eq!(w["you"]["nick"], "m19", "a recent one is kept");
}
