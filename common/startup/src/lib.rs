//! Start-up every instantchat binary shares: read the config (TOML file and
//! `INSTANTCHAT_*` environment), set up logging (colour only on a terminal),
//! bind, run until SIGTERM or SIGINT, and exit with a one-line error naming
//! the cause (its backtrace only with `INSTANTCHAT_BACKTRACE=1`).
//!
//! This is the I/O half of `common`, kept out of it: **`common` does no I/O**.
//!
//! - [`password_pool`]: room-password checks a few at a time, on threads
//!   that reuse their hashing memory (backend and aux-srv both hash).

pub mod password_pool;

use std::future::Future;
use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use common::config::{ConfigFile, Validate};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::{TcpListener, TcpSocket};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Sets up logging (to stdout), runs `serve` on a multi-threaded runtime,
/// and turns its error into one line on stderr (`backend: bad
/// configuration key …`).
pub fn main<F, Fut>(name: &str, serve: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    init_tracing();
    run_to_exit(name, serve)
}

/// [`main`] without setting up logging (the caller did): runs `serve` and
/// reports its error as one line on stderr.
pub fn run_to_exit<F, Fut>(name: &str, serve: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the runtime")
        .and_then(|runtime| runtime.block_on(serve()));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "{name} failed");
            eprintln!("{}", error_report(name, &e, backtrace_requested()));
            ExitCode::FAILURE
        }
    }
}

/// The environment variable that asks for the backtrace of a start-up
/// error. `RUST_BACKTRACE` alone does not: it is often set for other
/// reasons, and an operator needs the one line, not a stack.
pub const BACKTRACE_FLAG: &str = "INSTANTCHAT_BACKTRACE";

fn backtrace_requested() -> bool {
    std::env::var_os(BACKTRACE_FLAG).is_some_and(|v| !v.is_empty() && v != "0")
}

/// `name: cause: cause…` on one line; with `backtrace`, the error's
/// backtrace too (captured when `RUST_BACKTRACE=1` or
/// `RUST_LIB_BACKTRACE=1` is set as well).
pub fn error_report(name: &str, error: &anyhow::Error, backtrace: bool) -> String {
    if backtrace { format!("{name}: {error:?}") } else { format!("{name}: {error:#}") }
}

/// JSON lines when `INSTANTCHAT_LOG_FORMAT=json`, else human-readable; the
/// level from `RUST_LOG` (default `info`). Logs go to stdout, in colour
/// only when stdout is a terminal.
pub fn init_tracing() {
    let ansi = std::io::stdout().is_terminal();
    init_tracing_to(std::io::stdout, ansi);
}

/// [`init_tracing`] to stderr (the one-process fleet keeps stdout for the
/// lines a person or a script reads).
pub fn init_tracing_to_stderr() {
    let ansi = std::io::stderr().is_terminal();
    init_tracing_to(std::io::stderr, ansi);
}

/// [`init_tracing`] to `writer`; ANSI colour codes only when `ansi` (a
/// file or a pipe would keep them as noise).
pub fn init_tracing_to<W>(writer: W, ansi: bool)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    if std::env::var("INSTANTCHAT_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// The command line every service takes: `--config PATH`, `--help`,
/// `--version`.
#[derive(clap::Parser)]
struct ServiceArgs {
    /// TOML config file; `INSTANTCHAT_*` environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// A service binary's whole `main`: parses the command line (`about` is its
/// `--help` line), loads and checks the config, sets up logging and runs
/// `serve(config)` until it returns, exiting as [`main`] does.
pub fn serve<C, F, Fut>(name: &'static str, about: &'static str, serve: F) -> ExitCode
where
    C: Default + Serialize + DeserializeOwned + Validate,
    F: FnOnce(C) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    use clap::{CommandFactory as _, FromArgMatches as _};
    let command = ServiceArgs::command()
        .name(name)
        .bin_name(name)
        .about(about)
        .version(env!("CARGO_PKG_VERSION"));
    let args = ServiceArgs::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    main(name, || async move {
        let config: C = load_config(args.config.as_deref())?;
        serve(config).await
    })
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
///
/// The handlers are installed when this is called, not when the future is
/// first polled: a service logs that it listens before it awaits this, and a
/// SIGTERM that arrives in between must drain, not kill the process with the
/// default action. Call it inside the runtime.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let interrupt = install(SignalKind::interrupt(), "SIGINT");
    let terminate = install(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = wait_for(interrupt) => {}
            () = wait_for(terminate) => {}
        }
        tracing::info!("shutdown requested");
    }
}

fn install(kind: SignalKind, name: &str) -> Option<Signal> {
    signal(kind).inspect_err(|e| tracing::warn!(error = %e, "cannot listen for {name}")).ok()
}

async fn wait_for(signal: Option<Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::error_report;

    fn failure() -> anyhow::Error {
        anyhow::anyhow!("Address already in use").context("cannot listen on 127.0.0.1:80 (listen)")
    }

    #[test]
    fn an_error_is_one_line_naming_every_cause() {
        let line = error_report("backend", &failure(), false);
        assert_eq!(line, "backend: cannot listen on 127.0.0.1:80 (listen): Address already in use");
    }

    #[test]
    fn the_debug_flag_gives_the_long_report() {
        let report = error_report("backend", &failure(), true);
        assert!(report.contains("Caused by:"), "{report}");
    }
}
