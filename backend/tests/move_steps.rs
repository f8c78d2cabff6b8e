//! A move's steps driven by hand on two backends (no aux-srv), to see what
//! members meet on the target: `closing moved` names where the room went, a
//! member that gets there before `CommitImport` waits for it, and a member
//! back from the move is not sent a member list its client kept, unless
//! somebody came or went meanwhile.

mod support;

use common::control::{RequestBody, ResponseBody};
use serde_json::{Value, json};
use support::{Ending, TestBackend, WsClient, backend_config, start_backend, token_of};

/// Freezes, exports and imports `room` from `source` into `target` (still
/// pending there); returns the room's epoch.
async fn copy_over(source: &TestBackend, target: &TestBackend, room: &str) -> u64 {
    let freeze = RequestBody::FreezeRoom { name: room.into(), ttl_ms: 10_000 };
    assert!(matches!(source.request(freeze).await, ResponseBody::Moving { .. }));
    let ResponseBody::Exported { snapshot } =
        source.request(RequestBody::ExportRoom { name: room.into() }).await
    else {
        panic!("no snapshot");
    };
    let epoch = snapshot.epoch;
    let import = RequestBody::ImportRoom { snapshot, from: "b1".into(), from_instance: 0 };
    assert!(matches!(target.request(import).await, ResponseBody::Moving { .. }));
    epoch
}

/// The source's point of no return, naming the room's URL on `target`.
async fn complete(source: &TestBackend, target: &TestBackend, room: &str, epoch: u64) {
    let complete = RequestBody::CompleteMoveTo {
        name: room.into(),
        epoch,
        to: "b2".into(),
        ws_url: target.ws_url(room),
    };
    assert!(matches!(source.request(complete).await, ResponseBody::Moving { .. }));
}

/// Reads until the close; returns where `closing moved` said the room went.
async fn told_where(client: &mut WsClient) -> String {
    let (frames, ending) = client.until_closed().await;
    assert_eq!(ending, Ending::Close(1012));
    let closing = frames.iter().find(|f| f["type"] == "closing").expect("a closing frame");
    assert_eq!(closing["reason"], "moved", "{closing}");
    closing["ws_url"].as_str().expect("closing moved names a ws_url").to_owned()
}

/// Joins again as the member of `welcome`, resuming after its last seq.
async fn rejoin(url: &str, welcome: &Value, has_members: bool) -> (WsClient, Value) {
    let mut client = WsClient::connect(url).await;
    let join = json!({
        "type": "join",
        "reclaim": token_of(welcome),
        "resume": {"epoch": welcome["epoch"], "after_seq": welcome["last_seq"],
                   "has_members": has_members},
    });
    client.send_text(&join.to_string()).await;
    let welcome = client.expect("welcome").await;
    (client, welcome)
}

fn member_ids(welcome: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> =
        welcome["members"].as_array().unwrap().iter().map(|m| m["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn members_go_where_the_move_says_and_keep_their_list_until_it_changes() {
    let source = start_backend(backend_config("b1")).await;
    let target = start_backend(backend_config("b2")).await;
    let (mut ann, ann_w) = source.create_room_and_join("hop", "ann").await;
    let (mut bob, bob_w) = source.member("hop", "bob").await;
    let (mut cat, cat_w) = source.member("hop", "cat").await;
    let everyone = member_ids(&cat_w);
    let epoch = copy_over(&source, &target, "hop").await;
    complete(&source, &target, "hop", epoch).await;
    let url = told_where(&mut ann).await;
    assert_eq!(url, target.ws_url("hop"));
    for client in [&mut bob, &mut cat] {
        assert_eq!(told_where(client).await, url);
    }

    // ann gets there before the target made the room live: she waits for
    // the commit instead of being told there is no such room.
    let mut early = WsClient::connect(&url).await;
    let join = json!({
        "type": "join",
        "reclaim": token_of(&ann_w),
        "resume": {"epoch": epoch, "after_seq": 0, "has_members": true},
    });
    early.send_text(&join.to_string()).await;
    let commit = RequestBody::CommitImport { name: "hop".into(), epoch };
    assert!(matches!(target.request(commit).await, ResponseBody::Moving { .. }));
    let welcome = early.expect("welcome").await;
    assert_eq!(welcome["you"]["id"], ann_w["you"]["id"]);
    assert_eq!(welcome["resumed"], true);
    // Her page kept the list, and it is still the room's: not sent again.
    assert_eq!(welcome["members_unchanged"], true, "{welcome}");
    assert!(welcome.get("members").is_none(), "{welcome}");

    // bob's client kept none: he gets the list, those on their way included.
    let (_bob, welcome) = rejoin(&url, &bob_w, false).await;
    assert_eq!(member_ids(&welcome), everyone);
    assert!(welcome.get("members_unchanged").is_none(), "{welcome}");

    // dan joins: cat's kept list is out of date now, so he gets the new one.
    let (_dan, dan_w) = target.member("hop", "dan").await;
    let (_cat, welcome) = rejoin(&url, &cat_w, true).await;
    assert!(welcome.get("members_unchanged").is_none(), "{welcome}");
    let mut now_here = everyone.clone();
    now_here.push(dan_w["you"]["id"].as_u64().unwrap());
    now_here.sort_unstable();
    assert_eq!(member_ids(&welcome), now_here);
}

#[tokio::test]
async fn a_member_waiting_at_an_import_that_is_dropped_is_told_there_is_no_room() {
    let source = start_backend(backend_config("b1")).await;
    let target = start_backend(backend_config("b2")).await;
    let (_ann, ann_w) = source.create_room_and_join("gone", "ann").await;
    let epoch = copy_over(&source, &target, "gone").await;

    let mut early = WsClient::connect(&target.ws_url("gone")).await;
    let join = json!({"type": "join", "reclaim": token_of(&ann_w)});
    early.send_text(&join.to_string()).await;
    let abort = RequestBody::AbortImport { name: "gone".into(), epoch };
    assert!(matches!(target.request(abort).await, ResponseBody::Moving { .. }));
    let (frames, ending) = early.until_closed().await;
    assert_eq!(ending, Ending::Close(4404));
    assert_eq!(frames[0]["code"], "room_not_found", "{frames:?}");
}
