//! The page's files, embedded in the binary (no CDN: the dashboard works offline): one HTML
//! shell, our script and style, and the vendored chart library uPlot (MIT; `assets/VENDORED.md`).

/// The page every view starts from; the script routes on the URL's path.
pub const INDEX: &str = include_str!("assets/index.html");

/// What a missing run, experiment or page gets (with status 404).
pub const NOT_FOUND: &str = include_str!("assets/404.html");

/// `/assets/NAME`: content type and bytes.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match name {
        "app.js" => ("text/javascript; charset=utf-8", include_bytes!("assets/app.js")),
        "style.css" => ("text/css; charset=utf-8", include_bytes!("assets/style.css")),
        "uPlot.iife.min.js" => ("text/javascript; charset=utf-8", include_bytes!("assets/uPlot.iife.min.js")),
        "uPlot.min.css" => ("text/css; charset=utf-8", include_bytes!("assets/uPlot.min.css")),
        "uPlot.LICENSE" => ("text/plain; charset=utf-8", include_bytes!("assets/uPlot.LICENSE")),
        _ => return None,
    })
}
