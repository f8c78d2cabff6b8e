//! The control protocol, spoken for real over TCP: authentication, framing
//! limits, and every request aux-srv makes.

mod support;

use std::time::Duration;

use common::config::BackendConfig;
use common::control::{self, ErrorCode, RequestBody, ResponseBody};
use control_client::{ControlClient, ControlError};
use support::{
    Ending, TOKEN, WAIT, control_rejections, create_room_request, start_backend, test_config,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `bytes`, then reads until the server closes; returns what it sent.
async fn raw_exchange(addr: std::net::SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ =
        tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await.expect("closed in time");
    answer
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_counted() {
    let backend = start_backend(test_config()).await;
    let answer =
        raw_exchange(backend.control, &framed(&control::auth_frame("wrong-token-0000000"))).await;
    assert!(answer.is_empty(), "nothing is answered to a wrong token");
    backend.await_metric(&control_rejections("bad_token"), 1.0).await;
    let stranger = ControlClient::new(backend.control.to_string(), "not-the-token-0000", WAIT, 1);
    let refused = stranger.request(RequestBody::Drain { draining: true }).await.unwrap_err();
    assert!(
        matches!(refused, ControlError::NotSent(ref why) if why.contains("refused")),
        "{refused}"
    );
    // A request before authenticating is just a wrong token: nothing decoded.
    let request =
        control::encode(&control::Request { id: 1, body: RequestBody::Drain { draining: true } });
    assert!(raw_exchange(backend.control, &framed(&request)).await.is_empty());
    assert_eq!(backend.metric(&control_rejections("bad_token")).await, 3.0);
    assert!(matches!(
        backend.request(RequestBody::LookupRoom { name: "abc".into() }).await,
        ResponseBody::Room(None)
    ));
}

#[tokio::test]
async fn an_oversize_length_prefix_closes_without_buffering() {
    let backend = start_backend(test_config()).await;
    // Claims 4 GiB; the server must refuse on the prefix alone.
    assert!(raw_exchange(backend.control, &[0xff, 0xff, 0xff, 0xff, 1, 2, 3]).await.is_empty());
    backend.await_metric(&control_rejections("oversize"), 1.0).await;

    // After authenticating, too.
    let mut bytes = framed(&control::auth_frame(TOKEN));
    let over = control::DEFAULT_MAX_FRAME_BYTES as u32 + 1;
    bytes.extend_from_slice(&over.to_be_bytes());
    let answer = raw_exchange(backend.control, &bytes).await;
    assert_eq!(answer, framed(control::AUTH_OK), "only the auth answer");
    backend.await_metric(&control_rejections("oversize"), 2.0).await;
}

#[tokio::test]
async fn garbage_after_auth_closes_the_connection_and_the_server_stays_up() {
    let backend = start_backend(test_config()).await;
    for garbage in [&b""[..], b"\xff\xff\xff\xff\xff\xff", b"hello world", &[0x01, 0x63, 0xff][..]]
    {
        let mut bytes = framed(&control::auth_frame(TOKEN));
        bytes.extend(framed(garbage));
        let answer = raw_exchange(backend.control, &bytes).await;
        assert_eq!(answer, framed(control::AUTH_OK));
    }
    backend.await_metric(&control_rejections("garbage"), 4.0).await;
    backend.create_room("still-fine").await;
}

#[tokio::test]
async fn rooms_are_created_once_listed_in_pages_and_deleted() {
    let backend = start_backend(test_config()).await;
    let control = backend.control();
    let ResponseBody::Created { room, created: true } =
        control.request(create_room_request("Alpha")).await.unwrap()
    else {
        panic!("not created");
    };
    let ResponseBody::Created { room: again, created: false } =
        control.request(create_room_request("ALPHA")).await.unwrap()
    else {
        panic!("not idempotent");
    };
    assert_eq!(
        (room.epoch, room.key.as_str(), again.name.as_str()),
        (again.epoch, "alpha", "Alpha")
    );
    for bad in ["no", "api", "bad name"] {
        let answer = control.request(create_room_request(bad)).await;
        assert!(
            matches!(answer.unwrap(), ResponseBody::Error { code: ErrorCode::BadName, .. }),
            "{bad}"
        );
    }
    let answer = control
        .request(RequestBody::CreateRoom {
            name: "plain".into(),
            password_hash: Some("hunter2".into()),
            owner_key_hash: None,
        })
        .await;
    assert!(
        matches!(answer.unwrap(), ResponseBody::Error { code: ErrorCode::BadRequest, .. }),
        "only hashes are stored"
    );

    for i in 0..25 {
        control.request(create_room_request(&format!("room-{i:02}"))).await.unwrap();
    }
    let mut keys = Vec::new();
    let mut after = None;
    loop {
        let ResponseBody::Rooms { rooms, next_after } = control
            .request(RequestBody::ListRooms { after: after.clone(), limit: 10 })
            .await
            .unwrap()
        else {
            panic!("no list");
        };
        keys.extend(rooms.into_iter().map(|r| r.key));
        match next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(keys.len(), 26);
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "in key order, no repeats");

    let (mut member, _) = backend.member("alpha", "m").await;
    let answer = control.request(RequestBody::DeleteRoom { name: "Alpha".into() }).await.unwrap();
    assert_eq!(answer, ResponseBody::Deleted { existed: true });
    let (frames, ending) = member.until_closed().await;
    assert_eq!(frames.last().unwrap()["type"], "closing");
    assert_eq!(frames.last().unwrap()["reason"], "room_deleted");
    assert_eq!(ending, Ending::Close(1000));
    let answer = control.request(RequestBody::LookupRoom { name: "alpha".into() }).await.unwrap();
    assert_eq!(answer, ResponseBody::Room(None));
    let ResponseBody::Load(load) =
        control.request(RequestBody::Load { removed_after: 0 }).await.unwrap()
    else {
        panic!("no load");
    };
    assert_eq!(load.removed.len(), 1);
    assert_eq!((load.removed[0].key.as_str(), load.removed[0].epoch), ("alpha", room.epoch));
    assert_eq!(load.rooms, 25);
}

#[tokio::test]
async fn http_api_posts_and_reads_reach_websocket_members() {
    let backend = start_backend(test_config()).await;
    let (mut member, _) = backend.create_room_and_join("bots", "human").await;
    let control = backend.control();
    let post = |text: &str, client_id: Option<&str>| RequestBody::PostMessage {
        room: "bots".into(),
        nick: "bot".into(),
        text: text.into(),
        password: None,
        client_id: client_id.map(Into::into),
    };
    let ResponseBody::Posted { message } =
        control.request(post("beep", Some("b-1"))).await.unwrap()
    else {
        panic!("not posted");
    };
    assert_eq!((message.seq, message.from_nick.as_str()), (1, "bot"));
    let seen = member.expect("message").await;
    assert_eq!((seen["text"].as_str(), seen["from"]["nick"].as_str()), (Some("beep"), Some("bot")));
    let ResponseBody::Posted { message: again } =
        control.request(post("beep", Some("b-1"))).await.unwrap()
    else {
        panic!("not posted");
    };
    assert_eq!(again.seq, 1, "a retried post is stored once");

    member.say("hello bot").await;
    member.expect("message").await;
    let long = "x".repeat(4001);
    let answer = control.request(post(&long, None)).await.unwrap();
    assert!(matches!(answer, ResponseBody::Error { code: ErrorCode::TooLarge, .. }));
    let answer = control
        .request(RequestBody::PostMessage {
            room: "bots".into(),
            nick: "admin".into(),
            text: "x".into(),
            password: None,
            client_id: None,
        })
        .await
        .unwrap();
    assert!(matches!(answer, ResponseBody::Error { code: ErrorCode::BadRequest, .. }));

    let read = |after| RequestBody::ReadMessages {
        room: "bots".into(),
        after,
        limit: 200,
        password: None,
    };
    let ResponseBody::Messages { messages, last_seq } = control.request(read(None)).await.unwrap()
    else {
        panic!("not read");
    };
    assert_eq!(last_seq, 2);
    let texts: Vec<_> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["beep", "hello bot"]);
    let ResponseBody::Messages { messages, .. } = control.request(read(Some(1))).await.unwrap()
    else {
        panic!("not read");
    };
    assert_eq!(messages.len(), 1);
    let answer = control
        .request(RequestBody::ReadMessages {
            room: "nope-room".into(),
            after: None,
            limit: 5,
            password: None,
        })
        .await;
    assert!(matches!(answer.unwrap(), ResponseBody::Error { code: ErrorCode::NotFound, .. }));
}

#[tokio::test]
async fn announcements_reach_every_room_and_drain_refuses_new_rooms() {
    let backend = start_backend(test_config()).await;
    backend.create_room("one").await;
    backend.create_room("two").await;
    let (mut a, _) = backend.member("one", "a").await;
    let (mut b, _) = backend.member("two", "b").await;
    let answer =
        backend.request(RequestBody::Announce { text: "maintenance at noon".into() }).await;
    assert_eq!(answer, ResponseBody::Announced { rooms: 2 });
    assert_eq!(a.expect("notice").await["text"], "maintenance at noon");
    assert_eq!(b.expect("notice").await["text"], "maintenance at noon");

    assert_eq!(
        backend.request(RequestBody::Drain { draining: true }).await,
        ResponseBody::Drained { draining: true }
    );
    let answer = backend.request(create_room_request("three")).await;
    assert!(matches!(answer, ResponseBody::Error { code: ErrorCode::Draining, .. }));
    let answer = backend.request(create_room_request("one")).await;
    assert!(
        matches!(answer, ResponseBody::Created { created: false, .. }),
        "existing rooms still answer"
    );
    a.say_and_await_echo("still served").await;
    let ResponseBody::Load(load) = backend.request(RequestBody::Load { removed_after: 0 }).await
    else {
        panic!()
    };
    assert!(load.draining);
    assert_eq!((load.connections, load.rooms), (2, 2));
    assert!(load.memory_bytes > 0);
    backend.request(RequestBody::Drain { draining: false }).await;
    backend.create_room("three").await;
}

#[tokio::test]
async fn an_idle_empty_room_expires_and_its_name_is_free_again() {
    let backend =
        start_backend(BackendConfig { room_idle_secs: 1, room_silent_secs: 1, ..test_config() })
            .await;
    let first = backend.create_room("fleeting").await;
    let (mut m, _) = backend.member("fleeting", "m").await;
    m.say("hi").await;
    m.expect("message").await;
    drop(m);
    // Expiry is time-based: poll for it, with a deadline.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if backend.request(RequestBody::LookupRoom { name: "fleeting".into() }).await
            == ResponseBody::Room(None)
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "room never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ResponseBody::Load(load) = backend.request(RequestBody::Load { removed_after: 0 }).await
    else {
        panic!()
    };
    assert_eq!(load.removed[0].key, "fleeting");
    assert_eq!(
        backend.metric(r#"instantchat_backend_rooms_removed_total{reason="expired"}"#).await,
        1.0
    );
    let again = backend.create_room("fleeting").await;
    assert_ne!(again.epoch, first.epoch, "created anew: a new epoch");
    assert_eq!(again.last_seq, 0);
}

#[tokio::test]
async fn a_room_with_members_does_not_expire() {
    let backend =
        start_backend(BackendConfig { room_idle_secs: 1, room_silent_secs: 1, ..test_config() })
            .await;
    let (mut m, _) = backend.create_room_and_join("occupied", "m").await;
    // Long enough for several sweeps; time passing is the point here.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    m.say_and_await_echo("still here").await;
    assert!(matches!(
        backend.request(RequestBody::LookupRoom { name: "occupied".into() }).await,
        ResponseBody::Room(Some(_))
    ));
}
