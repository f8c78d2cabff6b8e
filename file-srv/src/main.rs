//! The `file-srv` binary: config, logging, bind, [`file_srv::run`].

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use common::config::{ConfigFile, FileSrvConfig};
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Stores and serves instantchat's drawings.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// TOML configuration file (environment variables INSTANTCHAT_* override it).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let result = tokio::runtime::Runtime::new()
        .context("cannot start the runtime")
        .and_then(|runtime| runtime.block_on(serve(args)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // A plain message naming the cause (e.g. the bad config key), no backtrace.
            eprintln!("file-srv: {e:#}");
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
    let config: FileSrvConfig = common::config::load(file, std::env::vars())?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    file_srv::run(listener, config, shutdown_signal()).await
}

/// SIGTERM (what service managers send) or Ctrl-C.
async fn shutdown_signal() {
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
