//! `backend`: parses config, starts tracing, binds, runs until SIGTERM/SIGINT.

use std::path::PathBuf;

use clap::Parser;
use common::config::BackendConfig;

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
    startup::main("backend", || async move {
        let config: BackendConfig = startup::load_config(args.config.as_deref())?;
        let listeners = backend::Listeners {
            public: startup::bind(config.listen, "listen").await?,
            control: startup::bind(config.control_listen, "control_listen").await?,
        };
        backend::run(listeners, config, startup::shutdown_signal()).await
    })
}
