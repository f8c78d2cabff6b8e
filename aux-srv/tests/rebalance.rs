//! `POST /admin/rebalance` relieves the busiest backend: with every room on
//! one backend and an empty one beside it, the most populated rooms move to
//! the empty one until about half the connections did; a fleet in balance
//! is left alone.

mod support;

use http::Method;
use serde_json::json;
use support::{TestFleet, WsClient, eventually};

/// Room `name` with `members` members in it, all kept connected.
async fn populated(fleet: &TestFleet, name: &str, members: usize) -> Vec<WsClient> {
    let mut clients = Vec::new();
    for i in 0..members {
        clients.push(fleet.aux.member(name, &format!("{name}-{i}")).await.0);
    }
    clients
}

/// Which backend holds `room`.
async fn holder(fleet: &TestFleet, room: &str) -> String {
    for b in &fleet.backends {
        if b.lookup(room).await.is_some() {
            return b.id.clone();
        }
    }
    panic!("{room} is nowhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_moves_the_busiest_rooms_to_the_least_loaded_backend() {
    let fleet = TestFleet::start(&["b1", "b2"]).await;
    let aux = &fleet.aux;
    // Any difference counts (a few test members are a tiny share of a
    // backend's capacity, far below the default margin).
    let rebalance =
        async || aux.admin(Method::POST, "/admin/rebalance", Some(json!({"margin": 0.0}))).await;

    // Nothing anywhere: nothing to do.
    let reply = rebalance().await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["moved"], 0, "{}", reply.body);

    // Every room on b1 (b2 drained while they are created).
    let drain = |draining: bool| {
        aux.admin(Method::POST, "/admin/backends/b2/drain", Some(json!({ "draining": draining })))
    };
    assert_eq!(drain(true).await.status, 200);
    let mut members = Vec::new();
    for (room, size) in [("big", 6), ("medium", 4), ("small", 2), ("tiny", 1)] {
        members.extend(populated(&fleet, room, size).await);
        assert_eq!(holder(&fleet, room).await, "b1");
    }
    assert_eq!(drain(false).await.status, 200);
    // Scores come from load reports: wait until aux-srv has b1's 13 members.
    eventually("aux-srv knows b1's load", async || {
        let b1 = aux.admin_backend("b1").await;
        let b2 = aux.admin_backend("b2").await;
        b1["load"]["connections"] == 13 && b2["load"]["draining"] == false
    })
    .await;

    let reply = rebalance().await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!((answer["from"].as_str(), answer["to"].as_str()), (Some("b1"), Some("b2")));
    // Half the gap is 6 connections: the biggest room alone covers it.
    assert_eq!((answer["moved"].as_u64(), answer["failed"].as_u64()), (Some(1), Some(0)));
    assert_eq!(holder(&fleet, "big").await, "b2", "the most populated room moved");
    for room in ["medium", "small", "tiny"] {
        assert_eq!(holder(&fleet, room).await, "b1", "{room} stayed");
    }
    // aux-srv sends the big room's visitors to b2 now.
    let again = aux.put_room("big").await.json();
    assert!(again["ws_url"].as_str().unwrap().starts_with(&fleet.backends[1].ws_base()));
    // Within the default margin (5 % of a backend's score) is balanced.
    let reply = aux.admin(Method::POST, "/admin/rebalance", Some(json!({}))).await;
    assert_eq!(reply.json()["balanced"], true, "{}", reply.body);
    assert_eq!(holder(&fleet, "medium").await, "b1", "nothing moved");
    drop(members);
}
