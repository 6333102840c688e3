//! A store in a directory cellc cannot write (a read-only mount, an archive, a directory without
//! write permission): a writer gets one line saying so instead of SQLite's "unable to open
//! database file", and a reader still reads the store when that is safe.
//!
//! SQLite in WAL mode keeps two files beside the store, `-wal` and `-shm`, and even a reader
//! needs to create the `-shm` one. A writer has both while it has the store open, and removes
//! them when it closes it cleanly. So a store in a directory this process cannot write, with
//! neither file beside it, is exactly its main file and nobody is writing it: it is opened
//! `immutable`, which needs neither file. Otherwise (a writer at work, as another user; or a
//! `-wal` left by a writer that stopped before checkpointing, holding committed transactions)
//! it is refused with the reason.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

/// Whether a file can be created in `dir` (tried, not guessed from mode bits: root ignores them
/// but not a read-only mount).
fn writable(dir: &Path) -> Result<(), std::io::Error> {
    let probe = dir.join(format!(".cellc-probe-{}", std::process::id()));
    match std::fs::OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        // Left by a process with our pid that died: the directory took it, so it is writable.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
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
    let (wal, shm) = (format!("{name}-wal"), format!("{name}-shm"));
    if [&wal, &shm].iter().any(|f| Path::new(f).exists()) {
        return Some(Err(format!(
            "cannot read the store {name}: this process cannot write its directory {}, and {wal} or {shm} \
             beside it means a writer has it open or stopped before checkpointing (SQLite cannot read it from \
             here without creating {shm}); read it as its writer's user, or copy the store and both files to \
             a writable directory",
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
