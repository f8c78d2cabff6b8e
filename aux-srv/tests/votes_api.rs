//! Votes through the public HTTP API, and the room page's image policy (a
//! link preview's image may come from file-srv only).

mod support;

use serde_json::json;
use support::*;

#[tokio::test]
async fn http_readers_see_the_vote_counts() {
    init_tracing();
    let fleet = TestFleet::start(&["b1"]).await;
    let (mut ada, _) = fleet.aux.member("Polls", "ada").await;
    let (mut bob, _) = fleet.aux.member("Polls", "bob").await;
    ada.say("first").await;
    ada.say("second").await;
    for client in [&mut ada, &mut bob] {
        client.expect("message").await;
        client.expect("message").await;
    }
    ada.send(json!({ "type": "vote", "seq": 2, "value": 1 })).await;
    bob.send(json!({ "type": "vote", "seq": 2, "value": -1 })).await;
    for _ in 0..2 {
        ada.expect("votes").await;
    }

    let read = get(&fleet.aux.url("/api/rooms/polls/messages")).await;
    assert_eq!(read.status, 200, "{}", read.body);
    let messages = read.json()["messages"].as_array().unwrap().clone();
    assert!(messages[0].get("up").is_none(), "an unvoted message has no counts");
    assert_eq!((&messages[1]["up"], &messages[1]["down"]), (&json!(1), &json!(1)));
}

#[tokio::test]
async fn the_room_page_loads_images_from_file_srv_only() {
    let b1 = start_backend(backend_config("b1")).await;
    let mut config = aux_config(&[&b1]);
    config.files_url = "http://127.0.0.1:8085/".into();
    let aux = start_aux_ready(config).await;
    let page = get(&aux.url("/some-room")).await;
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-security-policy"),
        "img-src 'self' data: blob: http://127.0.0.1:8085"
    );
}
