//! Every shipped file of deploy/ that runs without a Docker engine, proven
//! with the real tool: the compose files (check-jsonschema with the compose
//! specification, after interpolating their .env.example), the services'
//! environment in them (the services' own config loader), Prometheus
//! (promtool check config / rules / test rules), the Grafana provisioning,
//! the systemd units (systemd-analyze verify), the Dockerfile's references,
//! the healthcheck and gen-secrets scripts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::config::{AuxConfig, BackendConfig, ConfigFile, FileSrvConfig};
use deploy_check::client::Origin;
use deploy_check::compose::{self, ServiceEnv};
use deploy_check::paths::{self, LAYOUTS};
use deploy_check::tools;
use serde_json::Value;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// A layout's .env as an operator makes it: .env.example, secrets filled
/// by the shipped gen-secrets.sh.
fn env_of(layout: &str) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        paths::deploy_file(&format!("{layout}/.env.example")),
        dir.path().join(".env.example"),
    )
    .unwrap();
    tools::run_ok(
        "gen-secrets.sh",
        &mut tools::bash(&paths::deploy_file("scripts/gen-secrets.sh"), [dir.path()]),
    );
    compose::parse_env(&read(&dir.path().join(".env")))
}

fn interpolated(layout: &str) -> String {
    let text = read(&paths::deploy_file(&format!("{layout}/compose.yaml")));
    compose::interpolate(&text, &env_of(layout))
        .unwrap_or_else(|e| panic!("{layout}/compose.yaml: {e}"))
}

fn check_jsonschema(what: &str, args: &[&str], file: &Path) {
    let output =
        tools::output_of(tools::command("check-jsonschema").arg("--verbose").args(args).arg(file));
    assert!(
        output.status.success(),
        "check-jsonschema {args:?} on {what}:\n{}",
        tools::describe(&output)
    );
}

#[test]
fn compose_files_follow_the_compose_spec_and_our_policy() {
    let policy = paths::deploy_file("check/schemas/compose-policy.json");
    let policy = policy.to_str().unwrap();
    for (name, layout) in LAYOUTS {
        let raw = paths::deploy_file(&format!("{layout}/compose.yaml"));
        // Every variable is documented in .env.example.
        let example =
            compose::parse_env(&read(&paths::deploy_file(&format!("{layout}/.env.example"))));
        let missing: Vec<String> = compose::referenced_vars(&read(&raw))
            .into_iter()
            .filter(|v| !example.contains_key(v))
            .collect();
        assert!(missing.is_empty(), "{name}: variables missing from .env.example: {missing:?}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, interpolated(layout)).unwrap();
        check_jsonschema(name, &["--builtin-schema", "vendor.compose-spec"], &file);
        check_jsonschema(name, &["--schemafile", policy], &raw);
    }
}

#[test]
fn the_compose_policy_can_fail() {
    let policy = paths::deploy_file("check/schemas/compose-policy.json");
    let good = read(&paths::deploy_file("local/compose.yaml"));
    let bad_ones = [
        ("  restart: unless-stopped\n", "  restart: always\n"),
        ("stop_grace_period: 30s", "stop_grace_period: 5s"),
        ("{condition: service_healthy}", "{condition: service_started}"),
        (
            "${ADMIN_TOKEN:?set ADMIN_TOKEN in .env (scripts/gen-secrets.sh)}",
            "hunter2hunter2hunter2",
        ),
        ("image: prom/prometheus:v3.5.0", "image: prom/prometheus:latest"),
    ];
    for (from, to) in bad_ones {
        assert!(good.contains(from), "{from}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compose.yaml");
        std::fs::write(&file, good.replacen(from, to, 1)).unwrap();
        let output = tools::output_of(
            tools::command("check-jsonschema").arg("--schemafile").arg(&policy).arg(&file),
        );
        assert!(!output.status.success(), "the policy let `{to}` through");
    }
}

/// `ENV` of each Dockerfile stage (with `\` continuations), by stage name.
fn dockerfile_env() -> BTreeMap<String, Vec<(String, String)>> {
    let text = read(&paths::deploy_file("docker/Dockerfile")).replace("\\\n", " ");
    let mut stages: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(from) = line.strip_prefix("FROM ") {
            let parts: Vec<&str> = from.split_whitespace().collect();
            let base = parts[0].to_owned();
            current = parts.get(2).map_or(base.clone(), |s| (*s).to_owned());
            let inherited = stages.get(&base).cloned().unwrap_or_default();
            stages.insert(current.clone(), inherited);
        } else if let Some(env) = line.strip_prefix("ENV ") {
            for pair in env.split_whitespace() {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("ENV {pair}"));
                stages.get_mut(&current).unwrap().push((k.to_owned(), v.to_owned()));
            }
        }
    }
    stages
}

fn kind_of(service: &ServiceEnv) -> Option<&'static str> {
    let target = service.target.as_deref().unwrap_or(&service.name);
    ["aux-srv", "backend", "file-srv"].into_iter().find(|k| target.starts_with(k))
}

/// Each service's environment in each compose file (image ENV, then the
/// compose file's) passes the service's own config loader.
#[test]
fn compose_environments_are_valid_service_config() {
    let image_env = dockerfile_env();
    let mut checked = BTreeMap::<&str, usize>::new();
    for (name, layout) in LAYOUTS {
        let services = compose::service_envs(&interpolated(layout));
        assert!(!services.is_empty(), "{name}: no services found");
        for service in &services {
            let Some(kind) = kind_of(service) else { continue };
            let mut env: Vec<(String, String)> = image_env[kind].clone();
            env.extend(service.env.clone());
            let what = format!("{name}: {} ({kind})", service.name);
            let result = match kind {
                "aux-srv" => common::config::load::<AuxConfig>(None, env).map(|_| ()),
                "backend" => common::config::load::<BackendConfig>(None, env).map(|c| {
                    assert!(
                        c.public_url.ends_with(&format!("/b/{}", c.id)),
                        "{what}: public_url {} must end in /b/<id> (nginx routes by it)",
                        c.public_url
                    );
                }),
                _ => common::config::load::<FileSrvConfig>(None, env).map(|_| ()),
            };
            result.unwrap_or_else(|e| panic!("{what}: {e}"));
            *checked.entry(kind).or_default() += 1;
        }
    }
    // local and single-node: 1 + 2 + 1; gateway: aux + files; backend node: 1.
    assert_eq!(checked, BTreeMap::from([("aux-srv", 3), ("backend", 5), ("file-srv", 3)]));
}

fn ids_in(dir: &Path, ext: &str) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// nginx's backends, Prometheus' backend targets and aux-srv's list name
/// the same backends in every layout.
#[test]
fn backend_lists_agree_within_each_layout() {
    for layout in ["local", "single-node"] {
        let nginx = ids_in(&paths::deploy_file(&format!("{layout}/nginx/backends.d")), "map");
        let prometheus =
            ids_in(&paths::deploy_file(&format!("{layout}/prometheus/targets/backends")), "yml");
        let compose: BTreeSet<String> = compose::service_envs(&interpolated(layout))
            .iter()
            .filter_map(|s| s.env.get("INSTANTCHAT_ID").cloned())
            .collect();
        assert_eq!(nginx, compose, "{layout}: nginx's backends.d and the compose backends");
        assert_eq!(prometheus, compose, "{layout}: Prometheus targets and the compose backends");
    }
    let nginx = ids_in(&paths::deploy_file("multi-node/gateway/nginx/backends.d"), "map");
    let prometheus =
        ids_in(&paths::deploy_file("multi-node/monitoring/prometheus/targets/backends"), "yml");
    assert_eq!(nginx, prometheus, "multi-node: gateway's backends.d and the monitoring targets");
    let backends = &env_of("multi-node/gateway")["BACKENDS"];
    for id in &nginx {
        assert!(
            backends.contains(&format!("id=\"{id}\"")),
            "gateway BACKENDS lacks {id}: {backends}"
        );
    }
}

/// The Prometheus config of each layout (with its targets) and the rules.
#[test]
fn prometheus_config_and_rules_pass_promtool() {
    for layout in ["local", "single-node", "multi-node/monitoring"] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::copy(paths::deploy_file("prometheus/prometheus.yml"), d.join("prometheus.yml"))
            .unwrap();
        std::os::unix::fs::symlink(paths::deploy_file("prometheus/rules"), d.join("rules"))
            .unwrap();
        std::os::unix::fs::symlink(
            paths::deploy_file(&format!("{layout}/prometheus/targets")),
            d.join("targets"),
        )
        .unwrap();
        let output = tools::run_ok(
            &format!("promtool check config ({layout})"),
            tools::command("promtool").args(["check", "config"]).arg(d.join("prometheus.yml")),
        );
        let said = tools::describe(&output);
        assert!(
            said.contains("SUCCESS: 1 rule files found"),
            "{layout}: the rules are loaded:\n{said}"
        );
        // promtool checks the file_sd files it finds, and warns about
        // those it does not: every target file must be there.
        assert!(!said.contains("WARNING"), "{layout}:\n{said}");
    }
    let rules = paths::deploy_file("prometheus/rules/instantchat.yml");
    tools::run_ok(
        "promtool check rules",
        tools::command("promtool").args(["check", "rules"]).arg(&rules),
    );
    let tests = paths::deploy_file("prometheus/tests/instantchat.test.yml");
    tools::run_ok(
        "promtool test rules",
        tools::command("promtool")
            .current_dir(paths::deploy_file("prometheus/tests"))
            .args(["test", "rules"])
            .arg(&tests),
    );
    // Each alert the issue asks for is there and unit-tested.
    let rules_text = read(&rules);
    let tests_text = read(&tests);
    for alert in [
        "InstantchatBackendDown",
        "InstantchatNoBackendAcceptingRooms",
        "InstantchatSlowConsumerClosesRising",
        "InstantchatBroadcastSlow",
        "InstantchatFilesNearQuota",
        "InstantchatAuxRebuildFailing",
    ] {
        assert!(rules_text.contains(&format!("alert: {alert}\n")), "{alert} is missing");
        assert!(tests_text.contains(&format!("alertname: {alert}\n")), "{alert} has no unit test");
    }
}

#[test]
fn a_broken_target_file_fails_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(paths::deploy_file("prometheus/prometheus.yml"), d.join("prometheus.yml"))
        .unwrap();
    std::os::unix::fs::symlink(paths::deploy_file("prometheus/rules"), d.join("rules")).unwrap();
    std::fs::create_dir_all(d.join("targets/backends")).unwrap();
    std::fs::write(
        d.join("targets/backends/b1.yml"),
        "- target: [\"10.0.0.11:9001\"]\n  labels: {backend: b1}\n",
    )
    .unwrap();
    let output = tools::output_of(
        tools::command("promtool").args(["check", "config"]).arg(d.join("prometheus.yml")),
    );
    assert!(
        !output.status.success(),
        "promtool accepted a broken target:\n{}",
        tools::describe(&output)
    );
}

#[test]
fn grafana_is_provisioned_with_the_three_dashboards() {
    let datasources = read(&paths::deploy_file("grafana/provisioning/datasources/prometheus.yml"));
    assert!(
        datasources.contains("uid: prometheus")
            && datasources.contains("url: http://prometheus:9090")
    );
    let provider = read(&paths::deploy_file("grafana/provisioning/dashboards/instantchat.yml"));
    assert!(provider.contains("path: /etc/grafana/dashboards"));
    // Each layout with Grafana mounts the provisioning and the dashboards there.
    for layout in ["local", "single-node", "multi-node/monitoring"] {
        let compose = read(&paths::deploy_file(&format!("{layout}/compose.yaml")));
        assert!(compose.contains("grafana/provisioning:/etc/grafana/provisioning:ro"), "{layout}");
        assert!(compose.contains("grafana/dashboards:/etc/grafana/dashboards:ro"), "{layout}");
    }
    let wanted: [(&str, &[&str]); 3] = [
        (
            "instantchat-overview",
            &["Rooms", "People online", "Messages per second", "Delivery time", "errors"],
        ),
        (
            "instantchat-backend",
            &["Placement score", "Connections", "Slow consumers", "CPU", "Memory"],
        ),
        ("instantchat-host", &["CPU busy", "Memory used", "Disk space", "Network"]),
    ];
    let mut uids = BTreeSet::new();
    for (uid, titles) in wanted {
        let dashboard: Value = serde_json::from_str(&read(&paths::deploy_file(&format!(
            "grafana/dashboards/{uid}.json"
        ))))
        .unwrap();
        assert_eq!(dashboard["uid"], uid);
        assert!(uids.insert(uid));
        let panels = dashboard["panels"].as_array().unwrap();
        let mut ids = BTreeSet::new();
        for panel in panels {
            assert!(ids.insert(panel["id"].as_u64().unwrap()), "{uid}: panel ids are unique");
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(panel["datasource"]["uid"], "prometheus", "{uid}: {}", panel["title"]);
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{uid}: {} has no query", panel["title"]);
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "prometheus");
            }
        }
        let all_titles: Vec<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
        for title in titles {
            assert!(
                all_titles.iter().any(|t| t.to_lowercase().contains(&title.to_lowercase())),
                "{uid} lacks a panel about {title}: {all_titles:?}"
            );
        }
    }
}

/// A root folder for systemd-analyze: the system's units plus ours, and
/// stand-ins for the binaries (verify checks that ExecStart= is executable).
fn systemd_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir_all(r.join("usr/lib/systemd")).unwrap();
    tools::run_ok(
        "copy the system's units",
        std::process::Command::new("cp")
            .arg("-a")
            .arg("/usr/lib/systemd/system")
            .arg(r.join("usr/lib/systemd/")),
    );
    let units = r.join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    for entry in std::fs::read_dir(paths::deploy_file("systemd")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "service") {
            std::fs::copy(&path, units.join(path.file_name().unwrap())).unwrap();
        }
    }
    let bin = r.join("opt/instantchat/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for name in ["aux-srv", "backend", "file-srv"] {
        std::fs::write(bin.join(name), "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    root
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let root = systemd_root();
    let units = [
        "instantchat-aux-srv.service",
        "instantchat-backend@b1.service",
        "instantchat-file-srv.service",
    ];
    let output = tools::output_of(
        tools::command("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.path().display()))
            .args(units),
    );
    // verify exits 0 on mere warnings (an unknown key, a bad value): any
    // word from it fails the check.
    let said = tools::describe(&output);
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "systemd-analyze verify:\n{said}"
    );

    // And it does complain about a broken unit.
    let broken = root.path().join("etc/systemd/system/instantchat-file-srv.service");
    let text = read(&broken).replace("Restart=on-failure", "Restart=sometimes\nNoSuchKey=1");
    std::fs::write(&broken, text).unwrap();
    let output = tools::output_of(
        tools::command("systemd-analyze")
            .arg("verify")
            .arg(format!("--root={}", root.path().display()))
            .arg("instantchat-file-srv.service"),
    );
    assert!(!output.stderr.is_empty(), "systemd-analyze said nothing about a broken unit");
}

/// The example configuration files for the systemd units load.
#[test]
fn systemd_example_configs_load() {
    let secrets = |file: &str| -> Vec<(String, String)> {
        compose::parse_env(&read(&paths::deploy_file(&format!("systemd/etc/{file}"))))
            .into_keys()
            .map(|k| (k, "0123456789abcdef0123456789abcdef".to_owned()))
            .collect()
    };
    let load_file =
        |name: &str| (name.to_owned(), read(&paths::deploy_file(&format!("systemd/etc/{name}"))));
    let (path, contents) = load_file("aux-srv.toml");
    let aux: AuxConfig = common::config::load(
        Some(ConfigFile { path: &path, contents: &contents }),
        secrets("aux-srv.env.example"),
    )
    .unwrap_or_else(|e| panic!("{path}: {e}"));
    for id in ["b1", "b2"] {
        let (path, contents) = load_file(&format!("backend-{id}.toml"));
        let backend: BackendConfig = common::config::load(
            Some(ConfigFile { path: &path, contents: &contents }),
            secrets("backend.env.example"),
        )
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(backend.id, id);
        let entry = aux.backends.iter().find(|b| b.id == id).expect("aux-srv.toml lists it");
        assert_eq!(
            entry.control_addr,
            backend.control_listen.to_string(),
            "{id}'s control address"
        );
    }
    let (path, contents) = load_file("file-srv.toml");
    let files: FileSrvConfig =
        common::config::load(Some(ConfigFile { path: &path, contents: &contents }), Vec::new())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    let unit = read(&paths::deploy_file("systemd/instantchat-file-srv.service"));
    assert!(
        unit.contains("StateDirectory=instantchat/files")
            && files.data_dir == "/var/lib/instantchat/files"
    );
}

#[test]
fn dockerfile_builds_what_the_compose_files_name() {
    let dockerfile = read(&paths::deploy_file("docker/Dockerfile"));
    let stages: BTreeSet<String> = dockerfile
        .lines()
        .filter_map(|l| l.strip_prefix("FROM "))
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    for (name, layout) in LAYOUTS {
        for service in compose::service_envs(&interpolated(layout)) {
            if let Some(target) = service.target {
                assert!(
                    stages.contains(&target),
                    "{name}: {} builds target {target}, not in the Dockerfile",
                    service.name
                );
            }
        }
        let text = read(&paths::deploy_file(&format!("{layout}/compose.yaml")));
        for target in ["backend", "aux-srv", "file-srv", "nginx"] {
            if text.contains(&format!("target: {target}")) {
                assert!(stages.contains(target));
            }
        }
    }
    // Every file it copies from the repository exists and is not ignored.
    let ignore = read(&paths::repo().join(".dockerignore"));
    assert_eq!(
        ignore,
        read(&paths::deploy_file("docker/Dockerfile.dockerignore")),
        "the two ignore files agree"
    );
    let ignored: Vec<&str> =
        ignore.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for line in dockerfile.lines().filter(|l| l.starts_with("COPY ") && !l.contains("--from=")) {
        let words: Vec<&str> = line.split_whitespace().filter(|w| !w.starts_with("--")).collect();
        for source in &words[1..words.len() - 1] {
            let source = source.trim_end_matches('/');
            if source == "." {
                continue;
            }
            assert!(paths::repo().join(source).exists(), "COPY {source}: no such file");
            assert!(
                !ignored.iter().any(|i| source.starts_with(i.trim_end_matches('/'))),
                "COPY {source} is in .dockerignore"
            );
        }
    }
    // The binaries it builds are the workspace's.
    for (package, bin) in [("aux-srv", "aux-srv"), ("backend", "backend"), ("file-srv", "file-srv")]
    {
        let manifest = read(&paths::repo().join(package).join("Cargo.toml"));
        assert!(manifest.contains(&format!("name = \"instantchat-{package}\"")), "{package}");
        assert!(manifest.contains(&format!("name = \"{bin}\"")), "{package} has the binary {bin}");
        assert!(
            dockerfile.contains(&format!("-p instantchat-{package}"))
                && dockerfile.contains(&format!("--bin {bin}"))
        );
    }
    assert!(dockerfile.contains("USER 10001:10001"), "the services run as a non-root user");
    assert_eq!(dockerfile.matches("HEALTHCHECK").count(), 4, "each image has a HEALTHCHECK");
}

#[test]
fn env_files_are_not_committed() {
    for (_, layout) in LAYOUTS {
        let env = paths::deploy_file(&format!("{layout}/.env"));
        let output = tools::output_of(
            std::process::Command::new("git")
                .current_dir(paths::repo())
                .args(["check-ignore", "-q"])
                .arg(&env),
        );
        assert!(output.status.success(), "{} is not ignored by git", env.display());
        let example = paths::deploy_file(&format!("{layout}/.env.example"));
        let output = tools::output_of(
            std::process::Command::new("git")
                .current_dir(paths::repo())
                .args(["check-ignore", "-q"])
                .arg(&example),
        );
        assert!(!output.status.success(), "{} must be committed", example.display());
    }
}

#[test]
fn gen_secrets_fills_only_empty_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env.example"),
        "# comment\nCONTROL_TOKEN=\nADMIN_TOKEN=already-set-by-hand-000\nGRAFANA_ADMIN_PASSWORD=\nDOMAIN=chat.example.org\nEMPTY_SETTING=\n",
    )
    .unwrap();
    let script = paths::deploy_file("scripts/gen-secrets.sh");
    tools::run_ok("gen-secrets.sh", &mut tools::bash(&script, [dir.path()]));
    let first = read(&dir.path().join(".env"));
    let env = compose::parse_env(&first);
    for secret in ["CONTROL_TOKEN", "GRAFANA_ADMIN_PASSWORD"] {
        assert!(
            env[secret].len() == 64 && env[secret].chars().all(|c| c.is_ascii_hexdigit()),
            "{secret}: {}",
            env[secret]
        );
    }
    assert_ne!(env["CONTROL_TOKEN"], env["GRAFANA_ADMIN_PASSWORD"]);
    assert_eq!(env["ADMIN_TOKEN"], "already-set-by-hand-000");
    assert_eq!((env["DOMAIN"].as_str(), env["EMPTY_SETTING"].as_str()), ("chat.example.org", ""));
    assert!(first.starts_with("# comment\n"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join(".env")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    tools::run_ok("gen-secrets.sh again", &mut tools::bash(&script, [dir.path()]));
    assert_eq!(read(&dir.path().join(".env")), first, "a second run changes nothing");
}

fn healthcheck(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = tools::bash(&paths::deploy_file("docker/healthcheck.sh"), args);
    command.env_remove("INSTANTCHAT_LISTEN");
    for (k, v) in env {
        command.env(k, v);
    }
    tools::output_of(&mut command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_script_follows_readiness() {
    let public = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let control = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = public.local_addr().unwrap();
    let config = BackendConfig {
        control_token: deploy_check::fleet::CONTROL_TOKEN.into(),
        ..BackendConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(backend::run(backend::Listeners { public, control }, config, async {
        let _ = stopped.await;
    }));
    let origin = Origin::plain(addr);
    deploy_check::eventually("the backend is ready", || {
        let origin = origin.clone();
        async move { origin.try_get("/readyz").await.is_ok_and(|r| r.status == 200) }
    })
    .await;
    let run = |args: Vec<String>, env: Vec<(String, String)>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            healthcheck(&args, &env)
        })
    };
    let ok = run(vec![format!("http://{addr}/readyz")], vec![]).await.unwrap();
    assert!(ok.status.success(), "{}", tools::describe(&ok));
    let from_env =
        run(vec![], vec![("INSTANTCHAT_LISTEN".into(), format!("0.0.0.0:{}", addr.port()))])
            .await
            .unwrap();
    assert!(
        from_env.status.success(),
        "the port from INSTANTCHAT_LISTEN: {}",
        tools::describe(&from_env)
    );
    let not_found = run(vec![format!("http://{addr}/nope")], vec![]).await.unwrap();
    assert!(!not_found.status.success(), "a 404 is not healthy");
    let nothing = run(vec![], vec![]).await.unwrap();
    assert!(!nothing.status.success(), "no URL and no INSTANTCHAT_LISTEN");
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let closed = run(vec![format!("http://{addr}/readyz")], vec![]).await.unwrap();
    assert!(!closed.status.success(), "a stopped service is not healthy");
}

#[test]
fn shell_scripts_pass_shellcheck() {
    let scripts = [
        "scripts/gen-secrets.sh",
        "scripts/instantchat-backend.sh",
        "nginx/render-templates.sh",
        "docker/healthcheck.sh",
        "docker/base-images.sh",
        "docker/test-helpers.sh",
        "docker/test-multi-node.sh",
        "test-containers.sh",
    ];
    let mut command = tools::command("shellcheck");
    // -x: test-containers.sh sources its helpers (paths from the repository root).
    command.current_dir(paths::repo()).args(["--severity=info", "-x"]);
    command.args(scripts.iter().map(|s| paths::deploy_file(s)));
    command.arg(paths::repo().join(".ci/install-deploy-tools.sh"));
    tools::run_ok("shellcheck", &mut command);
}
