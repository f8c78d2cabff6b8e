//! Rooms move between backends while people talk: a room of 200 members
//! (from many loopback addresses) with 20 senders moved by the admin API,
//! and by SIGTERM on its backend. Every member ends on the target, in the
//! same epoch, as the same member; every message arrives exactly once, seqs
//! consecutive, no client_id lost.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::config::BackendConfig;
use http::Method;
use serde_json::json;
use support::{Roamer, TestAux, TestBackend, TestFleet, backend_config, eventually};

const MEMBERS: usize = 200;
const SENDERS: usize = 20;
const PER_SENDER: usize = 10;
const TOTAL: u64 = (SENDERS * PER_SENDER) as u64;

/// Member `i` connects from its own loopback address.
fn address(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 1 + (i / 250) as u8, 1 + (i % 250) as u8))
}

async fn fleet(evacuate_on_shutdown: bool) -> TestFleet {
    let configs = ["b1", "b2"].map(|id| BackendConfig {
        evacuate_on_shutdown,
        evacuate_timeout_ms: 10_000,
        ..backend_config(id)
    });
    TestFleet::start_configured(configs, |c| c).await
}

/// Which backend holds `room` (asked of each).
async fn holder(backends: &[TestBackend], room: &str) -> Option<usize> {
    for (i, b) in backends.iter().enumerate() {
        if b.lookup(room).await.is_some() {
            return Some(i);
        }
    }
    None
}

/// The members join, the senders send (each waits for its own echo before
/// the next), and `disturb` runs once a third of the messages went through.
/// Returns every member after all saw every message.
async fn talk_through(aux: &TestAux, room: &str, disturb: impl AsyncFnOnce()) -> Vec<Roamer> {
    let mut members = Vec::new();
    for i in 0..MEMBERS {
        members.push(Roamer::join(aux, room, &format!("m{i}"), address(i)).await);
    }
    let confirmed = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = members
        .into_iter()
        .enumerate()
        .map(|(i, mut member)| {
            let confirmed = confirmed.clone();
            tokio::spawn(async move {
                if i < SENDERS {
                    for n in 0..PER_SENDER {
                        let client_id = format!("c{i}-{n}");
                        member.send(&client_id, &format!("from {i}: {n}")).await;
                        member.read_until(|m| !m.outbox.contains_key(&client_id)).await;
                        confirmed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                member.read_until(|m| m.last_seq >= TOTAL).await;
                member
            })
        })
        .collect();
    eventually("a third of the messages went through", async || {
        confirmed.load(Ordering::Relaxed) >= TOTAL as usize / 3
    })
    .await;
    disturb().await;
    let mut members = Vec::new();
    for task in tasks {
        members.push(task.await.expect("member task"));
    }
    members
}

fn check_everyone(members: &[Roamer]) {
    let expected_seqs: Vec<u64> = (1..=TOTAL).collect();
    let mut expected_ids: Vec<String> =
        (0..SENDERS).flat_map(|i| (0..PER_SENDER).map(move |n| format!("c{i}-{n}"))).collect();
    expected_ids.sort();
    for m in members {
        assert_eq!(m.seqs(), expected_seqs, "{}: every message once, in order", m.nick);
        let mut ids: Vec<String> = m.delivered.iter().filter_map(|(_, _, c)| c.clone()).collect();
        ids.sort();
        assert_eq!(ids, expected_ids, "{}: every client_id once", m.nick);
        assert_eq!(m.reconnects, 1, "{}: followed the move once", m.nick);
        assert_eq!(m.followed_closing_url, 1, "{}: went where `closing moved` said", m.nick);
        assert_eq!(m.lists_kept, 1, "{}: the target did not list the members again", m.nick);
        assert!(m.outbox.is_empty(), "{}: nothing left unsent", m.nick);
        // The move is a pause, not everyone leaving and joining again.
        assert_eq!(m.members.len(), MEMBERS, "{}: the list it kept has everyone", m.nick);
        let after: Vec<_> = m.presence.iter().filter(|(r, _)| *r > 0).collect();
        assert!(after.is_empty(), "{}: no presence news after the move: {after:?}", m.nick);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_of_200_moves_while_20_members_send() {
    let TestFleet { backends, aux } = fleet(false).await;
    let room = "Moving-Day";
    let opened = aux.put_room(room).await;
    assert_eq!(opened.status, 201, "{}", opened.body);
    let from = holder(&backends, room).await.expect("the room is somewhere");
    let to = 1 - from;
    let epoch = backends[from].lookup(room).await.unwrap().epoch;

    let members = talk_through(&aux, room, async || {
        let reply =
            aux.admin(Method::POST, &format!("/admin/rooms/{room}/move"), Some(json!({}))).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let body = reply.json();
        assert_eq!(body["room"], room);
        assert_eq!(body["from"], backends[from].id);
        assert_eq!(body["to"], backends[to].id);
        assert!(body["took_ms"].as_u64().is_some());
    })
    .await;

    check_everyone(&members);
    for m in &members {
        assert!(
            m.ws_urls.last().unwrap().starts_with(&backends[to].ws_base()),
            "{} on the target",
            m.nick
        );
    }
    assert!(backends[from].lookup(room).await.is_none(), "no second copy on the source");
    let there = backends[to].lookup(room).await.expect("the room lives on the target");
    assert_eq!((there.epoch, there.last_seq, there.members), (epoch, TOTAL, MEMBERS as u32));
    // aux-srv sends new visitors to the target.
    let again = aux.put_room(room).await.json();
    assert!(again["ws_url"].as_str().unwrap().starts_with(&backends[to].ws_base()));
    assert_eq!(aux.metric(r#"instantchat_aux_room_moves_total{outcome="moved"}"#).await, 1.0);
    assert_eq!(aux.metric(r#"instantchat_aux_room_moves_total{outcome="failed"}"#).await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_moves_the_rooms_of_a_backend_before_it_stops() {
    let TestFleet { mut backends, aux } = fleet(true).await;
    let room = "Upgrade-Night";
    assert_eq!(aux.put_room(room).await.status, 201);
    // A few more rooms on the same backend, quiet ones (the other backend
    // drained meanwhile, so that aux-srv places them there).
    let from = holder(&backends, room).await.unwrap();
    let to = 1 - from;
    let drain_path = format!("/admin/backends/{}/drain", backends[to].id);
    let drain = |draining: bool| {
        aux.admin(Method::POST, &drain_path, Some(json!({ "draining": draining })))
    };
    assert_eq!(drain(true).await.status, 200);
    for i in 0..5 {
        assert_eq!(aux.put_room(&format!("quiet-{i}")).await.status, 201);
    }
    assert_eq!(drain(false).await.status, 200);
    let epoch = backends[from].lookup(room).await.unwrap().epoch;
    let source = &mut backends[from];
    let members = talk_through(&aux, room, async || source.trigger_shutdown()).await;
    check_everyone(&members);
    tokio::time::timeout(support::WAIT, backends[from].shutdown())
        .await
        .expect("the source stops once its rooms are gone")
        .unwrap();
    let there = backends[to].lookup(room).await.expect("the room lives on the target");
    assert_eq!((there.epoch, there.last_seq), (epoch, TOTAL));
    for i in 0..5 {
        assert!(backends[to].lookup(&format!("quiet-{i}")).await.is_some(), "quiet-{i} moved too");
    }
    assert_eq!(aux.metric(r#"instantchat_aux_room_moves_total{outcome="moved"}"#).await, 6.0);
}
