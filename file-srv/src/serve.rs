//! `GET`/`HEAD /files/{id}.png`: streams a stored drawing. Only a well-formed
//! id is ever turned into a file name, so no request can reach outside the
//! data folder; the file is opened without following symlinks.

use std::sync::Arc;
use std::time::SystemTime;

use futures_util::TryStreamExt;
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio_util::io::ReaderStream;

use crate::file_id::FileId;
use crate::response::{ApiError, Body, empty};
use crate::service::AppState;

/// Content never changes under an id, so caches may keep it for a year.
const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
const READ_CHUNK: usize = 32 * 1024;

/// The id in `{id}.png`, the part of the path after `/files/`.
pub fn parse_name(name: &str) -> Result<FileId, ApiError> {
    name.strip_suffix(".png").and_then(FileId::parse).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_file_id",
            "A drawing's address is /files/ followed by 32 lowercase hex digits and .png.",
        )
    })
}

pub async fn handle(
    state: &Arc<AppState>,
    method: &Method,
    headers: &HeaderMap,
    id: FileId,
) -> Result<Response<Body>, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "file_not_found",
            "No such drawing (it may have expired).",
        )
    };
    state.store.lookup(id, SystemTime::now()).ok_or_else(not_found)?;
    let etag = format!("\"{id}\"");

    if etag_matches(headers, &etag) {
        let mut response = Response::new(empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        common_headers(response.headers_mut(), &etag);
        return Ok(response);
    }

    let store = state.store.clone();
    let opened = tokio::task::spawn_blocking(move || store.open_file(id))
        .await
        .map_err(|_| ApiError::internal())?
        .map_err(|e| {
            tracing::error!(%id, error = %e, "could not open a drawing");
            ApiError::internal()
        })?;
    let (file, len) = opened.ok_or_else(not_found)?;

    let body = if method == Method::HEAD {
        empty()
    } else {
        state.metrics.served_bytes.inc_by(len);
        let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), READ_CHUNK);
        BodyExt::boxed(StreamBody::new(stream.map_ok(Frame::data)))
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(disposition) = HeaderValue::from_str(&format!("inline; filename=\"{id}.png\"")) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    common_headers(headers, &etag);
    Ok(response)
}

fn common_headers(headers: &mut HeaderMap, etag: &str) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("content-security-policy", HeaderValue::from_static("default-src 'none'"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}
