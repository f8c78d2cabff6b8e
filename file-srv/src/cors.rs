//! Which browser origins may upload, and the CORS headers that let them read
//! the answers. Without a configured list, an origin on the same host as the
//! request's `Host` (any port) is allowed: the local fleet serves pages on
//! :8080 and drawings on :8085 of the same host, and behind nginx both share
//! one origin anyway.

use http::header::{self, HeaderValue};
use http::{HeaderMap, Method};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// No `Origin` header: not a cross-origin browser request (curl, a bot).
    Absent,
    Allowed(HeaderValue),
    Refused,
}

#[derive(Debug, Clone, Default)]
pub struct Cors {
    allowed: Vec<String>,
}

impl Cors {
    pub fn new(allowed: &[String]) -> Self {
        Self { allowed: allowed.iter().map(|o| o.to_ascii_lowercase()).collect() }
    }

    pub fn check(&self, headers: &HeaderMap) -> Origin {
        let Some(value) = headers.get(header::ORIGIN) else {
            return Origin::Absent;
        };
        let Ok(origin) = value.to_str() else {
            return Origin::Refused;
        };
        let origin = origin.to_ascii_lowercase();
        let allowed = if self.allowed.is_empty() {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
            match (origin_host(&origin), host) {
                (Some(origin_host), Some(host)) => {
                    origin_host.eq_ignore_ascii_case(strip_port(host))
                }
                _ => false,
            }
        } else {
            self.allowed.contains(&origin)
        };
        if allowed { Origin::Allowed(value.clone()) } else { Origin::Refused }
    }

    /// Headers for any answer to an allowed origin.
    pub fn decorate(origin: &Origin, headers: &mut HeaderMap) {
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Origin::Allowed(value) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value.clone());
            headers.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("Retry-After, ETag, Location"),
            );
        }
    }

    /// Headers of a preflight answer for a route that takes `methods`.
    pub fn preflight(methods: &[Method], headers: &mut HeaderMap) {
        let list = methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        if let Ok(value) = HeaderValue::from_str(&list) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, value);
        }
        headers
            .insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
}

/// `example.com` of `https://example.com:8443`, `::1` of `http://[::1]:80`.
fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"))?;
    (!rest.is_empty()).then(|| strip_port(rest))
}

fn strip_port(authority: &str) -> &str {
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.rsplit_once(':').map_or(authority, |(host, _)| host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: &str, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().unwrap());
        h.insert(header::HOST, host.parse().unwrap());
        h
    }

    #[test]
    fn same_host_when_nothing_is_configured() {
        let cors = Cors::new(&[]);
        assert!(matches!(
            cors.check(&headers("http://127.0.0.1:8080", "127.0.0.1:8085")),
            Origin::Allowed(_)
        ));
        assert!(matches!(
            cors.check(&headers("http://[::1]:8080", "[::1]:8085")),
            Origin::Allowed(_)
        ));
        assert!(matches!(
            cors.check(&headers("https://Chat.Example", "chat.example")),
            Origin::Allowed(_)
        ));
        assert_eq!(cors.check(&headers("http://evil.example", "127.0.0.1:8085")), Origin::Refused);
        assert_eq!(cors.check(&headers("null", "127.0.0.1:8085")), Origin::Refused);
        assert_eq!(cors.check(&HeaderMap::new()), Origin::Absent);
    }

    #[test]
    fn configured_list_is_exact() {
        let cors = Cors::new(&["https://chat.example".to_owned()]);
        assert!(matches!(
            cors.check(&headers("https://chat.example", "files.example")),
            Origin::Allowed(_)
        ));
        assert_eq!(cors.check(&headers("http://chat.example", "chat.example")), Origin::Refused);
        assert_eq!(cors.check(&headers("https://chat.example:444", "x")), Origin::Refused);
    }
}
