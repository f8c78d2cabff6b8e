//! What a room's owners and members made of it moves with it: the topic,
//! the settings, the bans (by member and by address) and the votes are on
//! the target after an admin move, and the owner key still makes an owner;
//! the members are still listed while they come back.

mod support;

use std::net::Ipv4Addr;

use common::config::BackendConfig;
use http::Method;
use serde_json::{Value, json};
use support::{Ending, TestFleet, WsClient, backend_config, connect_from, token_of};

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn ws_url(opened: &Value) -> String {
    opened["ws_url"].as_str().expect("ws_url").to_owned()
}

async fn member(url: &str, from: u8, nick: &str, extra: Value) -> (WsClient, Value) {
    let mut client = connect_from(url, ip(from)).await;
    let answer = client.join_with(nick, extra).await;
    (client, answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_settings_bans_and_votes_move_with_the_room() {
    let fleet = TestFleet::start(&["b1", "b2"]).await;
    let aux = &fleet.aux;
    let room = "Carried-Over";
    let opened = aux.put_room(room).await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let opened = opened.json();
    let key = opened["owner_key"].as_str().expect("the creator gets the owner key").to_owned();
    let source_url = ws_url(&opened);

    let (mut olive, welcome) = member(&source_url, 2, "olive", json!({ "owner_key": key })).await;
    assert_eq!(welcome["you"]["owner"], true, "{welcome}");
    let (mut gus, welcome) = member(&source_url, 3, "gus", json!({})).await;
    let gus_id = welcome["you"]["id"].clone();
    olive.expect("joined").await;
    gus.say("vote for me").await;
    let seq = olive.next_from("gus").await["seq"].clone();
    olive.send(json!({"type": "vote", "seq": seq, "value": 1})).await;
    olive.expect("votes").await;
    olive.send(json!({"type": "topic", "text": "moving day"})).await;
    olive.expect("topic").await;
    olive.send(json!({"type": "slow_mode", "secs": 7})).await;
    olive.expect("settings").await;
    olive.send(json!({"type": "kick", "member": gus_id, "ban_secs": 600, "reason": "spam"})).await;
    assert_eq!(gus.until_closed().await.1, Ending::Close(4403));

    let moved =
        aux.admin(Method::POST, &format!("/admin/rooms/{room}/move"), Some(json!({}))).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(olive.until_closed().await.1, Ending::Close(1012));
    let target_url = ws_url(&aux.put_room(room).await.json());
    assert_ne!(target_url, source_url, "aux-srv names the target");

    // Someone new sees the topic, the settings and the vote.
    let (_ada, welcome) = member(&target_url, 4, "ada", json!({})).await;
    assert_eq!(welcome["topic"], "moving day", "{welcome}");
    assert_eq!(welcome["settings"], json!({"slow_mode_secs": 7, "locked": false}));
    let voted = welcome["messages"].as_array().unwrap().iter().find(|m| m["seq"] == seq);
    assert_eq!(voted.map(|m| (m["up"].clone(), m["down"].clone())), Some((json!(1), json!(0))));
    // gus's ban came along: from his address he is still kept out.
    let (mut gus, refusal) = member(&target_url, 3, "gus", json!({})).await;
    assert_eq!(
        (refusal["type"].as_str(), refusal["code"].as_str()),
        (Some("error"), Some("banned"))
    );
    assert!(refusal["retry_after_ms"].as_u64().unwrap() > 500_000, "{refusal}");
    assert_eq!(gus.until_closed().await.1, Ending::Close(4403));
    // The owner key still makes an owner.
    let (_olive, welcome) = member(&target_url, 2, "olive", json!({ "owner_key": key })).await;
    assert_eq!(welcome["you"]["owner"], true, "{welcome}");
}

/// The ids a `welcome` lists as members, sorted.
fn member_ids(welcome: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> =
        welcome["members"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids
}

/// A move is a pause, not everyone leaving and joining again: members who
/// come back (reclaim) are not announced, the target's welcome lists those
/// still on their way, and one who never comes back is shown gone once
/// `move_arrival_secs` (2 s here) has run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_come_back_unannounced_and_the_missing_leave_later() {
    let configs =
        ["b1", "b2"].map(|id| BackendConfig { move_arrival_secs: 2, ..backend_config(id) });
    let fleet = TestFleet::start_configured(configs, |c| c).await;
    let aux = &fleet.aux;
    let room = "Quiet-Move";
    let source_url = ws_url(&aux.put_room(room).await.json());
    let (mut ann, ann_welcome) = member(&source_url, 5, "ann", json!({})).await;
    let (mut bob, bob_welcome) = member(&source_url, 6, "bob", json!({})).await;
    let (mut cat, cat_welcome) = member(&source_url, 7, "cat", json!({})).await;
    let everyone = member_ids(&cat_welcome);
    assert_eq!(everyone.len(), 3, "{cat_welcome}");
    // ann and bob heard of the others joining before the move.
    assert_eq!(ann.expect("joined").await["member"]["nick"], "bob");
    assert_eq!(ann.expect("joined").await["member"]["nick"], "cat");
    assert_eq!(bob.expect("joined").await["member"]["nick"], "cat");

    let moved =
        aux.admin(Method::POST, &format!("/admin/rooms/{room}/move"), Some(json!({}))).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    for client in [&mut ann, &mut bob, &mut cat] {
        assert_eq!(client.until_closed().await.1, Ending::Close(1012));
    }
    let target_url = ws_url(&aux.put_room(room).await.json());

    // ann comes back first: the welcome still lists bob and cat.
    let reclaim = |welcome: &Value| json!({ "reclaim": token_of(welcome) });
    let (mut ann, welcome) = member(&target_url, 5, "ann", reclaim(&ann_welcome)).await;
    assert_eq!(welcome["you"]["id"], ann_welcome["you"]["id"], "{welcome}");
    assert_eq!(member_ids(&welcome), everyone, "those on their way are listed");
    // bob comes back: ann hears nothing of it; cat never does.
    let (_bob, welcome) = member(&target_url, 6, "bob", reclaim(&bob_welcome)).await;
    assert_eq!(member_ids(&welcome), everyone);
    ann.say("who is here?").await;
    let mut seen: Vec<Value> = Vec::new();
    let has = |seen: &[Value], kind: &str| seen.iter().any(|f| f["type"] == kind);
    while !(has(&seen, "left") && has(&seen, "message")) {
        seen.push(ann.next().await);
    }
    let left = seen.iter().find(|f| f["type"] == "left").unwrap();
    assert_eq!(left["member"]["id"], cat_welcome["you"]["id"], "cat is shown gone: {left}");
    assert!(!has(&seen, "joined"), "bob's return was not announced: {seen:?}");
    // A newcomer now sees ann and bob only.
    let (_dan, welcome) = member(&target_url, 8, "dan", json!({})).await;
    let mut expected: Vec<u64> = everyone
        .iter()
        .copied()
        .filter(|id| *id != cat_welcome["you"]["id"].as_u64().unwrap())
        .collect();
    expected.push(welcome["you"]["id"].as_u64().unwrap());
    expected.sort_unstable();
    assert_eq!(member_ids(&welcome), expected);
}

/// An owner can remove a member who has not come back from a move yet: the
/// others see it leave at once (not when `move_arrival_secs` runs out), and
/// the ban keeps it out when it arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_can_remove_a_member_still_on_its_way() {
    let fleet = TestFleet::start(&["b1", "b2"]).await;
    let aux = &fleet.aux;
    let room = "Kick-In-Transit";
    let opened = aux.put_room(room).await.json();
    let key = opened["owner_key"].as_str().expect("the creator gets the owner key").to_owned();
    let source_url = ws_url(&opened);
    let (mut olive, olive_welcome) =
        member(&source_url, 2, "olive", json!({ "owner_key": key })).await;
    let (mut eve, eve_welcome) = member(&source_url, 9, "eve", json!({})).await;
    olive.expect("joined").await;

    let moved =
        aux.admin(Method::POST, &format!("/admin/rooms/{room}/move"), Some(json!({}))).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    for client in [&mut olive, &mut eve] {
        assert_eq!(client.until_closed().await.1, Ending::Close(1012));
    }
    let target_url = ws_url(&aux.put_room(room).await.json());
    let back = json!({ "reclaim": token_of(&olive_welcome), "owner_key": key });
    let (mut olive, welcome) = member(&target_url, 2, "olive", back).await;
    assert_eq!(welcome["you"]["owner"], true, "{welcome}");
    let eve_id = eve_welcome["you"]["id"].clone();
    assert!(member_ids(&welcome).contains(&eve_id.as_u64().unwrap()), "eve is on her way");

    olive.send(json!({"type": "kick", "member": eve_id, "ban_secs": 600, "reason": "spam"})).await;
    let left = olive.expect("left").await;
    assert_eq!(left["member"]["id"], eve_id, "{left}");
    assert!(olive.next_notice().await.contains("eve was removed by olive"));
    // eve comes back as herself, and is kept out.
    let (mut eve, refusal) =
        member(&target_url, 9, "eve", json!({ "reclaim": token_of(&eve_welcome) })).await;
    assert_eq!(
        (refusal["type"].as_str(), refusal["code"].as_str()),
        (Some("error"), Some("banned")),
        "{refusal}"
    );
    assert_eq!(eve.until_closed().await.1, Ending::Close(4403));
}
