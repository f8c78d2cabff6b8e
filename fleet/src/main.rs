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

async fn run(args: Args) -> anyhow::Result<()> {
    let ports = bind_all(args.ephemeral).await?;
    let aux_addr = ports.aux.local_addr()?;
    let aux_url = format!("http://{aux_addr}");
    let files_addr = ports.files.local_addr()?;
    let files_url = format!("http://{files_addr}");
    // The page may be opened as 127.0.0.1 or as localhost.
    let origins = vec![aux_url.clone(), format!("http://localhost:{}", aux_addr.port())];
    let control_token = random_token();
    let admin_token = args.admin_token.clone().unwrap_or_else(random_token);
    // file-srv's listener is reachable from the browser here: only the backends
    // may ask it for link previews.
    let preview_token = random_token();
    let temp_data = args.ephemeral && args.data_dir.is_none();
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None if args.ephemeral => std::env::temp_dir().join(format!(
            "instantchat-{}-{}",
            std::process::id(),
            random_token()
        )),
        None => PathBuf::from("data/files"),
    };
    let web_root = args.web_root.clone().unwrap_or_else(default_web_root);
    if !web_root.join("index.html").is_file() {
        tracing::warn!(web_root = %web_root.display(), "no index.html in the web root: pages will be missing");
    }

    let stop = CancellationToken::new();
    let mut services = tokio::task::JoinSet::new();
    let mut entries = Vec::new();
    let mut ws_urls = Vec::new();
    for (i, (public, control)) in ports.backends.into_iter().enumerate() {
        let id = format!("b{}", i + 1);
        let listeners = backend::Listeners { public, control };
        let config = listeners.configure(BackendConfig {
            id: id.clone(),
            allowed_origins: origins.clone(),
            control_token: control_token.clone(),
            shutdown_grace_ms: 1_000,
            // The whole fleet stops at once: there is nowhere to move rooms to.
            evacuate_on_shutdown: false,
            preview_url: files_url.clone(),
            preview_token: preview_token.clone(),
            defences: Defences { pow: args.pow, ..Defences::default() },
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

    let files_config = FileSrvConfig {
        listen: files_addr,
        data_dir: data_dir.to_string_lossy().into_owned(),
        public_url: files_url.clone(),
        allowed_origins: origins.clone(),
        preview_token,
        shutdown_grace_ms: 1_000,
        ..FileSrvConfig::default()
    };
    let files_config = if args.preview_private_port.is_empty() {
        files_config
    } else {
        let mut ports = files_config.preview_ports.clone();
        ports.extend(&args.preview_private_port);
        FileSrvConfig { preview_allow_private: true, preview_ports: ports, ..files_config }
    };
    let shutdown = stop.clone().cancelled_owned();
    services.spawn(async move {
        ("file-srv".to_owned(), file_srv::run(ports.files, files_config, shutdown).await)
    });

    let admin_addr = ports.admin.local_addr()?;
    let aux_config = AuxConfig {
        listen: aux_addr,
        admin_listen: admin_addr,
        admin_token: admin_token.clone(),
        backends: entries,
        files_url: files_url.clone(),
        control_token,
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
    };
    let listeners = aux_srv::Listeners { public: ports.aux, admin: ports.admin };
    let shutdown = stop.clone().cancelled_owned();
    services.spawn(async move {
        ("aux-srv".to_owned(), aux_srv::run(listeners, aux_config, shutdown).await)
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
        ready = await_ready(&aux_url) => {
            ready?;
            println!(
                "instantchat: listening aux={aux_url} admin=http://{admin_addr} backends={} files={files_url}",
                ws_urls.join(",")
            );
            println!("instantchat: admin token {admin_token}");
            println!("instantchat: open {aux_url}/ in your browser (Ctrl-C stops)");
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
    if temp_data {
        let _ = std::fs::remove_dir_all(&data_dir);
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
