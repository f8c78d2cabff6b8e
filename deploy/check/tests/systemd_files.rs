//! The systemd units (systemd-analyze verify) and their example
//! configuration files (the services' own config loader).

use common::config::{AuxConfig, BackendConfig, ConfigFile, FileSrvConfig};
use deploy_check::compose;
use deploy_check::paths::{self, read};
use deploy_check::tools;

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
