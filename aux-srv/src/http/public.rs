//! The public listener's routes. Every request is counted under the route it
//! matched (`/api/rooms/{room}`), never its raw path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::app::App;
use crate::http::respond::{self, ApiError, Resp};
use crate::http::static_files;
use crate::http::{api, owner};

pub async fn handle(app: Arc<App>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let started = Instant::now();
    let (route, resp) = route(&app, req, peer).await;
    app.metrics.http_request(route, resp.status().as_u16(), started.elapsed().as_secs_f64());
    resp
}

async fn route(app: &Arc<App>, req: Request<Incoming>, peer: SocketAddr) -> (&'static str, Resp) {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    let forwarded = req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
    let ip = app.trusted_proxies.client_ip(peer.ip(), forwarded);
    let result = match segments.as_slice() {
        [""] if get => return ("/", page(app, "index.html", &req).await),
        ["livez"] if get => return ("/livez", respond::plain(StatusCode::OK, "ok\n")),
        ["readyz"] if get => return ("/readyz", readyz(app)),
        ["metrics"] if get => {
            let mut resp = respond::with_body(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                app.metrics.render(),
            );
            resp.headers_mut()
                .insert(http::header::CACHE_CONTROL, http::HeaderValue::from_static("no-store"));
            return ("/metrics", resp);
        }
        ["api", "rooms"] => (
            "/api/rooms",
            match method {
                Method::POST => api::create_only(app, req, ip).await,
                _ => Err(ApiError::method_not_allowed()),
            },
        ),
        ["api", "rooms", room, rest @ ..] => {
            let call = api::RoomRequest { raw: room.to_string(), ip, req };
            match room_api(app, call, rest).await {
                Some(routed) => routed,
                None => ("/api/other", Err(ApiError::not_found())),
            }
        }
        ["api", ..] => ("/api/other", Err(ApiError::not_found())),
        ["static", rest @ ..] if get => {
            let decoded: Option<Vec<String>> =
                rest.iter().map(|s| respond::percent_decode(s)).collect();
            let decoded = decoded.unwrap_or_default();
            let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
            let resp = match static_files::resolve(&app.config.web_root, &parts) {
                Some(path) => static_files::serve(&path, req.headers()).await,
                None => None,
            };
            ("/static/{file}", resp.ok_or_else(ApiError::not_found))
        }
        [segment] if get => {
            let segment = respond::percent_decode(segment).unwrap_or_default();
            if let Some(path) = static_files::resolve(&app.config.web_root, &[segment.as_str()]) {
                if let Some(resp) = static_files::serve(&path, req.headers()).await {
                    return ("/{file}", resp);
                }
            }
            match common::names::RoomName::parse(&segment) {
                Ok(_) => return ("/{room}", page(app, "room.html", &req).await),
                Err(_) => ("other", Err(ApiError::not_found())),
            }
        }
        _ if !get => ("other", Err(ApiError::method_not_allowed())),
        _ => ("other", Err(ApiError::not_found())),
    };
    let (route, result) = result;
    let mut resp = result.unwrap_or_else(ApiError::into_response);
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = match route {
            "/api/rooms" => "POST",
            "/api/rooms/{room}" => "GET, HEAD, PUT",
            "/api/rooms/{room}/messages" => "GET, HEAD, POST",
            "/api/rooms/{room}/topic" => "PUT",
            "/api/rooms/{room}/messages/{seq}" => "DELETE",
            _ => "GET, HEAD",
        };
        resp.headers_mut().insert(http::header::ALLOW, http::HeaderValue::from_static(allow));
    }
    (route, resp)
}

/// `/api/rooms/{room}/…`: the route `rest` names and its answer, `None`
/// when it names none.
async fn room_api(
    app: &App,
    call: api::RoomRequest,
    rest: &[&str],
) -> Option<(&'static str, Result<Resp, ApiError>)> {
    let route = match rest {
        [] => "/api/rooms/{room}",
        ["messages"] => "/api/rooms/{room}/messages",
        ["topic"] => "/api/rooms/{room}/topic",
        ["messages", _] => "/api/rooms/{room}/messages/{seq}",
        _ => return None,
    };
    let method = call.req.method().clone();
    let result = match (rest, method) {
        ([], Method::GET | Method::HEAD) => api::get_room(app, &call.raw).await,
        ([], Method::PUT) => api::open_or_create(app, call).await,
        (["messages"], Method::GET | Method::HEAD) => api::read_messages(app, call).await,
        (["messages"], Method::POST) => api::post_message(app, call).await,
        (["topic"], Method::PUT) => owner::set_topic(app, call).await,
        (["messages", seq], Method::DELETE) => owner::delete_message(app, call, seq).await,
        _ => Err(ApiError::method_not_allowed()),
    };
    Some((route, result))
}

async fn page(app: &App, file: &str, req: &Request<Incoming>) -> Resp {
    let path = std::path::Path::new(&app.config.web_root).join(file);
    match static_files::serve(&path, req.headers()).await {
        Some(mut resp) => {
            if let Ok(csp) = http::HeaderValue::from_str(&image_policy(&app.config.files_url)) {
                resp.headers_mut().insert(http::header::CONTENT_SECURITY_POLICY, csp);
            }
            resp
        }
        None => {
            tracing::warn!(file = %path.display(), "web page missing from web_root");
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "This page is not installed.")
                .into_response()
        }
    }
}

/// The room page's image sources, sent as a header beside the page's own
/// `<meta>` policy (a browser enforces both): images come from the page's
/// origin, `data:`/`blob:` (the drawing canvas) and file-srv — drawings and
/// link-preview images — and from nowhere else, so a preview never makes
/// the browser load anything from the linked site. The meta policy cannot
/// name file-srv's origin: only aux-srv's config knows it.
pub fn image_policy(files_url: &str) -> String {
    let origin = files_url
        .split_once("://")
        .map(|(scheme, rest)| (scheme, rest.split(['/', '?', '#']).next().unwrap_or("")))
        .filter(|(scheme, host)| {
            matches!(*scheme, "http" | "https")
                && !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .map(|(scheme, host)| format!(" {scheme}://{host}"))
        .unwrap_or_default();
    format!("img-src 'self' data: blob:{origin}")
}

fn readyz(app: &App) -> Resp {
    let backends = app.fleet.all();
    let up = backends.iter().filter(|b| b.health() == crate::fleet::Health::Up).count();
    let (status, state) = if app.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else if !app.is_ready() {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    } else {
        (StatusCode::OK, "ready")
    };
    respond::json(
        status,
        &json!({ "status": state, "backends": backends.len(), "backends_up": up, "rooms_known": app.rooms.len() }),
    )
}

#[cfg(test)]
mod tests {
    use super::image_policy;

    #[test]
    fn images_come_from_the_page_and_file_srv_only() {
        let base = "img-src 'self' data: blob:";
        assert_eq!(image_policy("http://127.0.0.1:8085"), format!("{base} http://127.0.0.1:8085"));
        assert_eq!(
            image_policy("https://files.example/base/?x#y"),
            format!("{base} https://files.example")
        );
        assert_eq!(image_policy("http://[::1]:9/"), format!("{base} http://[::1]:9"));
        // Anything that is not a plain origin adds no source at all.
        for odd in ["ftp://x", "http://", "https://a b", "http://a;script-src *", "files"] {
            assert_eq!(image_policy(odd), base, "{odd}");
        }
    }
}
