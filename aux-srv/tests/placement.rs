//! Where new rooms go: the less-loaded backend, never two backends for one
//! name, not to draining backends, and to backends added at runtime. Also
//! the admin API's guard.

mod support;

use std::collections::{HashMap, HashSet};

use http::Method;
use serde_json::json;
use support::*;

/// Creates `count` rooms named `{prefix}-{i}` and counts them per backend
/// (by websocket base URL).
async fn create_rooms(aux: &TestAux, prefix: &str, count: usize) -> HashMap<String, usize> {
    let mut per_backend = HashMap::new();
    for i in 0..count {
        let r = aux.put_room(&format!("{prefix}-{i}")).await;
        assert_eq!(r.status, 201, "{}", r.body);
        *per_backend.entry(ws_base_of(&r.json())).or_insert(0) += 1;
    }
    per_backend
}

#[tokio::test]
async fn rooms_spread_to_the_less_loaded_backend() {
    init_tracing();
    let mut config = backend_config("b1");
    config.max_connections = 100;
    let b1 = start_backend(config.clone()).await;
    config.id = "b2".into();
    let b2 = start_backend(config).await;
    let aux = start_aux_ready(aux_config(&[&b1, &b2])).await;

    // Equal backends share new rooms evenly.
    // (A load report taken just before a creation can lag by one room.)
    let spread = create_rooms(&aux, "even", 10).await;
    let (even1, even2) = (spread[&b1.ws_base()], spread[&b2.ws_base()]);
    assert!(even1.abs_diff(even2) <= 2, "{spread:?}");

    // Load b1 with 30 members (30 % of its connections).
    let busy = b1.create_directly("busy-room").await;
    let mut members = Vec::new();
    for i in 0..30 {
        members.push(
            WsClient::joined(&format!("{}/ws/{}", b1.ws_base(), busy.name), &format!("m{i}"))
                .await
                .0,
        );
    }
    eventually("aux-srv has heard of b1's load", || async {
        aux.admin_backend("b1").await["load"]["connections"] == 30
    })
    .await;
    let after_load = create_rooms(&aux, "loaded", 20).await;
    let on_b1 = after_load.get(&b1.ws_base()).copied().unwrap_or(0);
    let on_b2 = after_load.get(&b2.ws_base()).copied().unwrap_or(0);
    assert_eq!(on_b1 + on_b2, 20);
    assert!(on_b1 < on_b2, "the loaded backend gets fewer rooms: {after_load:?}");
    assert_eq!(on_b1, 0, "30 % of b1's connections outweigh 20 rooms: {after_load:?}");
    let scores = aux.admin(Method::GET, "/admin/backends", None).await.json();
    let score = |i: usize| scores["backends"][i]["score"].as_f64().unwrap();
    assert!(score(0) > score(1), "{scores}");
    drop(members);
}

#[tokio::test]
async fn concurrent_creations_of_one_name_end_on_one_backend() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let b2 = start_backend(backend_config("b2")).await;
    let b3 = start_backend(backend_config("b3")).await;
    let aux = start_aux_ready(aux_config(&[&b1, &b2, &b3])).await;
    for round in 0..3 {
        let spellings = ["Same-Room", "same-room", "SAME-ROOM", "sAmE-rOoM"];
        // With a password, creating takes a slow hash between "nobody has
        // it" and "place it": the window in which a second creator would
        // pick another backend, were creations of one name not serialised.
        let puts = (0..50).map(|i| {
            let url = aux.url(&format!("/api/rooms/{}-{round}", spellings[i % spellings.len()]));
            async move {
                call(Method::PUT, &url, &[], Some(json!({"password": "pw"}).to_string())).await
            }
        });
        let replies = futures_util::future::join_all(puts).await;
        let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "one creation: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 49, "{statuses:?}");
        let urls: HashSet<String> =
            replies.iter().map(|r| r.json()["ws_url"].as_str().unwrap().to_owned()).collect();
        assert_eq!(urls.len(), 1, "{urls:?}");
        let name = format!("same-room-{round}");
        let mut holders = 0;
        for b in [&b1, &b2, &b3] {
            holders += usize::from(b.lookup(&name).await.is_some());
        }
        assert_eq!(holders, 1, "exactly one backend holds {name}");
    }
    assert_eq!(aux.metric("instantchat_aux_duplicate_rooms_total").await, 0.0);
}

#[tokio::test]
async fn draining_stops_placement_and_undraining_resumes_it() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let b2 = start_backend(backend_config("b2")).await;
    let aux = start_aux_ready(aux_config(&[&b1, &b2])).await;
    let existing = aux.put_room("before-drain").await.json();

    let drained = aux.admin(Method::POST, "/admin/backends/b1/drain", Some(json!({}))).await;
    assert_eq!(drained.status, 200, "{}", drained.body);
    assert_eq!(drained.json()["backend_acknowledged"], true);
    assert_eq!(aux.admin_backend("b1").await["state"], "draining");
    let spread = create_rooms(&aux, "drained", 6).await;
    assert_eq!(spread.get(&b2.ws_base()), Some(&6), "{spread:?}");
    // Rooms already there stay reachable.
    assert_eq!(aux.get_room("before-drain").await.json()["ws_url"], existing["ws_url"]);

    // The backend itself refuses too: direct creation fails with Draining.
    let refused = b1.client().request(create_room_request("sneaky")).await.unwrap();
    assert!(matches!(refused, common::control::ResponseBody::Error { .. }), "{refused:?}");

    let undrained =
        aux.admin(Method::POST, "/admin/backends/b1/drain", Some(json!({"draining": false}))).await;
    assert_eq!(undrained.json()["draining"], false);
    let spread = create_rooms(&aux, "undrained", 6).await;
    assert!(
        spread.get(&b1.ws_base()).copied().unwrap_or(0) >= 3,
        "b1 takes rooms again: {spread:?}"
    );

    // Draining every backend leaves nowhere to place: 503.
    for id in ["b1", "b2"] {
        aux.admin(Method::POST, &format!("/admin/backends/{id}/drain"), None).await;
    }
    let r = aux.put_room("nowhere-to-go").await;
    assert_eq!((r.status, r.error_code().as_str()), (503, "no_backend"));
    assert_eq!(aux.put_room("before-drain").await.status, 200, "existing rooms still open");
}

#[tokio::test]
async fn a_backend_added_through_the_admin_api_gets_new_rooms() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let aux = start_aux_ready(aux_config(&[&b1])).await;
    let before = create_rooms(&aux, "old", 5).await;
    assert_eq!(before.get(&b1.ws_base()), Some(&5));

    let b2 = start_backend(backend_config("b2")).await;
    let added = aux.admin(Method::POST, "/admin/backends", Some(json!(b2.entry()))).await;
    assert_eq!(added.status, 201, "{}", added.body);
    assert_eq!(added.json()["state"], "up");
    let again = aux.admin(Method::POST, "/admin/backends", Some(json!(b2.entry()))).await;
    assert_eq!((again.status, again.error_code().as_str()), (409, "backend_exists"));
    let bad = aux
        .admin(Method::POST, "/admin/backends", Some(json!({"id": "b 3", "control_addr": "x:1"})))
        .await;
    assert_eq!(bad.status, 400);

    // b2 is empty, b1 holds 5 rooms: the next rooms go to b2.
    let after = create_rooms(&aux, "new", 4).await;
    assert_eq!(after.get(&b2.ws_base()), Some(&4), "{after:?}");

    // Removing a backend that holds rooms needs force; then its rooms are forgotten.
    let r = aux.admin(Method::DELETE, "/admin/backends/b2", None).await;
    assert_eq!((r.status, r.error_code().as_str()), (409, "backend_not_empty"));
    let r = aux.admin(Method::DELETE, "/admin/backends/b2?force=true", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["rooms_forgotten"], 4);
    let after = create_rooms(&aux, "after-removal", 2).await;
    assert_eq!(after.get(&b1.ws_base()), Some(&2));
    assert_eq!(aux.admin(Method::DELETE, "/admin/backends/nope", None).await.status, 404);
}

#[tokio::test]
async fn the_admin_api_needs_its_token() {
    init_tracing();
    let b1 = start_backend(backend_config("b1")).await;
    let aux = start_aux_ready(aux_config(&[&b1])).await;
    aux.put_room("admin-room").await;
    let calls = [
        (Method::GET, "/admin/backends"),
        (Method::POST, "/admin/backends"),
        (Method::DELETE, "/admin/backends/b1"),
        (Method::POST, "/admin/backends/b1/drain"),
        (Method::GET, "/admin/rooms"),
        (Method::DELETE, "/admin/rooms/admin-room"),
        (Method::POST, "/admin/announce"),
        (Method::GET, "/anything"),
    ];
    let wrong = format!("Bearer {}x", ADMIN_TOKEN);
    let short = "Bearer test";
    let basic = format!("Basic {ADMIN_TOKEN}");
    for (method, path) in &calls {
        for auth in [None, Some(wrong.as_str()), Some(short), Some(basic.as_str())] {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            let r = call(method.clone(), &aux.admin_url(path), &headers, Some("{}".into())).await;
            assert_eq!(
                (r.status, r.error_code().as_str()),
                (401, "unauthorized"),
                "{method} {path} {auth:?}"
            );
            assert_eq!(r.header("www-authenticate"), "Bearer");
        }
    }
    // Nothing happened: the room and the backend are still there.
    assert_eq!(aux.get_room("admin-room").await.status, 200);
    assert_eq!(
        aux.admin(Method::GET, "/admin/backends", None).await.json()["backends"][0]["id"],
        "b1"
    );

    // With the token, rooms can be listed, announced to and deleted.
    let listed = aux.admin(Method::GET, "/admin/rooms", None).await.json();
    assert_eq!(listed["rooms"][0]["name"], "admin-room");
    assert_eq!(listed["rooms"][0]["backend"], "b1");
    let room = aux.get_room("admin-room").await.json();
    let (mut member, _) = WsClient::joined(room["ws_url"].as_str().unwrap(), "ada").await;
    let announced =
        aux.admin(Method::POST, "/admin/announce", Some(json!({"text": "maintenance at 5"}))).await;
    assert_eq!(announced.json()["rooms"], 1, "{}", announced.body);
    assert_eq!(member.next_of("notice").await["text"], "maintenance at 5");
    let deleted = aux.admin(Method::DELETE, "/admin/rooms/ADMIN-ROOM", None).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(member.next_of("closing").await["reason"], "room_deleted");
    assert_eq!(aux.get_room("admin-room").await.status, 404);
    assert_eq!(aux.admin(Method::DELETE, "/admin/rooms/admin-room", None).await.status, 404);

    // No token configured: the admin API is off.
    let mut config = aux_config(&[&b1]);
    config.admin_token = String::new();
    let closed = start_aux_ready(config).await;
    let r = call(
        Method::GET,
        &closed.admin_url("/admin/backends"),
        &[("authorization", "Bearer ")],
        None,
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "admin_disabled"));
}

#[tokio::test]
async fn admin_room_listing_pages_across_backends() {
    init_tracing();
    let fleet = TestFleet::start(&["b1", "b2"]).await;
    let aux = &fleet.aux;
    let mut names: Vec<String> = (0..9).map(|i| format!("page-room-{i}")).collect();
    for name in &names {
        assert_eq!(aux.put_room(name).await.status, 201);
    }
    let mut seen = Vec::new();
    let mut backends = HashSet::new();
    let mut after = String::new();
    loop {
        let page = aux
            .admin(Method::GET, &format!("/admin/rooms?limit=4&after={after}"), None)
            .await
            .json();
        for room in page["rooms"].as_array().unwrap() {
            seen.push(room["key"].as_str().unwrap().to_owned());
            backends.insert(room["backend"].as_str().unwrap().to_owned());
        }
        match page["next_after"].as_str() {
            Some(next) => after = next.to_owned(),
            None => break,
        }
    }
    names.sort();
    assert_eq!(seen, names);
    assert_eq!(backends.len(), 2);
}
