//! The dashboard's web server (axum on a one-thread tokio runtime). One store thread owns the
//! [`Dashboard`]: it answers the handlers' questions in turn and, between them, reads what
//! changed in the store once per poll interval, announcing each change to every open page over
//! server-sent events (`/events`); a page then fetches the JSON of the view it shows. Nothing
//! here prints: the caller hears the bound address through `ready`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use tokio::sync::{oneshot, watch};

use super::{Dashboard, Reply, assets};

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct Options {
    /// The store: an SQLite path or a `postgres://` URL.
    pub store: String,
    pub bind: IpAddr,
    /// 0: any free port.
    pub port: u16,
    /// How often the store is read for changes.
    pub poll: Duration,
}

/// A question for the store thread.
type Ask = Box<dyn FnOnce(&mut Dashboard) + Send>;

#[derive(Clone)]
struct App {
    asks: mpsc::Sender<Ask>,
    /// The store's version, as the store thread last saw it.
    versions: watch::Receiver<u64>,
}

/// Every response: no caching (the data is live) and nothing loaded from elsewhere (a stray
/// CDN URL is refused by the browser, and the page's tests see the console error).
fn respond(status: StatusCode, content_type: &'static str, body: impl Into<axum::body::Body>) -> Response {
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CACHE_CONTROL, "no-store"),
        (header::CONTENT_SECURITY_POLICY, "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"),
    ];
    (status, headers, body.into()).into_response()
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    respond(status, "application/json", value.to_string())
}

/// Runs `f` on the store thread; `None` when that thread is gone (shutting down).
async fn ask<T: Send + 'static>(app: &App, f: impl FnOnce(&mut Dashboard) -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    app.asks
        .send(Box::new(move |d: &mut Dashboard| {
            let _ = tx.send(f(d));
        }))
        .ok()?;
    rx.await.ok()
}

async fn api(State(app): State<App>, Path(path): Path<String>) -> Response {
    let unavailable = || json_response(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"error": "shutting down"}));
    match ask(&app, move |d| d.view(&path)).await {
        Some(Ok(Reply::Json(v))) => json_response(StatusCode::OK, &v),
        Some(Ok(Reply::NotFound(why))) => json_response(StatusCode::NOT_FOUND, &serde_json::json!({"error": why})),
        Some(Err(e)) => json_response(StatusCode::INTERNAL_SERVER_ERROR, &serde_json::json!({"error": e})),
        None => unavailable(),
    }
}

async fn asset(Path(name): Path<String>) -> Response {
    match assets::asset(&name) {
        Some((content_type, bytes)) => respond(StatusCode::OK, content_type, bytes),
        None => respond(StatusCode::NOT_FOUND, "text/html; charset=utf-8", assets::NOT_FOUND),
    }
}

/// Any other path is a page: the shell when it shows something that exists, else a 404 page.
async fn page(State(app): State<App>, uri: Uri) -> Response {
    let path = percent_decode(uri.path());
    if ask(&app, move |d| d.page_exists(&path)).await == Some(true) {
        respond(StatusCode::OK, "text/html; charset=utf-8", assets::INDEX)
    } else {
        respond(StatusCode::NOT_FOUND, "text/html; charset=utf-8", assets::NOT_FOUND)
    }
}

/// `change` events carrying the store's version: one at once, then one per change.
async fn events(State(app): State<App>) -> impl IntoResponse {
    let mut versions = app.versions.clone();
    let first = *versions.borrow_and_update();
    let changes = futures_util::stream::unfold(versions, |mut rx| async move {
        rx.changed().await.ok()?; // the store thread ended: so does the stream
        let v = *rx.borrow_and_update();
        Some((v, rx))
    });
    let stream = futures_util::stream::once(async move { first })
        .chain(changes)
        .map(|v| Ok::<Event, Infallible>(Event::default().event("change").data(v.to_string())));
    let mut response = Sse::new(stream).keep_alive(KeepAlive::default()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    response
}

/// `%XX` escapes in a path decoded (experiment names may hold any character).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The store thread: opens the store (reporting how that went on `opened`), then answers asks
/// and reads changes every `poll` until `stop` says so.
fn store_thread(
    opts: Options,
    asks: mpsc::Receiver<Ask>,
    versions: watch::Sender<u64>,
    opened: mpsc::Sender<Result<(), String>>,
    stop: Arc<dyn Fn() -> bool + Send + Sync>,
) {
    let mut dashboard = match Dashboard::open(&opts.store) {
        Ok(d) => {
            let _ = opened.send(Ok(()));
            d
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    versions.send_replace(dashboard.version());
    let mut next = Instant::now() + opts.poll;
    while !stop() {
        match asks.recv_timeout(next.saturating_duration_since(Instant::now()).min(Duration::from_millis(200))) {
            Ok(ask) => ask(&mut dashboard),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if Instant::now() >= next {
            if dashboard.refresh() {
                versions.send_replace(dashboard.version());
            }
            next = Instant::now() + opts.poll;
        }
    }
}

/// Serves the dashboard until `stop` says so. `ready` hears the address once the store is open
/// and the socket bound; a store that cannot be opened or an address that cannot be bound is
/// an error before that.
pub fn serve(
    opts: Options,
    stop: Arc<dyn Fn() -> bool + Send + Sync>,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), String> {
    let (ask_tx, ask_rx) = mpsc::channel::<Ask>();
    let (version_tx, version_rx) = watch::channel(0u64);
    let (opened_tx, opened_rx) = mpsc::channel();
    let thread_opts = opts.clone();
    let thread_stop = stop.clone();
    let store = std::thread::spawn(move || store_thread(thread_opts, ask_rx, version_tx, opened_tx, thread_stop));
    opened_rx.recv().map_err(|_| "the store thread ended before opening the store".to_string())??;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start the server's runtime: {e}"))?;
    let app = App { asks: ask_tx, versions: version_rx };
    let router = Router::new()
        .route("/api/{*path}", get(api))
        .route("/assets/{name}", get(asset))
        .route("/events", get(events))
        .fallback(get(page))
        .with_state(app);
    let served = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((opts.bind, opts.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", opts.bind, opts.port))?;
        ready(listener.local_addr().map_err(|e| e.to_string())?);
        let shutdown = {
            let stop = stop.clone();
            async move {
                while !stop() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| format!("the server failed: {e}"))
    });
    let _ = store.join();
    served
}
