//! Link previews from the backend's side: a message with a link is delivered
//! at once, then a real file-srv (allowed to reach a site on loopback) makes
//! the preview and everyone gets `preview`; late joiners and the HTTP API see
//! it on the message.

mod support;

use std::time::Duration;

use common::config::{BackendConfig, FileSrvConfig};
use common::control::{RequestBody, ResponseBody};
use support::{WAIT, quick, start_backend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PAGE: &str = "<html><head><title>Release notes</title>\
<meta name=\"description\" content=\"What changed.\"></head></html>";

/// A one-page site on loopback; answers every request with [`PAGE`].
async fn site() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{PAGE}",
                    PAGE.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

/// A real file-srv on loopback; returns its base URL.
async fn file_srv(site_port: u16, data: &std::path::Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = FileSrvConfig {
        data_dir: data.join("files").display().to_string(),
        public_url: url.clone(),
        preview_allow_private: true,
        preview_ports: vec![site_port],
        preview_token: "preview-secret".into(),
        ..FileSrvConfig::default()
    };
    tokio::spawn(file_srv::run(listener, config, std::future::pending()));
    url
}

#[tokio::test]
async fn a_link_gets_its_preview_after_the_message() {
    let port = site().await;
    let data = tempfile::tempdir().unwrap();
    let files = file_srv(port, data.path()).await;
    let backend = start_backend(BackendConfig {
        preview_url: files,
        preview_token: "preview-secret".into(),
        ..quick()
    })
    .await;
    let (mut ada, _) = backend.create_room_and_join("news", "ada").await;
    let (mut bob, _) = backend.member("news", "bob").await;
    ada.expect("joined").await;
    let link = format!("http://127.0.0.1:{port}/notes");
    ada.say(&format!("read {link}.")).await;
    for client in [&mut ada, &mut bob] {
        let message = client.expect("message").await;
        assert!(message.get("preview").is_none(), "the message does not wait for its preview");
        let preview = tokio::time::timeout(WAIT, client.expect("preview")).await.unwrap();
        assert_eq!(preview["seq"], message["seq"]);
        assert_eq!(preview["url"], link.as_str());
        assert_eq!(preview["title"], "Release notes");
        assert_eq!(preview["description"], "What changed.");
    }

    let (_carol, welcome) = backend.member("news", "carol").await;
    assert_eq!(welcome["messages"][0]["preview"]["title"], "Release notes");
    let read =
        RequestBody::ReadMessages { room: "news".into(), after: None, limit: 10, password: None };
    let ResponseBody::Messages { messages, .. } = backend.request(read).await else {
        panic!("read failed")
    };
    assert_eq!(messages[0].preview.as_ref().map(|p| p.title.as_str()), Some("Release notes"));
}

#[tokio::test]
async fn without_preview_url_a_link_is_just_text() {
    let backend = start_backend(quick()).await;
    let (mut ada, _) = backend.create_room_and_join("plain", "ada").await;
    ada.say("see http://127.0.0.1:1/ and then").await;
    ada.expect("message").await;
    ada.say("next").await;
    // The next frame is the next message, not a preview.
    let next = tokio::time::timeout(Duration::from_secs(5), ada.next()).await.unwrap();
    assert_eq!((next["type"].as_str(), next["text"].as_str()), (Some("message"), Some("next")));
}
