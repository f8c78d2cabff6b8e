//! The `file-srv` binary: config, logging, bind, [`file_srv::run`].

use std::path::PathBuf;

use clap::Parser;
use common::config::FileSrvConfig;

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
    startup::main("file-srv", || async move {
        let config: FileSrvConfig = startup::load_config(args.config.as_deref())?;
        let listener = startup::bind(config.listen, "listen").await?;
        file_srv::run(listener, config, startup::shutdown_signal()).await
    })
}
