//! The shipped shell scripts: gen-secrets.sh, the image's healthcheck.sh
//! against a real backend, and shellcheck over every script.

use common::config::BackendConfig;
use deploy_check::client::Origin;
use deploy_check::compose;
use deploy_check::paths::{self, read};
use deploy_check::tools;

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
