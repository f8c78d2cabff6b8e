//! Real nginx (Debian's package) running the shipped configuration.
//!
//! What is shipped is what runs: `deploy/nginx/instantchat/` is linked in
//! as it is, and the site and upstream files are rendered from
//! `deploy/nginx/templates/` by `deploy/nginx/render-templates.sh`, the
//! image's own entrypoint, with this test's ports, paths and certificate.
//! Only the main `nginx.conf` is the test's own: it puts the pid file, logs
//! and temporary files in a temporary folder (the shipped one, with the
//! image's paths, is checked with `nginx -t` in the tests).

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::fleet::BackendAddr;
use crate::{paths, tools};

/// Which site template runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Site {
    /// `sites/http.conf.template`: the local layout.
    Http,
    /// `sites/https.conf.template`: single-node and the gateway, with the
    /// plain port redirecting.
    Https,
}

/// What nginx is put in front of.
#[derive(Debug, Clone)]
pub struct Upstreams {
    pub aux: SocketAddr,
    pub files: SocketAddr,
    /// The backends nginx routes at start.
    pub backends: Vec<BackendAddr>,
}

/// A running nginx; stopped when dropped.
pub struct Nginx {
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    pub https_port: u16,
    child: Child,
}

/// A free loopback port (bound, then released: nginx binds it next, and a
/// collision is retried by [`Nginx::start`]).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

impl Nginx {
    /// Renders the site and starts nginx on free loopback ports.
    pub fn start(
        site: Site,
        upstreams: &Upstreams,
        web_root: &Path,
        tls: Option<(&Path, &Path)>,
    ) -> Nginx {
        tools::require("nginx");
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let http_port = free_port();
            let https_port =
                std::iter::repeat_with(free_port).find(|p| *p != http_port).expect("a port");
            prepare(dir.path(), site, upstreams, web_root, tls, http_port, https_port);
            match launch(
                dir.path(),
                http_port,
                if site == Site::Https { Some(https_port) } else { None },
            ) {
                Ok(child) => return Nginx { dir, http_port, https_port, child },
                Err(e) if e.contains("Address already in use") => last_error = e,
                Err(e) => panic!("nginx did not start:\n{e}"),
            }
        }
        panic!("nginx found no free port in 5 tries:\n{last_error}");
    }

    /// The folder of one file per backend (`<id>.map`).
    pub fn backends_dir(&self) -> PathBuf {
        self.dir.path().join("backends.d")
    }

    /// The shell command that reloads this nginx.
    pub fn reload_command(&self) -> String {
        let dir = self.dir.path().display();
        format!("{} -p {dir}/ -c {dir}/nginx.conf -s reload", tools::require("nginx").display())
    }

    /// The pids of this nginx's worker processes.
    pub fn workers(&self) -> BTreeSet<u32> {
        let master = self.child.id();
        let mut workers = BTreeSet::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
            // pid (comm) state ppid …; comm may hold spaces, so split after ')'.
            let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
            if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(master) {
                workers.insert(pid);
            }
        }
        workers
    }

    /// Waits until none of `old` (workers from before a reload) is left:
    /// until then an old worker may still take a connection with the old
    /// configuration.
    pub async fn wait_for_reload(&self, old: &BTreeSet<u32>) {
        let deadline = tokio::time::Instant::now() + crate::WAIT;
        loop {
            let now = self.workers();
            if !now.is_empty() && now.is_disjoint(old) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx's old workers did not go:\n{}",
                self.error_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `nginx -s reload`, then [`Nginx::wait_for_reload`].
    pub async fn reload(&self) {
        let old = self.workers();
        tools::run_ok("nginx -s reload", Command::new("sh").args(["-c", &self.reload_command()]));
        self.wait_for_reload(&old).await;
    }

    /// nginx's error log so far (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The access log so far.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        // SIGTERM to the master stops its workers too (SIGKILL would not).
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment render-templates.sh gets for this test.
pub fn template_env(
    site: Site,
    upstreams: &Upstreams,
    web_root: &Path,
    acme_root: &Path,
    tls: Option<(&Path, &Path)>,
    http_port: u16,
    https_port: u16,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("NGINX_SITE", if site == Site::Https { "https".into() } else { "http".into() }),
        ("NGINX_SERVER_NAME", "localhost 127.0.0.1".into()),
        ("NGINX_HTTP_PORT", format!("127.0.0.1:{http_port}")),
        ("NGINX_HTTPS_PORT", format!("127.0.0.1:{https_port}")),
        ("NGINX_WEB_ROOT", web_root.display().to_string()),
        ("NGINX_ACME_ROOT", acme_root.display().to_string()),
        // Every address here is an IP literal, so nothing is looked up.
        ("NGINX_RESOLVER", "127.0.0.1".into()),
        ("NGINX_AUX_ADDR", upstreams.aux.to_string()),
        ("NGINX_FILES_ADDR", upstreams.files.to_string()),
    ];
    if let Some((cert, key)) = tls {
        env.push(("NGINX_TLS_CERT", cert.display().to_string()));
        env.push(("NGINX_TLS_KEY", key.display().to_string()));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Runs the shipped render-templates.sh into `conf_dir`.
pub fn render(conf_dir: &Path, env: &[(String, String)]) -> std::process::Output {
    tools::require("envsubst");
    let mut command =
        tools::bash(&paths::deploy_file("nginx/render-templates.sh"), Vec::<&str>::new());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NGINX_TEMPLATE_DIR", paths::deploy_file("nginx/templates"))
        .env("NGINX_CONF_DIR", conf_dir);
    for (k, v) in env {
        command.env(k, v);
    }
    tools::output_of(&mut command)
}

/// Links the shared files in, renders the templates and writes the
/// backends' map files and the test's main nginx.conf into `dir`.
fn prepare(
    dir: &Path,
    site: Site,
    upstreams: &Upstreams,
    web_root: &Path,
    tls: Option<(&Path, &Path)>,
    http_port: u16,
    https_port: u16,
) {
    let link = |from: PathBuf, name: &str| {
        std::os::unix::fs::symlink(&from, dir.join(name))
            .unwrap_or_else(|e| panic!("link {name}: {e}"));
    };
    link(paths::deploy_file("nginx/instantchat"), "instantchat");
    link(PathBuf::from("/etc/nginx/mime.types"), "mime.types");
    let acme = dir.join("acme");
    std::fs::create_dir_all(acme.join(".well-known/acme-challenge")).expect("acme dir");
    std::fs::create_dir_all(dir.join("backends.d")).expect("backends.d");
    for backend in &upstreams.backends {
        write_backend_map(&dir.join("backends.d"), backend);
    }
    let env = template_env(site, upstreams, web_root, &acme, tls, http_port, https_port);
    let output = render(&dir.join("conf.d"), &env);
    assert!(output.status.success(), "render-templates.sh failed:\n{}", tools::describe(&output));
    let d = dir.display();
    let user = if tools::is_root() { "user root;\n" } else { "" };
    let main = format!(
        "# deploy-check's own main configuration (paths in the test folder);\n\
         # the http block includes what deploy/nginx/nginx.conf includes.\n\
         {user}worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         include mime.types;\n\
         default_type application/octet-stream;\n\
         access_log {d}/access.log;\n\
         client_body_temp_path {d}/tmp/body;\n\
         proxy_temp_path {d}/tmp/proxy;\n\
         fastcgi_temp_path {d}/tmp/fastcgi;\n\
         uwsgi_temp_path {d}/tmp/uwsgi;\n\
         scgi_temp_path {d}/tmp/scgi;\n\
         include instantchat/http.conf;\n\
         include conf.d/*.conf;\n\
         }}\n"
    );
    std::fs::create_dir_all(dir.join("tmp")).expect("tmp dir");
    std::fs::write(dir.join("nginx.conf"), main).expect("write nginx.conf");
}

/// One backend's map file, as scripts/instantchat-backend.sh writes it.
pub fn write_backend_map(dir: &Path, backend: &BackendAddr) {
    let BackendAddr { id, public, control } = backend;
    std::fs::write(dir.join(format!("{id}.map")), format!("# control {control}\n{id} {public};\n"))
        .expect("write map file");
}

/// Starts nginx in the foreground and waits until its ports accept.
fn launch(dir: &Path, http_port: u16, https_port: Option<u16>) -> Result<Child, String> {
    let d = dir.display();
    let test = Command::new(tools::require("nginx"))
        .args(["-t", "-p", &format!("{d}/"), "-c", &format!("{d}/nginx.conf")])
        .output()
        .map_err(|e| e.to_string())?;
    if !test.status.success() {
        return Err(format!("nginx -t:\n{}", tools::describe(&test)));
    }
    let mut child = Command::new(tools::require("nginx"))
        .args(["-p", &format!("{d}/"), "-c", &format!("{d}/nginx.conf"), "-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let deadline = Instant::now() + crate::WAIT;
    let ports: Vec<u16> = std::iter::once(http_port).chain(https_port).collect();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            return Err(format!("nginx exited ({status}):\n{log}"));
        }
        // The pid file is written once the listening sockets are bound, so
        // a port answering is nginx's, not someone else's.
        let pid_written = std::fs::read_to_string(dir.join("nginx.pid"))
            .is_ok_and(|pid| pid.trim() == child.id().to_string());
        let up = pid_written
            && ports.iter().all(|p| std::net::TcpStream::connect(("127.0.0.1", *p)).is_ok());
        if up {
            return Ok(child);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err("nginx did not open its ports in time".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
