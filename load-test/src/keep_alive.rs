//! One HTTP/1.1 keep-alive connection, written by hand over a socket bound
//! to a chosen source address: the `aux` scenario's client.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::{Context, anyhow, bail};
use tokio::net::{TcpSocket, TcpStream};

use crate::net::{REQUEST_TIMEOUT, resolve};

/// One HTTP/1.1 keep-alive connection used as a browser uses one: a request,
/// its whole answer, then the next request (no pipelining), reconnecting
/// when the server closed it. Unlike [`Http`] there is no pool and no
/// connection task to wake per request: the `aux` scenario measures
/// aux-srv, and the generator shares its CPU.
pub struct KeepAlive {
    addr: SocketAddr,
    host: String,
    source: Option<Ipv4Addr>,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl KeepAlive {
    /// A connection (opened on first use) to `base` (`http://host:port`).
    pub async fn new(base: &str, source: Option<Ipv4Addr>) -> anyhow::Result<Self> {
        let host = base
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("only http:// can be load-tested here, not `{base}`"))?
            .trim_end_matches('/')
            .to_owned();
        let (name, port) = match host.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), p.parse().context("bad port")?),
            None => (host.clone(), 80),
        };
        let addr = resolve(&name, port).await?;
        Ok(KeepAlive { addr, host, source, stream: None, buf: Vec::with_capacity(1024) })
    }

    /// `method path` with a JSON `body`; the status and the body of the answer.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &str,
    ) -> anyhow::Result<(u16, &[u8])> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.host,
            body.len()
        );
        let reused = self.stream.is_some();
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(head.as_bytes())).await;
        let range = match answer {
            Ok(Ok(range)) => range,
            // A kept-alive connection the server closed meanwhile: once more
            // on a new one, as browsers do.
            Ok(Err(_)) if reused => {
                tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(head.as_bytes()))
                    .await
                    .map_err(|_| anyhow!("request timed out"))??
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                self.stream = None;
                bail!("request timed out");
            }
        };
        let (status, start, end) = range;
        Ok((status, &self.buf[start..end]))
    }

    /// Sends one request and reads its answer into `buf`: the status and
    /// where the body is.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<(u16, usize, usize)> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if self.stream.is_none() {
            let socket = TcpSocket::new_v4().context("socket")?;
            if let Some(ip) = self.source {
                let _ = nix::sys::socket::setsockopt(
                    &socket,
                    nix::sys::socket::sockopt::IpBindAddressNoPort,
                    &true,
                );
                socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).context("bind")?;
            }
            let stream = socket.connect(self.addr).await.context("connect")?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut().expect("connected above");
        let result = async {
            stream.write_all(request).await?;
            self.buf.clear();
            loop {
                if let Some(parsed) = parse_response(&self.buf)? {
                    return anyhow::Ok(parsed);
                }
                if self.buf.capacity() - self.buf.len() < 512 {
                    self.buf.reserve(4096);
                }
                if stream.read_buf(&mut self.buf).await? == 0 {
                    bail!("connection closed");
                }
            }
        }
        .await;
        match result {
            Ok((status, start, end, keep)) => {
                if !keep {
                    self.stream = None;
                }
                Ok((status, start, end))
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

/// A whole response in `buf`: status, body start and end, and whether the
/// connection stays open; `None` while more bytes are needed.
fn parse_response(buf: &[u8]) -> anyhow::Result<Option<(u16, usize, usize, bool)>> {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("bad status line `{status_line}`"))?;
    let mut length = None;
    let mut keep = true;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad content-length")?);
        } else if name.eq_ignore_ascii_case("connection") && value.eq_ignore_ascii_case("close") {
            keep = false;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked answers are not expected from aux-srv's API");
        }
    }
    let start = head_end + 4;
    let end = start + length.unwrap_or(0);
    Ok((buf.len() >= end).then_some((status, start, end, keep)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_read_whole() {
        let full = b"HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nConnection: close\r\n\r\n{}";
        assert_eq!(parse_response(full).unwrap(), Some((404, full.len() - 2, full.len(), false)));
        assert_eq!(parse_response(&full[..full.len() - 1]).unwrap(), None);
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\n").unwrap(), None);
        let empty = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(parse_response(empty).unwrap(), Some((200, empty.len(), empty.len(), true)));
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").is_err());
    }
}
