//! The REPL in a real terminal: tmux runs `cellc repl` in a pseudo-terminal, the test types keys
//! and reads the screen. Shows line editing, multi-line input, completion, history kept across
//! sessions, and Ctrl-C both at the prompt and during `:train`. Needs tmux (`.ci/run` installs it).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket), with one window running the REPL.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &Path, tag: &str) -> Tmux {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.is_ok_and(|o| o.status.success()),
            "this test needs tmux to drive a real terminal: install it (`apt-get install tmux`; .ci/run does)"
        );
        let socket = format!("cellc-test-{}-{tag}", std::process::id());
        let cmd = format!(
            "env CELLC_HISTORY={} COLUMNS=120 {} repl --color never",
            dir.join("history").display(),
            env!("CARGO_BIN_EXE_cellc")
        );
        let t = Tmux { socket };
        t.tmux(&["-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "120", "-y", "50", &cmd]);
        t
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().expect("run tmux");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types text literally.
    fn text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Presses named keys: `Enter`, `Home`, `Right`, `BSpace`, `Tab`, `Up`, `C-c`.
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-t", "t", "-S", "-1000"])
    }

    /// Waits until `needle` is on the screen `times` times; fails with the screen after 120 s
    /// (a bound on a hang, not a timing).
    fn wait_for(&self, needle: &str, times: usize) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if screen.matches(needle).count() >= times {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "waited 120 s for {times}x {needle:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").arg("-L").arg(&self.socket).arg("kill-server").output();
    }
}

#[test]
fn the_repl_edits_lines_reads_cells_completes_and_remembers_in_a_real_terminal() {
    let dir = support::scratch("tty");
    let t = Tmux::start(&dir, "a");
    t.wait_for("cellc> ", 1);

    // Line editing: type `tnh(0.5)`, go Home, one Right, insert the missing `a`.
    t.text("tnh(0.5)");
    t.keys(&["Home", "Right"]);
    t.text("a");
    t.keys(&["Enter"]);
    t.wait_for("0.4621", 1); // tanh(0.5) = 0.46212
    // Backspace removes a typo before it is run.
    t.text("sigm(0)x");
    t.keys(&["BSpace", "Enter"]);
    t.wait_for("0.5000", 1);

    // A cell over several lines: input continues while the brace is open.
    for line in ["cell two {", "state h", "h' = tanh(W*x + U*h)", "}"] {
        t.text(line);
        t.keys(&["Enter"]);
    }
    t.wait_for("two: state h | 2 params: W[H,D] U[H,H] | D free", 1);
    t.wait_for("two> ", 1);

    // Tab completes a command; Up recalls it.
    t.text(":gradc");
    t.keys(&["Tab"]);
    t.wait_for(":gradcheck", 1);
    t.keys(&["Enter"]);
    t.wait_for("worst relative error", 1);
    t.keys(&["Up", "Enter"]);
    t.wait_for("worst relative error", 2);

    // Ctrl-C at the prompt drops the line; during `:train` it stops training, not the REPL.
    t.text("this is not run");
    t.keys(&["C-c"]);
    t.text(":train memorize 1000000");
    t.keys(&["Enter"]);
    t.wait_for("(Ctrl-C stops)", 1);
    t.keys(&["C-c"]);
    let screen = t.wait_for("interrupted after", 1);
    assert!(!screen.contains("error:"), "{screen}");
    t.wait_for("two> ", 4);
    t.text(":quit");
    t.keys(&["Enter"]);
    drop(t);

    // History is kept between sessions.
    let history = std::fs::read_to_string(dir.join("history")).expect("history file written");
    for line in ["tanh(0.5)", ":gradcheck", ":train memorize 1000000", ":quit"] {
        assert!(history.contains(line), "{line:?} missing from the history:\n{history}");
    }
    assert!(!history.contains("this is not run"), "a line dropped with Ctrl-C is not history");
    let t = Tmux::start(&dir, "b");
    t.wait_for("cellc> ", 1);
    t.keys(&["Up", "Up"]);
    t.wait_for("cellc> :train memorize 1000000", 1);
    t.keys(&["C-c"]);
    t.text(":quit");
    t.keys(&["Enter"]);
    drop(t);
    let _ = std::fs::remove_dir_all(&dir);
}
