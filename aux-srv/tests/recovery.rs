//! The room map is only a cache: aux-srv restarts, backends die and come
//! back empty, rooms expire — and no name ever ends up on two backends.

mod support;

use std::collections::HashMap;

use common::config::AuxConfig;
use http::Method;
use serde_json::json;
use support::*;

#[tokio::test]
async fn after_an_aux_restart_every_room_is_found_on_its_original_backend() {
    init_tracing();
    let TestFleet { backends, aux: mut first } = TestFleet::start(&["b1", "b2"]).await;
    let b2 = &backends[1];
    let mut rooms = HashMap::new();
    for i in 0..12 {
        let answer = first.put_room(&format!("Kept-Room-{i}")).await.json();
        rooms.insert(format!("kept-room-{i}"), answer["ws_url"].as_str().unwrap().to_owned());
    }
    let on_b2 = rooms.values().filter(|url| url.starts_with(&b2.ws_base())).count();
    assert!((1..12).contains(&on_b2), "rooms on both backends");
    let watched_url = rooms["kept-room-0"].clone();
    let (mut member, _) = WsClient::joined(&watched_url, "ada").await;
    let before = first.post_message("kept-room-0", "before the restart").await;
    assert_eq!(before.status, 201);
    assert_eq!(member.next_of("message").await["text"], "before the restart");

    first.stop().await;
    let second = start_aux(first.config.clone()).await;
    // Right away, before the sweep may have finished: found on demand.
    for (key, url) in &rooms {
        let r = second.get_room(&key.to_uppercase()).await;
        assert_eq!(r.status, 200, "{key}: {}", r.body);
        assert_eq!(r.json()["ws_url"].as_str(), Some(url.as_str()), "{key}");
    }
    // And no creation places a known name elsewhere.
    let reopened = second.put_room("KEPT-ROOM-3").await;
    assert_eq!(
        (reopened.status, reopened.json()["ws_url"].as_str()),
        (200, Some(rooms["kept-room-3"].as_str()))
    );

    // After the sweep: the map holds every room, answers are map hits.
    second.await_ready().await;
    assert_eq!(second.metric("instantchat_aux_rooms_known").await, 12.0);
    let hits = second.metric("instantchat_aux_lookups_total{result=\"hit\"}").await;
    for (key, url) in &rooms {
        assert_eq!(second.get_room(key).await.json()["ws_url"].as_str(), Some(url.as_str()));
    }
    assert!(second.metric("instantchat_aux_lookups_total{result=\"hit\"}").await >= hits + 12.0);
    assert!(second.metric("instantchat_aux_startup_rebuild_seconds").await > 0.0);

    // The member connected through the restart lost nothing.
    let after = second.post_message("Kept-Room-0", "after the restart").await;
    assert_eq!(after.status, 201);
    assert_eq!(member.next_of("message").await["text"], "after the restart");
    let history = get(&second.url("/api/rooms/kept-room-0/messages")).await.json();
    let texts: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["before the restart", "after the restart"]);
}

#[tokio::test]
async fn the_map_answers_for_swept_backends_without_asking_them() {
    init_tracing();
    let TestFleet { backends, mut aux } = TestFleet::start(&["b1", "b2"]).await;
    let (b1, b2) = (&backends[0], &backends[1]);
    let lookups = control_requests(&aux, "lookup_room").await;
    let creations = control_requests(&aux, "create_room").await;

    // A new name costs one CreateRoom; opening or looking up a known room,
    // or looking up an unknown name, costs no control request at all.
    let mut urls = Vec::new();
    for i in 0..10 {
        let r = aux.put_room(&format!("Swept-{i}")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        urls.push(r.json()["ws_url"].as_str().unwrap().to_owned());
    }
    for (i, url) in urls.iter().enumerate() {
        let got = aux.get_room(&format!("SWEPT-{i}")).await;
        assert_eq!((got.status, got.json()["ws_url"].as_str()), (200, Some(url.as_str())));
        let opened = aux.put_room(&format!("swept-{i}")).await;
        assert_eq!(
            (opened.status, opened.json()["created"].as_bool(), opened.json()["ws_url"].as_str()),
            (200, Some(false), Some(url.as_str()))
        );
    }
    assert_eq!(aux.get_room("never-made").await.status, 404);
    assert_eq!(control_requests(&aux, "create_room").await, creations + 10.0);
    assert_eq!(control_requests(&aux, "lookup_room").await, lookups, "no lookups");
    let (mut member, welcome) = WsClient::joined(&urls[0], "ada").await;
    assert_eq!(welcome["room"], "Swept-0");

    // Only aux-srv creates rooms in its fleet: one created behind its back
    // (with the control token) is not seen until that backend is swept
    // again — here, at aux-srv's next start.
    let hidden = b1.create_directly("Hidden-Room").await;
    assert_eq!(aux.get_room("hidden-room").await.status, 404);
    aux.stop().await;
    let aux = start_aux_ready(aux.config.clone()).await;
    let r = aux.put_room("HIDDEN-room").await;
    assert_eq!((r.status, r.json()["name"].as_str()), (200, Some(hidden.name.as_str())));
    assert_eq!(ws_base_of(&r.json()), b1.ws_base());
    assert!(b2.lookup("hidden-room").await.is_none(), "never placed on b2");
    // Members were not disturbed by any of it.
    let posted = aux.post_message("swept-0", "still here").await;
    assert_eq!(posted.status, 201);
    assert_eq!(member.next_of("message").await["text"], "still here");
    assert_eq!(aux.metric("instantchat_aux_duplicate_rooms_total").await, 0.0);
}

#[tokio::test]
async fn a_room_gone_from_its_backend_is_stale_in_the_map_at_most_until_the_next_poll() {
    init_tracing();
    // No poll during the test: the removal is never reported, so what is
    // seen is the window between a removal and the poll that reports it.
    let no_polls =
        |config| AuxConfig { poll_interval_ms: 600_000, backend_retry_max_ms: 600_000, ..config };
    let TestFleet { backends, aux } = TestFleet::start_with(&["b1"], no_polls).await;
    let b1 = &backends[0];
    let first = aux.put_room("Vanishing").await.json();
    let url = first["ws_url"].as_str().unwrap().to_owned();
    assert!(b1.delete_directly("vanishing").await);

    // The map still names the room: a client told so meets the backend's
    // refusal, 4404, and asks again.
    assert_eq!(aux.get_room("vanishing").await.status, 200);
    let mut ws = WsClient::connect(&url).await;
    ws.send(json!({"type": "join", "nick": "ada"})).await;
    assert_eq!(ws.next().await["code"], "room_not_found");
    // Any call that reaches the backend drops the stale entry at once.
    let read = get(&aux.url("/api/rooms/vanishing/messages")).await;
    assert_eq!((read.status, read.error_code().as_str()), (404, "room_not_found"));
    assert_eq!(aux.get_room("vanishing").await.status, 404);
    let again = aux.put_room("vanishing").await;
    assert_eq!((again.status, again.json()["created"].as_bool()), (201, Some(true)));
    let (_member, welcome) =
        WsClient::joined(again.json()["ws_url"].as_str().unwrap(), "ada").await;
    assert_eq!(welcome["room"], "vanishing");
}

#[tokio::test]
async fn a_room_removed_behind_aux_srvs_back_is_forgotten_within_a_poll() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let aux = start_aux_ready(aux_config(&[&b1])).await;
    for i in 0..5 {
        assert_eq!(aux.put_room(&format!("brief-{i}")).await.status, 201);
    }
    let lookups = control_requests(&aux, "lookup_room").await;
    for i in 0..5 {
        assert!(b1.delete_directly(&format!("brief-{i}")).await);
    }
    // Polled every 100 ms here (2 s by default).
    eventually("aux-srv forgot the removed rooms", || async {
        aux.metric("instantchat_aux_rooms_known").await == 0.0
    })
    .await;
    for i in 0..5 {
        let r = aux.get_room(&format!("brief-{i}")).await;
        assert_eq!((r.status, r.error_code().as_str()), (404, "room_not_found"));
    }
    assert_eq!(control_requests(&aux, "lookup_room").await, lookups, "the removal log told it");
}

#[tokio::test]
async fn a_dead_backend_gets_no_rooms_its_rooms_answer_503_and_its_names_free_up_when_it_returns_empty()
 {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let mut b2 = start_backend(backend_config("b2")).await;
    let aux = start_aux_ready(aux_config(&[&b1, &b2])).await;
    let mut on_b2 = Vec::new();
    for i in 0..6 {
        let name = format!("doomed-{i}");
        let r = aux.put_room(&name).await.json();
        if ws_base_of(&r) == b2.ws_base() {
            on_b2.push(name);
        }
    }
    assert!(!on_b2.is_empty());

    b2.stop().await;
    aux.await_backend_state("b2", "down").await;
    for name in &on_b2 {
        // Neither looked up nor placed anywhere else while b2 may still hold it.
        for (method, r) in [("GET", aux.get_room(name).await), ("PUT", aux.put_room(name).await)] {
            let answer = (r.status, r.error_code());
            assert_eq!(answer, (503, "backend_unavailable".into()), "{method} {name}");
        }
        let r = get(&aux.url(&format!("/api/rooms/{name}/messages"))).await;
        assert_eq!(r.status, 503, "{name}");
    }
    assert!(b1.lookup(&on_b2[0]).await.is_none());
    // New names all go to b1.
    for i in 0..5 {
        let r = aux.put_room(&format!("survivor-{i}")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        assert_eq!(ws_base_of(&r.json()), b1.ws_base());
    }
    assert_eq!(
        aux.metric("instantchat_aux_backend_state{backend=\"b2\",state=\"down\"}").await,
        1.0
    );

    // b2 comes back as a new, empty process: its old names are free again.
    b2.restart_empty().await;
    aux.await_backend_state("b2", "up").await;
    for name in &on_b2 {
        let r = aux.get_room(name).await;
        assert_eq!((r.status, r.error_code().as_str()), (404, "room_not_found"), "{name}");
        let r = aux.put_room(name).await;
        assert_eq!((r.status, r.json()["created"].as_bool()), (201, Some(true)), "{name}");
    }
    assert_eq!(aux.metric("instantchat_aux_duplicate_rooms_total").await, 0.0);
}

#[tokio::test]
async fn an_aux_restart_while_a_backend_is_down_refuses_unknown_names_rather_than_guess() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let mut b2 = start_backend(backend_config("b2")).await;
    let config = aux_config(&[&b1, &b2]);
    let held = b2.create_directly("held-by-b2").await;
    let on_b1 = b1.create_directly("on-b1").await;
    b2.stop().await;

    let aux = start_aux_ready(config).await;
    // b2 may hold any name aux-srv does not know: nothing new can be placed.
    let r = aux.put_room(&held.name).await;
    assert_eq!((r.status, r.error_code().as_str()), (503, "backend_unavailable"));
    let r = aux.put_room("brand-new-name").await;
    assert_eq!(r.status, 503);
    // Rooms on reachable backends (swept at start) still work.
    assert_eq!(aux.get_room(&on_b1.name).await.status, 200);

    // Removing the dead backend (force) is the operator's way out.
    let removed = aux.admin(Method::DELETE, "/admin/backends/b2?force=true", None).await;
    assert_eq!(removed.status, 200);
    assert_eq!(aux.put_room("brand-new-name").await.status, 201);
}

#[tokio::test]
async fn an_expired_room_is_forgotten_and_its_name_can_be_created_again() {
    init_tracing();
    let mut config = backend_config("b1");
    config.room_idle_secs = 1;
    config.room_silent_secs = 1;
    let b1 = start_backend(config).await;
    let aux = start_aux_ready(aux_config(&[&b1])).await;
    let first = aux.put_room("Short-Lived").await.json();
    assert_eq!(first["created"], true);
    assert_eq!(aux.metric("instantchat_aux_rooms_known").await, 1.0);

    // The backend removes it; its load report tells aux-srv, which forgets it.
    eventually("aux-srv forgot the expired room", || async {
        aux.metric("instantchat_aux_rooms_known").await == 0.0
    })
    .await;
    assert_eq!(aux.get_room("short-lived").await.status, 404);
    let again = aux.put_room("short-lived").await;
    assert_eq!((again.status, again.json()["created"].as_bool()), (201, Some(true)));
    assert_eq!(again.json()["name"], "short-lived", "a new room, under its new creator's spelling");
}
