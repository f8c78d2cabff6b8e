//! `backend`: parses config, starts tracing, binds, runs until SIGTERM/SIGINT.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use common::config::{BackendConfig, ConfigFile};

/// Holds instantchat rooms in RAM and serves their websockets.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// TOML config file; `INSTANTCHAT_*` environment variables override it.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    backend_main::init_tracing();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("backend: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "backend failed");
            eprintln!("backend: {e:#}");
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
    let config: BackendConfig = common::config::load(file, std::env::vars())?;
    let listeners = backend::Listeners {
        public: tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?,
        control: tokio::net::TcpListener::bind(config.control_listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.control_listen))?,
    };
    backend::run(listeners, config, backend_main::shutdown_signal()).await
}

mod backend_main {
    /// JSON logs when `INSTANTCHAT_LOG_FORMAT=json`, else human-readable;
    /// level from `RUST_LOG` (default `info`).
    pub fn init_tracing() {
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
    pub async fn shutdown_signal() {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
    }
}
