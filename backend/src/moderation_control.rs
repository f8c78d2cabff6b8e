//! The control requests of moderation: owners' acts over HTTP (aux-srv
//! forwards `X-Owner-Key`), the reports operators list, and fleet-wide
//! address bans. Kept apart from `control.rs`, which routes to them.

use std::time::Instant;

use common::control::{ErrorCode, IpBan, OwnerAct, ReportRecord, ResponseBody};

use crate::Shared;
use crate::control::{fail, find, room_error};
use crate::room::{Actor, RoomError};

/// Most reports one `ListReports` answer carries.
pub const MAX_REPORTS_PAGE: u32 = 1000;

pub fn owner_act(shared: &Shared, room: &str, owner_key: &str, act: OwnerAct) -> ResponseBody {
    let room = match find(shared, room) {
        Ok(room) => room,
        Err(refusal) => return refusal.into(),
    };
    let actor = Actor::Key(owner_key);
    let done = match act {
        OwnerAct::Topic { text } => room.set_topic(actor, text),
        OwnerAct::Delete { seq } => room.delete_as_owner(actor, seq),
    };
    match done {
        Ok(()) => ResponseBody::OwnerDone,
        Err(RoomError::NotOwner) => fail(ErrorCode::NotOwner, "wrong owner key"),
        Err(RoomError::NoSuchMessage) => {
            fail(ErrorCode::NotFound, "no_such_message: no message with that seq is kept")
        }
        Err(e) => room_error(&e),
    }
}

/// The reported messages of every room, most reported (then latest) first,
/// within the answer budget.
pub fn list_reports(shared: &Shared, limit: u32, budget: usize) -> ResponseBody {
    let mut reports: Vec<ReportRecord> =
        shared.registry.all().iter().flat_map(|room| room.reports()).collect();
    reports.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_ms.cmp(&a.last_ms)));
    reports.truncate(limit.clamp(1, MAX_REPORTS_PAGE) as usize);
    let mut used = 0;
    let reports = reports
        .into_iter()
        .take_while(|r| {
            used += r.text.len() + r.room.len() + r.from_nick.len() + 128;
            used <= budget
        })
        .collect();
    ResponseBody::Reports { reports }
}

/// Applies fleet-wide bans, closes the banned addresses' connections, and
/// answers every ban now held.
pub fn bans(shared: &Shared, set: &[IpBan], lift: &[String]) -> ResponseBody {
    let now = Instant::now();
    let banned = match shared.ip_bans.apply(set, lift, now) {
        Ok(banned) => banned,
        Err(e) => return fail(ErrorCode::BadRequest, e.to_string()),
    };
    if !banned.is_empty() {
        let rooms = shared.registry.all();
        for ip in banned {
            let Some((wait, reason)) = shared.ip_bans.check(ip, now) else { continue };
            let refusal = RoomError::Banned { wait, reason }.frame();
            for room in &rooms {
                room.close_address(ip, &refusal);
            }
        }
        tracing::info!(addresses = set.len(), "fleet-wide bans applied");
    }
    ResponseBody::Bans { bans: shared.ip_bans.list(now) }
}
