//! file-srv: stores and serves the chat's drawings.
//!
//! - [`run`] ([`server`]): start-up, the accept loop, the background sweep and
//!   the SIGTERM drain.
//! - [`service`]: shared state and routing — `POST /files`,
//!   `GET`/`HEAD /files/{id}.png`, `/livez`, `/readyz`, `/metrics`.
//! - [`upload`]: the upload path: origin, rate, size, concurrency and time
//!   limits, then the PNG check and the store.
//! - [`png`]: the cheap structural PNG check (signature, IHDR, dimensions,
//!   chunk lengths and CRCs up to IEND; nothing decompressed).
//! - [`file_id`]: content-derived ids (first 128 bits of SHA-256, as hex).
//! - [`store`]: `{data_dir}/{id}.png`, atomic writes through `tmp/`, the
//!   in-memory index, TTL sweep and quota eviction.
//! - [`serve`]: streaming a drawing with its caching and safety headers.
//! - [`cors`]: which pages may upload. Who the client is behind trusted
//!   proxies, and how often it may upload, is `common::net`.
//! - [`preview`]: link previews for the backends (`POST /previews`): fetches
//!   that never reach a non-public address, page metadata, re-encoded images.
//! - [`metrics`], [`response`]: Prometheus metrics and answer building.
//!
//! The HTTP API, limits and configuration are described in `docs/FILES.md`.

pub mod cors;
pub mod file_id;
pub mod metrics;
pub mod png;
pub mod preview;
pub mod response;
pub mod serve;
pub mod server;
pub mod service;
pub mod store;
pub mod upload;

pub use server::run;
