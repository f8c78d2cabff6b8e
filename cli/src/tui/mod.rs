//! The full-screen client (ratatui on crossterm), keyboard only.
//!
//! [`run`] asks for a nickname (unless `--nick` gave one), then joins and
//! shows [`app`]'s state with [`view`]. The terminal is restored however it
//! ends: quitting, an error, or a panic (ratatui's hook).

pub mod app;
pub mod view;

use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::error::CliError;
use crate::session::{self, Command, Event, SessionConfig};
use app::{Action, App, Phase};

/// Channels to a running session.
struct Running {
    commands: mpsc::Sender<Command>,
    events: mpsc::Receiver<Event>,
    task: tokio::task::JoinHandle<Result<(), CliError>>,
}

fn start(config: SessionConfig) -> Running {
    let (commands, command_rx) = mpsc::channel(64);
    let (event_tx, events) = mpsc::channel(1024);
    let task = tokio::spawn(session::run(config, command_rx, event_tx));
    Running { commands, events, task }
}

pub async fn run(config: SessionConfig) -> Result<(), CliError> {
    let mut terminal = ratatui::try_init()?;
    let result = run_in(&mut terminal, config).await;
    let restored = ratatui::try_restore();
    drop(terminal);
    result?;
    Ok(restored?)
}

async fn run_in(
    terminal: &mut ratatui::DefaultTerminal,
    mut config: SessionConfig,
) -> Result<(), CliError> {
    let phase = if config.nick.is_some() { Phase::Chatting } else { Phase::AskNick };
    let mut app = App::new(&config.room.room, phase);
    let mut running = (phase == Phase::Chatting).then(|| start(config.clone()));
    let mut keys = EventStream::new();
    loop {
        terminal.draw(|frame| view::draw(frame, &app))?;
        let event = async {
            match running.as_mut() {
                Some(r) => r.events.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(key))) => match app.key(key) {
                    Some(Action::Join(nick)) => {
                        config.nick = nick;
                        running = Some(start(config.clone()));
                    }
                    Some(Action::Session(command)) => {
                        if let Some(r) = &running {
                            if r.commands.try_send(command).is_err() {
                                app.note = Some("too many messages waiting; try again".into());
                            }
                        }
                    }
                    Some(Action::Quit) => break,
                    None => {}
                },
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => break,
            },
            event = event => match event {
                Some(event) => app.event(event),
                // The session ended by itself: the room refused or closed us.
                None => break,
            },
        }
    }
    let Some(running) = running else { return Ok(()) };
    // Leave with a close frame (the session sends it), then wait for it.
    let _ = running.commands.send(Command::Quit { flush: false }).await;
    drop(running.events);
    match running.task.await {
        Ok(result) => result,
        Err(e) => Err(CliError::Ended(format!("the session task failed: {e}"))),
    }
}
