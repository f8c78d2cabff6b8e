//! The public listener: `/ws/{room}` upgrades, `/livez`, `/readyz`, `/metrics`.
//!
//! Everything a websocket can be refused for is decided here, before the
//! handshake, with an HTTP status and the contract's JSON error body:
//! a bad Origin (403), a bad room name (400), too many connections or a
//! shutdown under way (503), too many connections or upgrades from one
//! client address (429, [`crate::defences`]).

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use common::http_error::ErrorBody;
use common::names::RoomName;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use http_listener::{Acceptor, request};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::room::Room;
use crate::session;

type Body = Full<Bytes>;

/// Largest request body the public listener reads: it takes none (an
/// upgrade is a GET), so anything declared bigger is refused with 413 at once.
const MAX_BODY_BYTES: usize = 1024;

/// Serves the public listener until `stop` is cancelled, on the shared
/// hardened listener (`http_listener`): bounded connections, overall and per
/// address, until their websocket upgrade; a body deadline; health checks
/// answered when full.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, stop: CancellationToken) {
    let limits = shared.config.http.clone();
    let body_timeout = Duration::from_millis(limits.body_timeout_ms);
    let mut acceptor = Acceptor::new(listener, &limits, "public");
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = acceptor.accept() => accepted,
        };
        let (admission, connection) = (accepted.admission(), accepted.connection);
        let clock = accepted.stream.clock();
        let peer = accepted.peer.ip();
        let builder = http_listener::http1_builder(&limits, admission);
        let shared = shared.clone();
        let service = service_fn(move |mut req| {
            let refused = request::check(&mut req, admission, &clock, MAX_BODY_BYTES, body_timeout);
            let mut response = refused.unwrap_or_else(|| route(&shared, req, peer));
            if response.status() == StatusCode::METHOD_NOT_ALLOWED {
                response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            }
            async move { Ok::<_, Infallible>(response) }
        });
        // The connection counts until its upgrade (the websocket then runs
        // on a task of its own, bounded by `max_connections`).
        let conn = builder.serve_connection(TokioIo::new(accepted.stream), service).with_upgrades();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _connection = connection;
            tokio::select! {
                _ = conn => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    respond(status, "application/json", ErrorBody::new(code, message).to_json())
}

fn route(shared: &Arc<Shared>, req: Request<Incoming>, peer: IpAddr) -> Response<Body> {
    let path = req.uri().path();
    if let Some(room) = path.strip_prefix("/ws/") {
        let room = room.to_owned();
        return upgrade(shared, req, &room, peer);
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Use GET.");
    }
    match path {
        "/livez" => respond(StatusCode::OK, "text/plain; charset=utf-8", "ok\n"),
        "/readyz" if shared.is_ready() => {
            respond(StatusCode::OK, "text/plain; charset=utf-8", "ready\n")
        }
        "/readyz" => error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "Shutting down."),
        "/metrics" => respond(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.render(),
        ),
        _ => error(StatusCode::NOT_FOUND, "not_found", "Nothing here."),
    }
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn upgrade(
    shared: &Arc<Shared>,
    mut req: Request<Incoming>,
    raw_room: &str,
    peer: IpAddr,
) -> Response<Body> {
    let refused = |reason: &str| shared.metrics.upgrades_refused.with_label_values(&[reason]).inc();
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Use GET.");
    }
    let headers = req.headers();
    let key = headers.get(header::SEC_WEBSOCKET_KEY).cloned();
    let is_websocket = header_has_token(headers, header::UPGRADE, "websocket")
        && header_has_token(headers, header::CONNECTION, "upgrade");
    let (Some(key), true) = (key, is_websocket) else {
        refused("not_websocket");
        return error(StatusCode::BAD_REQUEST, "not_websocket", "This URL takes websockets only.");
    };
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        refused("not_websocket");
        let mut response = error(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported_version",
            "Websocket version 13 is required.",
        );
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return response;
    }
    // An Origin that is not ASCII text cannot name an allowed origin: it is
    // refused like a foreign one, not taken for a missing one.
    let origin = headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !origin_allowed(&shared.config.allowed_origins, origin, host) {
        refused("origin");
        return error(StatusCode::FORBIDDEN, "origin_not_allowed", "This origin may not connect.");
    }
    let decoded = percent_encoding::percent_decode_str(raw_room).decode_utf8();
    let name = match decoded.ok().as_deref().map(RoomName::parse) {
        Some(Ok(name)) => name,
        Some(Err(e)) => {
            refused("bad_room_name");
            return error(StatusCode::BAD_REQUEST, e.code(), &e.to_string());
        }
        None => {
            refused("bad_room_name");
            return error(StatusCode::BAD_REQUEST, "bad_room_name", "Room name is not UTF-8.");
        }
    };
    if !shared.is_ready() {
        refused("shutting_down");
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "Shutting down.");
    }
    // Per client address (behind `trusted_proxies`, the real client):
    // open websockets and upgrades per minute (crate::defences).
    let client_ip = shared.previews.client_ip(peer, req.headers());
    let ip_slot = match shared.defences.admit(client_ip, std::time::Instant::now()) {
        Ok(slot) => slot,
        Err(refused) => return too_many(&refused),
    };
    let Some(slot) = shared.reserve_connection() else {
        refused("capacity");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "This server is full; try again later.",
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let room = shared.registry.get(name.key()).ok_or_else(|| name.key().to_owned());
    let slots = (slot, ip_slot);
    match room {
        // A member following a move may be here before the room is (its
        // import not committed yet): it waits for that. A task of its own,
        // so that every other connection's task stays as small as it was.
        Err(key) if shared.moves.is_pending(&key) => {
            let task_shared = shared.clone();
            shared.connection_tasks.spawn(async move {
                let room = task_shared.moves.settled(&task_shared.registry, &key).await.ok_or(key);
                connection(task_shared, on_upgrade, room, client_ip, slots).await;
            });
        }
        room => {
            let task = connection(shared.clone(), on_upgrade, room, client_ip, slots);
            shared.connection_tasks.spawn(task);
        }
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

/// One websocket's task: the upgrade, then the session, holding `slots`
/// (its places in the connection limits) to the end.
async fn connection(
    shared: Arc<Shared>,
    on_upgrade: hyper::upgrade::OnUpgrade,
    room: Result<Arc<Room>, String>,
    client_ip: IpAddr,
    slots: impl Send + 'static,
) {
    let _slots = slots;
    let Ok(upgraded) = on_upgrade.await else {
        return;
    };
    let ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(shared.ws_config),
    )
    .await;
    session::serve(shared, room, ws, client_ip).await;
}

/// 429 for a client over a per-address limit, with `Retry-After` when the
/// wait is known.
fn too_many(refused: &crate::defences::UpgradeRefused) -> Response<Body> {
    let mut response = respond(StatusCode::TOO_MANY_REQUESTS, "application/json", refused.body());
    if let Some(wait) = refused.retry_after {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The host name of an origin (`https://Chat.example:8443` → `chat.example`)
/// or of a Host header (`chat.example:443` → `chat.example`).
fn host_name(authority: &str) -> String {
    let authority = authority.split_once("://").map_or(authority, |(_, rest)| rest);
    let authority = authority.split('/').next().unwrap_or("");
    let host = if authority.starts_with('[') {
        authority.split_inclusive(']').next().unwrap_or(authority)
    } else {
        authority.rsplit_once(':').map_or(authority, |(host, _)| host)
    };
    host.to_ascii_lowercase()
}

/// Browsers always send `Origin` on websockets; other clients (bots, the load
/// test) may not, and are not the cross-site threat the check is for.
/// Configured origins must match exactly; with none configured, the page's
/// host must be the backend's host (any port: aux-srv serves the page).
pub fn origin_allowed(allowed: &[String], origin: Option<&str>, host: Option<&str>) -> bool {
    let Some(origin) = origin else { return true };
    let origin = origin.trim_end_matches('/');
    if !allowed.is_empty() {
        return allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin));
    }
    if !(origin.starts_with("http://") || origin.starts_with("https://")) {
        return false;
    }
    host.is_some_and(|host| host_name(origin) == host_name(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let none: Vec<String> = Vec::new();
        assert!(origin_allowed(&none, None, Some("x:9001")), "non-browser clients");
        assert!(origin_allowed(&none, Some("http://127.0.0.1:8080"), Some("127.0.0.1:9001")));
        assert!(origin_allowed(&none, Some("https://Chat.Example"), Some("chat.example")));
        assert!(origin_allowed(&none, Some("http://[::1]:8080"), Some("[::1]:9001")));
        assert!(!origin_allowed(&none, Some("http://evil.example"), Some("chat.example")));
        assert!(!origin_allowed(&none, Some("http://chat.example.evil"), Some("chat.example")));
        assert!(!origin_allowed(&none, Some("null"), Some("chat.example")));
        assert!(!origin_allowed(&none, Some("http://chat.example"), None));

        let list = vec!["https://chat.example".to_owned()];
        assert!(origin_allowed(&list, Some("https://chat.example"), Some("b1.internal")));
        assert!(origin_allowed(&list, Some("https://CHAT.example/"), Some("b1.internal")));
        assert!(!origin_allowed(&list, Some("http://chat.example"), Some("chat.example")));
        assert!(!origin_allowed(&list, Some("https://chat.example:444"), Some("chat.example")));
    }

    #[test]
    fn host_names() {
        assert_eq!(host_name("https://a.b:1/x"), "a.b");
        assert_eq!(host_name("A.B"), "a.b");
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("http://[::1]"), "[::1]");
    }
}
