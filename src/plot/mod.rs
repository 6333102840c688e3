//! Line charts of training curves, bar charts with intervals (and family trees and piano rolls), drawn once through a small [`Canvas`] trait and rendered as
//! SVG (text) or PNG (our rasteriser, an 8x8 bitmap font and the `png` encoder): no system fonts
//! or plotting stack needed, and the same figure looks the same in both.

mod raster;
pub mod roll;
mod svg;
pub mod tree;

/// A colour as RGB.
pub type Rgb = (u8, u8, u8);

/// One curve.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: Rgb,
}

/// One chart: axes with labels and any number of curves, or bars.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// When not empty, the panel is a bar chart of these (and `series` is ignored).
    pub bars: Vec<Bar>,
}

/// One bar: a value with an interval [low, high] drawn as a whisker, an optional reference
/// value drawn as a black tick (a published number to compare with), and the values it
/// summarises (one per seed) drawn as small crosses beside it.
#[derive(Clone, Debug)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub reference: Option<f64>,
    pub points: Vec<f64>,
}

/// Panels stacked top to bottom under a title.
#[derive(Clone, Debug)]
pub struct Figure {
    pub title: String,
    pub panels: Vec<Panel>,
}

/// Palette for curves (colour-blind safe, Okabe-Ito).
pub const COLORS: [Rgb; 6] =
    [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233), (230, 159, 0)];

/// Where text is anchored horizontally.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// What the layout draws with; coordinates in pixels from the top left.
pub trait Canvas {
    fn line(&mut self, a: (f64, f64), b: (f64, f64), color: Rgb, width: f64);
    fn polyline(&mut self, points: &[(f64, f64)], color: Rgb, width: f64) {
        for w in points.windows(2) {
            self.line(w[0], w[1], color, width);
        }
    }
    /// Text whose baseline's anchor point is at `at`; `size` is the font height in pixels.
    fn text(&mut self, at: (f64, f64), text: &str, size: f64, anchor: Anchor, color: Rgb);
}

const WIDTH: f64 = 800.0;
const PANEL_HEIGHT: f64 = 300.0;
const TOP: f64 = 40.0;
const MARGIN: (f64, f64, f64, f64) = (80.0, 30.0, 30.0, 50.0); // left, right, top, bottom

fn size(fig: &Figure) -> (f64, f64) {
    (WIDTH, TOP + PANEL_HEIGHT * fig.panels.len().max(1) as f64)
}

/// About `n` round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten).
pub fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if hi.is_nan() || lo.is_nan() || hi <= lo || !lo.is_finite() || !hi.is_finite() {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

fn label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if a >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if a >= 10.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// 16 px for a title that fits at that size in the PNG font (16 px per character), else 12 px
/// (which the PNG font draws at 8 px per character).
pub fn title_size(title: &str, width: f64) -> f64 {
    if title.chars().count() as f64 * 16.0 <= width - 20.0 { 16.0 } else { 12.0 }
}

/// Draws the figure on any canvas.
pub fn draw(fig: &Figure, c: &mut dyn Canvas) {
    let black = (0, 0, 0);
    let grey = (200, 200, 200);
    let title_size = title_size(&fig.title, WIDTH);
    c.text((WIDTH / 2.0, 26.0), &fig.title, title_size, Anchor::Middle, black);
    for (i, panel) in fig.panels.iter().enumerate() {
        let top = TOP + i as f64 * PANEL_HEIGHT;
        let (x0, x1) = (MARGIN.0, WIDTH - MARGIN.1);
        let (y0, y1) = (top + MARGIN.2, top + PANEL_HEIGHT - MARGIN.3);
        if !panel.bars.is_empty() {
            draw_bars(panel, c, top);
            continue;
        }
        let points = panel.series.iter().flat_map(|s| s.points.iter()).filter(|p| p.0.is_finite() && p.1.is_finite());
        let (mut xmin, mut xmax, mut ymin, mut ymax) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &(x, y) in points {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymin = ymin.min(y);
            ymax = ymax.max(y);
        }
        if xmin > xmax {
            (xmin, xmax, ymin, ymax) = (0.0, 1.0, 0.0, 1.0);
        }
        if xmax - xmin < 1e-12 {
            xmax = xmin + 1.0;
        }
        let pad = ((ymax - ymin) * 0.05).max(1e-6);
        let (ymin, ymax) = (ymin - pad, ymax + pad);
        let sx = |x: f64| x0 + (x - xmin) / (xmax - xmin) * (x1 - x0);
        let sy = |y: f64| y1 - (y - ymin) / (ymax - ymin) * (y1 - y0);
        for t in ticks(ymin, ymax, 5) {
            c.line((x0, sy(t)), (x1, sy(t)), grey, 1.0);
            c.text((x0 - 6.0, sy(t) + 4.0), &label(t), 11.0, Anchor::End, black);
        }
        for t in ticks(xmin, xmax, 6) {
            c.line((sx(t), y1), (sx(t), y1 + 4.0), black, 1.0);
            c.text((sx(t), y1 + 18.0), &label(t), 11.0, Anchor::Middle, black);
        }
        c.polyline(&[(x0, y0), (x0, y1), (x1, y1)], black, 1.0);
        c.text((x0, y0 - 8.0), &panel.title, 13.0, Anchor::Start, black);
        c.text(((x0 + x1) / 2.0, y1 + 36.0), &panel.x_label, 12.0, Anchor::Middle, black);
        c.text((12.0, y0 - 8.0), &panel.y_label, 11.0, Anchor::Start, black);
        let finite = |s: &Series| -> Vec<(f64, f64)> {
            s.points.iter().filter(|p| p.0.is_finite() && p.1.is_finite()).map(|&(x, y)| (sx(x), sy(y))).collect()
        };
        // The legend goes top right, unless curves end up there (a rising accuracy): then bottom right.
        // Unlabelled series (one seed's curve beside the labelled mean) are thin, pale and not in it.
        let n = panel.series.iter().filter(|s| !s.label.is_empty()).count() as f64;
        let crowded = panel.series.iter().flat_map(finite).any(|(x, y)| x > x1 - 170.0 && y < y0 + 12.0 + 16.0 * n);
        let legend_top = if crowded { y1 - 10.0 - 16.0 * (n - 1.0) } else { y0 + 6.0 };
        for s in panel.series.iter().filter(|s| s.label.is_empty()) {
            c.polyline(&finite(s), pale(s.color), 1.0);
        }
        for (k, s) in panel.series.iter().filter(|s| !s.label.is_empty()).enumerate() {
            c.polyline(&finite(s), s.color, 2.0);
            let ly = legend_top + 16.0 * k as f64;
            c.line((x1 - 150.0, ly), (x1 - 130.0, ly), s.color, 2.0);
            c.text((x1 - 124.0, ly + 4.0), &s.label, 11.0, Anchor::Start, black);
        }
    }
}

/// `color` halfway to white.
fn pale(color: Rgb) -> Rgb {
    let half = |v: u8| ((u16::from(v) + 255) / 2) as u8;
    (half(color.0), half(color.1), half(color.2))
}

/// A bar chart panel: bars from the axis floor, whiskers for the intervals, reference ticks.
fn draw_bars(panel: &Panel, c: &mut dyn Canvas, top: f64) {
    let black = (0, 0, 0);
    let grey = (200, 200, 200);
    let (x0, x1) = (MARGIN.0, WIDTH - MARGIN.1);
    let (y0, y1) = (top + MARGIN.2, top + PANEL_HEIGHT - MARGIN.3);
    let values = panel
        .bars
        .iter()
        .flat_map(|b| [b.value, b.low, b.high].into_iter().chain(b.reference).chain(b.points.iter().copied()));
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        (lo, hi) = (0.0, 1.0);
    }
    // Bars start at 0 when the values are near it (accuracies), else just below the lowest.
    let floor = if lo >= 0.0 && lo < 0.5 * hi { 0.0 } else { lo - 0.1 * (hi - lo).max(1e-6) };
    let ceil = hi + 0.05 * (hi - floor).max(1e-6);
    let sy = |y: f64| y1 - (y.clamp(floor, ceil) - floor) / (ceil - floor) * (y1 - y0);
    for t in ticks(floor, ceil, 5) {
        c.line((x0, sy(t)), (x1, sy(t)), grey, 1.0);
        c.text((x0 - 6.0, sy(t) + 4.0), &label(t), 11.0, Anchor::End, black);
    }
    c.polyline(&[(x0, y0), (x0, y1), (x1, y1)], black, 1.0);
    if floor < 0.0 && ceil > 0.0 {
        c.line((x0, sy(0.0)), (x1, sy(0.0)), black, 1.0);
    }
    c.text((x0, y0 - 8.0), &panel.title, 13.0, Anchor::Start, black);
    c.text((12.0, y0 - 8.0), &panel.y_label, 11.0, Anchor::Start, black);
    let slot = (x1 - x0) / panel.bars.len() as f64;
    let half = (slot * 0.3).min(24.0);
    for (i, b) in panel.bars.iter().enumerate() {
        let xc = x0 + slot * (i as f64 + 0.5);
        let color = COLORS[i % COLORS.len()];
        if b.value.is_finite() {
            // A filled bar as dense vertical strokes: the canvas has lines only.
            let (top_y, base) = (sy(b.value), sy(floor));
            let mut x = xc - half;
            while x <= xc + half {
                c.line((x, base), (x, top_y), color, 1.5);
                x += 1.0;
            }
            if b.high > b.low {
                c.line((xc, sy(b.low)), (xc, sy(b.high)), black, 1.5);
                c.line((xc - 5.0, sy(b.low)), (xc + 5.0, sy(b.low)), black, 1.5);
                c.line((xc - 5.0, sy(b.high)), (xc + 5.0, sy(b.high)), black, 1.5);
            }
        }
        if let Some(r) = b.reference.filter(|r| r.is_finite()) {
            c.line((xc - half - 4.0, sy(r)), (xc + half + 4.0, sy(r)), black, 3.0);
        }
        for &p in b.points.iter().filter(|p| p.is_finite()) {
            let (px, py) = (xc + half + 10.0, sy(p));
            c.line((px - 3.0, py - 3.0), (px + 3.0, py + 3.0), black, 1.0);
            c.line((px - 3.0, py + 3.0), (px + 3.0, py - 3.0), black, 1.0);
        }
        c.text((xc, y1 + 16.0), &b.label, 10.0, Anchor::Middle, black);
    }
}

/// The figure as an SVG document.
pub fn to_svg(fig: &Figure) -> String {
    let (w, h) = size(fig);
    let mut s = svg::Svg::new(w, h);
    draw(fig, &mut s);
    s.finish()
}

/// The figure as PNG bytes.
pub fn to_png(fig: &Figure) -> Result<Vec<u8>, String> {
    let (w, h) = size(fig);
    let mut r = raster::Raster::new(w as usize, h as usize);
    draw(fig, &mut r);
    r.encode_png()
}

/// Writes the figure as SVG or PNG, by the path's extension (atomically).
pub fn write(fig: &Figure, path: &std::path::Path) -> Result<(), String> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("svg") => to_svg(fig).into_bytes(),
        Some("png") => to_png(fig)?,
        _ => return Err(format!("{}: a plot is written as .svg or .png", path.display())),
    };
    crate::io::write_atomic(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
