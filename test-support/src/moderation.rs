//! Helpers for room owners and moderation: members connecting from their
//! own loopback address (127.x.y.z, so that address bans and per-address
//! limits tell them apart), owned rooms, owner-key HTTP calls.

use std::net::{Ipv4Addr, SocketAddr};

use common::control::{IpBan, RequestBody, ResponseBody, RoomInfo};
use http::Method;
use serde_json::{Value, json};

use crate::aux::TestAux;
use crate::backend::TestBackend;
use crate::http::{Reply, call};
use crate::ws::WsClient;

/// A websocket to `url` whose TCP connection comes from `from`, an address
/// of 127.0.0.0/8 (Linux answers for all of them on loopback).
pub async fn connect_from(url: &str, from: Ipv4Addr) -> WsClient {
    let target: SocketAddr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not a ws://ip:port/ URL: {url}"));
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.into(), 0)).unwrap();
    let stream = socket.connect(target).await.unwrap();
    WsClient::over(url, stream).await
}

/// A websocket to `url` whose upgrade request carries `headers` (e.g. an
/// `X-Forwarded-For` a trusted proxy would add).
pub async fn connect_with_headers(url: &str, headers: &[(&str, &str)]) -> WsClient {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    let (ws, _) = tokio::time::timeout(crate::WAIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("connect in time")
        .unwrap_or_else(|e| panic!("websocket to {url}: {e}"));
    WsClient { ws }
}

impl WsClient {
    /// Sends `{"type":"join","nick",…extra}` (e.g. `owner_key`) and returns
    /// the first answer: `welcome`, or the `error` that refused it.
    pub async fn join_with(&mut self, nick: &str, extra: Value) -> Value {
        let mut frame = json!({"type": "join", "nick": nick});
        if let (Some(frame), Some(extra)) = (frame.as_object_mut(), extra.as_object()) {
            frame.extend(extra.clone());
        }
        self.send(&frame).await;
        loop {
            let answer = self.next().await;
            if answer["type"] == "welcome" || answer["type"] == "error" {
                return answer;
            }
        }
    }

    /// The next `notice` frame's text.
    pub async fn next_notice(&mut self) -> String {
        self.next_of("notice").await["text"].as_str().unwrap_or_default().to_owned()
    }
}

impl TestBackend {
    /// Creates a room whose owner key is `owner_key`, as aux-srv would.
    pub async fn create_owned_room(&self, name: &str, owner_key: &str) -> RoomInfo {
        let body = RequestBody::CreateRoom {
            name: name.into(),
            password_hash: None,
            owner_key_hash: Some(common::owner_key::hash_owner_key(owner_key)),
        };
        match self.request(body).await {
            ResponseBody::Created { room, .. } => room,
            other => panic!("create failed: {other:?}"),
        }
    }

    /// A member of `room` connecting from `from`, joined with `extra`
    /// fields; returns the client and its `welcome` (or refusal).
    pub async fn member_from(
        &self,
        room: &str,
        nick: &str,
        from: Ipv4Addr,
        extra: Value,
    ) -> (WsClient, Value) {
        let mut client = connect_from(&self.ws_url(room), from).await;
        let answer = client.join_with(nick, extra).await;
        (client, answer)
    }

    /// The fleet-wide bans the backend holds.
    pub async fn ip_bans(&self) -> Vec<IpBan> {
        match self.request(RequestBody::Bans { set: Vec::new(), lift: Vec::new() }).await {
            ResponseBody::Bans { bans } => bans,
            other => panic!("bans failed: {other:?}"),
        }
    }
}

impl TestAux {
    /// A call to the public API with `X-Owner-Key: key` (none when empty).
    pub async fn owner_call(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Reply {
        let headers: Vec<(&str, &str)> =
            if key.is_empty() { Vec::new() } else { vec![("x-owner-key", key)] };
        call(method, &self.url(path), &headers, body.map(|b| b.to_string())).await
    }
}
