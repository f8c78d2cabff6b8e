//! Link previews, off the message path: after a message is stored, its first
//! http(s) link is sent to file-srv's `POST /previews` from a spawned task
//! (at most `preview_max_concurrent` at once; links posted while all are busy
//! get none), and when the preview comes back the room attaches it to the
//! message and broadcasts `preview` ([`Room::set_preview`]). Failures only
//! mean no preview. file-srv does the fetching and every safety check.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::config::BackendConfig;
use common::net::TrustedProxies;
use common::ws::{ChatMessage, LinkPreview};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::sync::Semaphore;

use crate::room::Room;

/// file-srv fetches within 3 s per page and per image; this leaves room for both.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
/// Largest answer read from file-srv.
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Longest link sent for a preview.
const MAX_LINK_BYTES: usize = 2048;

pub struct Previewer {
    /// `{preview_url}/previews`; `None` when previews are off.
    endpoint: Option<http::Uri>,
    token: Option<HeaderValue>,
    client: Client<HttpConnector, Full<Bytes>>,
    permits: Arc<Semaphore>,
    proxies: TrustedProxies,
}

impl Previewer {
    pub fn new(config: &BackendConfig) -> Self {
        let base = config.preview_url.trim_end_matches('/');
        let endpoint =
            (!base.is_empty()).then(|| format!("{base}/previews").parse().ok()).flatten();
        let token = (!config.preview_token.is_empty())
            .then(|| HeaderValue::from_str(&format!("Bearer {}", config.preview_token)).ok())
            .flatten();
        Self {
            endpoint,
            token,
            client: Client::builder(TokioExecutor::new()).build_http(),
            permits: Arc::new(Semaphore::new(config.preview_max_concurrent)),
            // Validated with the rest of the configuration at start-up.
            proxies: TrustedProxies::parse(&config.trusted_proxies).unwrap_or_default(),
        }
    }

    /// Who a websocket connection is: its peer, or behind a trusted proxy
    /// the address `X-Forwarded-For` names.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        self.proxies.client_ip(peer, forwarded)
    }

    /// Asks for a preview of `message`'s first link, if it has one, in the
    /// background. Returns at once.
    pub fn after_post(&self, room: &Arc<Room>, message: &ChatMessage, client: IpAddr) {
        let Some(endpoint) = &self.endpoint else { return };
        let Some(link) = first_link(&message.text) else { return };
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::debug!(seq = message.seq, "previews busy; this link gets none");
            return;
        };
        let body = json!({"url": link, "room": room.key(), "client_ip": client}).to_string();
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, token.clone());
        }
        let Ok(request) = request.body(Full::new(Bytes::from(body))) else { return };
        let (client, room, seq, link) =
            (self.client.clone(), room.clone(), message.seq, link.to_owned());
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(REQUEST_TIMEOUT, ask(&client, request)).await {
                Ok(Ok(mut preview)) => {
                    preview.url = link;
                    room.set_preview(seq, preview);
                }
                Ok(Err(reason)) => tracing::debug!(seq, reason, "no preview"),
                Err(_) => tracing::debug!(seq, "no preview: file-srv took too long"),
            }
        });
    }
}

async fn ask(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<LinkPreview, String> {
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if status != StatusCode::OK {
        return Err(String::from_utf8_lossy(&body).into_owned());
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

/// The first `http://` or `https://` link in `text`, up to the next space or
/// character that cannot end a link in prose (trailing `.`, `,`, `)` …).
pub fn first_link(text: &str) -> Option<&str> {
    // Look for "://" (a fast substring search), then for the scheme before it.
    let scheme_start = |at: usize| {
        ["https", "http"].into_iter().find_map(|scheme| {
            let start = at.checked_sub(scheme.len())?;
            (text.is_char_boundary(start)
                && text[start..at].eq_ignore_ascii_case(scheme)
                && !text[..start].ends_with(|c: char| c.is_alphanumeric()))
            .then_some(start)
        })
    };
    let mut from = 0;
    let start = loop {
        let at = from + text[from..].find("://")?;
        if let Some(start) = scheme_start(at) {
            break start;
        }
        from = at + 3;
    };
    let rest = &text[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
        .unwrap_or(rest.len());
    let link = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}', '\'']);
    let after_scheme = link.split_once("://").map_or("", |(_, host)| host);
    (!after_scheme.is_empty() && link.len() <= MAX_LINK_BYTES).then_some(link)
}

#[cfg(test)]
mod tests {
    use super::first_link;

    #[test]
    fn the_first_link_is_found_and_trimmed() {
        let cases = [
            ("see https://a.example/x?y=1.", Some("https://a.example/x?y=1")),
            ("(http://b.example/) and https://c.example", Some("http://b.example/")),
            ("HTTPS://Up.Example/Path, ok", Some("HTTPS://Up.Example/Path")),
            ("<https://d.example>", Some("https://d.example")),
            ("nohttp://e.example", None),
            ("nohttp://e.example then http://h.example", Some("http://h.example")),
            ("http:// nothing", None),
            ("ftp://f.example", None),
            ("no links at all", None),
            ("ünïcode https://g.example/ä", Some("https://g.example/ä")),
            ("ä://x ééé://y https://z.example", Some("https://z.example")),
        ];
        for (text, link) in cases {
            assert_eq!(first_link(text), link, "{text}");
        }
    }
}
