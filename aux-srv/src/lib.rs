//! Coordinator: web pages, public HTTP API, room placement, admin API (stub).
