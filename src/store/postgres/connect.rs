//! Connecting to PostgreSQL the way libpq does: a `postgres://` URL first, then the standard
//! `PG*` environment variables and the password file for what the URL leaves out, and TLS as
//! `sslmode` asks. Passwords never reach a message: [`Target::describe`] leaves them out.

use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::config::{Host, SslMode as WireSslMode};

/// libpq's `sslmode`, all six of them (the driver knows only three).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// `allow` and `prefer`: TLS if the server offers it, without checking its certificate.
    Prefer,
    /// TLS or nothing, without checking the certificate (as libpq, unless a root certificate is given).
    Require,
    /// TLS with a certificate signed by a trusted root (`sslrootcert`; `system` for the system's).
    VerifyCa,
    /// As `verify-ca`, and the certificate must name the host.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<SslMode, String> {
        Ok(match text {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(format!(
                    "sslmode `{text}` is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }
}

/// How long a lost connection is retried unless `CELLC_PG_RECONNECT` says otherwise: long enough
/// for a database server's restart or fail-over, short enough that a worker whose server is gone
/// for good ends the same hour.
const DEFAULT_RECONNECT: Duration = Duration::from_secs(600);

/// Where to connect and how.
pub struct Target {
    pub config: postgres::Config,
    pub ssl: SslMode,
    pub root_cert: Option<PathBuf>,
    /// How long a lost connection is retried before the store gives up
    /// (`CELLC_PG_RECONNECT` seconds; 600 unless set; 0 gives up at once).
    pub reconnect_for: Duration,
}

/// Whether `--store` names a PostgreSQL database rather than an SQLite file.
pub fn is_url(store: &str) -> bool {
    store.starts_with("postgres://") || store.starts_with("postgresql://")
}

impl Target {
    /// Reads a `postgres://` URL; `env` looks up environment variables (`PGHOST`, `PGPORT`,
    /// `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGSSLROOTCERT`, `PGCONNECT_TIMEOUT`,
    /// `PGAPPNAME`, `PGPASSFILE`, `HOME`), which fill what the URL leaves out, and
    /// `CELLC_PG_RECONNECT`, how many seconds a lost connection is retried.
    pub fn parse(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, String> {
        // The driver rejects verify-ca/verify-full and has no sslrootcert: take them out first.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut ssl = None;
        let mut root_cert = None;
        let mut kept = vec![];
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("sslmode", v)) => ssl = Some(SslMode::parse(v)?),
                Some(("sslrootcert", v)) => root_cert = Some(PathBuf::from(v)),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        // The driver's messages name the bad option, never the URL's text.
        let mut config: postgres::Config =
            rest.parse().map_err(|e| format!("the PostgreSQL URL is not valid: {}", super::error_text(&e)))?;

        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            match env("PGHOST") {
                Some(hosts) => {
                    for h in hosts.split(',') {
                        if h.starts_with('/') {
                            config.host_path(h)
                        } else {
                            config.host(h)
                        };
                    }
                }
                // libpq's default: the Unix socket, where Debian's server puts it, else TCP.
                None if Path::new("/var/run/postgresql").exists() => {
                    config.host_path("/var/run/postgresql");
                }
                None => {
                    config.host("localhost");
                }
            }
        }
        if config.get_ports().is_empty()
            && let Some(p) = env("PGPORT")
        {
            config.port(p.parse().map_err(|_| format!("PGPORT `{p}` is not a port number"))?);
        }
        if config.get_user().is_none() {
            let user = env("PGUSER").or_else(|| env("USER")).or_else(|| env("LOGNAME"));
            if let Some(u) = user {
                config.user(&u);
            }
        }
        if config.get_dbname().is_none()
            && let Some(db) = env("PGDATABASE")
        {
            config.dbname(&db);
        }
        if config.get_password().is_none() {
            if let Some(p) = env("PGPASSWORD") {
                config.password(p);
            } else if let Some(p) = password_from_file(&config, env) {
                config.password(p);
            }
        }
        if config.get_connect_timeout().is_none() {
            let secs = env("PGCONNECT_TIMEOUT").and_then(|s| s.parse::<u64>().ok()).unwrap_or(10);
            config.connect_timeout(Duration::from_secs(secs.max(2)));
        }
        if config.get_application_name().is_none() {
            config.application_name(&env("PGAPPNAME").unwrap_or_else(|| "cellc".into()));
        }
        let ssl = match ssl {
            Some(s) => s,
            None => env("PGSSLMODE").map(|s| SslMode::parse(&s)).transpose()?.unwrap_or(SslMode::Prefer),
        };
        // As libpq: the root certificates are in ~/.postgresql/root.crt unless said otherwise
        // (`system`: the system's trusted roots).
        let root_cert = root_cert
            .or_else(|| env("PGSSLROOTCERT").map(PathBuf::from))
            .or_else(|| env("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt")).filter(|p| p.exists()));
        // As libpq: `require` with a root certificate checks the chain.
        let ssl = if ssl == SslMode::Require && root_cert.is_some() { SslMode::VerifyCa } else { ssl };
        let reconnect_for = match env("CELLC_PG_RECONNECT") {
            None => DEFAULT_RECONNECT,
            Some(text) => match text.trim().parse::<f64>() {
                Ok(secs) if Duration::try_from_secs_f64(secs).is_ok() => Duration::from_secs_f64(secs),
                _ => return Err(format!("CELLC_PG_RECONNECT must be a number of seconds, not `{text}`")),
            },
        };
        Ok(Target { config, ssl, root_cert, reconnect_for })
    }

    /// `postgres://user@host:port/db`, without the password: what messages show.
    pub fn describe(&self) -> String {
        let c = &self.config;
        let hosts: Vec<String> = c
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let host = match h {
                    Host::Tcp(name) => name.clone(),
                    Host::Unix(path) => path.display().to_string(),
                };
                match c.get_ports().get(i).or(c.get_ports().first()) {
                    Some(p) => format!("{host}:{p}"),
                    None => host,
                }
            })
            .collect();
        let user = c.get_user().map(|u| format!("{u}@")).unwrap_or_default();
        let db = c.get_dbname().or(c.get_user()).unwrap_or("");
        format!("postgres://{user}{}/{db}", hosts.join(","))
    }

    /// Opens a connection, with TLS as `sslmode` says.
    pub fn connect(&self) -> Result<postgres::Client, String> {
        let mut config = self.config.clone();
        config.ssl_mode(match self.ssl {
            SslMode::Disable => WireSslMode::Disable,
            SslMode::Prefer => WireSslMode::Prefer,
            _ => WireSslMode::Require,
        });
        let tls = super::tls::connector(self.ssl, self.root_cert.as_deref())?;
        config.connect(tls).map_err(|e| format!("cannot connect to {}: {}", self.describe(), super::error_text(&e)))
    }
}

/// The password for this connection from the password file (`PGPASSFILE`, else `~/.pgpass`;
/// lines `host:port:database:user:password`, `*` matches anything), as libpq reads it: only if
/// the file is private to its owner.
fn password_from_file(config: &postgres::Config, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = env("PGPASSFILE").map(PathBuf::from).or_else(|| env("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let host = match config.get_hosts().first()? {
        Host::Tcp(h) => h.clone(),
        Host::Unix(_) => "localhost".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432).to_string();
    let user = config.get_user()?.to_string();
    let db = config.get_dbname().map_or(user.clone(), str::to_string);
    let wanted = [host, port, db, user];
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let fields = split_pgpass(line);
        let [h, p, d, u, pass] = fields.as_slice() else { return None };
        let matches = [h, p, d, u].iter().zip(&wanted).all(|(f, w)| f.as_str() == "*" || f == &w);
        matches.then(|| pass.clone())
    })
}

/// Splits a password-file line at unescaped colons (`\:` and `\\` are escapes).
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().unwrap().extend(chars.next()),
            ':' => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_url_wins_and_the_environment_fills_the_gaps() {
        let env = env_of(&[("PGHOST", "db.example"), ("PGPORT", "6543"), ("PGUSER", "ann"), ("PGPASSWORD", "s3cret")]);
        let t = Target::parse("postgres://bob:hunter2@10.0.0.5:5433/cells?sslmode=verify-full", &env).unwrap();
        assert_eq!(t.describe(), "postgres://bob@10.0.0.5:5433/cells");
        assert_eq!(t.config.get_password(), Some(&b"hunter2"[..]));
        assert_eq!(t.ssl, SslMode::VerifyFull);

        let t = Target::parse("postgres:///cells", &env).unwrap();
        assert_eq!(t.describe(), "postgres://ann@db.example:6543/cells");
        assert_eq!(t.config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(t.ssl, SslMode::Prefer);
        assert!(!t.describe().contains("s3cret"));
    }

    #[test]
    fn sslmode_comes_from_the_url_or_pgsslmode_and_bad_ones_are_named() {
        let env = env_of(&[("PGSSLMODE", "require"), ("PGHOST", "h")]);
        assert_eq!(Target::parse("postgres://u@h/d", &env).unwrap().ssl, SslMode::Require);
        assert_eq!(Target::parse("postgres://u@h/d?sslmode=disable", &env).unwrap().ssl, SslMode::Disable);
        let with_root = Target::parse("postgres://u@h/d?sslrootcert=/tmp/ca.pem", &env).unwrap();
        assert_eq!(with_root.ssl, SslMode::VerifyCa, "require with a root certificate checks it, as libpq");
        let err = Target::parse("postgres://u:pw@h/d?sslmode=sometimes", &env).err().unwrap();
        assert!(err.contains("sometimes") && !err.contains("pw@"), "{err}");
        let err = Target::parse("postgres://u:topsecret@h/d?bogus=1", &env).err().unwrap();
        assert!(!err.contains("topsecret"), "{err}");
    }

    #[test]
    fn the_password_file_matches_like_libpq() {
        let dir = std::env::temp_dir().join(format!("cellc-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(&file, "# comment\nother:*:*:ann:wrong\ndb.example:*:cells:ann:pa\\:ss\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let path = file.display().to_string();
        let env = move |k: &str| (k == "PGPASSFILE").then(|| path.clone());
        let t = Target::parse("postgres://ann@db.example/cells", &env).unwrap();
        assert_eq!(t.config.get_password(), Some(&b"pa:ss"[..]));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let t = Target::parse("postgres://ann@db.example/cells", &env).unwrap();
        assert_eq!(t.config.get_password(), None, "a file others can read is ignored");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
