//! Real backends and a real aux-srv on ephemeral ports, and real clients
//! (hyper-util for HTTP, tokio-tungstenite for websockets).
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use backend::control_client::ControlClient;
use bytes::Bytes;
use common::config::{AuxConfig, BackendConfig, BackendEntry, PlacementBudgets};
use common::control::{RequestBody, ResponseBody, RoomInfo};
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TOKEN: &str = "test-control-token-0123456789";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
/// Longest any awaited event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(10);

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

/// Polls `check` until it holds (for states no event announces).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- backends

pub struct TestBackend {
    pub id: String,
    pub public: SocketAddr,
    pub control: SocketAddr,
    pub config: BackendConfig,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

pub fn backend_config(id: &str) -> BackendConfig {
    BackendConfig {
        id: id.into(),
        control_token: TOKEN.into(),
        shutdown_grace_ms: 200,
        ..BackendConfig::default()
    }
}

pub async fn start_backend(config: BackendConfig) -> TestBackend {
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control = TcpListener::bind("127.0.0.1:0").await.unwrap();
    launch_backend(public, control, config)
}

fn launch_backend(public: TcpListener, control: TcpListener, config: BackendConfig) -> TestBackend {
    let listeners = backend::Listeners { public, control };
    let config = listeners.configure(config).unwrap();
    let (public_addr, control_addr) = (config.listen, config.control_listen);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(backend::run(listeners, config.clone(), async {
        let _ = stopped.await;
    }));
    TestBackend {
        id: config.id.clone(),
        public: public_addr,
        control: control_addr,
        config,
        stop: Some(stop),
        task: Some(task),
    }
}

async fn bind_again(addr: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "cannot bind {addr} again: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

impl TestBackend {
    pub fn entry(&self) -> BackendEntry {
        BackendEntry {
            id: self.id.clone(),
            control_addr: self.control.to_string(),
            public_url: None,
        }
    }

    /// Kills it: all its rooms are gone, its ports refuse connections.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.expect("backend stops").unwrap().unwrap();
        }
    }

    /// Starts a new, empty backend process on the same addresses.
    pub async fn restart_empty(&mut self) {
        self.stop().await;
        let public = bind_again(self.public).await;
        let control = bind_again(self.control).await;
        *self = launch_backend(public, control, self.config.clone());
    }

    pub fn client(&self) -> ControlClient {
        ControlClient::new(self.control.to_string(), TOKEN, WAIT, 2)
    }

    /// What this backend itself says about a room.
    pub async fn lookup(&self, name: &str) -> Option<RoomInfo> {
        match self.client().request(RequestBody::LookupRoom { name: name.into() }).await.unwrap() {
            ResponseBody::Room(room) => room,
            other => panic!("lookup failed: {other:?}"),
        }
    }

    /// Creates a room behind aux-srv's back.
    pub async fn create_directly(&self, name: &str) -> RoomInfo {
        let body = RequestBody::CreateRoom { name: name.into(), password_hash: None };
        match self.client().request(body).await.unwrap() {
            ResponseBody::Created { room, .. } => room,
            other => panic!("create failed: {other:?}"),
        }
    }

    /// Deletes a room behind aux-srv's back (as an expiry would).
    pub async fn delete_directly(&self, name: &str) -> bool {
        match self.client().request(RequestBody::DeleteRoom { name: name.into() }).await.unwrap() {
            ResponseBody::Deleted { existed } => existed,
            other => panic!("delete failed: {other:?}"),
        }
    }

    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.public)
    }
}

// ------------------------------------------------------------------ aux-srv

pub struct TestAux {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub config: AuxConfig,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Fast polls, generous limits; the CPU and memory budgets are made huge
/// because in-process backends all report the same (test) process's CPU
/// and memory, which would only add noise to placement.
pub fn aux_config(backends: &[&TestBackend]) -> AuxConfig {
    AuxConfig {
        backends: backends.iter().map(|b| b.entry()).collect(),
        control_token: TOKEN.into(),
        admin_token: ADMIN_TOKEN.into(),
        files_url: "http://127.0.0.1:8085".into(),
        web_root: concat!(env!("CARGO_MANIFEST_DIR"), "/../web").into(),
        poll_interval_ms: 100,
        backend_retry_max_ms: 300,
        control_timeout_ms: 2_000,
        rebuild_timeout_ms: 5_000,
        room_create_per_minute: 100_000,
        room_create_burst: 10_000,
        http_post_per_minute: 100_000,
        http_post_burst: 10_000,
        shutdown_drain_ms: 0,
        shutdown_grace_ms: 1_000,
        placement: PlacementBudgets {
            cpu_cores: 1.0e9,
            memory_bytes: u64::MAX / 2,
            ..PlacementBudgets::default()
        },
        ..AuxConfig::default()
    }
}

pub async fn start_aux(config: AuxConfig) -> TestAux {
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (public_addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
    let config = AuxConfig { listen: public_addr, admin_listen: admin_addr, ..config };
    let (stop, stopped) = oneshot::channel::<()>();
    let task =
        tokio::spawn(aux_srv::run(aux_srv::Listeners { public, admin }, config.clone(), async {
            let _ = stopped.await;
        }));
    TestAux { public: public_addr, admin: admin_addr, config, stop: Some(stop), task: Some(task) }
}

/// Starts aux-srv and waits until it is ready (its start-up sweep is done).
pub async fn start_aux_ready(config: AuxConfig) -> TestAux {
    let aux = start_aux(config).await;
    aux.await_ready().await;
    aux
}

impl TestAux {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Shuts it down (as SIGTERM would) and waits until `run` returned.
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(WAIT, task).await.expect("aux-srv stops").unwrap().unwrap();
        }
    }

    pub async fn await_ready(&self) {
        let url = self.url("/readyz");
        eventually("aux-srv is ready", || {
            let url = url.clone();
            async move { get(&url).await.status == 200 }
        })
        .await;
    }

    pub async fn put_room(&self, name: &str) -> Reply {
        call(Method::PUT, &self.url(&format!("/api/rooms/{name}")), &[], Some("{}".into())).await
    }

    pub async fn get_room(&self, name: &str) -> Reply {
        get(&self.url(&format!("/api/rooms/{name}"))).await
    }

    /// `POST /api/rooms/{room}/messages` as the nick `bot`.
    pub async fn post_message(&self, room: &str, text: &str) -> Reply {
        let body = serde_json::json!({"nick": "bot", "text": text}).to_string();
        call(Method::POST, &self.url(&format!("/api/rooms/{room}/messages")), &[], Some(body)).await
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        call(
            method,
            &self.admin_url(path),
            &[("authorization", &auth)],
            body.map(|b| b.to_string()),
        )
        .await
    }

    /// The backend's entry in the admin API's list.
    pub async fn admin_backend(&self, id: &str) -> Value {
        let list = self.admin(Method::GET, "/admin/backends", None).await.json();
        list["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["id"] == id)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub async fn await_backend_state(&self, id: &str, state: &str) {
        eventually(&format!("backend {id} is {state}"), || async move {
            self.admin_backend(id).await["state"] == state
        })
        .await;
    }

    /// One sample of aux-srv's /metrics, e.g. `instantchat_aux_rooms_known`.
    pub async fn metric(&self, sample: &str) -> f64 {
        metric_of(&get(&self.url("/metrics")).await.body, sample)
    }
}

/// Control requests of `kind` aux-srv sent, whatever the answer.
pub async fn control_requests(aux: &TestAux, kind: &str) -> f64 {
    let text = get(&aux.url("/metrics")).await.body;
    ["ok", "error", "unreachable", "uncertain"]
        .iter()
        .map(|result| {
            metric_of(
                &text,
                &format!(
                    "instantchat_aux_control_requests_total{{kind=\"{kind}\",result=\"{result}\"}}"
                ),
            )
        })
        .sum()
}

pub fn metric_of(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

// --------------------------------------------------------------------- HTTP

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub async fn call(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if body.is_some() && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(Full::new(Bytes::from(body.unwrap_or_default()))).unwrap();
    let resp =
        tokio::time::timeout(WAIT, client().request(req)).await.expect("answer in time").unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
}

pub async fn get(url: &str) -> Reply {
    call(Method::GET, url, &[], None).await
}

/// The backend a room answer points at (`ws://127.0.0.1:P/ws/…` → that
/// backend's `ws://127.0.0.1:P`).
pub fn ws_base_of(answer: &Value) -> String {
    let url = answer["ws_url"].as_str().unwrap();
    url[..url.find("/ws/").unwrap()].to_owned()
}

// --------------------------------------------------------------- websockets

pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(url: &str) -> Ws {
        let (stream, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect in time")
            .unwrap_or_else(|e| panic!("websocket to {url}: {e}"));
        Ws { stream }
    }

    pub async fn send(&mut self, frame: Value) {
        self.stream.send(Message::text(frame.to_string())).await.unwrap();
    }

    /// The next JSON frame; panics on close or timeout.
    pub async fn next(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a frame in time")
                .expect("connection open")
                .expect("no websocket error");
            match msg {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("unexpected websocket message: {other:?}"),
            }
        }
    }

    /// The next frame of `kind`, skipping others (joins, typing…).
    pub async fn next_of(&mut self, kind: &str) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// Joins and returns the `welcome` frame.
    pub async fn join(url: &str, nick: &str) -> (Ws, Value) {
        let mut ws = Ws::connect(url).await;
        ws.send(json!({"type": "join", "nick": nick})).await;
        let welcome = ws.next_of("welcome").await;
        (ws, welcome)
    }
}
