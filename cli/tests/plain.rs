//! `instantchat-cli --plain` (the built binary) against the real fleet:
//! stdin lines reach a websocket member, the room's messages are printed,
//! a dropped connection is resumed with nothing lost or shown twice, a room
//! that moves to another backend is followed, and bad input is reported
//! without losing the rest.

mod support;

use std::process::Stdio;

use serde_json::Value;
use support::{CLI, Fleet, WAIT};
use test_support::{Roamer, TestFleet, WsClient};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

struct Plain {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    /// Every stdout line read so far.
    seen: Vec<String>,
}

impl Plain {
    fn start(args: &[&str]) -> Plain {
        Plain::start_with(args, &[])
    }

    /// With these environment variables too (`RUST_LOG` to see its logs).
    fn start_with(args: &[&str], env: &[(&str, &str)]) -> Plain {
        let mut child = Command::new(CLI)
            .arg("--plain")
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Plain { child, stdin, stdout, seen: Vec::new() }
    }

    async fn type_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
    }

    /// Reads stdout until a line ends with `ending`; returns it.
    async fn line_ending(&mut self, ending: &str) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("no line ending {ending:?}; saw {:?}", self.seen))
                .unwrap()
                .unwrap_or_else(|| panic!("stdout ended before {ending:?}; saw {:?}", self.seen));
            self.seen.push(line.clone());
            if line.ends_with(ending) {
                return line;
            }
        }
    }

    /// Closes stdin and waits for the exit: (success, the rest of stdout, stderr).
    async fn finish(mut self) -> (bool, Vec<String>, String) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(WAIT, self.child.wait()).await.expect("exits").unwrap();
        while let Ok(Some(line)) = self.stdout.next_line().await {
            self.seen.push(line);
        }
        let mut stderr = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut stderr).await.unwrap();
        (status.success(), self.seen, stderr)
    }
}

/// ada joins `room` with the CLI (`options` go before the room link);
/// returns once `bob`, already there, saw her come, with that `joined`.
async fn ada_joins(
    fleet: &Fleet,
    room: &str,
    options: &[&str],
    bob: &mut WsClient,
) -> (Plain, Value) {
    let url = fleet.room_url(room);
    let args: Vec<&str> = ["--nick", "ada"].into_iter().chain(options.iter().copied()).collect();
    let cli = Plain::start(&[args.as_slice(), &[url.as_str()]].concat());
    (cli, bob.next_of("joined").await)
}

/// bob opens `room` and says `said`; then ada joins with the CLI, which
/// prints it as history. Returns bob, the CLI, that history line and the
/// `joined` bob saw.
async fn ada_joins_after_bob_said(
    fleet: &Fleet,
    room: &str,
    said: &str,
) -> (WsClient, Plain, String, Value) {
    let (mut bob, _) = fleet.member(room, "bob").await;
    bob.say(said).await;
    bob.next_of("message").await;
    let (mut cli, joined) = ada_joins(fleet, room, &[], &mut bob).await;
    let history = cli.line_ending(&format!("bob: {said}")).await;
    (bob, cli, history, joined)
}

fn count(lines: &[String], ending: &str) -> usize {
    lines.iter().filter(|l| l.ends_with(ending)).count()
}

#[tokio::test]
async fn sends_stdin_lines_prints_the_room_and_leaves_cleanly_at_eof() {
    let fleet = Fleet::start(false).await;
    let (mut bob, mut cli, history, joined) =
        ada_joins_after_bob_said(&fleet, "plain-room", "from before you came").await;
    assert!(history.starts_with('[') && history.as_bytes()[3] == b':', "{history}");
    assert_eq!(joined["member"]["nick"], "ada");

    cli.type_line("hello from a script").await;
    assert_eq!(bob.next_from("ada").await["text"], "hello from a script");
    cli.line_ending("ada: hello from a script").await;
    bob.say("hi script").await;
    cli.line_ending("bob: hi script").await;
    cli.type_line("/reply 1 about that").await;
    let reply = bob.next_from("ada").await;
    assert_eq!((reply["text"].as_str(), reply["reply_to"].as_u64()), (Some("about that"), Some(1)));
    cli.type_line("last words").await;

    // End of stdin: every line is sent before it leaves, with a close frame.
    let (ok, lines, stderr) = cli.finish().await;
    assert!(ok, "exit 0; stderr: {stderr}");
    assert_eq!(bob.next_from("ada").await["text"], "last words");
    assert_eq!(bob.next_of("left").await["member"]["nick"], "ada");
    assert_eq!(count(&lines, "bob: from before you came"), 1, "{lines:?}");
}

#[tokio::test]
async fn a_dropped_connection_is_resumed_and_nothing_is_lost_or_doubled() {
    let fleet = Fleet::start(true).await;
    let relay = fleet.relay.as_ref().unwrap();
    let (mut bob, _) = fleet.member("drop-room", "bob").await;
    let (mut cli, _) = ada_joins(&fleet, "drop-room", &[], &mut bob).await;
    cli.type_line("before the drop").await;
    cli.line_ending("ada: before the drop").await;

    assert_eq!(relay.drop_all(), 1, "the client's one connection went through the relay");
    bob.say("while you were away").await;
    // Typed while the connection is down: sent once it is back.
    cli.type_line("typed during the drop").await;
    cli.line_ending("bob: while you were away").await;
    cli.line_ending("ada: typed during the drop").await;
    bob.say("the end").await;
    cli.line_ending("bob: the end").await;
    // Everything bob saw, in order: ada left and came back, and each
    // message arrived exactly once.
    let mut seen = Vec::new();
    while seen.last().is_none_or(|last| last != "bob: the end") {
        let frame = bob.next().await;
        match frame["type"].as_str().unwrap() {
            "message" => seen.push(format!(
                "{}: {}",
                frame["from"]["nick"].as_str().unwrap(),
                frame["text"].as_str().unwrap()
            )),
            kind @ ("left" | "joined") => {
                seen.push(format!("{} {kind}", frame["member"]["nick"].as_str().unwrap()));
            }
            _ => {}
        }
    }
    let messages: Vec<&String> = seen.iter().filter(|l| l.contains(": ")).collect();
    assert_eq!(
        messages,
        [
            "ada: before the drop",
            "bob: while you were away",
            "ada: typed during the drop",
            "bob: the end"
        ],
        "{seen:?}"
    );
    let left = seen.iter().position(|l| l == "ada left").expect("ada's drop seen");
    let back = seen.iter().position(|l| l == "ada joined").expect("ada came back");
    assert!(
        left < back && back < seen.iter().position(|l| l == "ada: typed during the drop").unwrap()
    );

    let (ok, lines, stderr) = cli.finish().await;
    assert!(ok, "exit 0; stderr: {stderr}");
    assert!(stderr.contains("reconnecting"), "{stderr}");
    for line in ["ada: before the drop", "bob: while you were away", "ada: typed during the drop"] {
        assert_eq!(count(&lines, line), 1, "{line} once in {lines:?}");
    }
}

#[tokio::test]
async fn more_lines_than_the_rate_limit_allows_all_arrive_once_in_order() {
    let fleet = Fleet::start(false).await;
    let (mut bob, welcome) = fleet.member("busy-room", "bob").await;
    let burst = welcome["limits"]["rate_burst"].as_u64().unwrap() as usize;
    let lines: Vec<String> = (0..burst + 15).map(|i| format!("line {i}")).collect();
    let (mut cli, _) = ada_joins(&fleet, "busy-room", &[], &mut bob).await;
    cli.type_line(&lines.join("\n")).await;
    let (ok, _, stderr) = cli.finish().await;
    assert!(ok, "every line confirmed before the exit: {stderr}");
    for line in &lines {
        assert_eq!(bob.next_from("ada").await["text"], line.as_str(), "in order, once");
    }
    bob.say("after").await;
    assert_eq!(bob.next_message().await, ("bob".into(), "after".into()), "nothing more from ada");
}

#[tokio::test]
async fn refused_lines_are_reported_and_the_others_still_go() {
    let fleet = Fleet::start(false).await;
    let (mut bob, _) = fleet.member("limits-room", "bob").await;
    let (mut cli, _) = ada_joins(&fleet, "limits-room", &["--no-history"], &mut bob).await;
    cli.type_line(&"x".repeat(4001)).await;
    cli.type_line("/reply 99 to nothing").await;
    cli.type_line("/dance").await;
    cli.type_line("still here").await;
    assert_eq!(bob.next_from("ada").await["text"], "still here");
    let (ok, _, stderr) = cli.finish().await;
    assert!(!ok, "refused lines make the exit status 1");
    for expected in
        ["not sent (text_too_long)", "not sent (bad_reply_to)", "unknown command /dance"]
    {
        assert!(stderr.contains(expected), "{expected} in {stderr}");
    }
}

#[tokio::test]
async fn a_wrong_password_is_an_error_on_stderr() {
    let fleet = Fleet::start(false).await;
    let secret = Plain::start(&["--password", "s3cret", &fleet.room_url("locked-room")]);
    let (ok, _, stderr) = secret.finish().await;
    assert!(ok, "the creator gets in: {stderr}");
    let cli = Plain::start(&["--nick", "eve", &fleet.room_url("locked-room")]);
    let (ok, lines, stderr) = cli.finish().await;
    assert!(!ok);
    assert!(stderr.contains("password_required"), "{stderr}");
    assert!(lines.is_empty(), "{lines:?}");
    let bad = Plain::start(&[&fleet.room_url("api")]);
    let (ok, _, stderr) = bad.finish().await;
    assert!(!ok && stderr.contains("reserved_room_name"), "{stderr}");
}

#[tokio::test]
async fn up_down_and_unvote_commands_vote() {
    let fleet = Fleet::start(false).await;
    let (mut bob, mut cli, _, _) =
        ada_joins_after_bob_said(&fleet, "plain-votes", "vote on me").await;
    for (line, counts) in [("/up 1", (1, 0)), ("/down #1", (0, 1)), ("/unvote 1", (0, 0))] {
        cli.type_line(line).await;
        let votes = bob.next_of("votes").await;
        assert_eq!(
            (votes["seq"].as_u64(), votes["up"].as_u64(), votes["down"].as_u64()),
            (Some(1), Some(counts.0), Some(counts.1)),
            "{line}"
        );
    }
    cli.type_line("/up 99").await;
    cli.type_line("done").await;
    assert_eq!(bob.next_from("ada").await["text"], "done");
    let (ok, _, stderr) = cli.finish().await;
    assert!(ok, "exit 0; stderr: {stderr}");
    assert!(stderr.contains("(no_such_message)"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_moving_to_another_backend_is_followed_with_nothing_lost() {
    let fleet = TestFleet::start(&["b1", "b2"]).await;
    let local = std::net::IpAddr::from([127, 0, 0, 1]);
    let mut bob = Roamer::join(&fleet.aux, "cli-move", "bob", local).await;
    let link = format!("http://{}/cli-move", fleet.aux.public);
    let mut cli =
        Plain::start_with(&["--nick", "ada", &link], &[("RUST_LOG", "instantchat_cli=info")]);
    let said = |text: &'static str| move |b: &Roamer| b.delivered.iter().any(|(_, t, _)| t == text);
    cli.type_line("before the move").await;
    bob.read_until(said("before the move")).await;

    let path = "/admin/rooms/cli-move/move";
    let moved = fleet.aux.admin(http::Method::POST, path, Some(serde_json::json!({}))).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let to = moved.json()["to"].as_str().unwrap().to_owned();
    cli.type_line("after the move").await;
    bob.read_until(said("after the move")).await;
    bob.send("b1", "welcome back").await;
    cli.line_ending("bob: welcome back").await;
    bob.read_until(said("welcome back")).await;

    let (ok, lines, stderr) = cli.finish().await;
    assert!(ok, "exit 0; stderr: {stderr}");
    let target = fleet.backends.iter().find(|b| b.id == to).unwrap();
    let followed = stderr.lines().find(|l| l.contains("the room moved; following it"));
    assert!(
        followed.is_some_and(|l| l.contains(&target.ws_url("cli-move"))),
        "followed to the URL `closing moved` named: {stderr}"
    );
    assert!(!stderr.contains("asking aux-srv"), "and found the room there: {stderr}");
    for line in ["ada: before the move", "ada: after the move", "bob: welcome back"] {
        assert_eq!(count(&lines, line), 1, "{line} once in {lines:?}");
    }
    assert_eq!(bob.seqs(), [1, 2, 3], "bob saw each message once, in order");
}
