//! Opening connections: TCP or TLS streams, one HTTP/1.1 request on them
//! (aux-srv's API), and websocket handshakes.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;

use crate::error::CliError;

/// A byte stream, plain or TLS.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub type Stream = Box<dyn Io>;
pub type Socket = WebSocketStream<Stream>;

/// Largest answer body read from aux-srv (its answers are small JSON).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Opens streams with one TLS configuration and one time limit per step.
#[derive(Clone)]
pub struct Connector {
    tls: Arc<ClientConfig>,
    timeout: Duration,
}

/// An HTTP answer: status and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Connector {
    pub fn new(tls: Arc<ClientConfig>, timeout: Duration) -> Connector {
        Connector { tls, timeout }
    }

    /// A stream to the host of `uri` (`http`/`ws` plain, `https`/`wss` TLS).
    async fn open(&self, uri: &Uri) -> Result<Stream, CliError> {
        let unreachable = |why: String| CliError::Unreachable { target: uri.to_string(), why };
        let secure = matches!(uri.scheme_str(), Some("https" | "wss"));
        let host = uri.host().ok_or_else(|| unreachable("no host".into()))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect((host, port)))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        tcp.set_nodelay(true).map_err(|e| unreachable(e.to_string()))?;
        if !secure {
            return Ok(Box::new(tcp));
        }
        let name = ServerName::try_from(host.to_owned()).map_err(|e| unreachable(e.to_string()))?;
        let tls = TlsConnector::from(self.tls.clone());
        let stream = tokio::time::timeout(self.timeout, tls.connect(name, tcp))
            .await
            .map_err(|_| unreachable("TLS handshake timed out".into()))?
            // A certificate we do not trust will not become trusted by
            // retrying: that needs a person (`--ca-file`).
            .map_err(|e| CliError::Tls(format!("{uri}: {e}")))?;
        Ok(Box::new(stream))
    }

    /// One request on a fresh connection; the whole answer, bounded.
    pub async fn request(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> Result<Answer, CliError> {
        let bad = |why: String| CliError::BadAnswer { url: url.to_owned(), why };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL".into()))?;
        let stream = self.open(&uri).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| bad(e.to_string()))?;
        tokio::spawn(connection);
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default().to_owned();
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/").to_owned();
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, authority)
            .header(header::USER_AGENT, concat!("instantchat-cli/", env!("CARGO_PKG_VERSION")))
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(Full::new(Bytes::from(body))).map_err(|e| bad(e.to_string()))?;
        let exchange = async {
            let resp = sender.send_request(req).await.map_err(|e| bad(e.to_string()))?;
            let status = resp.status().as_u16();
            let limited = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER_BYTES);
            let body = limited.collect().await.map_err(|e| bad(e.to_string()))?.to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(self.timeout, exchange).await.map_err(|_| bad("timed out".into()))?
    }

    /// A websocket to `url` (`ws://` or `wss://`).
    pub async fn websocket(&self, url: &str) -> Result<Socket, CliError> {
        let unreachable = |why: String| CliError::Unreachable { target: url.to_owned(), why };
        let uri: Uri = url.parse().map_err(|_| unreachable("not a URL".into()))?;
        let stream = self.open(&uri).await?;
        let handshake = tokio_tungstenite::client_async(url, stream);
        let (socket, _) = tokio::time::timeout(self.timeout, handshake)
            .await
            .map_err(|_| unreachable("websocket handshake timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(socket)
    }
}
