//! The admin API's moderation calls (routed from `admin.rs`):
//!
//! | call | does |
//! |---|---|
//! | `GET /admin/reports?limit=N` | reported messages of every room, most reported first |
//! | `POST /admin/bans` `{"ip", "secs", "reason"?}` | ban an address on every backend |
//! | `GET /admin/bans` | the running bans |
//! | `DELETE /admin/bans/{ip}` | lift one |

use std::net::IpAddr;
use std::time::Duration;

use common::control::{IpBan, RequestBody, ResponseBody};
use futures_util::future::join_all;
use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::App;
use crate::http::respond::{self, ApiError, Resp, percent_decode, query_param};

/// Longest fleet-wide ban: a year (the backends' limit too).
pub const MAX_BAN_SECS: u64 = 366 * 24 * 3600;
/// Longest ban reason, in characters.
pub const MAX_BAN_REASON_CHARS: usize = 200;

/// `GET /admin/reports`: every backend's reports, merged.
pub async fn list_reports(app: &App, req: &Request<Incoming>) -> Result<Resp, ApiError> {
    let limit = match query_param(req.uri().query(), "limit") {
        Some(v) => v
            .parse::<u32>()
            .map_err(|_| ApiError::bad_request("bad_request", "`limit` must be a number."))?
            .clamp(1, 1000),
        None => 100,
    };
    let backends = app.fleet.all();
    let answers =
        join_all(backends.iter().map(|b| app.call(b, RequestBody::ListReports { limit }))).await;
    let mut reports = Vec::new();
    let mut unavailable = Vec::new();
    for (b, answer) in backends.iter().zip(answers) {
        match answer {
            Ok(ResponseBody::Reports { reports: page }) => {
                reports.extend(page.into_iter().map(|r| (b.id.clone(), r)));
            }
            _ => unavailable.push(b.id.clone()),
        }
    }
    reports.sort_by(|(_, a), (_, b)| b.count.cmp(&a.count).then(b.last_ms.cmp(&a.last_ms)));
    reports.truncate(limit as usize);
    let listed: Vec<Value> = reports
        .iter()
        .map(|(backend, r)| {
            json!({
                "room": r.room,
                "seq": r.seq,
                "text": r.text,
                "from": r.from_nick,
                "count": r.count,
                "first_ms": r.first_ms,
                "last_ms": r.last_ms,
                "reasons": r.reasons,
                "backend": backend,
            })
        })
        .collect();
    Ok(respond::json(StatusCode::OK, &json!({ "reports": listed, "unavailable": unavailable })))
}

/// Sends `set`/`lift` to every backend; the ids that took it and those that
/// did not (they get the whole list when they are seen again).
pub async fn push(app: &App, set: Vec<IpBan>, lift: Vec<String>) -> (Vec<String>, Vec<String>) {
    let backends = app.fleet.all();
    let body = RequestBody::Bans { set, lift };
    let answers = join_all(backends.iter().map(|b| app.call(b, body.clone()))).await;
    let (mut pushed, mut failed) = (Vec::new(), Vec::new());
    for (b, answer) in backends.iter().zip(answers) {
        match answer {
            Ok(ResponseBody::Bans { .. }) => pushed.push(b.id.clone()),
            _ => failed.push(b.id.clone()),
        }
    }
    (pushed, failed)
}

fn ban_json(ban: &IpBan) -> Value {
    json!({ "ip": ban.ip, "remaining_ms": ban.remaining_ms, "reason": ban.reason })
}

#[derive(Deserialize)]
struct BanBody {
    ip: String,
    secs: u64,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /admin/bans`.
pub async fn add_ban(app: &App, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let body = respond::read_body(req, app.config.max_body_bytes).await?;
    let BanBody { ip, secs, reason } = respond::parse_json(&body)?;
    let ip: IpAddr = ip
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request("bad_ip", "`ip` must be an IPv4 or IPv6 address."))?;
    if secs == 0 || secs > MAX_BAN_SECS {
        return Err(ApiError::bad_request(
            "bad_ban",
            format!("`secs` must be 1 to {MAX_BAN_SECS} (a year)."),
        ));
    }
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_BAN_REASON_CHARS) {
        return Err(ApiError::bad_request(
            "bad_ban",
            format!("`reason` is at most {MAX_BAN_REASON_CHARS} characters."),
        ));
    }
    let ban = app.bans.set(ip, Duration::from_secs(secs), reason);
    let (pushed, failed) = push(app, vec![ban.clone()], Vec::new()).await;
    tracing::info!(%ip, secs, failed = failed.len(), "address banned through the admin API");
    let mut answer = ban_json(&ban);
    answer["pushed"] = json!(pushed);
    answer["failed"] = json!(failed);
    Ok(respond::json(StatusCode::CREATED, &answer))
}

/// `GET /admin/bans`.
pub fn list_bans(app: &App) -> Resp {
    let bans: Vec<Value> = app.bans.list().iter().map(ban_json).collect();
    respond::json(StatusCode::OK, &json!({ "bans": bans }))
}

/// `DELETE /admin/bans/{ip}`.
pub async fn lift_ban(app: &App, raw: &str) -> Result<Resp, ApiError> {
    let ip: IpAddr = percent_decode(raw)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ApiError::bad_request("bad_ip", "Not an IPv4 or IPv6 address."))?;
    if !app.bans.lift(ip) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_banned",
            "This address is not banned.",
        ));
    }
    let (pushed, failed) = push(app, Vec::new(), vec![ip.to_string()]).await;
    tracing::info!(%ip, "ban lifted through the admin API");
    Ok(respond::json(
        StatusCode::OK,
        &json!({ "lifted": ip.to_string(), "pushed": pushed, "failed": failed }),
    ))
}
