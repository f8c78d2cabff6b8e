//! The compose layouts without a Docker engine: check-jsonschema with the
//! compose specification (after interpolating their .env.example) and our
//! policy, the services' environment in them (the services' own config
//! loader), the backend lists of each layout, the Dockerfile's references,
//! and the .env files git must not see.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::config::{AuxConfig, BackendConfig, FileSrvConfig};
use deploy_check::compose::{self, ServiceEnv};
use deploy_check::paths::{self, LAYOUTS, read};
use deploy_check::tools;

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
    tools::run_ok(
        &format!("check-jsonschema {args:?} on {what}"),
        tools::command("check-jsonschema").arg("--verbose").args(args).arg(file),
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

/// `git check-ignore`: true when git would not commit `path`.
fn git_ignores(path: &Path) -> bool {
    let output = tools::output_of(
        std::process::Command::new("git")
            .current_dir(paths::repo())
            .args(["check-ignore", "-q"])
            .arg(path),
    );
    output.status.success()
}

#[test]
fn env_files_are_not_committed() {
    for (_, layout) in LAYOUTS {
        let env = paths::deploy_file(&format!("{layout}/.env"));
        assert!(git_ignores(&env), "{} is not ignored by git", env.display());
        let example = paths::deploy_file(&format!("{layout}/.env.example"));
        assert!(!git_ignores(&example), "{} must be committed", example.display());
    }
}
