//! Where the repository's files are, from this crate's folder.

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root")
}

/// `deploy/`.
pub fn deploy() -> PathBuf {
    repo().join("deploy")
}

/// A path under `deploy/`.
pub fn deploy_file(relative: &str) -> PathBuf {
    deploy().join(relative)
}

/// The text of a file the tests need: a missing one fails the test, naming it.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The compose layouts: (name, folder under deploy/).
pub const LAYOUTS: &[(&str, &str)] = &[
    ("local", "local"),
    ("single-node", "single-node"),
    ("multi-node gateway", "multi-node/gateway"),
    ("multi-node backend", "multi-node/backend"),
    ("multi-node monitoring", "multi-node/monitoring"),
];
