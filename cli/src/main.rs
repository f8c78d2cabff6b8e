//! `instantchat-cli`: see `docs/CLI.md`.

use std::process::ExitCode;

use clap::Parser;
use instantchat_cli::{Options, plain, tui};

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    // Logs go to stderr, quiet unless RUST_LOG asks (the TUI owns the screen).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(options).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("instantchat-cli: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> anyhow::Result<ExitCode> {
    let config = options.session_config()?;
    if !options.plain {
        tui::run(config).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let outcome =
        plain::run(config, stdin, std::io::stdout(), std::io::stderr(), !options.no_history)
            .await?;
    Ok(if outcome.refused == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
