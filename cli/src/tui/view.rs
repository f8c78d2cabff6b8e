//! Drawing the TUI: messages and members side by side, the input line, the
//! status line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, Paragraph, Wrap};

use super::app::{App, Phase};
use crate::line;

const MEMBERS_WIDTH: u16 = 24;

pub fn draw(frame: &mut Frame, app: &App) {
    let [main, input, status] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3), Constraint::Length(1)])
            .areas(frame.area());
    let [messages, members] =
        Layout::horizontal([Constraint::Min(20), Constraint::Length(MEMBERS_WIDTH)]).areas(main);
    draw_messages(frame, app, messages);
    draw_members(frame, app, members);
    draw_input(frame, app, input);
    draw_status(frame, app, status);
}

fn message_line<'a>(app: &App, m: &'a common::ws::ChatMessage) -> Line<'a> {
    let mut spans = vec![Span::raw(format!("#{} {} ", m.seq, line::clock(m.ts))).dim()];
    if let Some(to) = m.reply_to {
        spans.push(Span::raw(format!("↪#{to} ")).italic());
    }
    let mine = app.me.as_ref().is_some_and(|me| me.id == m.from.id && m.from.id != 0);
    let nick_style = if mine { Style::new().bold().cyan() } else { Style::new().bold() };
    spans.push(Span::styled(line::clean(&m.from.nick), nick_style));
    spans.push(Span::raw(": "));
    let body = line::body(m, &app.files_url);
    spans.push(if m.deleted { Span::raw(body).dim() } else { Span::raw(body) });
    if let Some(extras) = line::extras(m) {
        spans.push(Span::raw(format!(" {extras}")).dim());
    }
    Line::from(spans)
}

fn draw_messages(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(format!(" Messages — {} ", line::clean(&app.room)));
    let inner_width = area.width.saturating_sub(2).max(1) as usize;
    let inner_height = area.height.saturating_sub(2) as usize;
    let lines: Vec<Line> = app.messages.iter().map(|m| message_line(app, m)).collect();
    // Rows each line takes once wrapped, to show the newest at the bottom.
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner_width)).sum();
    let top = rows.saturating_sub(inner_height).saturating_sub(app.scroll);
    let paragraph = Paragraph::new(lines)
        .block(block)
        .wrap(Wrap { trim: false })
        .scroll((u16::try_from(top).unwrap_or(u16::MAX), 0));
    frame.render_widget(paragraph, area);
}

fn draw_members(frame: &mut Frame, app: &App, area: Rect) {
    let me = app.me.as_ref().map(|m| m.id);
    let items: Vec<ListItem> = app
        .members
        .iter()
        .map(|m| {
            let nick = line::clean(&m.nick);
            if Some(m.id) == me {
                ListItem::new(format!("{nick} (you)")).add_modifier(Modifier::BOLD)
            } else {
                ListItem::new(nick)
            }
        })
        .collect();
    let title = format!(" Members ({}) ", app.members.len());
    frame.render_widget(List::new(items).block(Block::bordered().title(title)), area);
}

fn draw_input(frame: &mut Frame, app: &App, area: Rect) {
    let title = match app.phase {
        Phase::AskNick => " Nickname (Enter for a random one) ",
        Phase::Chatting => " Message (Enter sends · /help) ",
    };
    let inner_width = area.width.saturating_sub(2).max(1) as usize;
    // Keep the cursor in view on long lines.
    let skip = app.cursor.saturating_sub(inner_width - 1);
    let visible: String = app.input.chars().skip(skip).collect();
    frame.render_widget(Paragraph::new(visible).block(Block::bordered().title(title)), area);
    let x = area.x + 1 + u16::try_from(app.cursor - skip).unwrap_or(0);
    frame.set_cursor_position(Position::new(x, area.y + 1));
}

fn draw_status(frame: &mut Frame, app: &App, area: Rect) {
    let who =
        app.me.as_ref().map_or(String::new(), |m| format!(" · you are {}", line::clean(&m.nick)));
    let text = match &app.note {
        Some(note) => format!("{} · {}", app.status, note),
        None => format!("{}{who} · Esc quits", app.status),
    };
    frame.render_widget(Paragraph::new(text).reversed(), area);
}
