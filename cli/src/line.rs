//! A message as one line of text: `[hh:mm] nick: text` (UTC), drawings as
//! their URLs — the same lines aux-srv's `text/plain` API gives — with
//! control characters removed, since they go straight to a terminal.

use common::ws::ChatMessage;

/// Newlines and tabs become spaces; other control characters (escape
/// sequences a sender could use to mess with a terminal) are dropped.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .collect()
}

/// `hh:mm` of a timestamp in ms since the Unix epoch, UTC.
pub fn clock(ts_ms: u64) -> String {
    let minutes = (ts_ms / 60_000) % (24 * 60);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// A drawing's address on file-srv.
pub fn drawing_url(files_url: &str, id: &str) -> String {
    format!("{}/files/{}.png", files_url.trim_end_matches('/'), clean(id))
}

/// What a message says: its text, and its drawing's URL.
pub fn body(m: &ChatMessage, files_url: &str) -> String {
    if m.deleted {
        return "(deleted)".into();
    }
    let mut body = clean(&m.text);
    if let Some(drawing) = &m.drawing {
        if !body.is_empty() {
            body.push(' ');
        }
        body.push_str(&format!("[drawing {}]", drawing_url(files_url, drawing)));
    }
    if m.edited {
        body.push_str(" (edited)");
    }
    body
}

/// What the TUI shows after a message's text: its votes `[+2 -1]` and its
/// link preview `[link: title — description]`; `None` when it has neither.
pub fn extras(m: &ChatMessage) -> Option<String> {
    if m.deleted {
        return None;
    }
    let mut parts = Vec::new();
    if let Some(v) = m.votes {
        parts.push(format!("[+{} -{}]", v.up, v.down));
    }
    if let Some(p) = &m.preview {
        let mut preview = format!("[link: {}", clean(&p.title));
        if let Some(d) = &p.description {
            preview.push_str(&format!(" — {}", clean(d)));
        }
        preview.push(']');
        parts.push(preview);
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// `[hh:mm] nick: text`; `None` for deleted messages (nothing to read).
pub fn plain(m: &ChatMessage, files_url: &str) -> Option<String> {
    if m.deleted {
        return None;
    }
    Some(format!("[{}] {}: {}", clock(m.ts), clean(&m.from.nick), body(m, files_url)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::ws::Member;

    fn message(text: &str) -> ChatMessage {
        let at_22_13_utc = 1_700_000_000_000;
        ChatMessage::new(4, at_22_13_utc, Member { id: 1, nick: "ada\u{1b}[2J".into() }, text)
    }

    #[test]
    fn one_terminal_safe_line() {
        let m = message("two\nlines\u{7}");
        assert_eq!(plain(&m, "").unwrap(), "[22:13] ada[2J: two lines");
        let drawing = ChatMessage { drawing: Some("ab".repeat(16)), ..message("") };
        assert_eq!(
            plain(&drawing, "http://f:8085/").unwrap(),
            format!("[22:13] ada[2J: [drawing http://f:8085/files/{}.png]", "ab".repeat(16))
        );
        assert_eq!(plain(&ChatMessage { deleted: true, ..message("x") }, ""), None);
        let edited = ChatMessage { edited: true, ..message("fixed") };
        assert_eq!(body(&edited, ""), "fixed (edited)");
    }

    #[test]
    fn votes_and_previews_follow_the_text() {
        assert_eq!(extras(&message("x")), None);
        let voted = ChatMessage {
            votes: Some(common::ws::VoteCounts { up: 2, down: 1 }),
            preview: Some(Box::new(common::ws::LinkPreview {
                url: "https://a.example/".into(),
                title: "A\u{1b}[31m".into(),
                description: Some("about a".into()),
                image: None,
            })),
            ..message("x")
        };
        assert_eq!(extras(&voted).unwrap(), "[+2 -1] [link: A[31m — about a]");
        assert_eq!(extras(&ChatMessage { deleted: true, ..voted }), None);
    }
}
