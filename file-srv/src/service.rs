//! The shared state of a running file-srv and the routing of one request.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::config::FileSrvConfig;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::cors::{Cors, Origin};
use crate::metrics::Metrics;
use crate::preview::{self, Previews};
use crate::response::{ApiError, Body, empty, json, text};
use crate::store::Store;
use crate::{serve, upload};
use common::net::{IpRateLimiter, TrustedProxies};

pub struct AppState {
    pub config: FileSrvConfig,
    /// `public_url` without a trailing slash.
    pub public_url: String,
    pub store: Arc<Store>,
    pub limiter: IpRateLimiter,
    pub cors: Cors,
    pub proxies: TrustedProxies,
    pub upload_permits: Semaphore,
    pub metrics: Metrics,
    pub draining: AtomicBool,
    pub previews: Previews,
}

pub async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let origin = state.cors.check(req.headers());
    let (route, mut response) = match path.as_str() {
        "/files" => ("upload", upload_route(&state, req, peer, &origin).await),
        "/previews" if method == Method::POST => {
            ("previews", preview::route::handle(&state, req).await)
        }
        "/previews" => ("previews", method_not_allowed("POST")),
        _ => match path.strip_prefix("/files/") {
            Some(name) => ("file", file_route(&state, &req, name, &origin).await),
            None => ("other", other_route(&state, &method, &path)),
        },
    };
    let route = match path.as_str() {
        "/livez" | "/readyz" | "/metrics" => &path[1..],
        _ => route,
    };
    Cors::decorate(&origin, response.headers_mut());
    state.metrics.request(route, response.status().as_u16());
    tracing::debug!(%method, route, status = response.status().as_u16(), "request");
    Ok(response)
}

async fn upload_route(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    peer: SocketAddr,
    origin: &Origin,
) -> Response<Body> {
    match *req.method() {
        Method::POST => {
            let forwarded =
                req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
            let client = state.proxies.client_ip(peer.ip(), forwarded);
            upload::handle(state, req, client, origin).await
        }
        Method::OPTIONS => preflight(origin, &[Method::POST]),
        _ => method_not_allowed("POST, OPTIONS"),
    }
}

async fn file_route(
    state: &Arc<AppState>,
    req: &Request<Incoming>,
    name: &str,
    origin: &Origin,
) -> Response<Body> {
    let method = req.method();
    if *method == Method::OPTIONS {
        return preflight(origin, &[Method::GET, Method::HEAD]);
    }
    if !(*method == Method::GET || *method == Method::HEAD) {
        return method_not_allowed("GET, HEAD, OPTIONS");
    }
    let result = match serve::parse_name(name) {
        Ok(id) => serve::handle(state, method, req.headers(), id).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(ApiError::into_response)
}

fn other_route(state: &AppState, method: &Method, path: &str) -> Response<Body> {
    if !(*method == Method::GET || *method == Method::HEAD) {
        return if matches!(path, "/livez" | "/readyz" | "/metrics") {
            method_not_allowed("GET, HEAD")
        } else {
            ApiError::not_found().into_response()
        };
    }
    match path {
        "/livez" => json(StatusCode::OK, &json!({"status": "ok"})),
        "/readyz" if state.draining.load(Ordering::Relaxed) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "draining", "Shutting down.")
                .into_response()
        }
        "/readyz" => json(StatusCode::OK, &json!({"status": "ready"})),
        "/metrics" => {
            text(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", state.metrics.render())
        }
        _ => ApiError::not_found().into_response(),
    }
}

fn preflight(origin: &Origin, methods: &[Method]) -> Response<Body> {
    if *origin == Origin::Refused {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "This web origin is not allowed.",
        )
        .into_response();
    }
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Cors::preflight(methods, response.headers_mut());
    response
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut response =
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed.")
            .into_response();
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}
