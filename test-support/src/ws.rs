//! A websocket chat client (tokio-tungstenite) that speaks the room
//! protocol as the browser does, and checks every frame the server sends
//! parses as a `ServerFrame`.

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::ws::{ClientFrame, Resume, ServerFrame};

use crate::WAIT;

pub struct WsClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server ended the connection with.
#[derive(Debug, PartialEq)]
pub enum Ending {
    Close(u16),
    /// The TCP connection ended without a close frame.
    Dropped,
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .unwrap_or_else(|e| panic!("websocket to {url}: {e}"));
        WsClient { ws }
    }

    /// A websocket to `url` over `stream`, a TCP connection already made.
    pub async fn over(url: &str, stream: TcpStream) -> WsClient {
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .unwrap_or_else(|e| panic!("websocket to {url}: {e}"));
        WsClient { ws }
    }

    /// A websocket to `url` from the local address `from` (127.x.y.z: each
    /// its own client for per-address limits); the error when refused.
    pub async fn connect_from(url: &str, from: std::net::IpAddr) -> Result<WsClient, WsError> {
        let target = url.trim_start_matches("ws://").split('/').next().unwrap_or_default();
        let target: std::net::SocketAddr = target.parse().expect("a ws://ip:port/ URL");
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((from, 0).into()).unwrap();
        let stream = tokio::time::timeout(WAIT, socket.connect(target))
            .await
            .expect("connect in time")
            .unwrap();
        tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .map(|(ws, _)| WsClient { ws })
    }

    /// The upgrade with a browser's `Origin` header; the error when refused.
    pub async fn connect_with_origin(url: &str, origin: &str) -> Result<WsClient, WsError> {
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request).await.map(|(ws, _)| WsClient { ws })
    }

    /// Connects, joins as `nick`, and returns the `welcome` frame too.
    pub async fn joined(url: &str, nick: &str) -> (WsClient, Value) {
        let mut client = WsClient::connect(url).await;
        let welcome = client.join(nick).await;
        (client, welcome)
    }

    /// Sends one frame as JSON (a `ClientFrame` or a hand-made `json!`).
    pub async fn send(&mut self, frame: impl Serialize) {
        self.send_text(&serde_json::to_string(&frame).unwrap()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.unwrap();
    }

    pub async fn say(&mut self, text: &str) {
        self.send(&ClientFrame::Send {
            text: text.into(),
            client_id: None,
            drawing: None,
            reply_to: None,
        })
        .await;
    }

    /// Joins as `nick` and returns the `welcome` frame.
    pub async fn join(&mut self, nick: &str) -> Value {
        self.send(&join_frame(Some(nick), None, None)).await;
        self.expect("welcome").await
    }

    /// Joins with `reclaim: token` (and `nick` if given), as a reloaded page
    /// or a client following a move does; returns the `welcome` frame.
    pub async fn reclaim(&mut self, token: &str, nick: Option<&str>) -> Value {
        self.send(&ClientFrame::Join {
            nick: nick.map(str::to_owned),
            password: None,
            resume: None,
            reclaim: Some(token.to_owned()),
            pow: None,
        })
        .await;
        self.expect("welcome").await
    }

    /// The next text frame as JSON; panics on close or after [`WAIT`].
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no frame in time")
                .expect("connection ended")
                .expect("websocket error");
            match msg {
                Message::Text(text) => {
                    // Every frame the server sends must parse as a ServerFrame.
                    serde_json::from_str::<ServerFrame>(&text)
                        .unwrap_or_else(|e| panic!("not a ServerFrame ({e}): {text}"));
                    return serde_json::from_str(&text).unwrap();
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                Message::Close(frame) => panic!("closed: {frame:?}"),
                other => panic!("unexpected websocket message: {other:?}"),
            }
        }
    }

    /// The next frame of `kind`, skipping others (joined, typing, …); an
    /// `error` frame fails the test unless it is what was asked for.
    pub async fn expect(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
            assert!(
                !(frame["type"] == "error" && kind != "error"),
                "wanted {kind}, got error {frame}"
            );
        }
    }

    /// The next frame of `kind`, skipping any other (errors included).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Reads until the connection ends; returns the frames seen and how it ended.
    /// The next message from `nick` (skipping others', our own echoes too).
    pub async fn next_from(&mut self, nick: &str) -> Value {
        loop {
            let m = self.next_of("message").await;
            if m["from"]["nick"] == nick {
                return m;
            }
        }
    }

    /// The next message frame, with its author's nick and text.
    pub async fn next_message(&mut self) -> (String, String) {
        let m = self.next_of("message").await;
        (m["from"]["nick"].as_str().unwrap().to_owned(), m["text"].as_str().unwrap().to_owned())
    }

    pub async fn until_closed(&mut self) -> (Vec<Value>, Ending) {
        let mut frames = Vec::new();
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await.expect("still open") {
                Some(Ok(Message::Text(text))) => frames.push(serde_json::from_str(&text).unwrap()),
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f: CloseFrame| u16::from(f.code));
                    return (frames, Ending::Close(code));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return (frames, Ending::Dropped),
            }
        }
    }
}

/// The member token a `welcome` frame gives (`welcome.you.token`).
pub fn token_of(welcome: &Value) -> String {
    welcome["you"]["token"].as_str().expect("welcome.you.token").to_owned()
}

/// A `join` frame as most tests write it: a nick, a password and a resume
/// point when given, no `reclaim`, no proof of work.
pub fn join_frame(
    nick: Option<&str>,
    password: Option<&str>,
    resume: Option<Resume>,
) -> ClientFrame {
    ClientFrame::Join {
        nick: nick.map(str::to_owned),
        password: password.map(str::to_owned),
        resume,
        reclaim: None,
        pow: None,
    }
}
