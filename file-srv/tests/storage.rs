//! Storage over time against a real file-srv: TTL sweep, quota eviction,
//! start-up recovery, and the shutdown drain.

mod support;

use std::time::{Duration, Instant, SystemTime};

use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn expired_drawings_are_swept() {
    let (server, _root) =
        files_in_temp(|cfg| (cfg.ttl_secs, cfg.sweep_interval_ms) = (1, 50)).await;
    let id = upload(server.addr, &png(16, 16, 1)).await;
    let uploaded = Instant::now();
    assert_eq!(raw_get(server.addr, &format!("/files/{id}.png")).await.status, 200);

    eventually_within("the sweep to remove the drawing", Duration::from_secs(10), async || {
        server.stored().is_empty()
    })
    .await;
    assert!(uploaded.elapsed() >= Duration::from_millis(900), "not before its TTL");
    let reply = raw_get(server.addr, &format!("/files/{id}.png")).await;
    assert_eq!((reply.status, reply.error_code().as_str()), (404, "file_not_found"));
    assert_eq!(
        server.metric("instantchat_files_sweep_removed_total{reason=\"expired\"}").await,
        1.0
    );
    assert_eq!(server.metric("instantchat_files_stored").await, 0.0);
    assert_eq!(server.metric("instantchat_files_stored_bytes").await, 0.0);
    server.stop().await;
}

#[tokio::test]
async fn the_quota_evicts_the_oldest_first() {
    let root = tempfile::tempdir().unwrap();
    let drawings: Vec<Vec<u8>> = (0..6).map(|seed| png(16, 16, seed)).collect();
    let size = drawings[0].len() as u64;
    let mut cfg = files_config(root.path());
    cfg.max_bytes = size as usize;
    cfg.quota_bytes = size * 3 + size / 2; // room for three
    let server = start_files(cfg).await;
    let name = |i: usize| format!("{}.png", expected_id(&drawings[i]));
    let on_disk = |names: &[usize]| {
        let mut want: Vec<String> = names.iter().map(|i| name(*i)).collect();
        want.sort();
        want
    };

    for d in &drawings[..3] {
        upload(server.addr, d).await;
    }
    assert_eq!(server.stored(), on_disk(&[0, 1, 2]));
    upload(server.addr, &drawings[3]).await;
    assert_eq!(server.stored(), on_disk(&[1, 2, 3]), "the oldest went");
    let reply = raw_get(server.addr, &format!("/files/{}", name(0))).await;
    assert_eq!(reply.status, 404);

    // Uploading 1 again makes it the newest, so 2 is the oldest now.
    upload(server.addr, &drawings[1]).await;
    upload(server.addr, &drawings[4]).await;
    assert_eq!(server.stored(), on_disk(&[1, 3, 4]));

    assert_eq!(server.metric("instantchat_files_sweep_removed_total{reason=\"quota\"}").await, 2.0);
    assert_eq!(server.metric("instantchat_files_quota_bytes").await, (size * 3 + size / 2) as f64);
    assert_eq!(server.metric("instantchat_files_stored_bytes").await, (size * 3) as f64);
    server.stop().await;
}

#[tokio::test]
async fn start_up_rebuilds_the_index_and_cleans_up() {
    let root = tempfile::tempdir().unwrap();
    let cfg = files_config(root.path());
    let server = start_files(cfg.clone()).await;
    let (old, kept, young) = (png(8, 8, 1), png(8, 8, 2), png(8, 8, 3));
    let old_id = upload(server.addr, &old).await;
    let kept_id = upload(server.addr, &kept).await;
    let young_id = upload(server.addr, &young).await;
    server.stop().await;

    let dir = std::path::PathBuf::from(&cfg.data_dir);
    let set_age = |id: &str, age: Duration| {
        let file =
            std::fs::File::options().write(true).open(dir.join(format!("{id}.png"))).unwrap();
        file.set_modified(SystemTime::now() - age).unwrap();
    };
    let day = Duration::from_secs(24 * 3600);
    set_age(&old_id, day * 2);
    set_age(&kept_id, day - Duration::from_secs(600));
    // What a crash mid-write leaves behind, and a stranger's file.
    std::fs::write(dir.join("tmp").join(format!("{old_id}.1.0.part")), &old[..10]).unwrap();
    std::fs::write(dir.join("notes.txt"), "operator's notes").unwrap();

    let server = start_files(cfg.clone()).await;
    assert_eq!(server.temp_files(), 0, "temp files from before are gone");
    eventually_within("the expired drawing to be swept", Duration::from_secs(5), async || {
        !server.stored().contains(&format!("{old_id}.png"))
    })
    .await;
    let mut want =
        vec![format!("{kept_id}.png"), format!("{young_id}.png"), "notes.txt".to_owned()];
    want.sort();
    assert_eq!(server.stored(), want);
    assert_eq!(raw_get(server.addr, &format!("/files/{young_id}.png")).await.body, young);
    assert_eq!(server.metric("instantchat_files_stored").await, 2.0);

    // Uploading a drawing again restarts its TTL, on disk too.
    let before = std::fs::metadata(dir.join(format!("{kept_id}.png"))).unwrap().modified().unwrap();
    upload(server.addr, &kept).await;
    let after = std::fs::metadata(dir.join(format!("{kept_id}.png"))).unwrap().modified().unwrap();
    assert!(after.duration_since(before).unwrap() > Duration::from_secs(500));
    server.stop().await;

    // A smaller quota at start-up evicts the oldest at once (`kept` is the
    // newest now).
    let mut cfg = files_config(root.path());
    cfg.max_bytes = young.len();
    cfg.quota_bytes = young.len() as u64;
    let server = start_files(cfg).await;
    let mut want = vec![format!("{kept_id}.png"), "notes.txt".to_owned()];
    want.sort();
    assert_eq!(server.stored(), want);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_uploads_in_flight_and_respects_the_grace() {
    let (mut server, root) = files_in_temp(|cfg| {
        cfg.shutdown_grace_ms = 5_000;
    })
    .await;
    let drawing = png(30, 30, 4);

    let mut stream = partial_upload(server.addr, &drawing, 100).await;
    eventually_within("the upload to be in flight", Duration::from_secs(5), async || {
        server.metric("instantchat_files_uploads_in_flight").await == 1.0
    })
    .await;
    server.begin_shutdown();
    eventually_within("new connections to be refused", Duration::from_secs(5), async || {
        TcpStream::connect(server.addr).await.is_err()
    })
    .await;
    stream.write_all(&drawing[100..]).await.unwrap();
    let reply = read_reply(&mut stream, false).await;
    assert_eq!(reply.status, 201, "the upload in flight completes");
    server.wait_stopped(Duration::from_secs(5)).await.unwrap();
    assert_eq!(server.stored(), vec![format!("{}.png", expected_id(&drawing))]);

    // An upload that never completes is cut when the grace period is over.
    let mut cfg = files_config(root.path());
    cfg.shutdown_grace_ms = 300;
    let mut server = start_files(cfg).await;
    let _stream = partial_upload(server.addr, &drawing, 100).await;
    eventually_within("the upload to be in flight", Duration::from_secs(5), async || {
        server.metric("instantchat_files_uploads_in_flight").await == 1.0
    })
    .await;
    let started = Instant::now();
    server.begin_shutdown();
    server.wait_stopped(Duration::from_secs(5)).await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "{took:?}");
}

/// `run` checks its config itself, before it touches the data folder.
#[tokio::test]
async fn run_refuses_a_bad_config_naming_the_key() {
    let root = tempfile::tempdir().unwrap();
    let config = common::config::FileSrvConfig { upload_burst: 0, ..files_config(root.path()) };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = file_srv::run(listener, config, std::future::pending());
    let error = tokio::time::timeout(WAIT, run).await.expect("run returns").unwrap_err();
    assert!(format!("{error:#}").contains("upload_burst"), "{error:#}");
    assert!(!root.path().join("files").exists(), "the data folder was created");
}
