//! The shipped nginx files without services: the image's main nginx.conf
//! with both rendered sites passes `nginx -t`, and the template renderer
//! refuses what is missing.

use deploy_check::client::TestCa;
use deploy_check::nginx::{Site, Upstreams};
use deploy_check::{paths, tools};

/// The shipped main nginx.conf (the image's), with both rendered sites:
/// `nginx -t` accepts it.
#[test]
fn shipped_main_conf_passes_nginx_t() {
    let ca = TestCa::new();
    for site in [Site::Http, Site::Https] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::copy(paths::deploy_file("nginx/nginx.conf"), d.join("nginx.conf")).unwrap();
        std::os::unix::fs::symlink(paths::deploy_file("nginx/instantchat"), d.join("instantchat"))
            .unwrap();
        std::os::unix::fs::symlink("/etc/nginx/mime.types", d.join("mime.types")).unwrap();
        std::fs::create_dir(d.join("backends.d")).unwrap();
        for (id, host) in [("b1", "10.0.0.11:9001"), ("b2", "10.0.0.12:9001")] {
            std::fs::write(
                d.join(format!("backends.d/{id}.map")),
                format!("# control x\n{id} {host};\n"),
            )
            .unwrap();
        }
        let upstreams = Upstreams {
            aux: "127.0.0.1:8080".parse().unwrap(),
            files: "127.0.0.1:8085".parse().unwrap(),
            backends: vec![],
        };
        let mut env = deploy_check::nginx::template_env(
            site,
            &upstreams,
            d,
            d,
            Some((&ca.cert(), &ca.key())),
            80,
            443,
        );
        // As in the image: names, looked up through Docker's resolver.
        for (key, value) in &mut env {
            match key.as_str() {
                "NGINX_AUX_ADDR" => *value = "aux-srv:8080".into(),
                "NGINX_FILES_ADDR" => *value = "file-srv:8085".into(),
                "NGINX_RESOLVER" => *value = "127.0.0.11".into(),
                "NGINX_SERVER_NAME" => *value = "chat.example.org".into(),
                _ => {}
            }
        }
        let rendered = deploy_check::nginx::render(&d.join("conf.d"), &env);
        assert!(rendered.status.success(), "{}", tools::describe(&rendered));
        tools::run_ok(
            &format!("nginx -t of deploy/nginx/nginx.conf ({site:?})"),
            tools::command("nginx")
                .args(["-t", "-p"])
                .arg(format!("{}/", d.display()))
                .arg("-c")
                .arg(d.join("nginx.conf")),
        );
    }
}

#[test]
fn template_renderer_refuses_missing_settings() {
    let dir = tempfile::tempdir().unwrap();
    let upstreams = Upstreams {
        aux: "127.0.0.1:1".parse().unwrap(),
        files: "127.0.0.1:2".parse().unwrap(),
        backends: vec![],
    };
    let env_for = |site| {
        deploy_check::nginx::template_env(site, &upstreams, dir.path(), dir.path(), None, 80, 443)
    };
    // https without a certificate.
    let env = env_for(Site::Https);
    let output = deploy_check::nginx::render(dir.path(), &env);
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("NGINX_TLS_CERT") && said.contains("NGINX_TLS_KEY"), "{said}");
    // An unknown site.
    let mut env = env_for(Site::Http);
    env.retain(|(k, _)| k != "NGINX_SITE");
    env.push(("NGINX_SITE".into(), "gopher".into()));
    let output = deploy_check::nginx::render(dir.path(), &env);
    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stderr).contains("NGINX_SITE")
    );
    // nginx's own $variables are left alone.
    let env = env_for(Site::Http);
    let output = deploy_check::nginx::render(dir.path(), &env);
    assert!(output.status.success(), "{}", tools::describe(&output));
    let upstream_conf =
        std::fs::read_to_string(dir.path().join("instantchat-upstreams.conf")).unwrap();
    assert!(
        upstream_conf.contains("map $instantchat_backend_id $instantchat_backend_addr"),
        "{upstream_conf}"
    );
    assert!(upstream_conf.contains("default 127.0.0.1:1;"), "{upstream_conf}");
    assert!(!upstream_conf.contains("${"), "{upstream_conf}");
}
