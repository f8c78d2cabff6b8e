//! A real aux-srv on ephemeral ports of 127.0.0.1, in front of test
//! backends, and the calls tests make to it.

use std::net::SocketAddr;

use common::config::{AuxConfig, PlacementBudgets};
use http::Method;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::backend::TestBackend;
use crate::http::{Reply, call, get};
use crate::running::Running;
use crate::{ADMIN_TOKEN, TOKEN, WAIT, eventually, metrics};

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
        password_attempts: common::config::PasswordAttempts::off(),
        placement: PlacementBudgets {
            cpu_cores: 1.0e9,
            memory_bytes: u64::MAX / 2,
            ..PlacementBudgets::default()
        },
        ..AuxConfig::default()
    }
}

pub struct TestAux {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub config: AuxConfig,
    running: Running,
}

/// Starts aux-srv with `config` on two fresh ports (its listen addresses
/// are replaced by them).
pub async fn start_aux(config: AuxConfig) -> TestAux {
    let public = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (public_addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
    let config = AuxConfig { listen: public_addr, admin_listen: admin_addr, ..config };
    let listeners = aux_srv::Listeners { public, admin };
    let running = Running::spawn(|stop| aux_srv::run(listeners, config.clone(), stop));
    TestAux { public: public_addr, admin: admin_addr, config, running }
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
        tokio::time::timeout(WAIT, self.running.finish()).await.expect("aux-srv stops").unwrap();
    }

    pub async fn await_ready(&self) {
        let url = self.url("/readyz");
        eventually("aux-srv is ready", async || get(&url).await.status == 200).await;
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
        eventually(&format!("backend {id} is {state}"), async || {
            self.admin_backend(id).await["state"] == state
        })
        .await;
    }

    /// One sample of aux-srv's /metrics, e.g. `instantchat_aux_rooms_known`.
    pub async fn metric(&self, sample: &str) -> f64 {
        metrics::metric_of(&get(&self.url("/metrics")).await.body, sample)
    }
}

/// Control requests of `kind` aux-srv sent, whatever the answer.
pub async fn control_requests(aux: &TestAux, kind: &str) -> f64 {
    let text = get(&aux.url("/metrics")).await.body;
    ["ok", "error", "unreachable", "uncertain"]
        .iter()
        .map(|result| {
            metrics::metric_of(
                &text,
                &format!(
                    "instantchat_aux_control_requests_total{{kind=\"{kind}\",result=\"{result}\"}}"
                ),
            )
        })
        .sum()
}
