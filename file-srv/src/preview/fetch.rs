//! Fetching a linked page or image without ever reaching a non-public address.
//!
//! Each hop resolves the host once, checks every address it resolved to
//! ([`address::is_public`]), and connects to the checked address itself, so a
//! DNS answer that changes between a check and a connect (rebinding) changes
//! nothing. TLS runs over that connection, verified against the URL's host
//! name. Redirects are hops like the first: each one is parsed, resolved and
//! checked again. The whole fetch, redirects included, has one time limit, and
//! a body is read only up to its size limit.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::{Host, Position, Url};

use super::address;

/// Redirects followed before a fetch gives up.
pub const MAX_REDIRECTS: usize = 3;
const USER_AGENT: &str = "instantchat-preview/1 (link preview)";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FetchError {
    #[error("not an http(s) URL")]
    BadUrl,
    #[error("port {0} is not allowed")]
    Port(u16),
    #[error("the host resolves to a non-public address")]
    Blocked,
    #[error("the host name did not resolve")]
    Resolve,
    #[error("could not connect")]
    Connect,
    #[error("the TLS handshake failed")]
    Tls,
    #[error("the HTTP exchange failed")]
    Http,
    #[error("the site answered {0}")]
    Status(u16),
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("the answer is not of the expected type")]
    WrongType,
    #[error("the answer is too large")]
    TooLarge,
    #[error("the site took too long")]
    Timeout,
}

impl FetchError {
    /// The outcome label for metrics and the error code for the backend.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUrl => "bad_url",
            Self::Port(_) => "port_not_allowed",
            Self::Blocked => "blocked_address",
            Self::Resolve => "unresolved",
            Self::Connect | Self::Tls | Self::Http => "unreachable",
            Self::Status(_) => "bad_status",
            Self::TooManyRedirects => "too_many_redirects",
            Self::WrongType => "wrong_type",
            Self::TooLarge => "too_large",
            Self::Timeout => "timeout",
        }
    }
}

/// What kind of answer a fetch accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Html,
    Image,
}

impl Want {
    fn accept(self) -> &'static str {
        match self {
            Self::Html => "text/html",
            Self::Image => "image/png, image/jpeg, image/gif, image/webp",
        }
    }

    fn matches(self, content_type: &str) -> bool {
        let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match self {
            Self::Html => essence == "text/html",
            Self::Image => {
                matches!(essence.as_str(), "image/png" | "image/jpeg" | "image/gif" | "image/webp")
            }
        }
    }
}

/// A successful fetch: the URL it ended at (after redirects) and the body.
#[derive(Debug)]
pub struct Fetched {
    pub url: Url,
    pub body: Bytes,
}

pub struct Fetcher {
    allow_private: bool,
    ports: Vec<u16>,
    timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Fetcher {
    /// `allow_private` turns the address check off (tests on loopback only).
    pub fn new(allow_private: bool, ports: Vec<u16>, timeout: Duration) -> Self {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self { allow_private, ports, timeout, tls: Arc::new(tls) }
    }

    /// Fetches `url`, following at most [`MAX_REDIRECTS`] redirects, and
    /// reads at most `max_bytes` of an answer of the `want`ed type.
    pub async fn get(
        &self,
        url: &Url,
        want: Want,
        max_bytes: usize,
    ) -> Result<Fetched, FetchError> {
        tokio::time::timeout(self.timeout, self.follow(url.clone(), want, max_bytes))
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    async fn follow(
        &self,
        mut url: Url,
        want: Want,
        max_bytes: usize,
    ) -> Result<Fetched, FetchError> {
        for _ in 0..=MAX_REDIRECTS {
            let response = self.hop(&url, want).await?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(FetchError::Status(status.as_u16()))?;
                url = url.join(location).map_err(|_| FetchError::BadUrl)?;
                continue;
            }
            if status != StatusCode::OK {
                return Err(FetchError::Status(status.as_u16()));
            }
            let content_type =
                response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
            if !content_type.is_some_and(|t| want.matches(t)) {
                return Err(FetchError::WrongType);
            }
            let declared = response
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            if declared.is_some_and(|len| len > max_bytes as u64) {
                return Err(FetchError::TooLarge);
            }
            let body =
                Limited::new(response.into_body(), max_bytes).collect().await.map_err(|e| {
                    if e.downcast_ref::<LengthLimitError>().is_some() {
                        FetchError::TooLarge
                    } else {
                        FetchError::Http
                    }
                })?;
            return Ok(Fetched { url, body: body.to_bytes() });
        }
        Err(FetchError::TooManyRedirects)
    }

    /// One request: check the URL, resolve and check its host, connect to
    /// the checked address, send a GET and return the answer's head and body.
    async fn hop(
        &self,
        url: &Url,
        want: Want,
    ) -> Result<http::Response<hyper::body::Incoming>, FetchError> {
        let https = match url.scheme() {
            "http" => false,
            "https" => true,
            _ => return Err(FetchError::BadUrl),
        };
        let port = url.port_or_known_default().ok_or(FetchError::BadUrl)?;
        if !self.ports.contains(&port) {
            return Err(FetchError::Port(port));
        }
        let host = url.host().ok_or(FetchError::BadUrl)?;
        let target = self.checked_address(&host, port).await?;
        let tcp = TcpStream::connect(target).await.map_err(|_| FetchError::Connect)?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = if https {
            let name = match &host {
                Host::Domain(d) => ServerName::try_from((*d).to_owned()),
                Host::Ipv4(ip) => Ok(ServerName::from(IpAddr::V4(*ip))),
                Host::Ipv6(ip) => Ok(ServerName::from(IpAddr::V6(*ip))),
            }
            .map_err(|_| FetchError::BadUrl)?;
            let connector = tokio_rustls::TlsConnector::from(self.tls.clone());
            Box::new(connector.connect(name, tcp).await.map_err(|_| FetchError::Tls)?)
        } else {
            Box::new(tcp)
        };
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|_| FetchError::Http)?;
        // The connection task ends when the answer is read or dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let authority = &url[Position::BeforeHost..Position::AfterPort];
        let request = Request::get(&url[Position::BeforePath..Position::AfterQuery])
            .header(header::HOST, HeaderValue::from_str(authority).map_err(|_| FetchError::BadUrl)?)
            .header(header::USER_AGENT, USER_AGENT)
            .header(header::ACCEPT, want.accept())
            .body(Empty::<Bytes>::new())
            .map_err(|_| FetchError::BadUrl)?;
        sender.send_request(request).await.map_err(|_| FetchError::Http)
    }

    /// Resolves `host` once and returns the address to connect to, after
    /// checking every address the name resolved to: one non-public answer
    /// refuses the host, so a name cannot mix a public and a private address.
    async fn checked_address(
        &self,
        host: &Host<&str>,
        port: u16,
    ) -> Result<SocketAddr, FetchError> {
        let addresses: Vec<SocketAddr> = match host {
            Host::Ipv4(ip) => vec![SocketAddr::new(IpAddr::V4(*ip), port)],
            Host::Ipv6(ip) => vec![SocketAddr::new(IpAddr::V6(*ip), port)],
            Host::Domain(name) => tokio::net::lookup_host((*name, port))
                .await
                .map_err(|_| FetchError::Resolve)?
                .collect(),
        };
        let first = *addresses.first().ok_or(FetchError::Resolve)?;
        if !self.allow_private && !addresses.iter().all(|a| address::is_public(a.ip())) {
            return Err(FetchError::Blocked);
        }
        Ok(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::FETCH_FAILURES;

    #[test]
    fn every_failure_has_a_metric_label() {
        let all = [
            FetchError::BadUrl,
            FetchError::Port(8080),
            FetchError::Blocked,
            FetchError::Resolve,
            FetchError::Connect,
            FetchError::Tls,
            FetchError::Http,
            FetchError::Status(500),
            FetchError::TooManyRedirects,
            FetchError::WrongType,
            FetchError::TooLarge,
            FetchError::Timeout,
        ];
        for e in all {
            assert!(FETCH_FAILURES.contains(&e.code()), "{e:?}");
        }
    }
}
