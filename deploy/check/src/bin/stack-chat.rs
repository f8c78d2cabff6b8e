//! `stack-chat`: a chat through a running stack's public origin (nginx),
//! as two people in a browser would have it: the home page, a room made
//! with the HTTP API, two websocket members exchanging a message, a drawing
//! uploaded, fetched and sent, the room's history read back over HTTP.
//! `deploy/test-containers.sh` runs it against the compose stacks.
//!
//! ```text
//! stack-chat --origin URL --connect IP:PORT --room NAME [--ca FILE] [--backend ID]
//!            [--existing LINE]
//! ```
//!
//! `--origin` is the public origin (`https://chat.test`), `--connect` where
//! it is reached (the test has no DNS for it), `--ca` the CA certificate to
//! trust for https, `--backend` the backend the room must be placed on,
//! `--existing` a line the history of a room that exists already must hold
//! (after a move).
//! Prints the backend holding the room; any failed check panics (exit 101)
//! with what was expected and what came.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use deploy_check::chat::{
    a_drawing_goes_up_and_round, create_room, history_over_http, open_room, two_people_chat,
};
use deploy_check::client::Origin;

/// A chat through a running stack's public origin.
#[derive(Parser)]
struct Args {
    /// The public origin, e.g. https://chat.test.
    #[arg(long)]
    origin: String,
    /// Where the origin is reached (the test has no DNS for it).
    #[arg(long, value_name = "IP:PORT")]
    connect: SocketAddr,
    /// The room to make and chat in.
    #[arg(long)]
    room: String,
    /// The CA certificate to trust, for https origins (and only for them).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The backend the room must be placed on.
    #[arg(long, value_name = "ID")]
    backend: Option<String>,
    /// The room exists already (say, it was moved) and its history holds
    /// this line; then the chat goes on in it.
    #[arg(long, value_name = "LINE")]
    existing: Option<String>,
}

/// The host of `scheme://host[:port]`.
fn host_of(origin: &str) -> &str {
    let rest = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    rest.split(':').next().unwrap_or(rest)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let tls = args.origin.starts_with("https://");
    assert!(tls == args.ca.is_some(), "--ca is needed for https origins, and only for them");
    let public = Origin::named(host_of(&args.origin), args.connect, args.ca.as_deref());
    assert_eq!(public.url(), args.origin, "--origin and --connect's port disagree");
    let room = args.room.as_str();

    // nginx and the pages.
    assert_eq!(public.get("/healthz").await.status, 200, "nginx's /healthz");
    let home = public.get("/").await;
    assert_eq!(home.status, 200, "the home page: {}", home.text());
    assert!(home.text().contains("<html") || home.text().contains("<!doctype"), "a page");

    let (ws_url, backend) = match &args.existing {
        None => create_room(&public, room).await,
        Some(line) => {
            history_over_http(&public, room, line).await;
            open_room(&public, room, 200).await
        }
    };
    if let Some(expected) = &args.backend {
        assert_eq!(&backend, expected, "the backend the room was placed on");
    }
    let text = match args.existing {
        None => format!("hello from a container test in {room}"),
        Some(_) => format!("hello again in {room}, after the move"),
    };
    let (mut ada, mut bob) = two_people_chat(&public, &ws_url, &text).await;
    a_drawing_goes_up_and_round(&public, &mut ada, &mut bob).await;
    history_over_http(&public, room, &format!("ada: {text}")).await;

    println!("{backend}");
}
