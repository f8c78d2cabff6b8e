//! The real services, in-process, on `127.0.0.1:0`: aux-srv, backends and
//! file-srv, started through their libraries' `run` as their binaries do.
//!
//! Listeners are bound first ([`Bound`]) so that nginx can be configured
//! with their addresses and started before the services are: the services
//! need nginx's public address (their `public_url`s) in their config.

use std::net::SocketAddr;
use std::path::PathBuf;

use common::config::{AuxConfig, BackendConfig, BackendEntry, FileSrvConfig};
use test_support::Running;
use tokio::net::TcpListener;

use crate::client::Origin;

pub const CONTROL_TOKEN: &str = "deploy-check-control-token-0123456789";
pub const ADMIN_TOKEN: &str = "deploy-check-admin-token-0123456789";

/// Where one backend listens.
#[derive(Debug, Clone)]
pub struct BackendAddr {
    pub id: String,
    pub public: SocketAddr,
    pub control: SocketAddr,
}

/// Every listener's address.
#[derive(Debug, Clone)]
pub struct Addrs {
    pub aux: SocketAddr,
    pub admin: SocketAddr,
    pub files: SocketAddr,
    pub backends: Vec<BackendAddr>,
}

impl Addrs {
    pub fn backend(&self, id: &str) -> &BackendAddr {
        self.backends.iter().find(|b| b.id == id).unwrap_or_else(|| panic!("no backend {id}"))
    }
}

/// The listeners, bound but not yet served.
pub struct Bound {
    aux_public: TcpListener,
    aux_admin: TcpListener,
    files: TcpListener,
    backends: Vec<(String, TcpListener, TcpListener)>,
}

async fn any_port() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0")
}

impl Bound {
    pub async fn new(backend_ids: &[&str]) -> Bound {
        let mut backends = Vec::new();
        for id in backend_ids {
            backends.push(((*id).to_owned(), any_port().await, any_port().await));
        }
        Bound {
            aux_public: any_port().await,
            aux_admin: any_port().await,
            files: any_port().await,
            backends,
        }
    }

    pub fn addrs(&self) -> Addrs {
        let addr = |l: &TcpListener| l.local_addr().expect("bound");
        Addrs {
            aux: addr(&self.aux_public),
            admin: addr(&self.aux_admin),
            files: addr(&self.files),
            backends: self
                .backends
                .iter()
                .map(|(id, p, c)| BackendAddr { id: id.clone(), public: addr(p), control: addr(c) })
                .collect(),
        }
    }

    /// Starts every service as it would run behind nginx at `public`
    /// (backends' `public_url` `{ws(s)://host:port}/b/{id}`, drawings at
    /// `{public}/files/…`, nginx's address trusted for X-Forwarded-For).
    /// aux-srv knows the first `registered` backends at start.
    pub fn start(self, public: &Origin, settings: Settings) -> Fleet {
        let addrs = self.addrs();
        let base = public.url();
        let ws_base = base.replacen("http", "ws", 1);
        let mut services = Vec::new();
        for (id, public_listener, control_listener) in self.backends {
            let config = BackendConfig {
                id: id.clone(),
                listen: public_listener.local_addr().expect("bound"),
                control_listen: control_listener.local_addr().expect("bound"),
                public_url: format!("{ws_base}/b/{id}"),
                ..settings.backend.clone()
            };
            let listeners =
                backend::Listeners { public: public_listener, control: control_listener };
            services.push(Running::spawn(move |stop| backend::run(listeners, config, stop)));
        }
        let data = tempfile::tempdir().expect("temp dir");
        let files_config = FileSrvConfig {
            listen: addrs.files,
            data_dir: data.path().join("files").display().to_string(),
            public_url: base.clone(),
            trusted_proxies: vec!["127.0.0.1".into()],
            ..settings.files
        };
        let files = self.files;
        services.push(Running::spawn(move |stop| file_srv::run(files, files_config, stop)));
        let aux_config = AuxConfig {
            listen: addrs.aux,
            admin_listen: addrs.admin,
            backends: addrs.backends[..settings.registered]
                .iter()
                .map(|b| BackendEntry {
                    id: b.id.clone(),
                    control_addr: b.control.to_string(),
                    public_url: None,
                })
                .collect(),
            files_url: base,
            web_root: settings.web_root.display().to_string(),
            trusted_proxies: vec!["127.0.0.1".into()],
            ..settings.aux
        };
        let aux_listeners = aux_srv::Listeners { public: self.aux_public, admin: self.aux_admin };
        services.push(Running::spawn(move |stop| aux_srv::run(aux_listeners, aux_config, stop)));
        Fleet { addrs, registered: settings.registered, services, _data: data }
    }
}

/// What the services are started with (listeners, URLs and the trusted
/// proxy are filled in by [`Bound::start`]).
#[derive(Debug, Clone)]
pub struct Settings {
    pub registered: usize,
    pub web_root: PathBuf,
    pub aux: AuxConfig,
    pub backend: BackendConfig,
    pub files: FileSrvConfig,
}

impl Settings {
    /// Fast polls and generous limits (test-support's `aux_config`, which
    /// says why the placement budgets are huge).
    pub fn new(registered: usize, web_root: PathBuf) -> Settings {
        Settings {
            registered,
            web_root,
            aux: AuxConfig {
                control_token: CONTROL_TOKEN.into(),
                admin_token: ADMIN_TOKEN.into(),
                ..test_support::aux_config(&[])
            },
            backend: BackendConfig {
                control_token: CONTROL_TOKEN.into(),
                shutdown_grace_ms: 500,
                ..BackendConfig::default()
            },
            files: FileSrvConfig {
                upload_rate_per_min: 10_000,
                upload_burst: 10_000,
                shutdown_grace_ms: 500,
                ..FileSrvConfig::default()
            },
        }
    }
}

/// The running services. Dropping it stops them.
pub struct Fleet {
    pub addrs: Addrs,
    registered: usize,
    services: Vec<Running>,
    _data: tempfile::TempDir,
}

impl Fleet {
    /// Waits until aux-srv is ready and reports every registered backend
    /// up, and the backends and file-srv answer /readyz.
    pub async fn wait_ready(&self) {
        let registered = self.registered;
        let aux = Origin::plain(self.addrs.aux);
        crate::eventually("aux-srv is ready with its backends up", || {
            let aux = aux.clone();
            async move {
                match aux.try_get("/readyz").await {
                    Ok(r) if r.status == 200 => r.json()["backends_up"] == registered,
                    _ => false,
                }
            }
        })
        .await;
        let mut others = vec![self.addrs.files];
        others.extend(self.addrs.backends.iter().map(|b| b.public));
        for addr in others {
            let origin = Origin::plain(addr);
            crate::eventually(&format!("{addr} is ready"), || {
                let origin = origin.clone();
                async move { origin.try_get("/readyz").await.is_ok_and(|r| r.status == 200) }
            })
            .await;
        }
    }

    /// Stops every service (as SIGTERM would) and waits for each.
    pub async fn stop(mut self) {
        for service in &mut self.services {
            service.trigger();
        }
        for service in &mut self.services {
            let result = tokio::time::timeout(crate::WAIT, service.finish()).await;
            result.expect("a service stops within the wait").expect("service ran without error");
        }
    }
}
