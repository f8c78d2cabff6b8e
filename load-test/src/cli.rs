//! The command line: one subcommand per scenario, each with its parameters
//! and the options every scenario shares. The same structs travel to worker
//! processes (as JSON) and into the report.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::{Deserialize, Serialize};

/// Drives a running instantchat fleet the way browsers do and reports what
/// users feel: end-to-end latency, deliveries per second, losses, and what
/// it cost the backends.
#[derive(Debug, Parser)]
#[command(name = "load-test", version)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Option<Scenario>,
    /// Internal: run as worker process number N (the plan arrives on stdin).
    #[arg(long, hide = true)]
    pub worker_index: Option<usize>,
}

#[derive(Debug, Clone, Subcommand, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scenario {
    /// One room, many members, a few publishers at a target total rate.
    Fanout(FanoutArgs),
    /// Many small rooms, every member sending every few seconds.
    Rooms(RoomsArgs),
    /// Hold many quiet connections; report backend memory per connection.
    Idle(IdleArgs),
    /// A join storm: websocket joins per second.
    Connect(ConnectArgs),
    /// Room creations and lookups per second against aux-srv.
    Aux(AuxArgs),
    /// Rooms moving between backends under load: the pause members see
    /// and what is lost (one room moved, or a backend evacuated).
    Migrate(MigrateArgs),
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Fanout(_) => "fanout",
            Scenario::Rooms(_) => "rooms",
            Scenario::Idle(_) => "idle",
            Scenario::Connect(_) => "connect",
            Scenario::Aux(_) => "aux",
            Scenario::Migrate(_) => "migrate",
        }
    }

    pub fn common(&self) -> &Common {
        match self {
            Scenario::Fanout(a) => &a.common,
            Scenario::Rooms(a) => &a.common,
            Scenario::Idle(a) => &a.common,
            Scenario::Connect(a) => &a.common,
            Scenario::Aux(a) => &a.common,
            Scenario::Migrate(a) => &a.common,
        }
    }

    pub fn common_mut(&mut self) -> &mut Common {
        match self {
            Scenario::Fanout(a) => &mut a.common,
            Scenario::Rooms(a) => &mut a.common,
            Scenario::Idle(a) => &mut a.common,
            Scenario::Connect(a) => &mut a.common,
            Scenario::Aux(a) => &mut a.common,
            Scenario::Migrate(a) => &mut a.common,
        }
    }

    /// Websocket connections the whole run opens (0 for `aux`).
    pub fn connections(&self) -> usize {
        match self {
            Scenario::Fanout(a) => a.members,
            Scenario::Rooms(a) => a.rooms * a.room_size,
            Scenario::Idle(a) => a.connections,
            Scenario::Connect(a) => a.connections,
            Scenario::Aux(_) => 0,
            Scenario::Migrate(a) => a.members.max(a.rooms * a.room_size),
        }
    }
}

/// Options every scenario takes.
#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct Common {
    /// aux-srv's public base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub aux: String,
    /// How long the measured phase lasts (setup and drain come on top).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Worker processes to spread the connections over (each may hold as
    /// many sockets as the open-file limit allows).
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Source addresses (127.1.x.y) to spread connections over; 0 picks
    /// enough for the ephemeral port range.
    #[arg(long, default_value_t = 0)]
    pub sources: usize,
    /// The first source address, by number (0 is 127.1.0.1): two runs side
    /// by side (a storm and its bystanders) then come from different addresses.
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub first_source: usize,
    /// Write the JSON report here.
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Write an SVG plot of latency percentiles and throughput here.
    #[arg(long, value_name = "PATH")]
    pub plot: Option<PathBuf>,
    /// A backend's HTTP base URL (for `/metrics`) besides those found in
    /// the rooms' `ws_url`s; repeatable.
    #[arg(long = "backend", value_name = "URL")]
    pub backends: Vec<String>,
    /// After the measured phase, how long receivers wait for messages in flight.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Connections each worker opens at once while setting up.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Bytes of filler text in each message, besides its time stamp.
    #[arg(long, default_value_t = 32)]
    pub text_bytes: usize,
    /// Ask aux-srv (`PUT /api/rooms/{room}`) before every websocket, as a
    /// browser opening the room does; off: only the setup asks.
    #[arg(long)]
    pub no_lookup: bool,
    /// No live progress line.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Members of the one room.
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// How many of them send.
    #[arg(long, default_value_t = 20)]
    pub publishers: usize,
    /// Messages per second, all publishers together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct RoomsArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Members per room.
    #[arg(long, default_value_t = 4)]
    pub room_size: usize,
    /// Each member sends once every `every_min`..`every_max` (uniform).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub every_min: Duration,
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub every_max: Duration,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Members per room.
    #[arg(long, default_value_t = 4)]
    pub room_size: usize,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections to open during the measured phase (they stay open).
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
    /// Members per room (each join is announced to the others).
    #[arg(long, default_value_t = 4)]
    pub room_size: usize,
    /// Joins per second to aim at, all workers together; 0 = as fast as
    /// `--in-flight` allows.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Handshakes under way at once, per worker.
    #[arg(long, default_value_t = 256)]
    pub in_flight: usize,
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct AuxArgs {
    #[command(flatten)]
    pub common: Common,
    /// Requests under way at once, per worker (one keep-alive connection each).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Share of the duration spent creating rooms; lookups of the created
    /// rooms fill the rest.
    #[arg(long, default_value_t = 0.5)]
    pub create_share: f64,
    /// After the run: a shell command that restarts aux-srv; the report
    /// tells how long until it is ready and finds sampled rooms again.
    #[arg(long, value_name = "CMD")]
    pub restart_cmd: Option<String>,
    /// Rooms looked up after the restart.
    #[arg(long, default_value_t = 2000)]
    pub restart_sample: usize,
}

/// `10s`, `500ms`, `2m`, `1.5s`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number.parse().map_err(|_| format!("`{text}` is not a duration like 10s"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        _ => return Err(format!("`{text}`: unit must be ms, s or m")),
    };
    if !seconds.is_finite() || !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn command_line_parses() {
        let cli = Cli::try_parse_from([
            "load-test",
            "fanout",
            "--members",
            "10",
            "--rate",
            "50",
            "--duration",
            "2s",
        ])
        .unwrap();
        let Some(Scenario::Fanout(f)) = cli.scenario else { panic!("fanout expected") };
        assert_eq!(f.members, 10);
        assert_eq!(f.common.duration, Duration::from_secs(2));
    }
}

#[derive(Debug, Clone, Args, Serialize, Deserialize)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub common: Common,
    /// aux-srv's admin base URL.
    #[arg(long, default_value = "http://127.0.0.1:8090")]
    pub admin: String,
    /// aux-srv's admin token.
    #[arg(long, env = "INSTANTCHAT_ADMIN_TOKEN", default_value = "")]
    pub admin_token: String,
    /// The backend the rooms start on (and that is evacuated); default the
    /// first one aux-srv lists.
    #[arg(long)]
    pub from: Option<String>,
    /// One room: its members…
    #[arg(long, default_value_t = 1000)]
    pub members: usize,
    /// …how many of them send…
    #[arg(long, default_value_t = 20)]
    pub senders: usize,
    /// …and messages per second, all senders together.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Many rooms (more than 1, or with `--evacuate`): the backend is
    /// evacuated instead of one room moved.
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    #[arg(long, default_value_t = 5)]
    pub room_size: usize,
    /// Evacuate the backend even with one room.
    #[arg(long)]
    pub evacuate: bool,
    /// Many rooms: each room's one sender sends this often.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub every: Duration,
    /// Traffic before the move…
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// …and after it.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub after: Duration,
}
