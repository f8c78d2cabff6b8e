//! The two HTTP listeners: the public one (pages, API, probes, metrics) and
//! the admin one. hyper 1.x, HTTP/1.1.

pub mod admin;
pub mod admin_moves;
pub mod api;
pub mod attempts;
pub mod moderation;
pub mod owner;
pub mod public;
pub mod respond;
pub mod server;
pub mod static_files;
