//! Command-line options (clap), shared by the binary and the tests.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::backoff::Backoff;
use crate::error::CliError;
use crate::room_url::RoomUrl;
use crate::session::SessionConfig;
use crate::tls;
use crate::transport::Connector;

/// Chat in an instantchat room from a terminal.
///
/// Without --plain: a full-screen client (keyboard only; /help lists the
/// commands). With --plain: every stdin line is sent, every message is
/// printed as `[hh:mm] nick: text`; at the end of stdin it waits until the
/// server confirmed every line, then leaves.
#[derive(Debug, Clone, Parser)]
#[command(name = "instantchat-cli", version)]
pub struct Options {
    /// The room's link, e.g. https://chat.example/team-chat (as in the browser).
    pub room_url: String,

    /// Your nickname (1–32 characters). Without it the TUI asks; --plain lets
    /// the server pick a random one.
    #[arg(long)]
    pub nick: Option<String>,

    /// The room's password (needed to join a protected room; sets it when the
    /// room is created).
    #[arg(long, env = "INSTANTCHAT_ROOM_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// Line mode for scripts and bots: stdin lines in, message lines out.
    #[arg(long)]
    pub plain: bool,

    /// With --plain: print only messages that arrive from now on, not the
    /// room's history.
    #[arg(long, requires = "plain")]
    pub no_history: bool,

    /// A PEM file of CA certificates to trust besides the system's (a test or
    /// self-signed deployment).
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Longest wait for a connection, a TLS or websocket handshake, or an
    /// answer from aux-srv.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout_secs: u64,
}

/// The server pings every 30 s; two missed pings and a margin mean the
/// connection is dead even if TCP has not noticed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(75);

impl Options {
    pub fn session_config(&self) -> Result<SessionConfig, CliError> {
        let room = RoomUrl::parse(&self.room_url)?;
        let tls = tls::client_config(self.ca_file.as_deref())?;
        let timeout = Duration::from_secs(self.timeout_secs.max(1));
        Ok(SessionConfig {
            room,
            nick: self.nick.clone().filter(|n| !n.trim().is_empty()),
            password: self.password.clone().filter(|p| !p.is_empty()),
            connector: Connector::new(tls, timeout),
            idle_timeout: IDLE_TIMEOUT,
            backoff: Backoff::new(Duration::from_millis(250), Duration::from_secs(15)),
        })
    }
}
