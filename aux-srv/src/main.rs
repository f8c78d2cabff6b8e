//! The `aux-srv` binary: parses config, starts tracing, binds, runs until
//! SIGTERM/SIGINT.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use common::config::{AuxConfig, ConfigFile};
use tokio::net::TcpListener;

/// instantchat's coordinator: web pages, public API, room placement, admin API.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// TOML config file; `INSTANTCHAT_*` environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("aux-srv: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A plain message naming the cause (e.g. the bad config key).
            eprintln!("aux-srv: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let contents = match &args.config {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?,
        ),
        None => None,
    };
    let path = args.config.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
    let file = contents.as_deref().map(|contents| ConfigFile { path: &path, contents });
    let config: AuxConfig = common::config::load(file, std::env::vars())?;
    let public = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let admin = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin_listen)", config.admin_listen))?;
    aux_srv::run(aux_srv::Listeners { public, admin }, config, shutdown_signal()).await
}

/// JSON logs when `INSTANTCHAT_LOG_FORMAT=json`, else human-readable; level
/// from `RUST_LOG` (default `info`).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("INSTANTCHAT_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
