//! Real clients: HTTP/1.1 (hyper) and websockets (tokio-tungstenite), over
//! plain TCP or TLS (rustls trusting a test CA), optionally from a chosen
//! loopback source address (to be a different client to the rate limits).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::tools;

/// A TCP or TLS connection.
#[derive(Debug)]
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type WebSocket = WebSocketStream<Stream>;

/// Where a client talks to: `http://host:port` or `https://host:port`,
/// connecting to `addr` (the host name is only for Host, SNI and URLs).
#[derive(Clone)]
pub struct Origin {
    pub host: String,
    pub addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
    local_ip: Option<IpAddr>,
}

/// An answer, read in full.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {}", self.status, self.text()))
    }

    /// The contract's error code, `{"error": {"code"}}`.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }
}

impl Origin {
    /// `http://{addr}`.
    pub fn plain(addr: SocketAddr) -> Origin {
        Origin { host: addr.ip().to_string(), addr, tls: None, local_ip: None }
    }

    /// `https://{host}:{port}`, trusting `ca`.
    pub fn tls(host: &str, addr: SocketAddr, ca: &TestCa) -> Origin {
        Origin { host: host.to_owned(), addr, tls: Some(ca.client_config()), local_ip: None }
    }

    /// `http://{host}:{port}` (or https, trusting the CA certificates in
    /// `ca_pem`), connecting to `addr` whatever DNS says about `host`.
    pub fn named(host: &str, addr: SocketAddr, ca_pem: Option<&Path>) -> Origin {
        let tls = ca_pem.map(client_config_trusting);
        Origin { host: host.to_owned(), addr, tls, local_ip: None }
    }

    /// The same origin, connecting from `ip` (another loopback address).
    pub fn from_ip(&self, ip: IpAddr) -> Origin {
        Origin { local_ip: Some(ip), ..self.clone() }
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// `scheme://host:port`, what a browser's Origin header says (without
    /// the scheme's default port, as browsers write it).
    pub fn url(&self) -> String {
        let default_port = if self.tls.is_some() { 443 } else { 80 };
        if self.addr.port() == default_port {
            format!("{}://{}", self.scheme(), self.host)
        } else {
            format!("{}://{}:{}", self.scheme(), self.host, self.addr.port())
        }
    }

    pub async fn connect(&self) -> io::Result<Stream> {
        let socket = if self.addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
        if let Some(ip) = self.local_ip {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let tcp = socket.connect(self.addr).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Stream::Plain(tcp)),
            Some(config) => {
                let name = ServerName::try_from(self.host.clone())
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
                let tls =
                    tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp).await?;
                Ok(Stream::Tls(Box::new(tls)))
            }
        }
    }

    /// One request on a new connection.
    pub async fn try_request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Response> {
        let stream = self.connect().await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", format!("{}:{}", self.host, self.addr.port()));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into()))?;
        let response = tokio::time::timeout(crate::WAIT, sender.send_request(request)).await??;
        let (parts, body) = response.into_parts();
        let body = tokio::time::timeout(crate::WAIT, body.collect()).await??.to_bytes();
        Ok(Response { status: parts.status.as_u16(), headers: parts.headers, body })
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Response {
        let what = format!("{method} {}{path}", self.url());
        self.try_request(method, path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:#}"))
    }

    pub async fn try_get(&self, path: &str) -> anyhow::Result<Response> {
        self.try_request(Method::GET, path, &[], Bytes::new()).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path, &[], Bytes::new()).await
    }

    /// A websocket to `url` (`ws(s)://host:port/path`, which must name this
    /// origin), with `Origin: browser_origin` when given.
    pub async fn websocket(
        &self,
        url: &str,
        browser_origin: Option<&str>,
    ) -> Result<WebSocket, tokio_tungstenite::tungstenite::Error> {
        let expected = self.url().replacen("http", "ws", 1);
        assert!(
            url.starts_with(&format!("{expected}/")),
            "websocket URL {url} is not on this origin ({expected})"
        );
        let mut request = url.into_client_request()?;
        if let Some(origin) = browser_origin {
            request.headers_mut().insert("origin", origin.parse().expect("header value"));
        }
        let stream = self.connect().await?;
        let (ws, _) = tokio_tungstenite::client_async(request, stream).await?;
        Ok(ws)
    }
}

/// A certificate authority and a server certificate for `localhost` and
/// `127.0.0.1`, made with Debian's openssl in a temporary folder.
pub struct TestCa {
    pub dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        let openssl = |args: &[&str]| {
            tools::run_ok("openssl", tools::command("openssl").current_dir(d).args(args));
        };
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec[..],
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=instantchat deploy-check CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ][..],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec[..],
                &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"][..],
            ]
            .concat(),
        );
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        TestCa { dir }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A rustls client that trusts only this CA, speaking HTTP/1.1.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config_trusting(&self.ca())
    }
}

/// A rustls client that trusts only the CA certificates in the PEM file
/// `ca_pem`, speaking HTTP/1.1.
pub fn client_config_trusting(ca_pem: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_pem)
        .unwrap_or_else(|e| panic!("read {}: {e}", ca_pem.display()));
    for cert in certs {
        roots.add(cert.expect("a PEM certificate")).expect("a CA certificate");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
