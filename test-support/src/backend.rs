//! A real backend on ephemeral ports of 127.0.0.1, started through
//! `backend::run` as its binary does, and stopped like SIGTERM would.

use std::net::SocketAddr;
use std::time::Duration;

use common::config::{BackendConfig, BackendEntry};
use common::control::{RequestBody, ResponseBody, RoomInfo};
use control_client::ControlClient;
use tokio::net::TcpListener;

use crate::running::Running;
use crate::ws::WsClient;
use crate::{TOKEN, WAIT, eventually, metrics, raw_http};

/// Defaults for tests: the contract's limits, the test control token. The
/// abuse defences are off (tests act as many users from one address, send
/// alike texts quickly, try many passwords); tests of them turn them on
/// ([`with_defences`], `password_attempts`). No evacuation on shutdown: a
/// stopped test backend loses its rooms, as tests of restarts expect (tests
/// of moves turn it on).
pub fn test_config() -> BackendConfig {
    BackendConfig {
        control_token: TOKEN.into(),
        defences: common::config::Defences::off(),
        password_attempts: common::config::PasswordAttempts::off(),
        evacuate_on_shutdown: false,
        ..BackendConfig::default()
    }
}

/// [`quick`] with these `[defences]`.
pub fn with_defences(defences: common::config::Defences) -> BackendConfig {
    BackendConfig { defences, ..quick() }
}

/// [`test_config`] with rate limits out of the way, for tests not about them.
pub fn quick() -> BackendConfig {
    BackendConfig { rate_per_sec: 100_000, rate_burst: 100_000, ..test_config() }
}

/// [`test_config`] for a backend of a fleet: its id, a short shutdown grace.
pub fn backend_config(id: &str) -> BackendConfig {
    BackendConfig { id: id.into(), shutdown_grace_ms: 200, ..test_config() }
}

pub struct TestBackend {
    pub id: String,
    pub public: SocketAddr,
    pub control: SocketAddr,
    pub config: BackendConfig,
    running: Running,
}

/// Starts a backend with `config` on two fresh ports.
pub async fn start_backend(config: BackendConfig) -> TestBackend {
    let listeners = backend::Listeners::bind_loopback().await.unwrap();
    launch(listeners, config)
}

fn launch(listeners: backend::Listeners, config: BackendConfig) -> TestBackend {
    let config = listeners.configure(config).unwrap();
    let running = Running::spawn(|stop| backend::run(listeners, config.clone(), stop));
    TestBackend {
        id: config.id.clone(),
        public: config.listen,
        control: config.control_listen,
        config,
        running,
    }
}

/// Binds `addr` again once the previous owner let go of it.
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
    /// Its line in aux-srv's `backends` list.
    pub fn entry(&self) -> BackendEntry {
        BackendEntry {
            id: self.id.clone(),
            control_addr: self.control.to_string(),
            public_url: None,
        }
    }

    /// A control client holding one connection at a time.
    pub fn control(&self) -> ControlClient {
        ControlClient::new(self.control.to_string(), TOKEN, WAIT, 1)
    }

    /// A control client with a pool of two, as aux-srv holds.
    pub fn client(&self) -> ControlClient {
        ControlClient::new(self.control.to_string(), TOKEN, WAIT, 2)
    }

    pub async fn request(&self, body: RequestBody) -> ResponseBody {
        self.client().request(body).await.unwrap()
    }

    pub async fn create_room(&self, name: &str) -> RoomInfo {
        self.create_room_with(name, None).await
    }

    pub async fn create_room_with(&self, name: &str, password_hash: Option<String>) -> RoomInfo {
        match self
            .request(RequestBody::CreateRoom {
                name: name.into(),
                password_hash,
                owner_key_hash: None,
            })
            .await
        {
            ResponseBody::Created { room, .. } => room,
            other => panic!("create failed: {other:?}"),
        }
    }

    /// Creates a room behind aux-srv's back.
    pub async fn create_directly(&self, name: &str) -> RoomInfo {
        self.create_room(name).await
    }

    /// What this backend itself says about a room.
    pub async fn lookup(&self, name: &str) -> Option<RoomInfo> {
        match self.request(RequestBody::LookupRoom { name: name.into() }).await {
            ResponseBody::Room(room) => room,
            other => panic!("lookup failed: {other:?}"),
        }
    }

    /// Deletes a room behind aux-srv's back (as an expiry would).
    pub async fn delete_directly(&self, name: &str) -> bool {
        match self.request(RequestBody::DeleteRoom { name: name.into() }).await {
            ResponseBody::Deleted { existed } => existed,
            other => panic!("delete failed: {other:?}"),
        }
    }

    /// `ws://127.0.0.1:P`, what a room answer's `ws_url` starts with.
    pub fn ws_base(&self) -> String {
        format!("ws://{}", self.public)
    }

    pub fn ws_url(&self, room: &str) -> String {
        format!("{}/ws/{room}", self.ws_base())
    }

    pub async fn connect(&self, room: &str) -> WsClient {
        WsClient::connect(&self.ws_url(room)).await
    }

    /// A client whose socket's receive buffer is `bytes`: one that stops
    /// reading soon fills the window the server may send into.
    pub async fn connect_with_receive_buffer(&self, room: &str, bytes: u32) -> WsClient {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(bytes).unwrap();
        let stream = socket.connect(self.public).await.unwrap();
        WsClient::over(&self.ws_url(room), stream).await
    }

    /// A member that has joined with `nick`; returns the welcome too.
    pub async fn member(&self, room: &str, nick: &str) -> (WsClient, serde_json::Value) {
        WsClient::joined(&self.ws_url(room), nick).await
    }

    /// The value of one metric sample line (0 when absent), e.g.
    /// `instantchat_backend_disconnects_total{reason="flooding"}`.
    pub async fn metric(&self, sample: &str) -> f64 {
        metrics::metric_of(&raw_http::raw_get(self.public, "/metrics").await.text(), sample)
    }

    /// Waits until the metric reaches `value` (metrics are updated just after
    /// the events a client can see).
    pub async fn await_metric(&self, sample: &str, value: f64) {
        eventually(&format!("{sample} is {value}"), async || self.metric(sample).await == value)
            .await;
    }

    /// Starts the shutdown, as SIGTERM would, without waiting for it.
    pub fn trigger_shutdown(&mut self) {
        self.running.trigger();
    }

    /// Triggers shutdown and waits for `run` to return.
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        self.running.finish().await
    }

    /// Kills it: all its rooms are gone, its ports refuse connections.
    pub async fn stop(&mut self) {
        tokio::time::timeout(WAIT, self.shutdown()).await.expect("backend stops").unwrap();
    }

    /// Starts a new, empty backend process on the same addresses.
    pub async fn restart_empty(&mut self) {
        self.stop().await;
        let public = bind_again(self.public).await;
        let control = bind_again(self.control).await;
        *self = launch(backend::Listeners { public, control }, self.config.clone());
    }
}
