//! Start-up every instantchat binary shares: read the config (TOML file and
//! `INSTANTCHAT_*` environment), set up logging, bind, run until SIGTERM or
//! SIGINT, and exit with a one-line error naming the cause.
//!
//! This is the I/O half of `common`, kept out of it: **`common` does no I/O**.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use common::config::{ConfigFile, Validate};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpListener, TcpSocket};

/// Sets up logging, runs `serve` on a multi-threaded runtime, and turns its
/// error into one line on stderr (`backend: bad configuration key …`).
pub fn main<F, Fut>(name: &str, serve: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    init_tracing();
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the runtime")
        .and_then(|runtime| runtime.block_on(serve()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "{name} failed");
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// JSON lines when `INSTANTCHAT_LOG_FORMAT=json`, else human-readable; the
/// level from `RUST_LOG` (default `info`). Logs go to stdout.
pub fn init_tracing() {
    init_tracing_to(std::io::stdout);
}

/// [`init_tracing`], writing to `writer` (the one-process fleet keeps stdout
/// for the lines a person or a script reads, and logs to stderr).
pub fn init_tracing_to<W>(writer: W)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    if std::env::var("INSTANTCHAT_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Layers the defaults, the TOML file at `path` (if any) and the process
/// environment, as `common::config::load` describes.
pub fn load_config<T>(path: Option<&Path>) -> anyhow::Result<T>
where
    T: Default + Serialize + DeserializeOwned + Validate,
{
    let contents = match path {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?,
        ),
        None => None,
    };
    let shown = path.map(|p| p.display().to_string()).unwrap_or_default();
    let file = contents.as_deref().map(|contents| ConfigFile { path: &shown, contents });
    Ok(common::config::load(file, std::env::vars())?)
}

/// Pending connections a listener queues. `TcpListener::bind` asks for
/// 1024, which a join storm overflows: every overflow costs that client a
/// SYN retransmit, a whole second (the kernel caps this at
/// `net.core.somaxconn`).
pub const LISTEN_BACKLOG: u32 = 8192;

/// Binds `addr` (as `TcpListener::bind` does, with a deeper backlog), naming
/// the config key in the error.
pub async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    let context = || format!("cannot listen on {addr} ({key})");
    let socket = if addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
        .with_context(context)?;
    #[cfg(unix)]
    socket.set_reuseaddr(true).with_context(context)?;
    socket.bind(addr).with_context(context)?;
    socket.listen(LISTEN_BACKLOG).with_context(context)
}

/// Resolves on SIGTERM (what service managers send) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}
