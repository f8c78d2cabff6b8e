//! The external tools the checks run. A missing tool fails the test with
//! the package to install: CI installs them with
//! `.ci/install-deploy-tools.sh`, and a check that quietly skipped would
//! prove nothing.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The tools, with what brings each.
const PACKAGES: &[(&str, &str)] = &[
    ("nginx", "the Debian package nginx"),
    ("promtool", "the Debian package prometheus"),
    ("prometheus-node-exporter", "the Debian package prometheus-node-exporter"),
    ("openssl", "the Debian package openssl"),
    ("envsubst", "the Debian package gettext-base"),
    ("curl", "the Debian package curl"),
    ("systemd-analyze", "the Debian package systemd"),
    ("check-jsonschema", "pip install check-jsonschema (PyPI)"),
    ("bash", "the Debian package bash"),
    ("shellcheck", "the Debian package shellcheck"),
];

/// The full path of `tool`, or a failed test that says how to get it.
pub fn require(tool: &str) -> PathBuf {
    if let Some(path) = find(tool) {
        return path;
    }
    let package = PACKAGES.iter().find(|(t, _)| *t == tool).map_or("its package", |(_, p)| p);
    panic!(
        "`{tool}` is not installed, and this check needs it: install {package} \
         (`bash .ci/install-deploy-tools.sh` installs every tool the deploy checks use)"
    );
}

fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    // pip's scripts land here for root when PATH does not list them.
    dirs.extend(["/usr/local/bin", "/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(tool)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A command for `tool`, found with [`require`].
pub fn command(tool: &str) -> Command {
    Command::new(require(tool))
}

/// Runs `command`; a non-zero exit fails the test with everything it said.
pub fn run_ok(what: &str, command: &mut Command) -> Output {
    let output = output_of(command);
    assert!(output.status.success(), "{what} failed ({}):\n{}", output.status, describe(&output));
    output
}

/// Runs `command` and returns its output, whatever its exit status.
pub fn output_of(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {:?}: {e}", command.get_program()))
}

/// stdout and stderr of a finished command, for failure messages.
pub fn describe(output: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `bash script args…`, so scripts run whatever their file mode.
pub fn bash<I, S>(script: &Path, args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = command("bash");
    command.arg(script).args(args);
    command
}

/// True when this process runs as root (nginx then needs `user root;`).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}
