//! `wss://` through the shipped nginx configuration in real nginx, with
//! TLS from a test CA the client is told to trust with `--ca-file`: the
//! client finds the room through nginx over HTTPS, talks over wss, and a
//! member on the backend hears it. Needs nginx and openssl (CI installs
//! them with `.ci/install-deploy-tools.sh`).

use std::net::SocketAddr;
use std::process::Stdio;

use deploy_check::client::{Origin, TestCa};
use deploy_check::fleet::{Bound, Settings};
use deploy_check::nginx::{Nginx, Site, Upstreams};
use test_support::{WAIT, WsClient as Ws};

const CLI: &str = env!("CARGO_BIN_EXE_instantchat-cli");
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

fn web_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for page in ["index.html", "room.html"] {
        std::fs::write(dir.path().join(page), "<!doctype html><title>page</title>\n").unwrap();
    }
    dir
}

#[tokio::test]
async fn chats_over_wss_through_nginx_trusting_a_test_ca() {
    let ca = TestCa::new();
    let web = web_root();
    let bound = Bound::new(&["b1"]).await;
    let addrs = bound.addrs();
    let upstreams =
        Upstreams { aux: addrs.aux, files: addrs.files, backends: addrs.backends.clone() };
    let nginx = Nginx::start(Site::Https, &upstreams, web.path(), Some((&ca.cert(), &ca.key())));
    let public =
        Origin::tls("localhost", SocketAddr::from(([127, 0, 0, 1], nginx.https_port)), &ca);
    let fleet = bound.start(&public, Settings::new(1, web.path().to_owned()));
    fleet.wait_ready().await;

    // The CA's certificate lies next to the server's (TestCa's layout).
    let ca_file = ca.cert().with_file_name("ca.pem");
    let room_url = format!("https://localhost:{}/tls-room", nginx.https_port);
    let untrusted =
        Command::new(CLI).args(["--plain", &room_url]).stdin(Stdio::null()).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&untrusted.stderr);
    assert!(!untrusted.status.success(), "a certificate from an unknown CA is refused");
    assert!(stderr.contains("certificate"), "{stderr}");

    let mut cli = Command::new(CLI)
        .args(["--plain", "--nick", "ada", "--ca-file"])
        .arg(&ca_file)
        .arg(&room_url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let backend = addrs.backends[0].public;
    let mut stdin = cli.stdin.take().unwrap();
    let mut stdout = BufReader::new(cli.stdout.take().unwrap()).lines();
    stdin.write_all(b"over tls\n").await.unwrap();
    let line = tokio::time::timeout(WAIT, stdout.next_line()).await.unwrap().unwrap().unwrap();
    assert!(line.ends_with("ada: over tls"), "{line}");
    let (mut bob, welcome) = Ws::joined(&format!("ws://{backend}/ws/tls-room"), "bob").await;
    assert_eq!(welcome["messages"][0]["text"], "over tls", "it reached the backend");
    bob.say("hello ada").await;
    let line = tokio::time::timeout(WAIT, stdout.next_line()).await.unwrap().unwrap().unwrap();
    assert!(line.ends_with("bob: hello ada"), "{line}");
    drop(stdin);
    let status = tokio::time::timeout(WAIT, cli.wait()).await.unwrap().unwrap();
    assert!(status.success());
    fleet.stop().await;
}
