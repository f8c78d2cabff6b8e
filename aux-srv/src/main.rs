//! The `aux-srv` binary: parses config, starts tracing, binds, runs until
//! SIGTERM/SIGINT.

use std::path::PathBuf;

use clap::Parser;
use common::config::AuxConfig;

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
    startup::main("aux-srv", || async move {
        let config: AuxConfig = startup::load_config(args.config.as_deref())?;
        let listeners = aux_srv::Listeners {
            public: startup::bind(config.listen, "listen").await?,
            admin: startup::bind(config.admin_listen, "admin_listen").await?,
        };
        aux_srv::run(listeners, config, startup::shutdown_signal()).await
    })
}
