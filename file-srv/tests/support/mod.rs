//! Shared by the integration tests: a real file-srv on `127.0.0.1:0`, a raw
//! HTTP/1.1 client (needed for lying headers and half-sent bodies), and PNGs
//! built by hand.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::config::FileSrvConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const PUBLIC_URL: &str = "http://files.test:8085";

pub struct Server {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Test defaults: the production limits, a data folder inside `root`.
pub fn config(root: &Path) -> FileSrvConfig {
    FileSrvConfig {
        data_dir: root.join("files").to_string_lossy().into_owned(),
        public_url: format!("{PUBLIC_URL}/"),
        upload_rate_per_min: 6000,
        upload_burst: 1000,
        shutdown_grace_ms: 2_000,
        ..FileSrvConfig::default()
    }
}

pub async fn start(config: FileSrvConfig) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data_dir = PathBuf::from(&config.data_dir);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(file_srv::run(listener, config, async {
        let _ = stopped.await;
    }));
    // Connections queue in the listener's backlog until start-up is done, so
    // the first answer means the store is open.
    assert_eq!(get(addr, "/readyz").await.status, 200);
    Server { addr, data_dir, stop: Some(stop), task }
}

impl Server {
    /// Starts the drain and returns the server task, to await when the test wants.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.begin_shutdown();
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("run() returns after shutdown")
            .unwrap()
            .unwrap();
        started.elapsed()
    }

    pub async fn wait_stopped(&mut self, limit: Duration) -> anyhow::Result<()> {
        tokio::time::timeout(limit, &mut self.task).await.expect("run() returned in time").unwrap()
    }

    /// Names of the stored drawings, sorted.
    pub fn stored(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.data_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "tmp")
            .collect();
        names.sort();
        names
    }

    /// Files left in `tmp/`.
    pub fn temp_files(&self) -> usize {
        std::fs::read_dir(self.data_dir.join("tmp")).unwrap().count()
    }

    pub async fn metrics(&self) -> String {
        let reply = get(self.addr, "/metrics").await;
        assert_eq!(reply.status, 200);
        String::from_utf8(reply.body).unwrap()
    }

    /// The value of one sample line, e.g. `instantchat_files_stored`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// Polls `check` until it holds; for states that no event announces.
pub async fn eventually(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- raw HTTP --

#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Bytes that came after this reply in the same read.
    pub rest: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// The contract's error body: asserts its shape, returns its code.
    pub fn error_code(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        let v = self.json();
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        v["error"]["code"].as_str().unwrap().to_owned()
    }
}

/// Reads one response. `head` says whether it answers a HEAD request.
pub async fn read_reply(stream: &mut (impl AsyncReadExt + Unpin), head: bool) -> Reply {
    let mut buf = Vec::new();
    let header_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let mut chunk = [0; 4096];
        let n = stream.read(&mut chunk).await.expect("reading the reply");
        assert!(n > 0, "connection closed before a reply: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head_text = String::from_utf8(buf[..header_end].to_vec()).unwrap();
    let mut lines = head_text.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let mut body = buf[header_end..].to_vec();
    let mut rest = Vec::new();
    let length =
        headers.iter().find(|(n, _)| n == "content-length").map(|(_, v)| v.parse().unwrap());
    let bodiless = head || status == 204 || status == 304 || (100..200).contains(&status);
    if !bodiless {
        assert!(
            !headers.iter().any(|(n, _)| n == "transfer-encoding"),
            "chunked replies unexpected"
        );
        match length {
            Some(len) if body.len() >= len => rest = body.split_off(len),
            Some(len) => {
                while body.len() < len {
                    let mut chunk = vec![0; len - body.len()];
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "body cut short");
                    body.extend_from_slice(&chunk[..n]);
                }
            }
            None => {
                stream.read_to_end(&mut body).await.unwrap();
            }
        }
    }
    if bodiless {
        rest = std::mem::take(&mut body);
    }
    Reply { status, headers, body, rest }
}

/// Sends `head` (request line and headers, without the blank line) and
/// `body`, and reads the reply while the body is still being written: the
/// server may answer (and stop reading) before the body is through.
pub async fn exchange(addr: SocketAddr, head: &str, body: &[u8]) -> Reply {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let mut request = format!("{head}\r\nHost: {addr}\r\n\r\n").into_bytes();
    request.extend_from_slice(body);
    let writer = tokio::spawn(async move {
        // Errors are expected when the server refuses early and closes.
        let _ = write.write_all(&request).await;
        write
    });
    let is_head = head.starts_with("HEAD ");
    let reply = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut read, is_head))
        .await
        .expect("a reply in time");
    writer.abort();
    reply
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    exchange(addr, &format!("GET {path} HTTP/1.1\r\nConnection: close"), b"").await
}

pub async fn post_png(addr: SocketAddr, png: &[u8]) -> Reply {
    post_with(addr, png, "").await
}

/// A `POST /files` with extra header lines (`"X-A: 1\r\nX-B: 2"`).
pub async fn post_with(addr: SocketAddr, png: &[u8], extra: &str) -> Reply {
    let extra = if extra.is_empty() { String::new() } else { format!("\r\n{extra}") };
    let head = format!(
        "POST /files HTTP/1.1\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close{extra}",
        png.len()
    );
    exchange(addr, &head, png).await
}

/// Uploads and returns the id, asserting a 201.
pub async fn upload(addr: SocketAddr, png: &[u8]) -> String {
    let reply = post_png(addr, png).await;
    assert_eq!(reply.status, 201, "{:?}", String::from_utf8_lossy(&reply.body));
    reply.json()["id"].as_str().unwrap().to_owned()
}

// -------------------------------------------------------------------- PNGs --

pub fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

pub fn ihdr(width: u32, height: u32) -> Vec<u8> {
    let mut data = width.to_be_bytes().to_vec();
    data.extend_from_slice(&height.to_be_bytes());
    data.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale
    chunk(b"IHDR", &data)
}

/// A real, decodable greyscale PNG (stored zlib, so its size is predictable:
/// about `height * (width + 1)` bytes plus ~70). `seed` varies the pixels.
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let mut raw = Vec::with_capacity((height * (width + 1)) as usize);
    for y in 0..height {
        raw.push(0); // filter: none
        raw.extend((0..width).map(|x| (x as u8).wrapping_mul(3) ^ (y as u8) ^ seed));
    }
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::none());
    z.write_all(&raw).unwrap();
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(ihdr(width, height));
    out.extend(chunk(b"IDAT", &idat));
    out.extend(chunk(b"IEND", b""));
    out
}

/// What the server must answer as the id: the first 128 bits of SHA-256.
pub fn expected_id(png: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(png)[..16].iter().map(|b| format!("{b:02x}")).collect()
}
