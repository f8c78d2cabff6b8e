//! What a typed line means: a message, or a slash command. The TUI and
//! `--plain` read lines the same way.

use crate::session::Command;

/// One typed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A message to send, a nick or a vote.
    Command(Command),
    /// `/quit`: whether to wait for unconfirmed sends is the caller's
    /// business.
    Quit,
    Help,
    /// Not understood; the text says how to write it.
    Invalid(String),
    Nothing,
}

pub const HELP: &str = "/reply SEQ text · /up SEQ · /down SEQ · /unvote SEQ · /nick NAME · /quit · //text sends a line starting with /";

pub fn parse(line: &str) -> Line {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.trim().is_empty() {
        return Line::Nothing;
    }
    let Some(rest) = line.strip_prefix('/') else {
        return send(line, None);
    };
    if rest.starts_with('/') {
        return send(rest, None);
    }
    let (name, args) = rest.split_once(' ').unwrap_or((rest, ""));
    match name {
        "reply" | "r" => {
            let (seq, text) = args.trim_start().split_once(' ').unwrap_or((args.trim(), ""));
            match seq.trim_start_matches('#').parse::<u64>() {
                Ok(seq) if !text.trim().is_empty() => send(text, Some(seq)),
                _ => Line::Invalid("usage: /reply SEQ text".into()),
            }
        }
        "nick" => match args.trim() {
            "" => Line::Invalid("usage: /nick NAME".into()),
            nick => Line::Command(Command::Nick(nick.into())),
        },
        "up" | "down" | "unvote" => match args.trim().trim_start_matches('#').parse::<u64>() {
            Ok(seq) => {
                let value = match name {
                    "up" => 1,
                    "down" => -1,
                    _ => 0,
                };
                Line::Command(Command::Vote { seq, value })
            }
            Err(_) => Line::Invalid(format!("usage: /{name} SEQ")),
        },
        "quit" | "exit" | "q" => Line::Quit,
        "help" | "?" => Line::Help,
        other => Line::Invalid(format!("unknown command /{other}; {HELP}")),
    }
}

fn send(text: &str, reply_to: Option<u64>) -> Line {
    Line::Command(Command::Send { text: text.into(), reply_to })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(text: &str, reply_to: Option<u64>) -> Line {
        send(text, reply_to)
    }

    #[test]
    fn lines_and_commands() {
        assert_eq!(parse("hello there\n"), sent("hello there", None));
        assert_eq!(parse("/reply 12 sure"), sent("sure", Some(12)));
        assert_eq!(parse("/reply #12  two  spaces"), sent(" two  spaces", Some(12)));
        assert_eq!(parse("//etc/hosts"), sent("/etc/hosts", None));
        assert_eq!(parse("/nick  grace "), Line::Command(Command::Nick("grace".into())));
        assert_eq!(parse("/quit"), Line::Quit);
        assert_eq!(parse("   "), Line::Nothing);
        assert_eq!(parse("/help"), Line::Help);
        assert!(matches!(parse("/reply x hi"), Line::Invalid(u) if u.contains("/reply SEQ")));
        assert!(matches!(parse("/reply 3"), Line::Invalid(_)));
        assert!(matches!(parse("/nick"), Line::Invalid(_)));
        assert!(matches!(parse("/dance"), Line::Invalid(u) if u.contains("/dance")));
        assert_eq!(parse("/up 7"), Line::Command(Command::Vote { seq: 7, value: 1 }));
        assert_eq!(parse("/down #7"), Line::Command(Command::Vote { seq: 7, value: -1 }));
        assert_eq!(parse("/unvote 7 "), Line::Command(Command::Vote { seq: 7, value: 0 }));
        assert!(matches!(parse("/up"), Line::Invalid(u) if u == "usage: /up SEQ"));
        assert!(matches!(parse("/down x"), Line::Invalid(_)));
    }
}
