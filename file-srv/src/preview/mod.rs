//! Link previews: `POST /previews`, which the backends call for the first
//! link of a message. file-srv fetches the page (never from a non-public
//! address: [`address`], [`fetch`]), reads its title, description and image
//! ([`page`]), re-encodes the image ([`picture`]) and stores it as a drawing,
//! so browsers load nothing from the linked site. Results are cached and
//! fetches limited per room and per client ([`cache`]); [`route`] is the
//! HTTP side.

pub mod address;
pub mod cache;
pub mod fetch;
pub mod page;
pub mod picture;
pub mod route;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::config::FileSrvConfig;
use common::net::{IpRateLimiter, Rate};
use serde::Serialize;
use tokio::sync::Semaphore;
use url::Url;

use crate::file_id::FileId;
use crate::service::AppState;
use cache::{Cache, RoomLimiter};
use fetch::{FetchError, Fetcher, Want};

/// What the backend gets, and broadcasts as the message's preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub url: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A file-srv URL (`{public_url}/files/{id}.png`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Why there is no preview: the error code the backend gets.
pub type NoPreview = &'static str;

pub struct Previews {
    fetcher: Fetcher,
    cache: Cache<Result<Preview, NoPreview>>,
    pub(crate) rooms: RoomLimiter,
    pub(crate) clients: IpRateLimiter,
    pub(crate) permits: Semaphore,
    pub(crate) token: String,
    max_bytes: usize,
    image_max_side: u32,
}

impl Previews {
    pub fn new(config: &FileSrvConfig) -> Self {
        let timeout = Duration::from_millis(config.preview_timeout_ms);
        let per_min = |n: u32| Rate::per_minute(n, n);
        Self {
            fetcher: Fetcher::new(
                config.preview_allow_private,
                config.preview_ports.clone(),
                timeout,
            ),
            cache: Cache::new(
                config.preview_cache_entries,
                Duration::from_secs(config.preview_cache_ttl_secs),
            ),
            rooms: RoomLimiter::new(per_min(config.preview_room_per_min)),
            clients: IpRateLimiter::new(per_min(config.preview_ip_per_min)),
            permits: Semaphore::new(config.preview_max_concurrent),
            token: config.preview_token.clone(),
            max_bytes: config.preview_max_bytes,
            image_max_side: config.preview_image_max_side,
        }
    }

    pub fn cached(&self, url: &Url) -> Option<Result<Preview, NoPreview>> {
        self.cache.get(url.as_str(), Instant::now())
    }

    pub fn remember(&self, url: &Url, result: Result<Preview, NoPreview>) {
        self.cache.put(url.as_str().to_owned(), result, Instant::now());
    }
}

/// Fetches the page at `url` and makes its preview. A missing or broken
/// image only means a preview without one.
pub async fn make(state: &Arc<AppState>, url: &Url) -> Result<Preview, NoPreview> {
    let previews = &state.previews;
    let fetched = previews
        .fetcher
        .get(url, Want::Html, previews.max_bytes)
        .await
        .map_err(|e| FetchError::code(&e))?;
    let html = String::from_utf8_lossy(&fetched.body);
    let meta = page::extract(&html, &fetched.url).ok_or("no_title")?;
    let image = match meta.image {
        Some(image_url) => store_image(state, &image_url).await,
        None => None,
    };
    Ok(Preview { url: url.to_string(), title: meta.title, description: meta.description, image })
}

/// Fetches, re-encodes and stores a page's image; its file-srv URL.
async fn store_image(state: &Arc<AppState>, url: &Url) -> Option<String> {
    let previews = &state.previews;
    let fetched = match previews.fetcher.get(url, Want::Image, previews.max_bytes).await {
        Ok(fetched) => fetched,
        Err(e) => {
            state.metrics.preview_image(e.code());
            return None;
        }
    };
    let (store, side) = (state.store.clone(), previews.image_max_side);
    let stored = tokio::task::spawn_blocking(move || {
        let png = picture::reencode(&fetched.body, side).map_err(|_| "undecodable")?;
        let id = FileId::of_content(&png);
        store.put(id, &png).map(|_| id).map_err(|e| {
            tracing::error!(error = %e, "storing a preview image failed");
            "error"
        })
    })
    .await
    .unwrap_or(Err("error"));
    match stored {
        Ok(id) => {
            state.metrics.preview_image("stored");
            Some(format!("{}/files/{}", state.public_url, id.file_name()))
        }
        Err(outcome) => {
            state.metrics.preview_image(outcome);
            None
        }
    }
}
