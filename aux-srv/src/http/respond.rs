//! Building responses and reading requests: JSON bodies, the contract's
//! error body, percent-decoding, query strings.

use std::time::Duration;

use bytes::Bytes;
use common::http_error::ErrorBody;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use http_listener::request::BodyError;
use hyper::body::Incoming;
use serde::Serialize;

pub type Resp = Response<Full<Bytes>>;

pub const JSON: &str = "application/json";

pub fn with_body(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, v);
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

/// A JSON answer of the API (never cached: rooms come and go).
pub fn json(status: StatusCode, value: &impl Serialize) -> Resp {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = with_body(status, JSON, body);
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

pub fn plain(status: StatusCode, text: impl Into<Bytes>) -> Resp {
    let mut resp = with_body(status, "text/plain; charset=utf-8", text);
    resp.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// An error as the contract says: `{"error": {"code", "message"}}`, plus
/// optional extra top-level fields (`suggestions`).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub retry_after: Option<Duration>,
    pub extra: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
            retry_after: None,
            extra: None,
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Nothing here.")
    }

    /// 405; the router adds the `Allow` header of the route.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed here.")
    }

    pub fn rate_limited(wait: Duration, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
        e.retry_after = Some(wait);
        e
    }

    pub fn with_extra(mut self, key: &'static str, value: serde_json::Value) -> Self {
        self.extra = Some((key, value));
        self
    }

    pub fn into_response(self) -> Resp {
        let body = ErrorBody::new(self.code, self.message);
        let mut value = serde_json::to_value(&body).unwrap_or_default();
        if let (Some((key, extra)), Some(object)) = (self.extra, value.as_object_mut()) {
            object.insert(key.to_owned(), extra);
        }
        let mut resp = json(self.status, &value);
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: a client retrying at 0 would be refused again.
            let secs = wait.as_millis().div_ceil(1000).max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// Reads the whole body, refusing more than `limit` bytes with 413 and a
/// body not in by its deadline (`http.body_timeout_ms`) with 408.
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    http_listener::request::read_body(req, limit).await.map_err(|e| {
        let status = match e {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken => StatusCode::BAD_REQUEST,
        };
        let code = match e {
            BodyError::TooLarge(_) => "too_large",
            BodyError::Timeout => "request_timeout",
            BodyError::Broken => "bad_request",
        };
        ApiError::new(status, code, e.to_string())
    })
}

/// Parses a JSON body; an empty body is `{}`.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { bytes };
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::bad_request("bad_json", format!("The body is not the expected JSON: {e}"))
    })
}

/// Decodes `%XX` escapes; `None` for bad escapes or invalid UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first value of `name` in a query string (`+` is a space).
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(&v.replace('+', " ")).unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding_round_trips() {
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(percent_decode("plain-name").as_deref(), Some("plain-name"));
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("cut%4"), None);
        assert_eq!(percent_decode("%ff%fe"), None, "not UTF-8");
        for s in ["Café-日本.x_y", "a b/c?d", "~ok"] {
            assert_eq!(percent_decode(&percent_encode(s)).as_deref(), Some(s));
        }
        assert_eq!(percent_encode("é"), "%C3%A9");
    }

    #[test]
    fn query_params() {
        let q = Some("after=5&limit=20&nick=ada+l%C3%A9&flag");
        assert_eq!(query_param(q, "after").as_deref(), Some("5"));
        assert_eq!(query_param(q, "nick").as_deref(), Some("ada lé"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param(None, "after"), None);
    }

    #[test]
    fn errors_have_the_contract_shape() {
        let resp = ApiError::rate_limited(Duration::from_millis(1200), "slow down")
            .with_extra("suggestions", serde_json::json!(["a"]))
            .into_response();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(resp.headers()[RETRY_AFTER], "2");
        assert_eq!(resp.headers()[CONTENT_TYPE], JSON);
    }
}
