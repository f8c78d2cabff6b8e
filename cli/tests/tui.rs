//! The full-screen client in a real pseudo-terminal (tmux, on a private
//! server socket): a nick and a message typed on the keyboard, the echo and
//! another member's answer on screen, and a clean quit that leaves the
//! terminal as it was (main screen, cooked mode with echo).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{CLI, Fleet, WAIT};

/// A tmux server of our own, with one window running a command.
struct Tmux {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmux {
    fn start(command: &str) -> Tmux {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("tmux.sock");
        let tmux = Tmux { socket, _dir: dir };
        tmux.run(&["new-session", "-d", "-x", "110", "-y", "30", command]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux runs (the Debian package tmux)");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        // -J: lines the terminal wrapped come back as one.
        self.run(&["capture-pane", "-p", "-J"])
    }

    /// Types `text` literally, then presses Enter.
    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-l", text]);
        self.run(&["send-keys", "Enter"]);
    }

    fn alternate_screen(&self) -> bool {
        self.run(&["display-message", "-p", "#{alternate_on}"]).trim() == "1"
    }

    async fn await_screen(&self, what: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if screen.contains(what) {
                return screen;
            }
            assert!(tokio::time::Instant::now() < deadline, "no {what:?} on screen:\n{screen}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-S").arg(&self.socket).arg("kill-server").output();
    }
}

fn quoted(path: &Path) -> String {
    format!("'{}'", path.display())
}

#[tokio::test]
async fn type_a_nick_and_a_message_see_them_and_quit_with_the_terminal_restored() {
    let fleet = Fleet::start(false).await;
    let (mut bob, _) = fleet.member("tui-room", "bob").await;
    bob.say("welcome aboard").await;
    // After the client exits the shell shows its status and the terminal
    // modes it left behind, and stays open to be read.
    let command = format!(
        "{} {}; echo \"EXIT=$?\"; stty -a | tr -s ' \\n' ' '; echo ' MODES-END'; sleep 60",
        quoted(Path::new(CLI)),
        fleet.room_url("tui-room")
    );
    let tmux = Tmux::start(&command);
    tmux.await_screen("Nickname").await;
    assert!(tmux.alternate_screen(), "the client draws on the alternate screen");
    tmux.type_line("ada");

    let screen = tmux.await_screen("ada (you)").await;
    assert!(screen.contains("bob: welcome aboard"), "the room's history:\n{screen}");
    assert!(screen.contains("Members (2)"), "{screen}");
    assert_eq!(bob.next_of("joined").await["member"]["nick"], "ada");

    tmux.type_line("hello from the terminal");
    assert_eq!(bob.next_from("ada").await["text"], "hello from the terminal");
    tmux.await_screen("ada: hello from the terminal").await;
    bob.say("nice to see you").await;
    tmux.await_screen("bob: nice to see you").await;
    tmux.type_line("/reply 1 thanks");
    assert_eq!(bob.next_from("ada").await["reply_to"], 1);
    tmux.await_screen("↪#1 ada: thanks").await;

    tmux.type_line("/quit");
    let screen = tmux.await_screen("MODES-END").await;
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_eq!(bob.next_of("left").await["member"]["nick"], "ada", "left with a close frame");
    assert!(!tmux.alternate_screen(), "back on the main screen");
    let modes = screen.lines().find(|l| l.contains("icanon")).unwrap_or_default().to_owned();
    for restored in [" icanon", " echo ", " icrnl", " opost"] {
        assert!(modes.contains(restored), "{restored:?} restored: {modes}");
    }
}
