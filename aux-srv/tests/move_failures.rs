//! Moves that go wrong: the target refuses or is gone, aux-srv vanishes
//! between two steps, a move races a creation or a deletion, the room is
//! about to expire. Whatever happens, exactly one backend holds the room
//! live, and no message that was sent to anyone is lost.

mod support;

use std::net::{IpAddr, Ipv4Addr};

use common::config::{AuxConfig, BackendConfig};
use common::control::{MoveState, RequestBody, ResponseBody, RoomInfo, RoomSnapshot};
use http::Method;
use serde_json::json;
use support::{Roamer, TestAux, TestBackend, TestFleet, WsClient, backend_config, eventually};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// b1 and b2 with their configs changed by `adjust_backend`, behind an
/// aux-srv whose moves freeze rooms for `freeze_ms`.
async fn fleet_with(
    adjust_backend: impl Fn(BackendConfig) -> BackendConfig,
    freeze_ms: u64,
) -> TestFleet {
    let configs = ["b1", "b2"].map(|id| adjust_backend(backend_config(id)));
    TestFleet::start_configured(configs, |c| AuxConfig { move_freeze_ms: freeze_ms, ..c }).await
}

async fn holder(backends: &[TestBackend], room: &str) -> usize {
    for (i, b) in backends.iter().enumerate() {
        if b.lookup(room).await.is_some() {
            return i;
        }
    }
    panic!("{room} is nowhere");
}

async fn live_copies(backends: &[TestBackend], room: &str) -> usize {
    let mut n = 0;
    for b in backends {
        n += usize::from(b.lookup(room).await.is_some());
    }
    n
}

/// Creates `room` through aux-srv with `ada` in it, who sent `count`
/// messages the room confirmed; returns her and which backend holds it.
async fn room_with_messages(
    aux: &TestAux,
    backends: &[TestBackend],
    room: &str,
    count: usize,
) -> (Roamer, usize) {
    assert_eq!(aux.put_room(room).await.status, 201);
    let from = holder(backends, room).await;
    let mut ada = Roamer::join(aux, room, "ada", LOCAL).await;
    for i in 0..count {
        ada.send(&format!("c{i}"), &format!("m{i}")).await;
    }
    ada.read_until(|m| m.outbox.is_empty()).await;
    (ada, from)
}

fn moving(answer: ResponseBody) -> RoomInfo {
    match answer {
        ResponseBody::Moving { room } => room,
        other => panic!("not a move step answer: {other:?}"),
    }
}

async fn export(source: &TestBackend, room: &str, ttl_ms: u64) -> Box<RoomSnapshot> {
    moving(source.request(RequestBody::FreezeRoom { name: room.into(), ttl_ms }).await);
    match source.request(RequestBody::ExportRoom { name: room.into() }).await {
        ResponseBody::Exported { snapshot } => snapshot,
        other => panic!("export failed: {other:?}"),
    }
}

async fn pending_imports(backend: &TestBackend) -> usize {
    match backend.request(RequestBody::Load { removed_after: 0 }).await {
        ResponseBody::Load(report) => report.pending_imports.len(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_refusing_target_leaves_the_room_where_it_was_and_taking_writes() {
    let TestFleet { backends, aux } = fleet_with(|c| c, 10_000).await;
    let (mut ada, from) = room_with_messages(&aux, &backends, "stay", 1).await;
    let to = 1 - from;

    // The target drains: it refuses imports.
    let drain = aux
        .admin(
            Method::POST,
            &format!("/admin/backends/{}/drain", backends[to].id),
            Some(json!({"draining": true})),
        )
        .await;
    assert_eq!(drain.status, 200);
    let path = "/admin/rooms/stay/move";
    let reply = aux.admin(Method::POST, path, Some(json!({"to": backends[to].id}))).await;
    assert_eq!(reply.status, 502, "{}", reply.body);
    assert_eq!(reply.error_code(), "move_failed");

    // Nothing happened to the members: the room takes writes at once.
    ada.send("c2", "after").await;
    ada.read_until(|m| m.outbox.is_empty()).await;
    assert_eq!(ada.seqs(), [1, 2]);
    assert_eq!(ada.reconnects, 0);
    assert_eq!((live_copies(&backends, "stay").await, holder(&backends, "stay").await), (1, from));
    assert_eq!(pending_imports(&backends[to]).await, 0, "the refused import left nothing");
    assert_eq!(aux.metric(r#"instantchat_aux_room_moves_total{outcome="failed"}"#).await, 1.0);

    // A target that is gone: no target at all.
    let mut backends = backends;
    backends[to].stop().await;
    aux.await_backend_state(&backends[to].id.clone(), "down").await;
    let reply = aux.admin(Method::POST, path, Some(json!({}))).await;
    assert_eq!((reply.status, reply.error_code().as_str()), (503, "no_backend"));
    ada.send("c3", "still here").await;
    ada.read_until(|m| m.outbox.is_empty()).await;
    assert_eq!(ada.seqs(), [1, 2, 3]);
}

#[tokio::test]
async fn aux_srv_gone_before_the_source_stopped_the_source_thaws_and_the_import_is_dropped() {
    // aux-srv's freeze is short here, so that its poller settles old imports soon.
    let TestFleet { backends, aux } = fleet_with(|c| c, 300).await;
    assert_eq!(aux.put_room("thaw").await.status, 201);
    let from = holder(&backends, "thaw").await;
    let to = 1 - from;
    let (mut ada, _) = WsClient::joined(&backends[from].ws_url("thaw"), "ada").await;

    // A mover that froze, exported and imported, then died.
    let snapshot = export(&backends[from], "thaw", 400).await;
    let import =
        RequestBody::ImportRoom { snapshot, from: backends[from].id.clone(), from_instance: 0 };
    moving(backends[to].request(import).await);
    ada.say("while frozen").await;
    let refused = ada.expect("error").await;
    assert_eq!(refused["code"], "room_moving");
    assert!(refused["retry_after_ms"].as_u64().unwrap() > 0);

    // The freeze runs out: the source takes writes again by itself…
    eventually("the source thawed", async || {
        ada.say("after the thaw").await;
        ada.next().await["type"] == "message"
    })
    .await;
    // …and the poller drops the import the source no longer backs.
    eventually("the pending import is dropped", async || pending_imports(&backends[to]).await == 0)
        .await;
    assert_eq!(live_copies(&backends, "thaw").await, 1);
    assert_eq!(holder(&backends, "thaw").await, from);
    assert!(matches!(
        backends[to].request(RequestBody::MoveStatus { name: "thaw".into() }).await,
        ResponseBody::MoveStatus { state: MoveState::Unknown, .. }
    ));
}

#[tokio::test]
async fn aux_srv_gone_after_the_source_stopped_the_import_is_committed_and_nothing_is_lost() {
    let TestFleet { backends, aux } = fleet_with(|c| c, 300).await;
    let (mut ada, from) = room_with_messages(&aux, &backends, "rescue", 5).await;
    let to = 1 - from;

    // A mover that got as far as the point of no return, then died.
    let snapshot = export(&backends[from], "rescue", 10_000).await;
    let epoch = snapshot.epoch;
    let import =
        RequestBody::ImportRoom { snapshot, from: backends[from].id.clone(), from_instance: 0 };
    moving(backends[to].request(import).await);
    let complete =
        RequestBody::CompleteMove { name: "rescue".into(), epoch, to: backends[to].id.clone() };
    moving(backends[from].request(complete).await);

    // The member is told the room moved; it follows once aux-srv's poller
    // settled the import (committed, map switched).
    ada.send("c5", "m5").await;
    ada.read_until(|m| m.reconnects == 1 && m.outbox.is_empty()).await;
    assert_eq!(ada.seqs(), [1, 2, 3, 4, 5, 6]);
    assert!(ada.ws_urls.last().unwrap().starts_with(&backends[to].ws_base()));
    assert_eq!(live_copies(&backends, "rescue").await, 1);
    assert_eq!(backends[to].lookup("rescue").await.unwrap().epoch, epoch);
}

#[tokio::test]
async fn a_move_racing_creations_and_deletions_never_makes_two_copies() {
    let TestFleet { backends, aux } = fleet_with(|c| c, 10_000).await;
    for round in 0..10 {
        let room = format!("race-{round}");
        assert_eq!(aux.put_room(&room).await.status, 201);
        let path = format!("/admin/rooms/{room}/move");
        let (moved, created, deleted) = tokio::join!(
            aux.admin(Method::POST, &path, Some(json!({}))),
            aux.put_room(&room),
            async {
                if round % 2 == 0 {
                    Some(aux.admin(Method::DELETE, &format!("/admin/rooms/{room}"), None).await)
                } else {
                    None
                }
            },
        );
        assert!(matches!(moved.status, 200 | 404), "{}", moved.body);
        assert!(matches!(created.status, 200 | 201), "{}", created.body);
        if let Some(deleted) = deleted {
            assert!(matches!(deleted.status, 200 | 404), "{}", deleted.body);
        }
        assert!(live_copies(&backends, &room).await <= 1, "{room}: two live copies");
        // aux-srv's answer names the one backend that holds it, if any.
        let answer = aux.put_room(&room).await.json();
        let holder = holder(&backends, &room).await;
        assert!(answer["ws_url"].as_str().unwrap().starts_with(&backends[holder].ws_base()));
    }
    assert_eq!(aux.metric("instantchat_aux_duplicate_rooms_total").await, 0.0);
}

#[tokio::test]
async fn an_expiring_room_moves_with_its_clock_and_expires_on_the_target() {
    let short = |c: BackendConfig| BackendConfig { room_idle_secs: 1, room_silent_secs: 0, ..c };
    let TestFleet { backends, aux } = fleet_with(short, 10_000).await;
    assert_eq!(aux.put_room("fading").await.status, 201);
    let from = holder(&backends, "fading").await;
    let reply = aux.admin(Method::POST, "/admin/rooms/fading/move", Some(json!({}))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let to = 1 - from;
    assert_eq!(reply.json()["to"], backends[to].id);
    // Empty and silent, it expires on the target as it would have on the
    // source, and aux-srv forgets it from the target's removal log.
    eventually("the moved room expired", async || backends[to].lookup("fading").await.is_none())
        .await;
    eventually("aux-srv forgot it", async || aux.get_room("fading").await.status == 404).await;
    assert_eq!(live_copies(&backends, "fading").await, 0);
}

#[tokio::test]
async fn a_source_that_dies_mid_move_leaves_the_room_to_its_import() {
    let TestFleet { mut backends, aux } = fleet_with(|c| c, 300).await;
    let (mut ada, from) = room_with_messages(&aux, &backends, "orphan", 3).await;
    let to = 1 - from;
    let instance =
        aux.admin_backend(&backends[from].id).await["load"]["instance"].as_u64().unwrap();

    // The mover got the snapshot to the target; then the source died.
    let snapshot = export(&backends[from], "orphan", 10_000).await;
    let import = RequestBody::ImportRoom {
        snapshot,
        from: backends[from].id.clone(),
        from_instance: instance,
    };
    moving(backends[to].request(import).await);
    backends[from].restart_empty().await;

    // The restarted source lost the room; the import is its only copy and
    // becomes the room: the member finds it there, with every message.
    ada.read_until(|m| m.reconnects == 1).await;
    ada.send("c3", "m3").await;
    ada.read_until(|m| m.outbox.is_empty()).await;
    assert_eq!(ada.seqs(), [1, 2, 3, 4]);
    assert!(ada.ws_urls.last().unwrap().starts_with(&backends[to].ws_base()));
    assert_eq!(live_copies(&backends, "orphan").await, 1);
}
