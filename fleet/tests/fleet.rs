//! The `instantchat` binary: the whole fleet in one process, as the README's
//! walk-through uses it (here on ephemeral ports).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;
use test_support::*;

/// The `key=value` pairs of the `instantchat: listening …` line.
fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

#[tokio::test]
async fn the_fleet_binary_starts_serves_a_room_and_stops_on_sigterm() {
    let web = tempfile::tempdir().unwrap();
    std::fs::write(web.path().join("index.html"), "<title>instantchat</title>").unwrap();
    std::fs::write(web.path().join("room.html"), "<title>room</title>").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_instantchat"))
        .args(["--ephemeral", "--admin-token", ADMIN_TOKEN, "--web-root"])
        .arg(web.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let listening = rx.recv_timeout(WAIT).expect("the listening line");
    assert!(listening.starts_with("instantchat: listening "), "{listening}");
    let open =
        (0..2).map(|_| rx.recv_timeout(WAIT).unwrap()).find(|l| l.contains("open ")).unwrap();
    let aux = field(&listening, "aux").to_owned();
    assert!(open.contains(&format!("{aux}/")), "{open}");
    let admin = field(&listening, "admin").to_owned();
    let backends: Vec<String> =
        field(&listening, "backends").split(',').map(str::to_owned).collect();
    assert_eq!(backends.len(), 2);
    let files = field(&listening, "files").to_owned();

    // The walk-through: open the URL, create a room, chat in it.
    let home = get(&format!("{aux}/")).await;
    assert_eq!((home.status, home.body.as_str()), (200, "<title>instantchat</title>"));
    assert_eq!(get(&format!("{aux}/my-first-room")).await.body, "<title>room</title>");
    let room =
        call(Method::PUT, &format!("{aux}/api/rooms/my-first-room"), &[], Some("{}".into())).await;
    assert_eq!(room.status, 201, "{}", room.body);
    let room = room.json();
    assert_eq!(room["files_url"], files.as_str());
    assert!(backends.contains(&ws_base_of(&room)), "{room}");
    let (mut member, _) = WsClient::joined(room["ws_url"].as_str().unwrap(), "ada").await;
    let posted = call(
        Method::POST,
        &format!("{aux}/api/rooms/my-first-room/messages"),
        &[],
        Some(json!({"nick": "bot", "text": "welcome"}).to_string()),
    )
    .await;
    assert_eq!(posted.status, 201);
    assert_eq!(member.next_of("message").await["text"], "welcome");
    assert_eq!(get(&format!("{files}/livez")).await.status, 200);
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let listed =
        call(Method::GET, &format!("{admin}/admin/backends"), &[("authorization", &auth)], None)
            .await;
    assert_eq!(listed.json()["backends"].as_array().unwrap().len(), 2);

    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + WAIT;
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "instantchat did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    assert_eq!(member.next_of("closing").await["reason"], "shutdown");
}

/// A start-up error is one line on stderr, even with `RUST_BACKTRACE` set;
/// logs written to a pipe carry no colour codes.
#[test]
fn a_start_up_error_is_one_plain_line() {
    let not_a_folder = tempfile::NamedTempFile::new().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_instantchat"))
        .arg("--ephemeral")
        .arg("--data-dir")
        .arg(not_a_folder.path().join("files"))
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LOG", "info")
        .env_remove("INSTANTCHAT_BACKTRACE")
        .env_remove("INSTANTCHAT_LOG_FORMAT")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.lines().count() > 1, "no log lines to check:\n{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes in piped logs:\n{stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("instantchat: file-srv: opening the data folder "),
        "not one clear line: {last}\n{stderr}"
    );
}
