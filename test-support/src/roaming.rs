//! A chat member that follows its room wherever it goes, as the web client
//! does: it finds the room through aux-srv (`PUT /api/rooms/{room}`), and on
//! `closing moved` (close 1012) joins the new backend the frame names (or,
//! on 4404, a refused join or a `closing` that names none, asks aux-srv
//! again) with `resume` and `reclaim`, then sends again what was not
//! confirmed (same `client_id`). It keeps the member list up to date from
//! `joined` and `left`, and after a `closing moved` offers it on the resume
//! (`has_members`). It records
//! every message it is given, to check "each exactly once, in order".

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::ws::{ClientFrame, Resume};
use futures_util::StreamExt;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use crate::WAIT;
use crate::aux::TestAux;
use crate::ws::WsClient;

/// What one read gave.
#[derive(Debug)]
pub enum Event {
    /// A `message` (or any other frame, as JSON).
    Frame(Value),
    /// The member followed the room to another connection.
    Followed,
}

pub struct Roamer {
    aux_url: String,
    pub room: String,
    pub nick: String,
    /// The loopback address its connections come from.
    pub from: IpAddr,
    /// The current connection (`None` only while connecting).
    pub client: Option<WsClient>,
    pub id: u64,
    pub token: String,
    pub epoch: u64,
    pub last_seq: u64,
    /// Every `message` delivered, in arrival order: (seq, text, client_id).
    pub delivered: Vec<(u64, String, Option<String>)>,
    /// Sends not confirmed yet, by client id.
    pub outbox: BTreeMap<String, String>,
    /// Connections after the first (moves followed, drops recovered).
    pub reconnects: u32,
    /// The `ws_url`s it joined, in order.
    pub ws_urls: Vec<String>,
    /// Every `joined`, `left` and `nick` frame, with the number of
    /// reconnects before it came.
    pub presence: Vec<(u32, Value)>,
    /// The member ids it knows: its last `welcome`'s list (or the one it
    /// kept, when the welcome said `members_unchanged`), with every
    /// `joined` and `left` since.
    pub members: Vec<u64>,
    /// Welcomes that said `members_unchanged` (the list it kept was current).
    pub lists_kept: u32,
    /// Joins that went straight to the URL a `closing moved` named.
    pub followed_closing_url: u32,
    /// Where the last `closing moved` said the room went.
    next_url: Option<String>,
    /// Its member list is the room's as of a `closing moved` (no welcome since).
    list_at_move: bool,
}

fn addr_of(ws_url: &str) -> SocketAddr {
    let rest = ws_url.strip_prefix("ws://").expect("a ws:// url");
    rest[..rest.find('/').unwrap()].parse().expect("host:port")
}

impl Roamer {
    /// Opens `room` through aux-srv and joins as `nick`, connecting from
    /// `from` (a 127.x.y.z address).
    pub async fn join(aux: &TestAux, room: &str, nick: &str, from: IpAddr) -> Roamer {
        let mut roamer = Roamer {
            aux_url: aux.url(""),
            room: room.into(),
            nick: nick.into(),
            from,
            client: None,
            id: 0,
            token: String::new(),
            epoch: 0,
            last_seq: 0,
            delivered: Vec::new(),
            outbox: BTreeMap::new(),
            reconnects: 0,
            ws_urls: Vec::new(),
            presence: Vec::new(),
            members: Vec::new(),
            lists_kept: 0,
            followed_closing_url: 0,
            next_url: None,
            list_at_move: false,
        };
        roamer.connect(false).await;
        roamer
    }

    async fn ws_url(&self) -> String {
        let url = format!("{}/api/rooms/{}", self.aux_url, self.room);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let reply = crate::http::call(http::Method::PUT, &url, &[], Some("{}".into())).await;
            if reply.status == 200 || reply.status == 201 {
                return reply.json()["ws_url"].as_str().unwrap().to_owned();
            }
            assert!(tokio::time::Instant::now() < deadline, "no ws_url: {}", reply.body);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Finds the room and joins it; with `again`, as the same member
    /// (`reclaim`, `resume`). Retries while the room is moving.
    async fn connect(&mut self, again: bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            assert!(tokio::time::Instant::now() < deadline, "{} could not join again", self.nick);
            // Where a move said the room went; if that fails, ask aux-srv.
            let told = self.next_url.take();
            let from_closing = told.is_some();
            let url = match told {
                Some(url) => url,
                None => self.ws_url().await,
            };
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(self.from, 0)).unwrap();
            let Ok(stream) = socket.connect(addr_of(&url)).await else { continue };
            let Ok((ws, _)) = tokio_tungstenite::client_async(
                url.as_str(),
                tokio_tungstenite::MaybeTlsStream::Plain(stream),
            )
            .await
            else {
                continue;
            };
            self.client = Some(WsClient { ws });
            let join = ClientFrame::Join {
                nick: (!again).then(|| self.nick.clone()),
                password: None,
                resume: again.then_some(Resume {
                    epoch: self.epoch,
                    after_seq: self.last_seq,
                    has_members: self.list_at_move,
                }),
                reclaim: again.then(|| self.token.clone()),
                pow: None,
            };
            self.ws().send(&join).await;
            match self.read_welcome().await {
                Some(welcome) => {
                    if again {
                        assert_eq!(welcome["epoch"], self.epoch, "{}: same epoch", self.nick);
                        assert_eq!(welcome["you"]["id"], self.id, "{}: same member id", self.nick);
                        self.reconnects += 1;
                        self.followed_closing_url += u32::from(from_closing);
                    }
                    self.id = welcome["you"]["id"].as_u64().unwrap();
                    self.token = welcome["you"]["token"].as_str().unwrap().to_owned();
                    self.epoch = welcome["epoch"].as_u64().unwrap();
                    if welcome["members_unchanged"] == true {
                        assert!(self.list_at_move, "{}: it kept no list: {welcome}", self.nick);
                        assert!(welcome.get("members").is_none(), "{}: {welcome}", self.nick);
                        self.lists_kept += 1;
                    } else {
                        self.members = welcome["members"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|m| m["id"].as_u64().unwrap())
                            .collect();
                    }
                    self.list_at_move = false;
                    for m in welcome["messages"].as_array().unwrap() {
                        self.note(m);
                    }
                    self.ws_urls.push(url);
                    self.resend().await;
                    return;
                }
                None => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// The code of an `error` frame, which around a move may only be
    /// `room_moving` (the room is frozen) or `room_not_found` (a frame that
    /// reached the room just after it moved away; the close follows).
    fn move_error_code<'f>(&self, frame: &'f Value, what: &str) -> &'f str {
        let code = frame["code"].as_str().unwrap_or("");
        assert!(code == "room_moving" || code == "room_not_found", "{}: {what} {frame}", self.nick);
        code
    }

    /// The welcome, or `None` when the join was refused (moving, gone).
    async fn read_welcome(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws().ws.next()).await.expect("an answer") {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    match frame["type"].as_str() {
                        Some("welcome") => return Some(frame),
                        Some("error") => {
                            self.move_error_code(&frame, "join refused:");
                        }
                        _ => {}
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return None,
                Some(Ok(_)) => {}
            }
        }
    }

    fn ws(&mut self) -> &mut WsClient {
        self.client.as_mut().expect("connected")
    }

    fn note(&mut self, m: &Value) {
        let seq = m["seq"].as_u64().unwrap();
        let client_id = m["client_id"].as_str().map(str::to_owned);
        if let Some(c) = &client_id {
            self.outbox.remove(c);
        }
        self.last_seq = self.last_seq.max(seq);
        self.delivered.push((seq, m["text"].as_str().unwrap_or("").to_owned(), client_id));
    }

    async fn send_frame(&mut self, client_id: &str, text: &str) {
        let frame = ClientFrame::Send {
            text: text.into(),
            client_id: Some(client_id.into()),
            drawing: None,
            reply_to: None,
        };
        // A send into a closing socket is re-sent after the follow.
        let _ = futures_util::SinkExt::send(
            &mut self.ws().ws,
            Message::text(serde_json::to_string(&frame).unwrap()),
        )
        .await;
    }

    /// Sends again what the server has not confirmed (same client ids).
    async fn resend(&mut self) {
        let unsent: Vec<(String, String)> =
            self.outbox.iter().map(|(c, t)| (c.clone(), t.clone())).collect();
        for (client_id, text) in unsent {
            self.send_frame(&client_id, &text).await;
        }
    }

    /// Sends `text` with `client_id`; kept until the server confirms it.
    pub async fn send(&mut self, client_id: &str, text: &str) {
        self.outbox.insert(client_id.into(), text.into());
        self.send_frame(client_id, text).await;
    }

    /// The next frame, following the room if the connection ends.
    pub async fn next(&mut self) -> Event {
        let msg = tokio::time::timeout(WAIT, self.ws().ws.next())
            .await
            .unwrap_or_else(|_| panic!("{}: nothing in time", self.nick));
        match msg {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                match frame["type"].as_str() {
                    Some("message") => self.note(&frame),
                    Some("joined" | "left" | "nick") => {
                        let id = frame["member"]["id"].as_u64().unwrap();
                        match frame["type"].as_str() {
                            Some("joined") => self.members.push(id),
                            Some("left") => self.members.retain(|m| *m != id),
                            _ => {}
                        }
                        self.presence.push((self.reconnects, frame.clone()));
                    }
                    Some("closing") if frame["reason"] == "moved" => {
                        self.next_url = frame["ws_url"].as_str().map(str::to_owned);
                        self.list_at_move = true;
                    }
                    Some("error") => {
                        let code = self.move_error_code(&frame, "unexpected error");
                        if code == "room_moving" {
                            let wait = frame["retry_after_ms"].as_u64().unwrap_or(100).min(100);
                            tokio::time::sleep(Duration::from_millis(wait)).await;
                            self.resend().await;
                        }
                    }
                    _ => {}
                }
                Event::Frame(frame)
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map_or(1005, |f: CloseFrame| u16::from(f.code));
                assert!(
                    matches!(code, 1012 | 4404 | 1013 | 1001),
                    "{}: closed with {code}",
                    self.nick
                );
                self.connect(true).await;
                Event::Followed
            }
            Some(Ok(_)) => Event::Frame(Value::Null),
            Some(Err(e)) => panic!("{}: websocket error {e}", self.nick),
            None => {
                self.connect(true).await;
                Event::Followed
            }
        }
    }

    /// Reads until `done` holds.
    pub async fn read_until(&mut self, mut done: impl FnMut(&Roamer) -> bool) {
        while !done(self) {
            self.next().await;
        }
    }

    /// Seqs delivered, in arrival order.
    pub fn seqs(&self) -> Vec<u64> {
        self.delivered.iter().map(|(s, _, _)| *s).collect()
    }
}
