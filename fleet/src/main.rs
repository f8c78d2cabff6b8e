//! `instantchat`: the whole local fleet in one process — aux-srv, two
//! backends and file-srv on the contract's default ports (or ephemeral ones
//! with `--ephemeral`), pointing at each other. Prints the URL to open; a
//! start-up error is one line on stderr, as for every service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use common::config::{AuxConfig, BackendConfig, BackendEntry, Defences, FileSrvConfig, PowMode};
use rand::Rng;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(name = "instantchat", about = "Runs a whole instantchat fleet locally, in one process")]
struct Args {
    /// Listen on ephemeral ports of 127.0.0.1 instead of the defaults
    /// (8080, 8090, 9001/9101, 9002/9102, 8085) and keep drawings in a
    /// temporary folder.
    #[arg(long)]
    ephemeral: bool,
    /// Folder of the web UI (default: `web` here, else the source tree's).
    #[arg(long, value_name = "PATH")]
    web_root: Option<PathBuf>,
    /// Bearer token of the admin API (default: a random one, printed).
    #[arg(long, value_name = "TOKEN")]
    admin_token: Option<String>,
    /// Where drawings are stored (default: `data/files`, or a temporary
    /// folder with `--ephemeral`).
    #[arg(long, value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// For tests only: link previews may fetch from loopback and private
    /// addresses, on this port too (repeatable) — a test site on 127.0.0.1.
    /// Never on a public server: it opens file-srv's fetches to the network
    /// it runs in.
    #[arg(long, value_name = "PORT")]
    preview_private_port: Vec<u16>,
    /// When joins must solve a proof-of-work puzzle (the backends'
    /// `defences.pow`: off, auto or always).
    #[arg(long, value_name = "MODE", default_value = "auto", value_parser = parse_pow)]
    pow: PowMode,
}

fn parse_pow(text: &str) -> Result<PowMode, String> {
    match text {
        "off" => Ok(PowMode::Off),
        "auto" => Ok(PowMode::Auto),
        "always" => Ok(PowMode::Always),
        _ => Err("one of off, auto, always".into()),
    }
}

fn random_token() -> String {
    let mut rng = rand::rng();
    (0..32).map(|_| format!("{:x}", rng.random_range(0..16u8))).collect()
}

fn default_web_root() -> PathBuf {
    let here = PathBuf::from("web");
    if here.join("index.html").is_file() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("web")
}

async fn bind(ephemeral: bool, port: u16, what: &str) -> anyhow::Result<TcpListener> {
    let addr = SocketAddr::from(([127, 0, 0, 1], if ephemeral { 0 } else { port }));
    TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} for {what} (is instantchat already running? --ephemeral picks free ports)")
    })
}

struct Ports {
    aux: TcpListener,
    admin: TcpListener,
    backends: Vec<(TcpListener, TcpListener)>,
    files: TcpListener,
}

async fn bind_all(ephemeral: bool) -> anyhow::Result<Ports> {
    Ok(Ports {
        aux: bind(ephemeral, 8080, "aux-srv").await?,
        admin: bind(ephemeral, 8090, "the admin API").await?,
        backends: vec![
            (
                bind(ephemeral, 9001, "backend b1").await?,
                bind(ephemeral, 9101, "backend b1's control").await?,
            ),
            (
                bind(ephemeral, 9002, "backend b2").await?,
                bind(ephemeral, 9102, "backend b2's control").await?,
            ),
        ],
        files: bind(ephemeral, 8085, "file-srv").await?,
    })
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // stdout is for the lines a person or a test script reads.
    startup::init_tracing_to_stderr();
    startup::run_to_exit("instantchat", || run(args))
}

/// What the services are told about each other: addresses and shared secrets.
struct Wiring {
    aux_url: String,
    files_url: String,
    /// The page may be opened as 127.0.0.1 or as localhost.
    origins: Vec<String>,
    control_token: String,
    admin_token: String,
    /// file-srv's listener is reachable from the browser here: only the
    /// backends may ask it for link previews.
    preview_token: String,
}

impl Wiring {
    fn new(args: &Args, aux_addr: SocketAddr, files_addr: SocketAddr) -> Wiring {
        let aux_url = format!("http://{aux_addr}");
        Wiring {
            origins: vec![aux_url.clone(), format!("http://localhost:{}", aux_addr.port())],
            aux_url,
            files_url: format!("http://{files_addr}"),
            control_token: random_token(),
            admin_token: args.admin_token.clone().unwrap_or_else(random_token),
            preview_token: random_token(),
        }
    }
}

/// The services, each reporting its name and how it ended.
type Services = tokio::task::JoinSet<(String, anyhow::Result<()>)>;

/// Starts the backends; returns aux-srv's entries for them and their
/// websocket URLs.
fn spawn_backends(
    services: &mut Services,
    ports: Vec<(TcpListener, TcpListener)>,
    wiring: &Wiring,
    pow: PowMode,
    stop: &CancellationToken,
) -> anyhow::Result<(Vec<BackendEntry>, Vec<String>)> {
    let mut entries = Vec::new();
    let mut ws_urls = Vec::new();
    for (i, (public, control)) in ports.into_iter().enumerate() {
        let id = format!("b{}", i + 1);
        let listeners = backend::Listeners { public, control };
        let config = listeners.configure(BackendConfig {
            id: id.clone(),
            allowed_origins: wiring.origins.clone(),
            control_token: wiring.control_token.clone(),
            shutdown_grace_ms: 1_000,
            // The whole fleet stops at once: there is nowhere to move rooms to.
            evacuate_on_shutdown: false,
            preview_url: wiring.files_url.clone(),
            preview_token: wiring.preview_token.clone(),
            defences: Defences { pow, ..Defences::default() },
            ..BackendConfig::default()
        })?;
        ws_urls.push(config.public_url.clone());
        entries.push(BackendEntry {
            id: id.clone(),
            control_addr: config.control_listen.to_string(),
            public_url: None,
        });
        let shutdown = stop.clone().cancelled_owned();
        services.spawn(async move { (id, backend::run(listeners, config, shutdown).await) });
    }
    Ok((entries, ws_urls))
}

fn files_config(
    args: &Args,
    wiring: &Wiring,
    listen: SocketAddr,
    data_dir: &Path,
) -> FileSrvConfig {
    let config = FileSrvConfig {
        listen,
        data_dir: data_dir.to_string_lossy().into_owned(),
        public_url: wiring.files_url.clone(),
        allowed_origins: wiring.origins.clone(),
        preview_token: wiring.preview_token.clone(),
        shutdown_grace_ms: 1_000,
        ..FileSrvConfig::default()
    };
    if args.preview_private_port.is_empty() {
        return config;
    }
    let mut ports = config.preview_ports.clone();
    ports.extend(&args.preview_private_port);
    FileSrvConfig { preview_allow_private: true, preview_ports: ports, ..config }
}

fn aux_config(
    wiring: &Wiring,
    listen: SocketAddr,
    admin_listen: SocketAddr,
    backends: Vec<BackendEntry>,
    web_root: &Path,
) -> AuxConfig {
    AuxConfig {
        listen,
        admin_listen,
        admin_token: wiring.admin_token.clone(),
        backends,
        files_url: wiring.files_url.clone(),
        control_token: wiring.control_token.clone(),
        web_root: web_root.to_string_lossy().into_owned(),
        poll_interval_ms: 1_000,
        backend_retry_max_ms: 5_000,
        // One person clicking around (or a browser test suite) creates
        // rooms much faster than the public defaults allow.
        room_create_per_minute: 600,
        room_create_burst: 100,
        http_post_per_minute: 600,
        http_post_burst: 100,
        shutdown_drain_ms: 0,
        shutdown_grace_ms: 1_000,
        ..AuxConfig::default()
    }
}

/// Where drawings go, and whether the folder is ours to remove at the end.
fn data_dir(args: &Args) -> (PathBuf, bool) {
    match &args.data_dir {
        Some(dir) => (dir.clone(), false),
        None if args.ephemeral => {
            let name = format!("instantchat-{}-{}", std::process::id(), random_token());
            (std::env::temp_dir().join(name), true)
        }
        None => (PathBuf::from("data/files"), false),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let ports = bind_all(args.ephemeral).await?;
    let aux_addr = ports.aux.local_addr()?;
    let admin_addr = ports.admin.local_addr()?;
    let files_addr = ports.files.local_addr()?;
    let wiring = Wiring::new(&args, aux_addr, files_addr);
    let (data_dir, temp_data) = data_dir(&args);
    let web_root = args.web_root.clone().unwrap_or_else(default_web_root);
    if !web_root.join("index.html").is_file() {
        tracing::warn!(web_root = %web_root.display(), "no index.html in the web root: pages will be missing");
    }

    let stop = CancellationToken::new();
    let mut services = Services::new();
    let (entries, ws_urls) =
        spawn_backends(&mut services, ports.backends, &wiring, args.pow, &stop)?;
    let config = files_config(&args, &wiring, files_addr, &data_dir);
    let shutdown = stop.clone().cancelled_owned();
    services.spawn(async move {
        ("file-srv".to_owned(), file_srv::run(ports.files, config, shutdown).await)
    });
    let config = aux_config(&wiring, aux_addr, admin_addr, entries, &web_root);
    let listeners = aux_srv::Listeners { public: ports.aux, admin: ports.admin };
    let shutdown = stop.clone().cancelled_owned();
    services.spawn(async move {
        ("aux-srv".to_owned(), aux_srv::run(listeners, config, shutdown).await)
    });
    {
        let stop = stop.clone();
        let signal = startup::shutdown_signal();
        tokio::spawn(async move {
            signal.await;
            stop.cancel();
        });
    }

    tokio::select! {
        ready = await_ready(&wiring.aux_url) => {
            ready?;
            println!(
                "instantchat: listening aux={} admin=http://{admin_addr} backends={} files={}",
                wiring.aux_url,
                ws_urls.join(","),
                wiring.files_url
            );
            println!("instantchat: admin token {}", wiring.admin_token);
            println!("instantchat: open {}/ in your browser (Ctrl-C stops)", wiring.aux_url);
            use std::io::Write;
            let _ = std::io::stdout().flush();
        }
        Some(done) = services.join_next() => {
            stop.cancel();
            report(done)?;
            anyhow::bail!("a service stopped during start-up");
        }
        _ = stop.cancelled() => {}
    }
    let result = supervise(services, &stop).await;
    if temp_data {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}

/// Waits for every service to end; the first to stop on its own stops the
/// others. The first error is the fleet's.
async fn supervise(mut services: Services, stop: &CancellationToken) -> anyhow::Result<()> {
    let mut failed = None;
    while let Some(done) = services.join_next().await {
        if !stop.is_cancelled() {
            tracing::error!("a service stopped on its own; stopping the others");
            stop.cancel();
        }
        if let Err(e) = report(done) {
            failed.get_or_insert(e);
        }
    }
    failed.map_or(Ok(()), Err)
}

fn report(
    done: Result<(String, anyhow::Result<()>), tokio::task::JoinError>,
) -> anyhow::Result<()> {
    match done {
        Ok((_, Ok(()))) => Ok(()),
        Ok((name, Err(e))) => Err(e.context(name)),
        Err(e) => Err(anyhow::anyhow!("a service panicked: {e}")),
    }
}

/// Waits until aux-srv's `/readyz` says 200: its backends are known, so the
/// first room the user creates cannot find the fleet half-started.
async fn await_ready(aux_url: &str) -> anyhow::Result<()> {
    use http_body_util::Empty;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: http::Uri = format!("{aux_url}/readyz").parse()?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(resp) = client.get(uri.clone()).await {
            if resp.status() == http::StatusCode::OK {
                return Ok(());
            }
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "aux-srv did not become ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
