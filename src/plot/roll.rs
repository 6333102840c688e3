//! Piano rolls: time left to right (one column per frame), the 88 keys bottom to top, a bar for
//! each sounding note; grey lines mark every C. Drawn through the same [`Canvas`] as the charts.

use super::{Anchor, Canvas};

const KEY_H: f64 = 4.0;
const LEFT: f64 = 40.0;
const TOP: f64 = 40.0;

fn size(frames: usize) -> (f64, f64) {
    let cell = frame_width(frames);
    (LEFT + 20.0 + cell * frames.max(1) as f64, TOP + 30.0 + 88.0 * KEY_H)
}

/// Pixels per frame: wide for short pieces, at least 2.
fn frame_width(frames: usize) -> f64 {
    (1200.0 / frames.max(1) as f64).clamp(2.0, 12.0)
}

/// Draws `frames` (sets of units 0..88, MIDI `21 + unit`) under `title`.
pub fn draw_roll(title: &str, frames: &[Vec<u8>], c: &mut dyn Canvas) {
    let (w, _) = size(frames.len());
    let fw = frame_width(frames.len());
    let y_of = |unit: u8| TOP + (87.0 - f64::from(unit)) * KEY_H;
    c.text((LEFT, 24.0), title, 14.0, Anchor::Start, (0, 0, 0));
    // Every C (MIDI 24, 36, ...; unit 3 + 12k), with its octave number.
    for octave in 0..8u8 {
        let unit = 3 + 12 * octave;
        let y = y_of(unit) + KEY_H;
        c.line((LEFT, y), (w - 20.0, y), (220, 220, 220), 1.0);
        c.text((LEFT - 4.0, y), &format!("C{}", octave + 1), 9.0, Anchor::End, (90, 90, 90));
    }
    for (t, frame) in frames.iter().enumerate() {
        let x0 = LEFT + t as f64 * fw;
        for &unit in frame.iter().filter(|&&u| u < 88) {
            let y = y_of(unit) + KEY_H / 2.0;
            c.line((x0, y), (x0 + fw, y), super::COLORS[0], KEY_H - 1.0);
        }
    }
}

/// Writes the roll as SVG or PNG, by the path's extension (atomically).
pub fn write_roll(title: &str, frames: &[Vec<u8>], path: &std::path::Path) -> Result<(), String> {
    let (w, h) = size(frames.len());
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let bytes = match ext.as_deref() {
        Some("svg") => {
            let mut s = super::svg::Svg::new(w, h);
            draw_roll(title, frames, &mut s);
            s.finish().into_bytes()
        }
        Some("png") => {
            let mut r = super::raster::Raster::new(w as usize, h as usize);
            draw_roll(title, frames, &mut r);
            r.encode_png()?
        }
        _ => return Err(format!("{}: a piano roll is written as .svg or .png", path.display())),
    };
    crate::io::write_atomic(path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
