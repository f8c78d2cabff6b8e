//! One backend and aux-srv with a TCP relay in front of the backend, for
//! clients that must live through a dropped connection (the terminal
//! client's tests): [`Relay::drop_all`] cuts every connection through it at
//! once, as a network failure would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

use crate::aux::TestAux;
use crate::backend::TestBackend;
use crate::ws::WsClient;

/// A backend and aux-srv; with `relayed`, aux-srv hands out the address of
/// a [`Relay`] in front of the backend instead of the backend's own.
pub struct RelayFleet {
    pub backend: SocketAddr,
    pub aux: SocketAddr,
    pub relay: Option<Relay>,
    // Dropped in this order: aux-srv stops before its backend.
    _aux: TestAux,
    _backend: TestBackend,
}

impl RelayFleet {
    pub async fn start(relayed: bool) -> RelayFleet {
        let backend = crate::start_backend(crate::backend_config("b1")).await;
        let relay = if relayed { Some(Relay::start(backend.public).await) } else { None };
        let mut config = crate::aux_config(&[&backend]);
        config.files_url = "http://127.0.0.1:9".into();
        if let Some(relay) = &relay {
            config.backends[0].public_url = Some(format!("ws://{}", relay.addr));
        }
        let aux = crate::start_aux_ready(config).await;
        RelayFleet { backend: backend.public, aux: aux.public, relay, _aux: aux, _backend: backend }
    }

    /// One HTTP/1.1 request to aux-srv; the whole answer as text.
    pub async fn http(&self, method: &str, path: &str, body: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut tcp) = TcpStream::connect(self.aux).await else { return String::new() };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.aux,
            body.len()
        );
        let _ = tcp.write_all(request.as_bytes()).await;
        let mut answer = String::new();
        let _ = tcp.read_to_string(&mut answer).await;
        answer
    }

    /// The room's link as people share it.
    pub fn room_url(&self, room: &str) -> String {
        format!("http://{}/{room}", self.aux)
    }

    /// A member connected straight to the backend (not through the relay).
    pub async fn member(&self, room: &str, nick: &str) -> (WsClient, Value) {
        let created = self.http("PUT", &format!("/api/rooms/{room}"), "{}").await;
        assert!(created.starts_with("HTTP/1.1 20"), "{created}");
        WsClient::joined(&format!("ws://{}/ws/{room}", self.backend), nick).await
    }
}

/// A TCP relay to `target`; [`Relay::drop_all`] cuts every connection
/// through it at once, as a network failure would.
pub struct Relay {
    pub addr: SocketAddr,
    links: Arc<Mutex<Vec<AbortHandle>>>,
    accept: JoinHandle<()>,
}

impl Relay {
    pub async fn start(target: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let links: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let held = links.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                held.lock().unwrap().push(link.abort_handle());
            }
        });
        Relay { addr, links, accept }
    }

    /// Drops every open connection (both sockets close without a word).
    pub fn drop_all(&self) -> usize {
        let links: Vec<AbortHandle> = self.links.lock().unwrap().drain(..).collect();
        let open = links.iter().filter(|l| !l.is_finished()).count();
        links.iter().for_each(AbortHandle::abort);
        open
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.drop_all();
    }
}
