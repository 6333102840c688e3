//! An SQLite store in a directory that cannot be written (a read-only mount when the tests run
//! as root, who ignores permission bits; a directory without write permission otherwise):
//! commands that write the store stop with one line naming the directory, commands that only
//! read it (`search status`, `search report`) still work, and nothing is created there.

mod support;

use std::path::Path;
use std::process::{Command, Output};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Runs cellc with `args` while `dir` cannot be written: as root, in a private mount namespace
/// where `dir` is bind-mounted read-only (`unshare`, util-linux); otherwise with its write bits off.
fn cellc_in_read_only(dir: &Path, args: &[&str]) -> Output {
    let exe = env!("CARGO_BIN_EXE_cellc");
    if is_root() {
        let out = Command::new("unshare")
            .args(["--mount", "sh", "-c", r#"mount --bind -o ro "$0" "$0" && exec "$@""#])
            .arg(dir)
            .arg(exe)
            .args(args)
            .output()
            .expect("unshare (util-linux) runs");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("mount:") && !err.contains("unshare:"), "cannot make a read-only mount: {err}");
        out
    } else {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let out = Command::new(exe).args(args).output().unwrap();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        out
    }
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

fn one_line_error(out: &Output, want: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: ") && want.iter().all(|w| err.contains(w)), "{err}");
}

/// A tiny search's arguments on `store`.
fn search(store: &Path, extra: &[&str]) -> Vec<String> {
    let tiny = "search --tasks arith --steps memorize=100,arith=40 --hidden 8 --settings 1 --candidates 2 --confirm 0 \
                --workers 1 --seed 3";
    tiny.split_whitespace()
        .chain(extra.iter().copied())
        .map(str::to_string)
        .chain(["--store".to_string(), store.display().to_string()])
        .collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn a_store_in_a_read_only_directory_is_refused_to_writers_in_one_line_and_read_by_readers() {
    let dir = support::scratch("ro-store");
    let store = dir.join("s.sqlite");
    let out = support::cellc(&strs(&search(&store, &[])));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The writer closed it cleanly: no write-ahead log is left beside it.
    let before = listing(&dir);
    assert_eq!(before, ["s.sqlite"]);

    // Writers: a new store, and the existing one.
    let out = cellc_in_read_only(&dir, &strs(&search(&dir.join("new.sqlite"), &[])));
    one_line_error(&out, &["cannot create the store", "new.sqlite", "is read-only", &dir.display().to_string()]);
    let out = cellc_in_read_only(&dir, &strs(&search(&store, &["--resume"])));
    one_line_error(&out, &["cannot write the store", "s.sqlite", "is read-only", "copy it to a writable directory"]);

    // Readers read it where it is, and say what a writable copy says.
    let s = store.display().to_string();
    let status = |out: Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let here = status(cellc_in_read_only(&dir, &["search", "status", "--json", "--store", &s]));
    let done = |bytes: &[u8]| {
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        (v["searches"].clone(), v["workers"].as_array().unwrap().len())
    };
    assert_eq!(done(&here).0[0]["state"], "done", "{}", String::from_utf8_lossy(&here));
    let report = support::scratch("ro-store-report");
    let out = cellc_in_read_only(
        &dir,
        &["search", "report", "--json", "--store", &s, "--out", &report.display().to_string()],
    );
    let json: serde_json::Value = serde_json::from_slice(&status(out)).unwrap();
    assert!(!json["leaderboard"].as_array().unwrap().is_empty(), "{json}");
    assert_eq!(listing(&dir), before, "nothing was created beside the store");
    let there = status(support::cellc(&["search", "status", "--json", "--store", &s]));
    assert_eq!(done(&here), done(&there), "what a reader of a writable store sees");
}

#[test]
fn a_store_with_a_write_ahead_log_left_in_a_read_only_directory_is_refused_with_the_reason() {
    // A copy taken while a writer held the store open: its latest transactions are only in -wal.
    let dir = support::scratch("ro-wal");
    let store = dir.join("s.sqlite");
    let out = support::cellc(&strs(&search(&store, &[])));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let copy = support::scratch("ro-wal-copy");
    {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute("UPDATE searches SET state = 'paused'", []).unwrap();
        for suffix in ["", "-wal"] {
            let from = format!("{}{suffix}", store.display());
            std::fs::copy(&from, copy.join(format!("s.sqlite{suffix}"))).unwrap();
        }
    }
    let s = copy.join("s.sqlite").display().to_string();
    let out = cellc_in_read_only(&copy, &["search", "status", "--store", &s]);
    one_line_error(&out, &["cannot read the store", "s.sqlite-wal", "copy the store and both files"]);
}
