//! The web UI's files from `web_root`: content type by extension, a short
//! cache for HTML (pages change with deploys), a longer one for assets, and
//! `ETag` revalidation for both.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::http::respond::{ApiError, Resp, with_body};

pub const HTML_CACHE: &str = "public, max-age=60";
pub const ASSET_CACHE: &str = "public, max-age=3600";

pub fn content_type(file: &str) -> &'static str {
    let ext = file.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "txt" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "woff" => "font/woff",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// True for a path segment that can only name a file inside its folder.
pub fn is_safe_segment(segment: &str) -> bool {
    !segment.is_empty()
        && !segment.starts_with('.')
        && segment.len() <= 255
        && segment.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The file under `root` at `segments`, if every segment is safe.
pub fn resolve(root: &str, segments: &[&str]) -> Option<PathBuf> {
    if segments.is_empty() || !segments.iter().all(|s| is_safe_segment(s)) {
        return None;
    }
    let mut path = PathBuf::from(root);
    path.extend(segments);
    Some(path)
}

/// True when `path` is a regular file (following links, as serving does).
pub async fn is_file(path: &Path) -> bool {
    tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file())
}

/// Serves one file; `None` when it is not there.
pub async fn serve(path: &Path, request_headers: &HeaderMap) -> Option<Resp> {
    let meta = tokio::fs::metadata(path).await.ok().filter(|m| m.is_file())?;
    let name = path.file_name()?.to_str()?;
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let etag = format!("\"{:x}-{:x}\"", meta.len(), modified);
    let cache = if content_type(name).starts_with("text/html") { HTML_CACHE } else { ASSET_CACHE };
    let fresh = request_headers.get(IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(',').any(|t| t.trim().trim_start_matches("W/") == etag || t.trim() == "*")
    });
    let mut resp = if fresh {
        with_body(StatusCode::NOT_MODIFIED, content_type(name), bytes::Bytes::new())
    } else {
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read web file");
                return Some(
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "Cannot read that file.",
                    )
                    .into_response(),
                );
            }
        };
        with_body(StatusCode::OK, content_type(name), bytes)
    };
    let headers = resp.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(ETAG, v);
    }
    if cache == HTML_CACHE {
        // Room names are in page URLs: do not hand them to other sites.
        headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
        headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    }
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_and_safety() {
        for (name, expected) in [
            ("room.HTML", "text/html; charset=utf-8"),
            ("app.js", "text/javascript; charset=utf-8"),
            ("style.css", "text/css; charset=utf-8"),
            ("favicon.svg", "image/svg+xml"),
            ("noext", "application/octet-stream"),
        ] {
            assert_eq!(content_type(name), expected, "{name}");
        }
        for bad in ["", "..", ".env", "a/b", "a\\b", "a%2fb", "x\0y"] {
            assert!(!is_safe_segment(bad), "{bad:?}");
        }
        assert!(is_safe_segment("app.js"));
        assert!(resolve("web", &["img", "..", "x"]).is_none());
        assert_eq!(resolve("web", &["img", "a.png"]).unwrap(), PathBuf::from("web/img/a.png"));
    }
}

#[cfg(test)]
mod web_folder {
    use std::collections::BTreeSet;

    /// The names of the files web/ serves at `/{file}` (dot-files never are).
    fn served_files() -> BTreeSet<String> {
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../web");
        let entries = std::fs::read_dir(&web).expect("the web/ folder exists");
        entries
            .map(|entry| entry.unwrap())
            .filter(|entry| std::fs::metadata(entry.path()).is_ok_and(|m| m.is_file()))
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect()
    }

    /// The reserved file names are exactly what web/ serves: every served
    /// file is reserved, or `/{room}` could never reach a room of that name
    /// (the file would win); and a name no file is served under is free
    /// (`package.json` was reserved-in-effect while the browser tests' node
    /// project lived in web/, and is a free room name since it moved out).
    #[test]
    fn reserved_file_names_are_what_web_serves() {
        let served = served_files();
        let listed: BTreeSet<String> =
            common::names::WEB_FILE_NAMES.iter().map(|n| (*n).to_owned()).collect();
        let unlisted: Vec<&String> = served.difference(&listed).collect();
        assert!(unlisted.is_empty(), "add these to common::names::WEB_FILE_NAMES: {unlisted:?}");
        let stale: Vec<&String> = listed.difference(&served).collect();
        assert!(stale.is_empty(), "no longer served, drop from WEB_FILE_NAMES: {stale:?}");
        for name in &served {
            let key = common::names::room_key(name);
            assert_eq!(key, *name, "served file names are lowercase ASCII: {name}");
            assert!(common::names::RoomName::parse(name).is_err(), "{name} is a room name");
        }
        for developer_file in ["package.json", "package-lock.json", "tests", "node_modules"] {
            assert!(!served.contains(developer_file), "web/ holds {developer_file}");
            assert!(common::names::RoomName::parse(developer_file).is_ok(), "{developer_file}");
        }
    }
}
