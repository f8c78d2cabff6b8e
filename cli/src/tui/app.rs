//! The TUI's state: what the room holds as far as we know, the input line,
//! and what keys and session events do to them.

use common::ws::{ChatMessage, Member, ServerFrame, VoteCounts};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::input::{self, HELP, Line};
use crate::line;
use crate::session::{Command, Event};

/// Most messages kept for the screen (the server's buffer holds 1000).
const MAX_SHOWN: usize = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Typing a nickname before joining.
    AskNick,
    Chatting,
}

/// What a key press asks the run loop to do.
#[derive(Debug)]
pub enum Action {
    /// Join with this nick (`None`: a random one).
    Join(Option<String>),
    Session(Command),
    Quit,
}

#[derive(Debug)]
pub struct App {
    pub phase: Phase,
    pub input: String,
    /// Cursor position in `input`, in characters.
    pub cursor: usize,
    pub room: String,
    pub files_url: String,
    pub messages: Vec<ChatMessage>,
    pub members: Vec<Member>,
    pub me: Option<Member>,
    /// The connection state, for the status line.
    pub status: String,
    /// The last thing the person should read (an error, the help).
    pub note: Option<String>,
    /// Lines scrolled up from the newest.
    pub scroll: usize,
}

impl App {
    pub fn new(room: &str, phase: Phase) -> App {
        App {
            phase,
            input: String::new(),
            cursor: 0,
            room: room.to_owned(),
            files_url: String::new(),
            messages: Vec::new(),
            members: Vec::new(),
            me: None,
            status: "connecting…".into(),
            note: None,
            scroll: 0,
        }
    }

    pub fn key(&mut self, key: KeyEvent) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c' | 'd') if ctrl => return Some(Action::Quit),
            KeyCode::Esc => return Some(Action::Quit),
            KeyCode::Char('u') if ctrl => {
                self.take_input();
            }
            KeyCode::Char(c) if !ctrl => self.insert(c),
            KeyCode::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                self.input.remove(self.byte_index());
            }
            KeyCode::Delete if self.cursor < self.input.chars().count() => {
                self.input.remove(self.byte_index());
            }
            KeyCode::Left => self.cursor = self.cursor.saturating_sub(1),
            KeyCode::Right => self.cursor = (self.cursor + 1).min(self.input.chars().count()),
            KeyCode::Home => self.cursor = 0,
            KeyCode::End => self.cursor = self.input.chars().count(),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Enter => return self.enter(),
            _ => {}
        }
        None
    }

    fn byte_index(&self) -> usize {
        self.input.char_indices().nth(self.cursor).map_or(self.input.len(), |(i, _)| i)
    }

    fn insert(&mut self, c: char) {
        let at = self.byte_index();
        self.input.insert(at, c);
        self.cursor += 1;
    }

    fn take_input(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.input)
    }

    fn enter(&mut self) -> Option<Action> {
        let typed = self.take_input();
        if self.phase == Phase::AskNick {
            self.phase = Phase::Chatting;
            let nick = typed.trim();
            return Some(Action::Join((!nick.is_empty()).then(|| nick.to_owned())));
        }
        self.note = None;
        match input::parse(&typed) {
            Line::Quit => Some(Action::Quit),
            Line::Command(command) => {
                self.scroll = 0;
                Some(Action::Session(command))
            }
            Line::Help => {
                self.note = Some(HELP.into());
                None
            }
            Line::Invalid(why) => {
                self.note = Some(why);
                self.input = typed;
                self.cursor = self.input.chars().count();
                None
            }
            Line::Nothing => None,
        }
    }

    pub fn event(&mut self, event: Event) {
        match event {
            Event::Connecting => self.status = "connecting…".into(),
            Event::Offline { why, retry_in } => {
                self.status =
                    format!("offline ({why}); retrying in {:.1} s", retry_in.as_secs_f64());
            }
            Event::Joined { welcome, files_url, replace } => {
                self.files_url = files_url;
                self.room = welcome.room.clone();
                if replace {
                    self.messages.clear();
                }
                for message in welcome.messages {
                    self.upsert(message);
                }
                self.members = welcome.members;
                self.me = Some(welcome.you);
                self.status = "online".into();
            }
            Event::SendFailed { text, message, .. } => {
                self.note = Some(format!("not sent: {message} ({})", line::clean(&text)));
            }
            Event::Frame(frame) => self.frame(frame),
        }
    }

    fn frame(&mut self, frame: ServerFrame) {
        match frame {
            ServerFrame::Message(message) => self.upsert(message),
            ServerFrame::Joined { member } => {
                self.members.retain(|m| m.id != member.id);
                self.members.push(member);
            }
            ServerFrame::Left { member } => self.members.retain(|m| m.id != member.id),
            ServerFrame::Nick { member, .. } => {
                if self.me.as_ref().is_some_and(|me| me.id == member.id) {
                    self.me = Some(member.clone());
                }
                if let Some(m) = self.members.iter_mut().find(|m| m.id == member.id) {
                    *m = member;
                }
            }
            ServerFrame::Edited { seq, text } => {
                if let Some(m) = self.find(seq) {
                    m.text = text;
                    m.edited = true;
                }
            }
            ServerFrame::Deleted { seq } => {
                if let Some(m) = self.find(seq) {
                    m.deleted = true;
                    m.text.clear();
                    m.drawing = None;
                    m.votes = None;
                    m.preview = None;
                }
            }
            ServerFrame::Votes { seq, up, down } => {
                if let Some(m) = self.find(seq) {
                    m.votes = VoteCounts { up, down }.non_zero();
                }
            }
            ServerFrame::Preview { seq, preview } => {
                if let Some(m) = self.find(seq).filter(|m| !m.deleted) {
                    m.preview = Some(Box::new(preview));
                }
            }
            ServerFrame::Notice { text, .. } => self.note = Some(format!("notice: {text}")),
            ServerFrame::Error { code, message, .. } => {
                self.note = Some(format!("{message} ({code})"));
            }
            _ => {}
        }
    }

    fn find(&mut self, seq: u64) -> Option<&mut ChatMessage> {
        let index = self.messages.binary_search_by_key(&seq, |m| m.seq).ok()?;
        self.messages.get_mut(index)
    }

    /// Adds a message in seq order; one we hold already is replaced.
    fn upsert(&mut self, message: ChatMessage) {
        match self.messages.binary_search_by_key(&message.seq, |m| m.seq) {
            Ok(index) => self.messages[index] = message,
            Err(index) => self.messages.insert(index, message),
        }
        if self.messages.len() > MAX_SHOWN {
            self.messages.drain(..self.messages.len() - MAX_SHOWN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(app: &mut App, code: KeyCode) -> Option<Action> {
        app.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            press(app, KeyCode::Char(c));
        }
    }

    #[test]
    fn nick_first_then_messages_and_commands() {
        let mut app = App::new("room", Phase::AskNick);
        type_text(&mut app, "ada");
        assert!(
            matches!(press(&mut app, KeyCode::Enter), Some(Action::Join(Some(n))) if n == "ada")
        );
        type_text(&mut app, "helo");
        press(&mut app, KeyCode::Left);
        press(&mut app, KeyCode::Left);
        type_text(&mut app, "l");
        let sent = press(&mut app, KeyCode::Enter);
        assert!(
            matches!(sent, Some(Action::Session(Command::Send { ref text, reply_to: None })) if text == "hello"),
            "{sent:?}"
        );
        type_text(&mut app, "/reply x");
        assert!(press(&mut app, KeyCode::Enter).is_none());
        assert_eq!(app.input, "/reply x", "a mistyped command stays to be fixed");
        assert!(app.note.as_deref().unwrap().contains("/reply SEQ"));
        app.key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
        type_text(&mut app, "/quit");
        assert!(matches!(press(&mut app, KeyCode::Enter), Some(Action::Quit)));
    }
}
