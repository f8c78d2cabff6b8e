//! What the abuse defences cost per message, next to what the fan-out of
//! that message costs, in one process with no sockets: a room of 1000
//! members, each message queued to all of them (`Room::post`), against the
//! defences' checks of one send (`before_send` + `after_post`: spam-repeat
//! hash, slow-mode check, surge count). Timing, so release only:
//!
//! ```sh
//! cargo test --release -p instantchat-backend --test defences_cost -- --ignored --nocapture
//! ```

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::conn::Conn;
use backend::defences::{Defences, SendWatch};
use backend::metrics::Metrics;
use backend::room::{JoinAs, Outgoing, Poster, Room, RoomSettings};
use common::config::{self, PasswordAttempts};
use common::ws::Limits;

const MEMBERS: u64 = 1000;
const MESSAGES: usize = 3000;

fn room(metrics: &Arc<Metrics>) -> (Room, Vec<Arc<Conn>>) {
    let settings = RoomSettings {
        max_messages: 1000,
        max_members: MEMBERS as usize,
        max_text_chars: 4000,
        history_page_max: 200,
        idle: Duration::from_secs(600),
        silent: Duration::from_secs(600),
        max_votes: 20_000,
        arrival: Duration::from_secs(30),
    };
    let room = Room::new("bench".into(), "bench".into(), 1, None, None, settings, metrics.clone());
    let limits = Limits {
        max_text_chars: 4000,
        max_frame_bytes: 16384,
        rate_per_sec: 10,
        rate_burst: 20,
        history_page_max: 200,
    };
    let mut conns = Vec::new();
    for id in 1..=MEMBERS {
        let conn = Arc::new(Conn::new(4096, 0, u64::MAX));
        let ip = IpAddr::from([127, 0, 0, 1]);
        let member = JoinAs {
            nick: Some(format!("m{id}")),
            reclaim: None,
            resume: None,
            owner_key: None,
            ip,
        };
        room.join(member, conn.clone(), &limits).unwrap();
        conns.push(conn);
        if id % 500 == 0 {
            conns.iter().for_each(|c| drop(c.take_frames()));
        }
    }
    conns.iter().for_each(|c| drop(c.take_frames()));
    (room, conns)
}

#[test]
#[ignore = "a timing measurement: run it in release (see the module docs)"]
fn the_defences_cost_nothing_measurable_next_to_a_fan_out() {
    let metrics = Arc::new(Metrics::new("bench"));
    let (room, conns) = room(&metrics);
    // On, as in production, but with a surge floor no bench reaches (else
    // slow mode would refuse, which is cheaper still).
    let config = config::Defences { surge_min_per_minute: u32::MAX, ..config::Defences::default() };
    let defences = Defences::new(&config, &PasswordAttempts::default(), &metrics);
    let mut watch = SendWatch::default();
    let texts: Vec<String> =
        (0..MESSAGES).map(|i| format!("message number {i}, hello all")).collect();

    let (mut fan_out, mut checks) = (Duration::ZERO, Duration::ZERO);
    for (i, text) in texts.iter().enumerate() {
        let clock = i as u64;
        let started = Instant::now();
        defences.before_send(&room, &mut watch, text, Instant::now(), clock).unwrap();
        checks += started.elapsed();

        let started = Instant::now();
        let out = Outgoing { text: text.clone(), ..Outgoing::default() };
        room.post(Poster::Member(1), out, None).unwrap();
        fan_out += started.elapsed();

        let started = Instant::now();
        defences.after_post(&room, &mut watch, clock);
        checks += started.elapsed();
        if i % 1000 == 999 {
            conns.iter().for_each(|c| drop(c.take_frames()));
        }
    }
    let per = |d: Duration| d.as_nanos() as f64 / MESSAGES as f64;
    let (fan_out, checks) = (per(fan_out), per(checks));
    println!(
        "per message, {MEMBERS} members: fan-out (Room::post) {:.1} µs, defences {:.0} ns ({:.2} %)",
        fan_out / 1000.0,
        checks,
        100.0 * checks / fan_out
    );
    assert!(
        checks < fan_out / 100.0,
        "the checks cost {checks:.0} ns, the fan-out {fan_out:.0} ns"
    );
}
