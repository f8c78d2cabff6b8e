//! Load generator (stub).
