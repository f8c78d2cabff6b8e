//! Members chatting: order, ring buffer, resume, de-duplication, and every
//! member action of the contract.

mod support;

use common::config::BackendConfig;
use common::control::{RequestBody, ResponseBody};
use common::ws::{ClientFrame, Resume};
use support::{WsClient, join_frame, quick, seqs_of, start_backend};

/// Says `m1` … `m{count}`, then reads their echoes: all are sent before any
/// is read, as a busy room receives them.
async fn say_numbered(client: &mut WsClient, count: u64) {
    for i in 1..=count {
        client.say(&format!("m{i}")).await;
    }
    for _ in 0..count {
        client.expect("message").await;
    }
}

/// A `send` frame answering message `to`.
fn reply(text: &str, to: u64) -> ClientFrame {
    ClientFrame::Send { text: text.into(), client_id: None, drawing: None, reply_to: Some(to) }
}

/// A `send` frame carrying the drawing `file_id` and no text.
fn drawing(file_id: &str) -> ClientFrame {
    ClientFrame::Send {
        text: String::new(),
        client_id: None,
        drawing: Some(file_id.into()),
        reply_to: None,
    }
}

#[tokio::test]
async fn two_members_see_the_same_messages_in_the_same_order() {
    let backend = start_backend(quick()).await;
    backend.create_room("Team-Chat").await;
    let (mut ada, welcome) = backend.member("team-chat", "ada").await;
    assert_eq!(welcome["room"], "Team-Chat", "the creator's spelling");
    assert_eq!(welcome["last_seq"], 0);
    assert_eq!(welcome["limits"]["max_text_chars"], 4000);
    let (mut bob, welcome) = backend.member("TEAM-CHAT", "bob").await;
    assert_eq!(welcome["members"].as_array().unwrap().len(), 2);
    let joined = ada.expect("joined").await;
    assert_eq!(joined["member"]["nick"], "bob");

    for i in 0..20 {
        if i % 2 == 0 { ada.say(&format!("a{i}")).await } else { bob.say(&format!("b{i}")).await }
    }
    let mut seen = [Vec::new(), Vec::new()];
    for (n, client) in [&mut ada, &mut bob].into_iter().enumerate() {
        for _ in 0..20 {
            let m = client.expect("message").await;
            seen[n].push((m["seq"].as_u64().unwrap(), m["text"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(seen[0], seen[1], "both members see one order");
    let seqs: Vec<u64> = seen[0].iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "seqs are consecutive from 1");
    // Each member's own messages keep their relative order.
    let ada_texts: Vec<&str> =
        seen[0].iter().map(|(_, t)| t.as_str()).filter(|t| t.starts_with('a')).collect();
    assert_eq!(ada_texts, ["a0", "a2", "a4", "a6", "a8", "a10", "a12", "a14", "a16", "a18"]);

    drop(bob);
    let left = ada.expect("left").await;
    assert_eq!(left["member"]["nick"], "bob");
}

#[tokio::test]
async fn joining_after_1005_messages_gets_exactly_the_last_1000() {
    let backend = start_backend(quick()).await;
    let (mut writer, _) = backend.create_room_and_join("busy", "w").await;
    say_numbered(&mut writer, 1005).await;
    let (_reader, welcome) = backend.member("busy", "r").await;
    let messages = welcome["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1000);
    assert_eq!(messages[0]["seq"], 6);
    assert_eq!(messages[0]["text"], "m6");
    assert_eq!(messages[999]["seq"], 1005);
    assert_eq!(welcome["last_seq"], 1005);
    assert_eq!(welcome["resumed"], false);
}

#[tokio::test]
async fn resume_gets_only_what_was_missed_within_the_same_epoch() {
    let backend = start_backend(quick()).await;
    let info = backend.create_room("resume").await;
    let (mut a, _) = backend.member("resume", "a").await;
    say_numbered(&mut a, 5).await;

    let mut b = backend.connect("resume").await;
    b.send(&join_frame(
        Some("b"),
        None,
        Some(Resume { epoch: info.epoch, after_seq: 3, has_members: false }),
    ))
    .await;
    let welcome = b.expect("welcome").await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(seqs_of(&welcome["messages"]), [4, 5]);

    let mut c = backend.connect("resume").await;
    c.send(&join_frame(
        None,
        None,
        Some(Resume { epoch: info.epoch + 1, after_seq: 3, has_members: false }),
    ))
    .await;
    let welcome = c.expect("welcome").await;
    assert_eq!(welcome["resumed"], false, "another epoch: the full buffer");
    assert_eq!(welcome["messages"].as_array().unwrap().len(), 5);
    assert!(!welcome["you"]["nick"].as_str().unwrap().is_empty(), "a random nick");
}

#[tokio::test]
async fn resume_across_a_gap_beyond_the_buffer_gets_the_full_buffer() {
    let backend = start_backend(BackendConfig { max_messages: 10, ..quick() }).await;
    let info = backend.create_room("small").await;
    let (mut a, _) = backend.member("small", "a").await;
    say_numbered(&mut a, 15).await;
    let mut b = backend.connect("small").await;
    b.send(&join_frame(
        None,
        None,
        Some(Resume { epoch: info.epoch, after_seq: 2, has_members: false }),
    ))
    .await;
    let welcome = b.expect("welcome").await;
    assert_eq!(welcome["resumed"], false);
    assert_eq!(welcome["messages"][0]["seq"], 6);
}

#[tokio::test]
async fn a_resend_with_the_same_client_id_is_stored_once() {
    let backend = start_backend(quick()).await;
    let (mut a, _) = backend.create_room_and_join("dedupe", "a").await;
    let (mut b, _) = backend.member("dedupe", "b").await;
    let send = ClientFrame::Send {
        text: "only once".into(),
        client_id: Some("c-1".into()),
        drawing: None,
        reply_to: None,
    };
    a.send(&send).await;
    let first = a.expect("message").await;
    a.send(&send).await;
    let again = a.expect("message").await;
    assert_eq!(first, again, "the sender gets the stored message back");
    assert_eq!(again["client_id"], "c-1");
    a.say("next").await;
    assert_eq!(a.expect("message").await["seq"], 2, "nothing was stored twice");
    assert_eq!(b.expect("message").await["seq"], 1);
    assert_eq!(b.expect("message").await["seq"], 2, "the other member saw it once");
}

#[tokio::test]
async fn typing_nick_edit_and_delete_reach_the_others() {
    let backend = start_backend(quick()).await;
    let (mut a, welcome) = backend.create_room_and_join("actions", "ada").await;
    let ada_id = welcome["you"]["id"].clone();
    let (mut b, _) = backend.member("actions", "bob").await;
    a.expect("joined").await;

    a.send(&ClientFrame::Typing).await;
    let typing = b.expect("typing").await;
    assert_eq!(typing["member"]["id"], ada_id);

    a.send(&ClientFrame::Nick { nick: "Ada L.".into() }).await;
    let nick = b.expect("nick").await;
    assert_eq!(
        (nick["member"]["nick"].as_str(), nick["old"].as_str()),
        (Some("Ada L."), Some("ada"))
    );
    assert_eq!(a.expect("nick").await["member"]["nick"], "Ada L.");
    a.send(&ClientFrame::Nick { nick: "system".into() }).await;
    assert_eq!(a.expect("error").await["code"], "reserved_nick");

    a.say("frist").await;
    let m = b.expect("message").await;
    assert_eq!(m["from"]["nick"], "Ada L.");
    a.expect("message").await;

    a.send(&ClientFrame::Edit { seq: 1, text: "first".into() }).await;
    let edited = b.expect("edited").await;
    assert_eq!((edited["seq"].as_u64(), edited["text"].as_str()), (Some(1), Some("first")));

    b.send(&ClientFrame::Edit { seq: 1, text: "mine now".into() }).await;
    assert_eq!(b.expect("error").await["code"], "not_your_message");
    b.send(&ClientFrame::Delete { seq: 1 }).await;
    assert_eq!(b.expect("error").await["code"], "not_your_message");

    a.send(&ClientFrame::Delete { seq: 1 }).await;
    assert_eq!(b.expect("deleted").await["seq"], 1);
    a.send(&ClientFrame::Edit { seq: 1, text: "back".into() }).await;
    assert_eq!(a.expect("error").await["code"], "message_deleted");

    // A newcomer sees the edit and the deletion in the buffer, not the old text.
    let (_c, welcome) = backend.member("actions", "cy").await;
    let m = &welcome["messages"][0];
    assert_eq!((m["deleted"].as_bool(), m["text"].as_str()), (Some(true), Some("")));
}

#[tokio::test]
async fn replies_and_history_pages() {
    let backend = start_backend(quick()).await;
    let (mut a, _) = backend.create_room_and_join("history", "a").await;
    say_numbered(&mut a, 30).await;
    a.send(&reply("re", 7)).await;
    assert_eq!(a.expect("message").await["reply_to"], 7);
    a.send(&reply("x", 99)).await;
    assert_eq!(a.expect("error").await["code"], "bad_reply_to");

    a.send(&ClientFrame::History { before: 11, limit: Some(4) }).await;
    let page = a.expect("history").await;
    assert_eq!(seqs_of(&page["messages"]), [7, 8, 9, 10]);
    assert_eq!(page["has_more"], true);
    a.send(&ClientFrame::History { before: 3, limit: Some(50) }).await;
    let page = a.expect("history").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], false);
    a.send(&ClientFrame::History { before: 1000, limit: Some(10_000) }).await;
    let page = a.expect("history").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 31, "capped at history_page_max (200)");
}

#[tokio::test]
async fn drawings_are_messages_with_a_file_id() {
    let backend = start_backend(quick()).await;
    let (mut a, _) = backend.create_room_and_join("art", "a").await;
    let id = "0123456789abcdef0123456789abcdef";
    a.send(&drawing(id)).await;
    assert_eq!(a.expect("message").await["drawing"], id);
    a.send(&drawing("../../etc/passwd")).await;
    assert_eq!(a.expect("error").await["code"], "bad_drawing");
    a.say("   ").await;
    assert_eq!(a.expect("error").await["code"], "empty_message");
}

#[tokio::test]
async fn passwords_are_checked_on_join() {
    let backend = start_backend(quick()).await;
    let hash = common::password::hash_password("sesame", &[7; 16]).unwrap();
    let info = backend.create_room_with("vault", Some(hash)).await;
    assert!(info.has_password);

    let mut c = backend.connect("vault").await;
    c.send(&join_frame(None, None, None)).await;
    assert_eq!(c.expect("error").await["code"], "password_required");
    c.send(&join_frame(None, Some("open"), None)).await;
    assert_eq!(c.expect("error").await["code"], "wrong_password");
    c.say("let me in").await;
    assert_eq!(c.expect("error").await["code"], "not_joined");
    c.send(&join_frame(None, Some("sesame"), None)).await;
    c.expect("welcome").await;

    // The HTTP API path checks it too.
    let read = |password: Option<&str>| RequestBody::ReadMessages {
        room: "vault".into(),
        after: None,
        limit: 10,
        password: password.map(Into::into),
    };
    let code = |r: ResponseBody| match r {
        ResponseBody::Error { code, .. } => code.as_str(),
        _ => "ok",
    };
    assert_eq!(code(backend.request(read(None)).await), "password_required");
    assert_eq!(code(backend.request(read(Some("nope"))).await), "wrong_password");
    assert_eq!(code(backend.request(read(Some("sesame"))).await), "ok");
}

#[tokio::test]
async fn an_unknown_room_is_refused_with_4404() {
    let backend = start_backend(quick()).await;
    let mut c = backend.connect("nowhere").await;
    c.expect_error_and_close("room_not_found", 4404).await;
}

#[tokio::test]
async fn unicode_room_names_work_percent_encoded() {
    let backend = start_backend(quick()).await;
    backend.create_room("Café").await;
    let mut c = WsClient::connect(&backend.ws_url("CAF%C3%89")).await;
    let welcome = c.join("n").await;
    assert_eq!(welcome["room"], "Café");
}
