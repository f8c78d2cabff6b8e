use super::*;

const TOKEN: &str = "0123456789abcdef";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn file(contents: &str) -> Option<ConfigFile<'_>> {
    Some(ConfigFile { path: "test.toml", contents })
}

#[test]
fn defaults_then_file_then_env() {
    let with_token = env(&[("INSTANTCHAT_CONTROL_TOKEN", TOKEN)]);
    let c: BackendConfig = load(None, with_token.clone()).unwrap();
    assert_eq!(c.max_messages, 1000);
    assert_eq!(c.max_text_chars, 4000);
    assert_eq!(c.listen.to_string(), "127.0.0.1:9001");

    let c: BackendConfig =
        load(file("max_messages = 50\nid = \"b7\""), with_token.clone()).unwrap();
    assert_eq!((c.max_messages, c.id.as_str()), (50, "b7"));

    let mut e = with_token;
    e.push(("INSTANTCHAT_MAX_MESSAGES".into(), "70".into()));
    e.push(("INSTANTCHAT_ALLOWED_ORIGINS".into(), r#"["https://chat.example"]"#.into()));
    e.push(("OTHER_MAX_MESSAGES".into(), "1".into()));
    e.push(("INSTANTCHAT_LOG_FORMAT".into(), "json".into()));
    let c: BackendConfig = load(file("max_messages = 50"), e).unwrap();
    assert_eq!(c.max_messages, 70, "env beats file");
    assert_eq!(c.allowed_origins, vec!["https://chat.example".to_owned()]);
}

#[test]
fn nested_env_keys() {
    let e = env(&[
        ("INSTANTCHAT_CONTROL_TOKEN", TOKEN),
        ("INSTANTCHAT_BACKENDS", r#"[{id = "b1", control_addr = "127.0.0.1:9101"}]"#),
    ]);
    let c: AuxConfig = load(None, e).unwrap();
    assert_eq!(c.backends[0].control_addr, "127.0.0.1:9101");

    // Nested tables take `__`; lists are replaced whole.
    let e = env(&[("INSTANTCHAT_CONTROL_TOKEN", TOKEN), ("INSTANTCHAT_FILES_URL", "http://f:1")]);
    let toml = "[[backends]]\nid = \"b1\"\ncontrol_addr = \"x:1\"\n";
    let c: AuxConfig = load(file(toml), e).unwrap();
    assert_eq!((c.backends.len(), c.files_url.as_str()), (1, "http://f:1"));
}

#[test]
fn unknown_keys_are_named() {
    let err = load::<BackendConfig>(file("max_mesages = 5"), env(&[])).unwrap_err();
    assert_eq!(err.key, "max_mesages");
    assert!(err.to_string().contains("max_mesages"), "{err}");

    let err = load::<BackendConfig>(None, env(&[("INSTANTCHAT_COLOUR", "blue")])).unwrap_err();
    assert_eq!(err.key, "colour");

    let toml = "control_token = \"0123456789abcdef\"\n[[backends]]\nid = \"b1\"\ncontrol_addr = \"x:1\"\nport = 3\n";
    let err = load::<AuxConfig>(file(toml), env(&[])).unwrap_err();
    assert!(err.key.ends_with("port"), "{err}");
}

#[test]
fn bad_values_are_named() {
    let e = env(&[("INSTANTCHAT_CONTROL_TOKEN", TOKEN), ("INSTANTCHAT_MAX_MESSAGES", "lots")]);
    let err = load::<BackendConfig>(None, e).unwrap_err();
    assert_eq!(err.key, "max_messages");

    let e = env(&[("INSTANTCHAT_CONTROL_TOKEN", TOKEN), ("INSTANTCHAT_LISTEN", "not-an-addr")]);
    assert_eq!(load::<BackendConfig>(None, e).unwrap_err().key, "listen");

    let e = env(&[("INSTANTCHAT_CONTROL_TOKEN", TOKEN), ("INSTANTCHAT_MAX_MESSAGES", "0")]);
    assert_eq!(load::<BackendConfig>(None, e).unwrap_err().key, "max_messages");

    let err = load::<BackendConfig>(None, env(&[])).unwrap_err();
    assert_eq!(err.key, "control_token", "a missing secret stops start-up");

    let e = env(&[("INSTANTCHAT_CONTROL_TOKEN", TOKEN), ("INSTANTCHAT_PUBLIC_URL", "http://x")]);
    assert_eq!(load::<BackendConfig>(None, e).unwrap_err().key, "public_url");

    let err = load::<BackendConfig>(file("max_messages = ["), env(&[])).unwrap_err();
    assert!(err.to_string().contains("test.toml"), "{err}");

    let e = env(&[("INSTANTCHAT_MAX_BYTES", "-5")]);
    assert_eq!(load::<FileSrvConfig>(None, e).unwrap_err().key, "max_bytes");
}

#[test]
fn duplicate_backends_are_refused() {
    let toml = "control_token = \"0123456789abcdef\"\nbackends = [{id = \"a\", control_addr = \"x:1\"}, {id = \"a\", control_addr = \"x:2\"}]\n";
    assert_eq!(load::<AuxConfig>(file(toml), env(&[])).unwrap_err().key, "backends.1.id");
}

#[test]
fn defences_keys_load_and_validate() {
    let e = env(&[
        ("INSTANTCHAT_CONTROL_TOKEN", TOKEN),
        ("INSTANTCHAT_DEFENCES__POW", "always"),
        ("INSTANTCHAT_PASSWORD_ATTEMPTS__FREE_PER_IP", "2"),
    ]);
    let c: BackendConfig = load(file("[defences]\nrepeat_max = 5"), e).unwrap();
    assert_eq!(c.defences.pow, PowMode::Always);
    assert_eq!(c.defences.repeat_max, 5);
    assert_eq!(c.password_attempts.free_per_ip, 2);
    let with_token = env(&[("INSTANTCHAT_CONTROL_TOKEN", TOKEN)]);
    for (toml, key) in [
        ("[defences]\npow_bits = 0", "defences.pow_bits"),
        ("[defences]\npow = \"sometimes\"", "defences.pow"),
        ("[defences]\nsurge_factor = 0.5", "defences.surge_factor"),
        ("[password_attempts]\nmax_delay_ms = 10", "password_attempts.max_delay_ms"),
    ] {
        let e = load::<BackendConfig>(file(toml), with_token.clone()).unwrap_err();
        assert_eq!(e.key, key, "{toml}: {e}");
    }
    let aux: AuxConfig = load(file("[password_attempts]\nfree_per_room = 0"), with_token).unwrap();
    assert_eq!(aux.password_attempts.free_per_room, 0);
}
