//! A store in a directory cellc cannot write (a read-only mount, an archive, a directory without
//! write permission): a writer gets one line saying so instead of SQLite's "unable to open
//! database file", and a reader still reads the store when that is safe.
//!
//! SQLite in WAL mode keeps two files beside the store, `-wal` and `-shm`, and even a reader
//! needs to create the `-shm` one. In a directory nobody can write, no writer can be running
//! (it could not create `-wal` either), so a store with no write-ahead log left over is exactly
//! its main file: it is opened `immutable`, which needs neither file. A store that still has a
//! `-wal` (a writer stopped before checkpointing) must not be read that way, since committed
//! transactions live in that file.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// Whether a file can be created in `dir` (tried, not guessed from mode bits: root ignores them
/// but not a read-only mount).
fn writable(dir: &Path) -> Result<(), std::io::Error> {
    let probe = dir.join(format!(".cellc-probe-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Why a writer cannot use the store at `path`, when the file system is the reason: its
/// directory or the file itself cannot be written. `None` when both can (the error was another).
pub fn unwritable(path: &Path) -> Option<String> {
    let name = path.display();
    let dir = parent(path);
    if let Err(e) = writable(dir) {
        if !path.exists() {
            return Some(format!(
                "cannot create the store {name}: its directory {} is read-only ({e}); give --store a path in a \
                 writable directory",
                dir.display()
            ));
        }
        return Some(format!(
            "cannot write the store {name}: its directory {} is read-only ({e}), and SQLite keeps the files \
             {name}-wal and {name}-shm beside the store; copy it to a writable directory (`cellc search status`, \
             `search report` and `dashboard` can read it where it is)",
            dir.display()
        ));
    }
    let read_only_file = std::fs::OpenOptions::new().append(true).open(path).err()?;
    path.exists().then(|| format!("cannot write the store {name}: the file is read-only ({read_only_file})"))
}

/// Opens the store at `path` read-only without its `-shm` file when its directory cannot be
/// written and no write-ahead log is left: `None` when that does not apply (the usual error
/// stands), an error when the store has a log that cannot be read from here.
pub fn open_immutable(path: &Path) -> Option<Result<Connection, String>> {
    let dir = parent(path);
    if writable(dir).is_ok() {
        return None;
    }
    let name = path.display();
    let wal = format!("{name}-wal");
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Some(Err(format!(
            "cannot read the store {name}: its directory {} is read-only and {wal} holds transactions that \
             SQLite cannot read without creating {name}-shm; copy the store and its -wal file to a writable \
             directory",
            dir.display()
        )));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let uri = format!("file:{}?immutable=1", percent_encode(&path.to_string_lossy()));
    Some(Connection::open_with_flags(uri, flags).map_err(|e| format!("cannot open the store {name}: {e}")))
}

/// A path as the path part of an SQLite `file:` URI: `%`, `?` and `#` escaped.
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match c {
            '%' | '?' | '#' => out += &format!("%{:02X}", c as u32),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn uri_paths_escape_what_sqlite_reads_as_syntax() {
        assert_eq!(super::percent_encode("/a b/c?d#e%f.sqlite"), "/a b/c%3Fd%23e%25f.sqlite");
    }
}
