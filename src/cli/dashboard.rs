//! `cellc dashboard`: serves the store's experiments as a live web page (`dashboard::server`)
//! until Ctrl-C; prints where to open it.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::failure::Outcome;
use super::interrupt;
use super::ui::Ui;
use crate::dashboard::server::{self, Options};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The store to show: the SQLite file or postgres:// URL that `cellc search`, `compare`,
    /// `paper` and the workers write. Opened read-only: workers are never blocked by it.
    #[arg(long, env = "CELLC_STORE", hide_env_values = true, default_value = "search.sqlite")]
    store: String,
    /// The port to listen on (0: any free port, printed at start).
    #[arg(long, default_value_t = 8023)]
    port: u16,
    /// The address to listen on. The default serves this machine only; another address lets
    /// anyone who can reach it read the store (there is no login).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// How often to read the store for changes, in seconds.
    #[arg(long, default_value_t = 1.0, value_parser = positive_seconds)]
    poll: f64,
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds between 0 and 3600")),
    }
}

pub fn run(_ui: &Ui, args: Args) -> Outcome {
    if !args.bind.is_loopback() {
        eprintln!(
            "warning: serving on {}: anyone who can reach this address can read the store (there is no login)",
            args.bind
        );
    }
    interrupt::catch_ctrl_c();
    let opts =
        Options { store: args.store, bind: args.bind, port: args.port, poll: Duration::from_secs_f64(args.poll) };
    let stop: Arc<dyn Fn() -> bool + Send + Sync> = Arc::new(interrupt::interrupted);
    server::serve(opts, stop, |addr| {
        // One line on stdout, so scripts (and the tests) can read the address.
        println!("dashboard: http://{addr}/");
        eprintln!("serving until Ctrl-C");
    })?;
    Ok(ExitCode::SUCCESS)
}
