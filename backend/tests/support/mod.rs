//! A real backend on ephemeral ports, and real clients to talk to it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use backend::control_client::ControlClient;
use common::config::BackendConfig;
use common::control::{RequestBody, ResponseBody, RoomInfo};
use common::ws::{ClientFrame, ServerFrame};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TOKEN: &str = "test-control-token-0123456789";
/// Longest any single awaited event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestBackend {
    pub public: SocketAddr,
    pub control: SocketAddr,
    pub config: BackendConfig,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Defaults for tests: the contract's limits, generous rates unless a test
/// is about them.
pub fn test_config() -> BackendConfig {
    BackendConfig { control_token: TOKEN.into(), ..BackendConfig::default() }
}

/// [`test_config`] with rate limits out of the way, for tests not about them.
pub fn quick() -> BackendConfig {
    BackendConfig { rate_per_sec: 100_000, rate_burst: 100_000, ..test_config() }
}

pub async fn start(config: BackendConfig) -> TestBackend {
    let listeners = backend::Listeners::bind_loopback().await.unwrap();
    let config = listeners.configure(config).unwrap();
    let (public_addr, control_addr) = (config.listen, config.control_listen);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(backend::run(listeners, config.clone(), async {
        let _ = stopped.await;
    }));
    TestBackend {
        public: public_addr,
        control: control_addr,
        config,
        stop: Some(stop),
        task: Some(task),
    }
}

impl TestBackend {
    /// A control client holding one connection at a time.
    pub fn control(&self) -> ControlClient {
        ControlClient::new(self.control.to_string(), TOKEN, WAIT, 1)
    }

    pub async fn request(&self, body: RequestBody) -> ResponseBody {
        self.control().request(body).await.unwrap()
    }

    pub async fn create_room(&self, name: &str) -> RoomInfo {
        self.create_room_with(name, None).await
    }

    pub async fn create_room_with(&self, name: &str, password_hash: Option<String>) -> RoomInfo {
        match self.request(RequestBody::CreateRoom { name: name.into(), password_hash }).await {
            ResponseBody::Created { room, .. } => room,
            other => panic!("create failed: {other:?}"),
        }
    }

    pub fn ws_url(&self, room: &str) -> String {
        format!("ws://{}/ws/{room}", self.public)
    }

    pub async fn connect(&self, room: &str) -> Client {
        Client::connect(&self.ws_url(room)).await
    }

    /// A client whose socket's receive buffer is `bytes`: one that stops
    /// reading soon fills the window the server may send into.
    pub async fn connect_with_receive_buffer(&self, room: &str, bytes: u32) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        let stream = socket.connect(self.public).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(
            self.ws_url(room),
            tokio_tungstenite::MaybeTlsStream::Plain(stream),
        )
        .await
        .unwrap();
        Client { ws }
    }

    /// A member that has joined with `nick`; returns the welcome too.
    pub async fn member(&self, room: &str, nick: &str) -> (Client, serde_json::Value) {
        let mut client = self.connect(room).await;
        let welcome = client.join(nick).await;
        (client, welcome)
    }

    /// The value of one metric sample line, e.g. `instantchat_backend_rooms`
    /// or `instantchat_backend_disconnects_total{reason="flooding"}`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = http_get(self.public, "/metrics").await.1;
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// Waits until the metric reaches `value` (metrics are updated just after
    /// the events a client can see).
    pub async fn await_metric(&self, sample: &str, value: f64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = self.metric(sample).await;
            if now == value {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{sample} stayed {now}, wanted {value}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Triggers shutdown and waits for `run` to return.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap(),
            None => Ok(()),
        }
    }

    pub fn trigger_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A plain HTTP/1.1 GET over a fresh connection: (status, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"))
        .await
}

pub async fn http_request(addr: SocketAddr, raw: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What the server ended the connection with.
#[derive(Debug, PartialEq)]
pub enum Ending {
    Close(u16),
    /// The TCP connection ended without a close frame.
    Dropped,
}

impl Client {
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Client { ws }
    }

    pub async fn connect_with_origin(url: &str, origin: &str) -> Result<Client, WsError> {
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(request).await.map(|(ws, _)| Client { ws })
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_text(&serde_json::to_string(frame).unwrap()).await;
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

    pub async fn join(&mut self, nick: &str) -> serde_json::Value {
        self.send(&ClientFrame::Join { nick: Some(nick.into()), password: None, resume: None })
            .await;
        self.expect("welcome").await
    }

    /// The next text frame as JSON; panics on close or after [`WAIT`].
    pub async fn next(&mut self) -> serde_json::Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no frame in time")
                .expect("connection ended")
                .expect("websocket error");
            match msg {
                Message::Text(text) => {
                    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
                    // Every frame the server sends must parse as a ServerFrame.
                    serde_json::from_str::<ServerFrame>(&text)
                        .unwrap_or_else(|e| panic!("not a ServerFrame ({e}): {text}"));
                    return value;
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame of `kind`, skipping others (joined, typing, …).
    pub async fn expect(&mut self, kind: &str) -> serde_json::Value {
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

    /// Reads until the connection ends; returns the frames seen and how it ended.
    pub async fn until_closed(&mut self) -> (Vec<serde_json::Value>, Ending) {
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
