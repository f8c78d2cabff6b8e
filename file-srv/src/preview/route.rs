//! `POST /previews {url, room, client_ip}`: the backends' internal call.
//! Token, body and limits are checked here; [`super::make`] does the work.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use subtle::ConstantTimeEq;
use url::Url;

use super::{NoPreview, Preview};
use crate::response::{ApiError, Body, json};
use crate::service::AppState;

/// Largest request body: a URL and two short fields.
const MAX_REQUEST_BYTES: usize = 8 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    url: String,
    room: String,
    client_ip: IpAddr,
}

pub async fn handle(state: &Arc<AppState>, req: Request<Incoming>) -> http::Response<Body> {
    let (outcome, result) = answer(state, req).await;
    state.metrics.preview(outcome);
    match result {
        Ok(preview) => json(StatusCode::OK, &serde_json::to_value(preview).unwrap_or_default()),
        Err(e) => e.into_response(),
    }
}

async fn answer(
    state: &Arc<AppState>,
    req: Request<Incoming>,
) -> (&'static str, Result<Preview, ApiError>) {
    let previews = &state.previews;
    if !authorized(&previews.token, req.headers()) {
        let e = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "A valid token is needed.");
        return ("unauthorized", Err(e));
    }
    let request = match read_request(req).await {
        Ok(request) => request,
        Err(e) => return ("bad_request", Err(e)),
    };
    let url = match Url::parse(&request.url) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url,
        _ => return ("bad_url", Err(no_preview("bad_url"))),
    };
    if let Some(result) = previews.cached(&url) {
        return ("cached", result.map_err(no_preview));
    }
    let now = Instant::now();
    let limited = previews
        .rooms
        .check(&request.room, now)
        .and_then(|()| previews.clients.check(request.client_ip, now));
    if let Err(wait) = limited {
        let e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many previews.");
        return ("rate_limited", Err(e.retry_after(wait)));
    }
    let Ok(_permit) = previews.permits.try_acquire() else {
        let e =
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "Too many previews at once.");
        return ("busy", Err(e.retry_after(Duration::from_secs(1))));
    };
    let result = super::make(state, &url).await;
    previews.remember(&url, result.clone());
    match result {
        Ok(preview) => ("made", Ok(preview)),
        Err(code) => (code, Err(no_preview(code))),
    }
}

fn authorized(token: &str, headers: &http::HeaderMap) -> bool {
    if token.is_empty() {
        return true;
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

async fn read_request(req: Request<Incoming>) -> Result<PreviewRequest, ApiError> {
    let body = Limited::new(req.into_body(), MAX_REQUEST_BYTES).collect().await.map_err(|_| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "The body is too long or cut off.")
    })?;
    serde_json::from_slice(&body.to_bytes()).map_err(|e| {
        let message = format!("Expected {{\"url\", \"room\", \"client_ip\"}}: {e}");
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    })
}

/// The answer when a link gets no preview: `422` with the reason's code.
fn no_preview(code: NoPreview) -> ApiError {
    let message = match code {
        "bad_url" => "Only http and https links get previews.",
        "blocked_address" => "The link points at a non-public address.",
        "port_not_allowed" => "The link's port is not allowed.",
        "unresolved" => "The link's host name did not resolve.",
        "unreachable" => "The linked site could not be reached.",
        "bad_status" => "The linked site did not answer with a page.",
        "too_many_redirects" => "The link redirects too often.",
        "wrong_type" => "The link is not an HTML page.",
        "too_large" => "The linked page is too large.",
        "timeout" => "The linked site took too long.",
        "no_title" => "The linked page has no title.",
        _ => "This link gets no preview.",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}
