//! A real file-srv on an ephemeral port of 127.0.0.1, with its data folder
//! where a test can look into it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::config::FileSrvConfig;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::raw_http::{RawReply, exchange, raw_get};
use crate::{WAIT, metrics};

/// The public URL test file-srv configs name (never connected to).
pub const PUBLIC_URL: &str = "http://files.test:8085";

/// Test defaults: the production limits, generous upload rates, a data
/// folder inside `root`.
pub fn files_config(root: &Path) -> FileSrvConfig {
    FileSrvConfig {
        data_dir: root.join("files").to_string_lossy().into_owned(),
        public_url: format!("{PUBLIC_URL}/"),
        upload_rate_per_min: 6000,
        upload_burst: 1000,
        shutdown_grace_ms: 2_000,
        ..FileSrvConfig::default()
    }
}

/// A file-srv storing into a fresh temporary folder, its [`files_config`]
/// changed by `adjust`; the folder goes when the returned guard drops.
pub async fn files_in_temp(
    adjust: impl FnOnce(&mut FileSrvConfig),
) -> (TestFiles, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    let mut config = files_config(root.path());
    adjust(&mut config);
    (start_files(config).await, root)
}

/// An upload of `png` that has sent its head and only the first `sent`
/// bytes of its body: the rest is for the test to send, or not.
pub async fn partial_upload(addr: SocketAddr, png: &[u8], sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("POST /files HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", png.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&png[..sent]).await.unwrap();
    stream
}

pub struct TestFiles {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Starts file-srv and waits for its first answer.
pub async fn start_files(config: FileSrvConfig) -> TestFiles {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let data_dir = PathBuf::from(&config.data_dir);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(file_srv::run(listener, config, async {
        let _ = stopped.await;
    }));
    // Connections queue in the listener's backlog until start-up is done, so
    // the first answer means the store is open.
    assert_eq!(raw_get(addr, "/readyz").await.status, 200);
    TestFiles { addr, data_dir, stop: Some(stop), task }
}

impl TestFiles {
    /// Starts the drain, as SIGTERM would, without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts down and returns how long `run` took to return.
    pub async fn stop(mut self) -> Duration {
        let started = Instant::now();
        self.begin_shutdown();
        tokio::time::timeout(WAIT, &mut self.task)
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
        let reply = raw_get(self.addr, "/metrics").await;
        assert_eq!(reply.status, 200);
        String::from_utf8(reply.body).unwrap()
    }

    /// The value of one sample line, e.g. `instantchat_files_stored`;
    /// fails the test when there is none.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        metrics::metric_sample(&text, sample)
            .unwrap_or_else(|| panic!("no sample {sample} in\n{text}"))
    }
}

pub async fn post_png(addr: SocketAddr, png: &[u8]) -> RawReply {
    post_with(addr, png, "").await
}

/// A `POST /files` with extra header lines (`"X-A: 1\r\nX-B: 2"`).
pub async fn post_with(addr: SocketAddr, png: &[u8], extra: &str) -> RawReply {
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
    assert_eq!(reply.status, 201, "{:?}", reply.text());
    reply.json()["id"].as_str().unwrap().to_owned()
}

/// What file-srv must answer as the id: the first 128 bits of SHA-256.
pub fn expected_id(png: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(png)[..16].iter().map(|b| format!("{b:02x}")).collect()
}
