//! A `cellc dashboard` process for a test: started on a free port, its address read from the
//! line it prints, killed when dropped; plain HTTP/1.1 GETs and a server-sent-events reader over
//! `std::net` (no HTTP client crate).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

/// A running dashboard (a [`Client`] of it through `Deref`).
pub struct Server {
    child: Child,
    client: Client,
}

/// Requests to a dashboard at `addr` (`127.0.0.1:PORT`).
#[derive(Clone)]
pub struct Client {
    pub addr: String,
}

impl std::ops::Deref for Server {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Server {
    /// Serves `store`, reading it every `poll` seconds.
    pub fn start(store: &Path, poll: &str) -> Server {
        Server::start_with(store.as_os_str(), poll)
    }

    /// Serves the database at `url` (given in the environment, as a password must be).
    pub fn start_url(url: &str) -> Server {
        let mut cmd = super::cellc_cmd();
        cmd.env("CELLC_STORE", url).args(["dashboard", "--port", "0"]);
        Server::spawn(cmd)
    }

    fn start_with(store: &std::ffi::OsStr, poll: &str) -> Server {
        let mut cmd = super::cellc_cmd();
        cmd.args(["dashboard", "--port", "0", "--poll", poll, "--store"]).arg(store);
        Server::spawn(cmd)
    }

    fn spawn(mut cmd: std::process::Command) -> Server {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start cellc dashboard");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("dashboard: http://")
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, client: Client { addr } }
    }
}

impl Client {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GET path`: the status code and the body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr).unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, body.to_string())
    }

    /// `GET path` as JSON; the status must be 200.
    pub fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// A reader of `/events`.
    pub fn events(&self) -> Events {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
        write!(s, "GET /events HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n", self.addr).unwrap();
        Events { reader: BufReader::new(s) }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Server-sent events as they arrive.
pub struct Events {
    reader: BufReader<TcpStream>,
}

impl Events {
    /// The data of the next `change` event (the store's version); blocks until one comes.
    pub fn next_change(&mut self) -> u64 {
        let mut event = String::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "the event stream ended");
            let line = line.trim_end();
            if let Some(e) = line.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = line.strip_prefix("data: ")
                && event == "change"
            {
                return d.parse().unwrap();
            }
        }
    }
}
