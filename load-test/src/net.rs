//! Sockets at scale: the open-file limit, the ephemeral port range, source
//! addresses on the loopback network, and clients (websocket, HTTP) bound
//! to a chosen source address ([`KeepAlive`], the `aux` scenario's HTTP
//! client, is in `keep_alive.rs`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

pub use crate::keep_alive::KeepAlive;

pub type Ws = WebSocketStream<TcpStream>;

/// Sockets a process keeps for itself (HTTP pools, stdio, the runtime).
pub const RESERVED_FDS: u64 = 200;
/// Deadline of one HTTP request or websocket handshake.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// Raises the soft open-file limit to the hard one; returns the limit now
/// in force.
pub fn raise_nofile_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

/// Ports in the kernel's ephemeral range: how many connections one source
/// address can hold.
pub fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().filter_map(|p| p.parse::<u64>().ok());
            Some((it.next()?, it.next()?))
        })
        .map_or(28_232, |(low, high)| high.saturating_sub(low) + 1)
}

/// The `i`-th source address: 127.1.0.1, 127.1.0.2, … (all on `lo`).
pub fn source_addr(i: usize) -> Ipv4Addr {
    let i = i % (250 * 250);
    Ipv4Addr::new(127, 1, (i / 250) as u8, (i % 250) as u8 + 1)
}

/// Source addresses needed for `connections`, keeping each address's
/// ephemeral ports at most 1/8 used: the kernel finds a free port by trying
/// them in turn, so a crowded address makes every connect slow (at 18,000
/// connections from one address, two thirds of the machine's CPU went to
/// `__inet_hash_connect`).
pub fn sources_needed(connections: usize) -> usize {
    let per_source = (ephemeral_ports() / 8).max(1) as usize;
    connections.div_ceil(per_source).max(1)
}

/// Checks that a plan fits the limits of this machine; the error says what
/// to change.
pub fn check_capacity(connections: usize, workers: usize, sources: usize) -> anyhow::Result<()> {
    let limit = raise_nofile_limit();
    let per_worker = connections.div_ceil(workers.max(1)) as u64;
    let usable = limit.saturating_sub(RESERVED_FDS);
    if per_worker > usable {
        let need = (connections as u64).div_ceil(usable.max(1));
        bail!(
            "{connections} connections over {workers} worker(s) is {per_worker} sockets per process, \
             but the open-file limit is {limit} (hard limit; {usable} usable): use --workers {need} or more"
        );
    }
    let ports = ephemeral_ports() as usize;
    if connections > sources * ports {
        bail!(
            "{connections} connections from {sources} source address(es) exceed the {ports} \
             ephemeral ports each has: use --sources {} or more",
            connections.div_ceil(ports)
        );
    }
    Ok(())
}

/// Where a `ws://host:port/path` URL points.
pub fn ws_target(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| anyhow!("only ws:// URLs can be load-tested here, not `{url}`"))?;
    let authority = rest.split('/').next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h.trim_matches(['[', ']']).to_owned(), p.parse().context("bad port in ws_url")?)
        }
        _ => (authority.to_owned(), 80),
    };
    Ok((host, port))
}

/// The HTTP base (`http://host:port`) of the server behind a websocket URL.
pub fn http_base_of_ws(url: &str) -> Option<String> {
    let rest = url.strip_prefix("ws://")?;
    Some(format!("http://{}", rest.split('/').next()?))
}

/// The client side's websocket buffers: small, since a worker holds
/// thousands of sockets.
fn client_ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0)
}

/// Opens a websocket from `source` (any local address when `None`).
pub async fn connect_ws(
    url: &str,
    addr: SocketAddr,
    source: Option<Ipv4Addr>,
) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4().context("socket")?;
    if let Some(ip) = source {
        // Without this, bind(ip:0) picks a port by scanning every port bound
        // on that address (quadratic over thousands of sockets); with it the
        // port is chosen at connect time, per destination.
        let _ = nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::IpBindAddressNoPort,
            &true,
        );
        socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).with_context(|| format!("bind {ip}"))?;
    }
    let stream = tokio::time::timeout(REQUEST_TIMEOUT, socket.connect(addr))
        .await
        .map_err(|_| anyhow!("connect timed out"))?
        .context("connect")?;
    stream.set_nodelay(true)?;
    let (ws, _) = tokio::time::timeout(
        REQUEST_TIMEOUT,
        tokio_tungstenite::client_async_with_config(url, stream, Some(client_ws_config())),
    )
    .await
    .map_err(|_| anyhow!("websocket handshake timed out"))?
    .context("websocket handshake")?;
    Ok(ws)
}

/// Resolves a host once (the load test talks to a handful of servers).
pub async fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    let mut addrs = tokio::net::lookup_host((host, port)).await?;
    addrs
        .find(|a| a.is_ipv4())
        .ok_or_else(|| anyhow!("{host}: no IPv4 address (sources are 127.x addresses)"))
}

/// The answer of `PUT`/`GET /api/rooms/{room}`.
#[derive(Debug, Clone, Deserialize)]
pub struct RoomAnswer {
    pub name: String,
    pub ws_url: String,
    #[serde(default)]
    pub created: bool,
}

/// An HTTP error: status and the error body's code.
#[derive(Debug, Clone)]
pub struct HttpError {
    pub status: u16,
    pub code: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.code)
    }
}

/// A keep-alive HTTP/1 client bound to one source address.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new(source: Option<Ipv4Addr>, max_idle: usize) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_local_address(source.map(IpAddr::V4));
        connector.set_connect_timeout(Some(REQUEST_TIMEOUT));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(max_idle)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Http { client }
    }

    /// One request; the body of any status comes back.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: &'static str,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let req = Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))?;
        let work = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, work)
            .await
            .map_err(|_| anyhow!("request timed out"))?
    }

    /// One request with `Authorization: Bearer <token>` (the admin API).
    pub async fn call_with_auth(
        &self,
        method: Method,
        url: &str,
        token: &str,
        body: String,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let req = Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .body(Full::new(Bytes::from(body)))?;
        // An evacuation answers when it is done: a longer deadline.
        let work = async {
            let resp = self.client.request(req).await?;
            let status = resp.status();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT * 8, work)
            .await
            .map_err(|_| anyhow!("request timed out"))?
    }

    /// `PUT /api/rooms/{room}` (create-or-open) or `GET` (look up).
    pub async fn room(
        &self,
        aux: &str,
        method: Method,
        name: &str,
    ) -> anyhow::Result<Result<RoomAnswer, HttpError>> {
        let url = format!("{}/api/rooms/{name}", aux.trim_end_matches('/'));
        let body = if method == Method::PUT { "{}" } else { "" };
        let (status, bytes) = self.call(method, &url, body).await?;
        if status.is_success() {
            return Ok(Ok(serde_json::from_slice(&bytes).context("room answer")?));
        }
        let code = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".into());
        Ok(Err(HttpError { status: status.as_u16(), code }))
    }

    /// A service's `/metrics`, summed by metric name over labels.
    pub async fn scrape(&self, base: &str) -> anyhow::Result<HashMap<String, f64>> {
        let url = format!("{}/metrics", base.trim_end_matches('/'));
        let (status, body) = self.call(Method::GET, &url, "").await?;
        if !status.is_success() {
            bail!("{url}: HTTP {status}");
        }
        Ok(parse_metrics(&String::from_utf8_lossy(&body)))
    }
}

/// Prometheus text → value per metric name (labelled samples summed).
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        *out.entry(line[..name_end].to_owned()).or_insert(0.0) += value;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(ws_target("ws://127.0.0.1:9001/ws/x").unwrap(), ("127.0.0.1".into(), 9001));
        assert_eq!(ws_target("ws://localhost/ws/x").unwrap(), ("localhost".into(), 80));
        assert!(ws_target("wss://a/ws/x").is_err());
        assert_eq!(http_base_of_ws("ws://127.0.0.1:9001/ws/x").unwrap(), "http://127.0.0.1:9001");
    }

    #[test]
    fn source_addresses_are_distinct_loopback() {
        assert_eq!(source_addr(0), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(source_addr(249), Ipv4Addr::new(127, 1, 0, 250));
        assert_eq!(source_addr(250), Ipv4Addr::new(127, 1, 1, 1));
        assert!(sources_needed(1) == 1 && sources_needed(100_000) >= 4);
    }

    #[test]
    fn capacity_errors_say_what_to_change() {
        let e = check_capacity(10_000_000, 1, 1).unwrap_err().to_string();
        assert!(e.contains("--workers"), "{e}");
        let e = check_capacity(1_000_000, 10_000, 1).unwrap_err().to_string();
        assert!(e.contains("--sources"), "{e}");
        check_capacity(100, 1, 1).unwrap();
    }

    #[test]
    fn metrics_text() {
        let m = parse_metrics(
            "# HELP x\nprocess_cpu_seconds_total 1.5\nd_total{reason=\"a\"} 2\nd_total{reason=\"b\"} 3\n",
        );
        assert_eq!(m["process_cpu_seconds_total"], 1.5);
        assert_eq!(m["d_total"], 5.0);
    }
}
