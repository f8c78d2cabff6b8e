//! The servers a run watches: which they are (the backends its rooms are
//! on, those named on the command line, aux-srv), their `/metrics` and CPU
//! seconds at each step, and what the run cost each of them.

use std::collections::{BTreeMap, BTreeSet};

use crate::cli::Scenario;
use crate::net::{self, Http};
use crate::procfs;
use crate::report::ServiceCost;
use crate::worker::RoomRef;

/// Backends hold at most this many connections by default (and 20,000 open
/// files per process on this machine).
const BACKEND_CONNECTIONS: usize = 19_000;

pub type Scrape = BTreeMap<String, std::collections::HashMap<String, f64>>;

/// Name of the finer CPU figure read from `/proc` for local services.
const PROC_CPU: &str = "procfs_cpu_seconds";

/// The backends the rooms are on (with a warning for any given more
/// connections than it holds), the ones named on the command line, and
/// aux-srv: what the report gives the cost of, as `(url, role)`.
pub fn services_to_watch(
    scenario: &Scenario,
    rooms: &[RoomRef],
    warnings: &mut Vec<String>,
) -> Vec<(String, String)> {
    let mut per_backend: BTreeMap<String, usize> = BTreeMap::new();
    for n in 0..scenario.connections() {
        let room = match scenario {
            Scenario::Fanout(_) => 0,
            Scenario::Rooms(a) => n / a.room_size.max(1),
            Scenario::Idle(a) => n / a.room_size.max(1),
            Scenario::Connect(a) => n / a.room_size.max(1),
            Scenario::Aux(_) | Scenario::Migrate(_) => break,
        };
        if let Some(base) = rooms.get(room).and_then(|r| net::http_base_of_ws(&r.ws_url)) {
            *per_backend.entry(base).or_default() += 1;
        }
    }
    for (backend, n) in &per_backend {
        if *n > BACKEND_CONNECTIONS {
            warnings.push(format!(
                "{n} connections to {backend}: more than a backend holds by default \
                 ({BACKEND_CONNECTIONS}, max_connections; 20,000 open files per process here)"
            ));
        }
    }
    let common = scenario.common();
    let mut services: Vec<(String, String)> = per_backend
        .keys()
        .cloned()
        .chain(common.backends.iter().map(|b| b.trim_end_matches('/').to_owned()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|url| (url, "backend".to_owned()))
        .collect();
    services.push((common.aux.trim_end_matches('/').to_owned(), "aux".to_owned()));
    services
}

/// Each service's `/metrics`, plus its CPU seconds from `/proc` when it
/// runs here (found once per service and remembered in `pids`).
pub async fn scrape_all(
    http: &Http,
    services: &[(String, String)],
    pids: &mut BTreeMap<String, Option<u32>>,
) -> Scrape {
    let mut out = BTreeMap::new();
    for (url, _) in services {
        if let Ok(mut metrics) = http.scrape(url).await {
            let pid = *pids
                .entry(url.clone())
                .or_insert_with(|| procfs::port_of(url).and_then(procfs::pid_listening_on));
            if let Some(cpu) = pid.and_then(procfs::cpu_seconds) {
                metrics.insert(PROC_CPU.into(), cpu);
            }
            out.insert(url.clone(), metrics);
        }
    }
    out
}

pub fn cost(url: &str, role: &str, before: &Scrape, ready: &Scrape, after: &Scrape) -> ServiceCost {
    let get = |s: &Scrape, name: &str| s.get(url).and_then(|m| m.get(name)).copied().unwrap_or(0.0);
    let has_proc =
        [ready, after].iter().all(|s| s.get(url).is_some_and(|m| m.contains_key(PROC_CPU)));
    let cpu = if has_proc { PROC_CPU } else { "process_cpu_seconds_total" };
    ServiceCost {
        url: url.to_owned(),
        role: role.to_owned(),
        cpu_seconds: (get(after, cpu) - get(ready, cpu)).max(0.0),
        cpu_source: if has_proc { "procfs" } else { "metrics" }.into(),
        rss_before_bytes: get(before, "process_resident_memory_bytes") as u64,
        rss_ready_bytes: get(ready, "process_resident_memory_bytes") as u64,
        rss_after_bytes: get(after, "process_resident_memory_bytes") as u64,
        connections: get(after, "instantchat_backend_connections") as u64,
        delivered_frames: (get(after, "instantchat_backend_messages_delivered_total")
            - get(ready, "instantchat_backend_messages_delivered_total"))
        .max(0.0) as u64,
    }
}
