//! A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, started on a free
//! local port with TLS on (a certificate for localhost from a fresh test CA, `ca.crt`), stopped
//! and removed on drop. TCP
//! connections must use TLS and a password; the Unix socket lets the test's superuser in.
//! If PostgreSQL is missing or does not start, it panics with the reason and the server's log:
//! a test that needs it fails, it is never skipped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The role the search connects as over TCP, and its password.
pub const USER: &str = "searcher";
pub const PASSWORD: &str = "pw-Zq7!search-not-for-logs";

pub struct PgServer {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
}

/// Where Debian's packages put the server's programs (or anywhere on PATH).
fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    found.sort();
    if let Some(b) = found.pop() {
        return b;
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':').map(PathBuf::from).find(|d| d.join("initdb").exists()).unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed: no initdb in /usr/lib/postgresql/*/bin or on PATH \
             (.ci/run installs it: apt-get install postgresql)"
        )
    })
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl PgServer {
    /// Creates and starts a server in a new temporary directory.
    pub fn start(name: &str) -> PgServer {
        let dir = std::env::temp_dir().join(format!("cellc-pg-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let server = PgServer { dir, port: free_port(), bin: bin_dir() };
        server.init();
        server
    }

    /// Runs a server program, as the `postgres` user when we are root (the server refuses root).
    fn program(&self, name: &str) -> Command {
        let exe = self.bin.join(name);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, mut cmd: Command, what: &str) {
        let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{what} failed: {}{}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
        );
    }

    fn init(&self) {
        let data = self.dir.join("data");
        // A test CA and a server certificate it signed, for localhost.
        let d = &self.dir;
        std::fs::write(d.join("ext.cnf"), "subjectAltName=DNS:localhost\n").unwrap();
        let openssl = |args: &[&str], what: &str| {
            let mut c = Command::new("openssl");
            c.current_dir(d).args(args);
            self.run(c, what);
        };
        let key = ["-newkey", "rsa:2048", "-nodes"];
        openssl(
            &[
                &["req", "-x509"][..],
                &key,
                &["-days", "2", "-subj", "/CN=cellc test CA", "-keyout", "ca.key", "-out", "ca.crt"],
            ]
            .concat(),
            "openssl (the CA)",
        );
        openssl(
            &[&["req"][..], &key, &["-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"]].concat(),
            "openssl (the request)",
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "server.crt",
            ],
            "openssl (signing)",
        );
        if is_root() {
            self.run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres"]).arg(&self.dir);
                    c
                },
                "chown",
            );
        }
        let mut initdb = self.program("initdb");
        initdb.arg("-D").arg(&data).args(["-A", "trust", "-U", "cellc", "--no-sync"]);
        self.run(initdb, "initdb");
        let key = self.dir.join("server.key");
        let crt = self.dir.join("server.crt");
        let conf = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nssl = on\n\
             ssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\nmax_connections = 60\n",
            self.port,
            self.dir.display(),
            crt.display(),
            key.display()
        );
        append(&data.join("postgresql.conf"), &conf);
        // Over TCP only TLS with a password gets in; the socket is the superuser's way in.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\nhostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        self.start_again();
        self.superuser_sql(&format!("CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'"));
    }

    /// Stops the server the way an administrator does (`pg_ctl stop -m fast`: sessions are
    /// ended, transactions in flight rolled back), and waits until it is down.
    pub fn stop(&self) {
        let mut stop = self.program("pg_ctl");
        stop.arg("-D").arg(self.dir.join("data")).args(["-m", "fast", "-w", "-t", "60", "stop"]);
        self.run(stop, "pg_ctl stop");
    }

    /// Starts the (stopped) server again on the same port and data, and waits until it accepts
    /// connections.
    pub fn start_again(&self) {
        let mut start = self.program("pg_ctl");
        start
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "start"]);
        self.run(start, "pg_ctl start");
    }

    /// Runs SQL as the superuser over the Unix socket.
    pub fn superuser_sql(&self, sql: &str) {
        let mut client = postgres::Client::connect(
            &format!("host={} port={} user=cellc dbname=postgres", self.dir.display(), self.port),
            postgres::NoTls,
        )
        .unwrap_or_else(|e| panic!("cannot connect as the superuser: {e:?}"));
        client.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// A new database owned by the search's role.
    pub fn database(&self, name: &str) -> String {
        self.superuser_sql(&format!("CREATE DATABASE {name} OWNER {USER}"));
        name.to_string()
    }

    /// The URL of database `db` over TCP (TLS, password from PGPASSWORD or added by the caller).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{db}", self.port)
    }

    /// The same URL with the password in it.
    pub fn url_with_password(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let mut stop = self.program("pg_ctl");
        stop.arg("-D").arg(self.dir.join("data")).args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
