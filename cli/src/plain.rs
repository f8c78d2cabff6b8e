//! `--plain`: stdin lines in, message lines out, for scripts and bots.
//!
//! - Every stdin line is sent (slash commands as in the TUI; `//` for a
//!   line that starts with `/`). At the end of stdin, it waits until the
//!   server confirmed every line, closes, and exits: `0` when all were
//!   stored, `1` when some were refused (each refusal is on stderr).
//! - stdout gets `[hh:mm] nick: text` per message (UTC, drawings as URLs),
//!   the room's history first unless `--no-history`; `* text` for
//!   operators' notices. Each message is printed once, across reconnects.
//! - stderr gets refusals, errors and connection changes.

use std::io::Write;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::sync::mpsc;

use crate::error::CliError;
use crate::input::{self, Line};
use crate::line;
use crate::session::{self, Command, Event, SessionConfig};
use common::ws::{ChatMessage, ServerFrame};

/// How the run went, when the session itself did not fail.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Lines the server (or our check of its limits) refused.
    pub refused: usize,
}

/// What has been printed, so reconnects print nothing twice.
struct Printed {
    epoch: Option<u64>,
    up_to: u64,
    files_url: String,
}

pub async fn run(
    config: SessionConfig,
    input: impl AsyncBufRead + Unpin,
    mut out: impl Write,
    mut err: impl Write,
    history: bool,
) -> Result<Outcome, CliError> {
    let (command_tx, command_rx) = mpsc::channel(64);
    let (event_tx, mut events) = mpsc::channel(1024);
    let session = tokio::spawn(session::run(config, command_rx, event_tx));
    let mut lines = input.lines();
    let mut pending: Option<Command> = None;
    let mut input_open = true;
    let mut outcome = Outcome::default();
    let mut printed = Printed { epoch: None, up_to: 0, files_url: String::new() };
    let mut first_join = true;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut interrupt_armed = true;
    loop {
        tokio::select! {
            read = lines.next_line(), if input_open && pending.is_none() => match read {
                Ok(Some(text)) => match input::parse(&text) {
                    Line::Command(command) => pending = Some(command),
                    Line::Quit => pending = Some(Command::Quit { flush: true }),
                    Line::Invalid(why) => {
                        outcome.refused += 1;
                        let _ = writeln!(err, "not sent: {why}");
                    }
                    Line::Help | Line::Nothing => {}
                },
                Ok(None) | Err(_) => {
                    input_open = false;
                    pending = Some(Command::Quit { flush: true });
                }
            },
            permit = command_tx.reserve(), if pending.is_some() => {
                if let (Ok(permit), Some(command)) = (permit, pending.take()) {
                    if matches!(command, Command::Quit { .. }) {
                        input_open = false;
                    }
                    permit.send(command);
                }
            }
            _ = &mut interrupted, if interrupt_armed => {
                interrupt_armed = false;
                input_open = false;
                pending = None;
                let _ = command_tx.send(Command::Quit { flush: false }).await;
            }
            event = events.recv() => match event {
                None => break,
                Some(event) => {
                    show(event, &mut printed, &mut first_join, history, &mut out, &mut err, &mut outcome);
                }
            },
        }
    }
    match session.await {
        Ok(result) => result.map(|()| outcome),
        Err(e) => Err(CliError::Ended(format!("the session task failed: {e}"))),
    }
}

fn show(
    event: Event,
    printed: &mut Printed,
    first_join: &mut bool,
    history: bool,
    out: &mut impl Write,
    err: &mut impl Write,
    outcome: &mut Outcome,
) {
    match event {
        Event::Joined { welcome, files_url, .. } => {
            printed.files_url = files_url;
            if printed.epoch != Some(welcome.epoch) {
                // A room created anew starts its seqs again.
                printed.epoch = Some(welcome.epoch);
                printed.up_to = 0;
            }
            if *first_join && !history {
                printed.up_to = welcome.last_seq;
            }
            *first_join = false;
            for message in &welcome.messages {
                print_message(message, printed, out);
            }
        }
        Event::Frame(ServerFrame::Message(message)) => print_message(&message, printed, out),
        Event::Frame(ServerFrame::Notice { text, .. }) => {
            let _ = writeln!(out, "* {}", line::clean(&text));
        }
        Event::Frame(ServerFrame::Error { code, message, .. }) => {
            let _ = writeln!(err, "error from the server ({code}): {message}");
        }
        Event::SendFailed { text, code, message } => {
            outcome.refused += 1;
            let _ = writeln!(err, "not sent ({code}): {message}: {}", line::clean(&text));
        }
        Event::Offline { why, retry_in } => {
            let _ = writeln!(
                err,
                "connection lost ({why}); reconnecting in {:.1} s",
                retry_in.as_secs_f64()
            );
        }
        Event::Frame(_) | Event::Connecting => {}
    }
    let _ = out.flush();
}

fn print_message(message: &ChatMessage, printed: &mut Printed, out: &mut impl Write) {
    if message.seq <= printed.up_to {
        return;
    }
    printed.up_to = message.seq;
    if let Some(text) = line::plain(message, &printed.files_url) {
        let _ = writeln!(out, "{text}");
    }
}
