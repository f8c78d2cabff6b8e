//! Room owners meet member tokens: a ban follows the member (its token),
//! not only its address, and a locked room still lets its own members back
//! in when they reclaim who they were.

mod support;

use std::net::Ipv4Addr;

use serde_json::{Value, json};
use support::*;

const KEY: &str = "fedcba9876543210fedcba9876543210";

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

fn refused_with(answer: &Value, code: &str) {
    assert_eq!((answer["type"].as_str(), answer["code"].as_str()), (Some("error"), Some(code)));
}

/// A backend with `room`, owned with [`KEY`]; its owner "olive" (from
/// 127.0.0.2) and the guest "gus" (from 127.0.0.3) joined, and olive told
/// so. Returns gus's welcome too: his member id and token.
async fn olive_and_gus(room: &str) -> (TestBackend, WsClient, WsClient, Value) {
    let backend = start_backend(quick()).await;
    backend.create_owned_room(room, KEY).await;
    let (mut olive, _) =
        backend.member_from(room, "olive", ip(2), json!({ "owner_key": KEY })).await;
    let (gus, gus_welcome) = backend.member_from(room, "gus", ip(3), json!({})).await;
    olive.expect("joined").await;
    (backend, olive, gus, gus_welcome)
}

#[tokio::test]
async fn a_locked_room_lets_a_member_back_in_with_its_token_and_nobody_new() {
    let (backend, mut olive, gus, welcome) = olive_and_gus("locked-door").await;
    let (gus_id, token) = (welcome["you"]["id"].clone(), welcome["you"]["token"].clone());
    olive.send(json!({"type": "lock", "locked": true})).await;
    olive.expect("settings").await;

    // gus's connection drops; he comes back from another address with his token.
    drop(gus);
    olive.expect("left").await;
    let (_gus, welcome) =
        backend.member_from("locked-door", "", ip(4), json!({ "reclaim": token })).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!((&welcome["you"]["id"], welcome["you"]["nick"].as_str()), (&gus_id, Some("gus")));

    // A wrong token is no token: a newcomer, refused.
    let mut stranger = connect_from(&backend.ws_url("locked-door"), ip(5)).await;
    let answer = stranger.join_with("eve", json!({ "reclaim": "0".repeat(32) })).await;
    refused_with(&answer, "room_locked");
    assert_eq!(stranger.until_closed().await.1, Ending::Close(4403));
}

#[tokio::test]
async fn a_ban_follows_the_member_to_a_new_address_when_it_reclaims() {
    let (backend, mut olive, mut gus, welcome) = olive_and_gus("banned-token").await;
    let (gus_id, token) = (welcome["you"]["id"].clone(), welcome["you"]["token"].clone());
    olive.send(json!({"type": "kick", "member": gus_id, "ban_secs": 600})).await;
    assert_eq!(gus.until_closed().await.1, Ending::Close(4403));

    // From an address the ban does not name, with his token: still gus, still banned.
    let mut again = connect_from(&backend.ws_url("banned-token"), ip(9)).await;
    let answer = again.join_with("gus", json!({ "reclaim": token })).await;
    refused_with(&answer, "banned");
    assert!(answer["retry_after_ms"].as_u64().unwrap() > 590_000, "{answer}");
    assert_eq!(again.until_closed().await.1, Ending::Close(4403));

    // Without the token, from that address, a newcomer gets in.
    let (_fresh, welcome) = backend.member_from("banned-token", "fresh", ip(9), json!({})).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_ne!(welcome["you"]["id"], gus_id);
}
