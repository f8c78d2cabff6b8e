//! Stores and serves drawings (stub).
