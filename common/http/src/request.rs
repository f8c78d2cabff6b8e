//! Checks at the head of every request, and reading a body in time.

use std::time::Duration;

use bytes::Bytes;
use common::http_error::ErrorBody;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Body;
use tokio::time::Instant;

use crate::limits::Admission;
use crate::stream::BodyClock;

/// Paths every server answers on health-only connections.
pub const HEALTH_PATHS: [&str; 3] = ["/livez", "/readyz", "/metrics"];

/// The headers of every JSON error answer (besides its length): here, and
/// in the answers the stream writes itself ([`crate::fault`]).
pub(crate) const ERROR_HEADERS: [(header::HeaderName, &str); 2] =
    [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")];

/// The contract's JSON error answer.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut response =
        Response::new(Full::new(Bytes::from(ErrorBody::new(code, message).to_json())));
    *response.status_mut() = status;
    for (name, value) in ERROR_HEADERS {
        response.headers_mut().insert(name, HeaderValue::from_static(value));
    }
    response
}

/// [`error`], and the connection closes after it (hyper then reads no more
/// of the request).
pub fn error_and_close(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut response = error(status, code, message);
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Runs first for every request: `Some(answer)` when the request must not
/// reach the routes — a health-only connection asking for something else
/// (503), or a body declared larger than `max_body_bytes` (413, before any
/// byte of it is read). Otherwise starts the body deadline when the request
/// has a body, and returns `None`.
pub fn check<B: Body>(
    req: &mut Request<B>,
    admission: Admission,
    clock: &BodyClock,
    max_body_bytes: usize,
    body_timeout: Duration,
) -> Option<Response<Full<Bytes>>> {
    if admission == Admission::HealthOnly && !HEALTH_PATHS.contains(&req.uri().path()) {
        return Some(error_and_close(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "Too many connections; try again later.",
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body_bytes as u64) {
        return Some(error_and_close(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("The request body may be at most {max_body_bytes} bytes."),
        ));
    }
    if req.body().is_end_stream() {
        clock.stop();
    } else {
        let deadline = clock.start(body_timeout);
        req.extensions_mut().insert(BodyDeadline(deadline));
    }
    None
}

/// When a request's body must have arrived ([`check`] sets it).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Instant);

/// Used when a request did not go through [`check`].
const FALLBACK_BODY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("The request body is larger than {0} bytes.")]
    TooLarge(usize),
    #[error("The request body did not arrive in time.")]
    Timeout,
    #[error("The request body could not be read.")]
    Broken,
}

impl BodyError {
    /// 413, 408 or 400, with the contract's body; the connection closes
    /// (what is left of the body is not read).
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let (status, code) = match self {
            BodyError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            BodyError::Timeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            BodyError::Broken => (StatusCode::BAD_REQUEST, "bad_request"),
        };
        error_and_close(status, code, &self.to_string())
    }
}

/// The whole body of `req`, at most `limit` bytes, by its [`BodyDeadline`].
pub async fn read_body<B>(req: Request<B>, limit: usize) -> Result<Bytes, BodyError>
where
    B: Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let deadline = req
        .extensions()
        .get::<BodyDeadline>()
        .map_or_else(|| Instant::now() + FALLBACK_BODY_TIMEOUT, |BodyDeadline(deadline)| *deadline);
    let body = req.into_body();
    match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
            Err(BodyError::TooLarge(limit))
        }
        Ok(Err(_)) => Err(BodyError::Broken),
    }
}
