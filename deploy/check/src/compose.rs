//! Compose files as `docker compose` reads them, without Docker: `.env`
//! files, `${VAR}` interpolation, and (for checking the services' config)
//! the `INSTANTCHAT_*` environment each service gets.

use std::collections::BTreeMap;

/// A `.env` file: `KEY=VALUE` lines; `#` comments and blank lines skipped;
/// a value in matching single or double quotes loses them.
pub fn parse_env(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            panic!(".env line without `=`: {line}");
        };
        let key = key.trim().trim_start_matches("export ").trim();
        assert!(
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad .env key: {key}"
        );
        let value = value.trim();
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
            .unwrap_or(value);
        vars.insert(key.to_owned(), unquoted.to_owned());
    }
    vars
}

/// Replaces `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`,
/// `${VAR?error}`, `$VAR` and `$$` as compose does. Unlike compose, a
/// variable that is unset and has no default is an error (compose would
/// warn and put in ""), so a typo cannot pass. Comment lines are left out.
pub fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            out.push('\n');
            continue;
        }
        out.push_str(&interpolate_line(line, vars)?);
        out.push('\n');
    }
    Ok(out)
}

fn interpolate_line(line: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(body) = rest.strip_prefix('{') {
            let end = closing_brace(body).ok_or_else(|| format!("unclosed ${{ in: {line}"))?;
            out.push_str(&expand(&body[..end], vars, line)?);
            rest = &body[end + 1..];
        } else {
            let len =
                rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            if len == 0 {
                return Err(format!("a lone `$` (write `$$`) in: {line}"));
            }
            let name = &rest[..len];
            out.push_str(vars.get(name).ok_or_else(|| format!("`${name}` is not set: {line}"))?);
            rest = &rest[len..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The `}` that closes a `${`, allowing nested `${…}` in defaults.
fn closing_brace(body: &str) -> Option<usize> {
    let mut depth = 0;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return Some(i),
            '}' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn expand(expr: &str, vars: &BTreeMap<String, String>, line: &str) -> Result<String, String> {
    let len = expr.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(expr.len());
    let (name, op) = expr.split_at(len);
    if name.is_empty() {
        return Err(format!("`${{{expr}}}` names no variable: {line}"));
    }
    let value = vars.get(name);
    let set_nonempty = value.is_some_and(|v| !v.is_empty());
    let nested = |s: &str| interpolate_line(s, vars);
    match op {
        "" => value.cloned().ok_or_else(|| format!("`${{{name}}}` is not set: {line}")),
        _ if op.starts_with(":-") => {
            if set_nonempty {
                Ok(value.cloned().unwrap_or_default())
            } else {
                nested(&op[2..])
            }
        }
        _ if op.starts_with('-') => match value {
            Some(v) => Ok(v.clone()),
            None => nested(&op[1..]),
        },
        _ if op.starts_with(":?") => {
            if set_nonempty {
                Ok(value.cloned().unwrap_or_default())
            } else {
                Err(format!("required: {name} ({})", &op[2..]))
            }
        }
        _ if op.starts_with('?') => {
            value.cloned().ok_or_else(|| format!("required: {name} ({})", &op[1..]))
        }
        _ if op.starts_with(":+") => {
            if set_nonempty {
                nested(&op[2..])
            } else {
                Ok(String::new())
            }
        }
        _ if op.starts_with('+') => {
            if value.is_some() {
                nested(&op[1..])
            } else {
                Ok(String::new())
            }
        }
        _ => Err(format!("unsupported `${{{expr}}}`: {line}")),
    }
}

/// Every `${NAME…}` / `$NAME` a compose file refers to, comments aside.
pub fn referenced_vars(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            rest = &rest[i + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                rest = after;
                continue;
            }
            let body = rest.strip_prefix('{').unwrap_or(rest);
            let len =
                body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(body.len());
            if len > 0 && !names.iter().any(|n| n == &body[..len]) {
                names.push(body[..len].to_owned());
            }
        }
    }
    names
}

/// One service's environment, as written in an (interpolated) compose file
/// of this repository's style: a `services:` block, each service two
/// spaces in, its `environment:` mapping four spaces in and the variables
/// six, `KEY: value` (plain, single- or double-quoted scalars).
#[derive(Debug, Clone, Default)]
pub struct ServiceEnv {
    pub name: String,
    /// The Dockerfile target it is built from (`target: backend`, or the
    /// `target` of a `build: {…, target: backend}` flow mapping).
    pub target: Option<String>,
    pub env: BTreeMap<String, String>,
}

/// The services of a compose file and their environments.
pub fn service_envs(compose: &str) -> Vec<ServiceEnv> {
    let mut services = Vec::new();
    let mut in_services = false;
    let mut in_env = false;
    let mut current: Option<ServiceEnv> = None;
    for line in compose.lines() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent == 0 {
            in_services = text == "services:";
            in_env = false;
            services.extend(current.take());
            continue;
        }
        if !in_services {
            continue;
        }
        if indent == 2 {
            services.extend(current.take());
            let name = text.strip_suffix(':').unwrap_or_else(|| panic!("service line: {line}"));
            current = Some(ServiceEnv { name: name.to_owned(), ..ServiceEnv::default() });
            in_env = false;
            continue;
        }
        let Some(service) = current.as_mut() else { continue };
        if indent == 4 {
            in_env = text == "environment:";
            if let Some(target) = target_of(text) {
                service.target = Some(target);
            }
            continue;
        }
        if indent == 6 {
            if let Some(target) = text.strip_prefix("target: ") {
                service.target = Some(target.trim().to_owned());
            }
            if in_env {
                let (key, value) =
                    text.split_once(':').unwrap_or_else(|| panic!("environment line: {line}"));
                service.env.insert(key.trim().to_owned(), unquote(value.trim()));
            }
        }
    }
    services.extend(current);
    services
}

fn target_of(text: &str) -> Option<String> {
    let flow = text.strip_prefix("build:")?.trim();
    let inner = flow.strip_prefix('{')?.strip_suffix('}')?;
    inner
        .split(',')
        .find_map(|part| part.trim().strip_prefix("target:").map(|t| t.trim().to_owned()))
}

fn unquote(value: &str) -> String {
    if let Some(v) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return v.replace("''", "'");
    }
    if let Some(v) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        return v.replace("\\\"", "\"").replace("\\\\", "\\");
    }
    value.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn interpolation_follows_compose() {
        let v = vars(&[("A", "1"), ("E", "")]);
        let ok = |s: &str| interpolate_line(s, &v).unwrap();
        assert_eq!(ok("x ${A} $A $$A"), "x 1 1 $A");
        assert_eq!(ok("${B:-two} ${E:-d} ${E-d} ${B-${A}}"), "two d  1");
        assert_eq!(ok("${A:?need A} ${A:+yes} ${B:+yes}"), "1 yes ");
        assert!(interpolate_line("${B}", &v).unwrap_err().contains("not set"));
        assert!(interpolate_line("${E:?set E}", &v).unwrap_err().contains("required: E"));
        assert!(interpolate_line("${A", &v).is_err());
        assert_eq!(referenced_vars("a ${A:-x} $B $$C ${D:?e}\n# ${F}"), ["A", "B", "D"]);
    }

    #[test]
    fn env_files_and_service_envs() {
        let env = parse_env("# c\nA=1\nB='two words'\n\nC=\"3\"\nD=\n");
        assert_eq!(env, vars(&[("A", "1"), ("B", "two words"), ("C", "3"), ("D", "")]));
        let compose = "x-a: &a\n  k: v\nservices:\n  web:\n    build: {<<: *b, target: aux-srv}\n    environment:\n      A: '[\"x\", ''y'']'\n      B: plain\n    ports:\n      - \"1:1\"\n  db:\n    build:\n      context: .\n      target: backend\nvolumes:\n  v:\n";
        let services = service_envs(compose);
        assert_eq!(services.len(), 2);
        assert_eq!(services[0].name, "web");
        assert_eq!(services[0].target.as_deref(), Some("aux-srv"));
        assert_eq!(services[0].env["A"], "[\"x\", 'y']");
        assert_eq!(services[0].env["B"], "plain");
        assert_eq!(services[1].target.as_deref(), Some("backend"));
        assert!(services[1].env.is_empty());
    }
}
