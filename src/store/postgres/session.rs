//! A PostgreSQL connection that survives the server going away: a statement that fails because
//! the connection was lost (the server stopped, restarted or failed over, the network dropped)
//! waits, reconnects with backoff and runs again, for up to `CELLC_PG_RECONNECT` seconds.
//!
//! Running a statement again is safe because every statement the store sends is idempotent or
//! a whole transaction: a transaction cut off mid-way was rolled back by the server, and a
//! statement whose reply was lost after it committed finds its work done (see `finish`, `claim`
//! and `commit_round` in `mod.rs`). Session state does not survive a new connection, so the
//! coordinator's advisory locks are taken again before anything else runs.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use postgres::Client;

use super::{Target, error_text};

/// What a waiting session checks to stop early (Ctrl-C): set once per process by the CLI.
static STOP_WAITING: OnceLock<fn() -> bool> = OnceLock::new();

/// Who hears that the connection was lost and found again (the library prints nothing).
static TELL: OnceLock<fn(&str)> = OnceLock::new();

/// From now on, a session waiting to reconnect gives up as soon as `stop` says so.
pub fn stop_reconnecting_when(stop: fn() -> bool) {
    let _ = STOP_WAITING.set(stop);
}

/// From now on, `tell` hears each lost connection and each reconnection, one line each.
pub fn report_reconnects_with(tell: fn(&str)) {
    let _ = TELL.set(tell);
}

fn tell(message: String) {
    if let Some(tell) = TELL.get() {
        tell(&message);
    }
}

/// An open connection and what it takes to open it again.
pub struct Session {
    client: Client,
    target: Target,
    /// The URL without its password.
    pub describe: String,
    /// Session advisory locks held (the server drops them with the connection).
    locks: Vec<i64>,
    /// Whether a lost connection is waited for (coordinators, workers) or reported at once,
    /// with one reconnection tried per call (readers such as the dashboard, which show the
    /// error and poll again).
    patient: bool,
}

/// Whether `e` means the connection is gone (rather than that the statement was wrong): the
/// socket closed or failed, or the server said it is shutting down or not accepting yet.
pub fn connection_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        // 08: connection exceptions; 57P01-03: admin shutdown, crash shutdown, cannot connect now.
        let c = code.code();
        return c.starts_with("08") || matches!(c, "57P01" | "57P02" | "57P03");
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

impl Session {
    pub fn connect(target: Target, patient: bool) -> Result<Session, String> {
        let client = target.connect()?;
        let describe = target.describe();
        Ok(Session { client, target, describe, locks: vec![], patient })
    }

    /// The connection as it is, for what must not be retried (opening and migrating).
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// Runs `op` on the connection; if the connection was lost, reconnects and runs it again
    /// (an impatient session: once).
    pub fn run<T>(&mut self, mut op: impl FnMut(&mut Client) -> Result<T, postgres::Error>) -> Result<T, String> {
        let mut lost_since = None;
        loop {
            match op(&mut self.client) {
                Ok(v) => return Ok(v),
                Err(e) if connection_lost(&e) => {
                    let first = lost_since.is_none();
                    let since = *lost_since.get_or_insert_with(Instant::now);
                    let describe = self.describe.clone();
                    let lost = |last: &str| format!("lost the connection to {describe}: {last}");
                    if self.patient {
                        self.wait_and_reconnect(&error_text(&e), since)?;
                    } else if first {
                        self.reconnect_once().map_err(|last| lost(&last))?;
                    } else {
                        return Err(lost(&error_text(&e)));
                    }
                }
                Err(e) => return Err(error_text(&e)),
            }
        }
    }

    /// One attempt to connect and take the locks back.
    fn reconnect_once(&mut self) -> Result<(), String> {
        self.client = self.target.connect()?;
        self.relock().map_err(|e| e.0)
    }

    /// Remembers a session advisory lock this connection took, to take it again after a reconnect.
    pub fn hold_lock(&mut self, key: i64) {
        if !self.locks.contains(&key) {
            self.locks.push(key);
        }
    }

    /// Waits for the server with exponential backoff (0.1 s doubling to 2 s) until a connection
    /// opens and the locks are back, or the time allowed since the connection was first lost
    /// (`since`; a connection lost again at once does not restart the clock) runs out.
    fn wait_and_reconnect(&mut self, reason: &str, since: Instant) -> Result<(), String> {
        let allowed = self.target.reconnect_for;
        let describe = self.describe.clone();
        let gave_up = |last: &str| {
            format!(
                "lost the connection to {describe} and could not reconnect within {} s (CELLC_PG_RECONNECT): {last}",
                allowed.as_secs_f64()
            )
        };
        if allowed.is_zero() {
            return Err(gave_up(reason));
        }
        tell(format!(
            "warning: lost the connection to {} ({reason}); reconnecting for up to {} s",
            self.describe,
            allowed.as_secs_f64()
        ));
        let started = since;
        let mut pause = Duration::from_millis(100);
        let mut last = reason.to_string();
        loop {
            if STOP_WAITING.get().is_some_and(|stop| stop()) {
                return Err(format!("stopped while waiting to reconnect to {}", self.describe));
            }
            if started.elapsed() >= allowed {
                return Err(gave_up(&last));
            }
            std::thread::sleep(pause.min(allowed.saturating_sub(started.elapsed())));
            pause = (pause * 2).min(Duration::from_secs(2));
            match self.target.connect() {
                Ok(client) => {
                    self.client = client;
                    match self.relock() {
                        Ok(()) => break,
                        Err(e) if e.1 => last = e.0,
                        Err(e) => return Err(e.0),
                    }
                }
                Err(e) => last = e,
            }
        }
        tell(format!("reconnected to {} after {:.1} s", self.describe, started.elapsed().as_secs_f64()));
        Ok(())
    }

    /// Takes the held advisory locks again. An error says whether to keep trying (the connection
    /// was lost again) or stop (another process took a lock meanwhile).
    fn relock(&mut self) -> Result<(), (String, bool)> {
        for &key in &self.locks {
            let got = self.client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).and_then(|r| r.try_get(0));
            match got {
                Ok(true) => {}
                // Another session holds it: another coordinator, or our own old session, which
                // the server has not yet seen die (a network drop): keep trying until the deadline.
                Ok(false) => {
                    return Err((
                        format!(
                            "this coordinator's lock is held by another session (another `cellc search \
                             --resume`, or this one's old connection the server has not yet closed) on {}",
                            self.describe
                        ),
                        true,
                    ));
                }
                Err(e) => return Err((error_text(&e), connection_lost(&e))),
            }
        }
        Ok(())
    }
}
