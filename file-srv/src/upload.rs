//! `POST /files`: the cheapest refusals first (origin, rate, declared size,
//! concurrency), then the body, read with a size cap and a deadline and
//! refused as soon as its first bytes show it is not an acceptable PNG; then
//! the full structural check, the content hash, and an atomic write.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::{Body as _, Incoming};
use serde_json::json;

use crate::cors::Origin;
use crate::file_id::FileId;
use crate::png::{self, PngError};
use crate::response::{ApiError, Body, json};
use crate::service::AppState;
use crate::store::Put;

#[derive(Debug, thiserror::Error)]
enum UploadError {
    #[error("origin not allowed")]
    Origin,
    #[error("rate limited")]
    RateLimited(Duration),
    #[error("too many uploads at once")]
    Busy,
    #[error("body larger than max_bytes")]
    TooLarge,
    #[error("body not complete in time")]
    Timeout,
    #[error(transparent)]
    Png(#[from] PngError),
    #[error("reading the body: {0}")]
    Body(hyper::Error),
    #[error("storing: {0}")]
    Store(io::Error),
}

impl UploadError {
    /// The `result` label of `instantchat_files_uploads_total`.
    fn result(&self) -> &'static str {
        match self {
            UploadError::Origin => "origin_refused",
            UploadError::RateLimited(_) => "rate_limited",
            UploadError::Busy => "busy",
            UploadError::TooLarge => "too_large",
            UploadError::Timeout => "timeout",
            UploadError::Png(PngError::NotPng | PngError::BadHeader) => "not_png",
            UploadError::Png(PngError::TooManyPixels { .. }) => "too_many_pixels",
            UploadError::Png(PngError::Truncated | PngError::Corrupt(_)) => "corrupt_png",
            UploadError::Body(_) => "bad_request",
            UploadError::Store(_) => "error",
        }
    }

    fn into_api(self, max_bytes: usize) -> ApiError {
        use StatusCode as S;
        match self {
            UploadError::Origin => ApiError::new(
                S::FORBIDDEN,
                "origin_not_allowed",
                "Uploads from this web origin are not allowed.",
            ),
            UploadError::RateLimited(wait) => ApiError::new(
                S::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many uploads; try again in a moment.",
            )
            .retry_after(wait),
            UploadError::Busy => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "busy",
                "Too many uploads at once; try again in a moment.",
            )
            .retry_after(Duration::from_secs(1)),
            UploadError::TooLarge => ApiError::new(
                S::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("A drawing may be at most {max_bytes} bytes."),
            ),
            UploadError::Timeout => ApiError::new(
                S::REQUEST_TIMEOUT,
                "upload_timeout",
                "The upload did not arrive in time.",
            ),
            UploadError::Png(e @ (PngError::NotPng | PngError::BadHeader)) => {
                ApiError::new(S::UNSUPPORTED_MEDIA_TYPE, "not_png", format!("{e}; send a PNG."))
            }
            UploadError::Png(e @ PngError::TooManyPixels { .. }) => {
                ApiError::new(S::BAD_REQUEST, "image_too_large", e.to_string())
            }
            UploadError::Png(e @ (PngError::Truncated | PngError::Corrupt(_))) => {
                ApiError::new(S::BAD_REQUEST, "corrupt_png", e.to_string())
            }
            UploadError::Body(_) => {
                ApiError::new(S::BAD_REQUEST, "bad_request", "The upload was cut off or malformed.")
            }
            UploadError::Store(_) => ApiError::internal(),
        }
    }
}

pub async fn handle(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    client: IpAddr,
    origin: &Origin,
) -> Response<Body> {
    let started = Instant::now();
    match receive(state, req, client, origin).await {
        Ok((id, put, header)) => {
            let result = match put {
                Put::Stored => "stored",
                Put::Duplicate => "duplicate",
            };
            state.metrics.upload(result);
            state.metrics.upload_seconds.observe(started.elapsed().as_secs_f64());
            tracing::info!(%id, %client, result, width = header.width, height = header.height, "drawing uploaded");
            let url = format!("{}/files/{id}.png", state.public_url);
            let mut response = json(
                StatusCode::CREATED,
                &json!({"id": id.to_string(), "url": url, "width": header.width, "height": header.height}),
            );
            if let Ok(location) = url.parse() {
                response.headers_mut().insert(http::header::LOCATION, location);
            }
            response
        }
        Err(e) => {
            state.metrics.upload(e.result());
            match &e {
                UploadError::Store(io) => tracing::error!(error = %io, "could not store a drawing"),
                _ => tracing::debug!(%client, error = %e, "upload refused"),
            }
            e.into_api(state.config.max_bytes).into_response()
        }
    }
}

async fn receive(
    state: &Arc<AppState>,
    req: Request<Incoming>,
    client: IpAddr,
    origin: &Origin,
) -> Result<(FileId, Put, png::Header), UploadError> {
    let config = &state.config;
    if *origin == Origin::Refused {
        return Err(UploadError::Origin);
    }
    state.limiter.check(client, Instant::now()).map_err(UploadError::RateLimited)?;
    // A declared length over the limit is refused before a byte of the body is read.
    if req.body().size_hint().lower() > config.max_bytes as u64 {
        return Err(UploadError::TooLarge);
    }
    let _permit = state.upload_permits.try_acquire().map_err(|_| UploadError::Busy)?;
    let _in_flight = InFlight::new(&state.metrics.uploads_in_flight);
    let deadline = Duration::from_millis(config.upload_timeout_ms);
    let png = tokio::time::timeout(
        deadline,
        read_body(req.into_body(), config.max_bytes, config.max_dimension),
    )
    .await
    .map_err(|_| UploadError::Timeout)??;
    let header = png::check(&png, config.max_dimension)?;
    let id = FileId::of_content(&png);
    let store = state.store.clone();
    let put = tokio::task::spawn_blocking(move || store.put(id, &png))
        .await
        .map_err(|e| UploadError::Store(io::Error::other(e)))?
        .map_err(UploadError::Store)?;
    Ok((id, put, header))
}

/// Reads at most `max_bytes`, checking the signature and header as soon as
/// they are in, so a wrong or oversized image is refused without reading on.
async fn read_body(
    mut body: Incoming,
    max_bytes: usize,
    max_dimension: u32,
) -> Result<Vec<u8>, UploadError> {
    let declared = body.size_hint().exact().unwrap_or(0) as usize;
    let mut buf = Vec::with_capacity(declared.min(max_bytes));
    let mut header_checked = false;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(UploadError::Body)?.into_data() else {
            continue; // trailers
        };
        if data.len() > max_bytes - buf.len() {
            return Err(UploadError::TooLarge);
        }
        buf.extend_from_slice(&data);
        if !header_checked {
            let seen = buf.len().min(png::SIGNATURE.len());
            if buf[..seen] != png::SIGNATURE[..seen] {
                return Err(PngError::NotPng.into());
            }
            if buf.len() >= png::HEADER_LEN {
                png::check_header(&buf, max_dimension)?;
                header_checked = true;
            }
        }
    }
    Ok(buf)
}

struct InFlight<'a>(&'a prometheus::IntGauge);

impl<'a> InFlight<'a> {
    fn new(gauge: &'a prometheus::IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
