//! The PNG back end of [`super::Canvas`]: an RGB pixel buffer, anti-aliased lines (coverage of a
//! thick segment, sampled per pixel) and text in the public-domain 8x8 font of `font8x8`.

use font8x8::UnicodeFonts;

use super::{Anchor, Canvas, Rgb};

pub struct Raster {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl Raster {
    pub fn new(width: usize, height: usize) -> Raster {
        Raster { width, height, pixels: vec![255; width * height * 3] }
    }

    /// Blends `color` into pixel (x, y) with opacity `alpha` in 0..=1.
    fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f64) {
        if x < 0 || y < 0 || x as usize >= self.width || y as usize >= self.height || alpha <= 0.0 {
            return;
        }
        let i = (y as usize * self.width + x as usize) * 3;
        let a = alpha.min(1.0);
        for (k, c) in [color.0, color.1, color.2].into_iter().enumerate() {
            let old = f64::from(self.pixels[i + k]);
            self.pixels[i + k] = (old + (f64::from(c) - old) * a).round() as u8;
        }
    }

    pub fn encode_png(&self) -> Result<Vec<u8>, String> {
        let mut out = vec![];
        {
            let mut enc = png::Encoder::new(&mut out, self.width as u32, self.height as u32);
            enc.set_color(png::ColorType::Rgb);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().map_err(|e| format!("PNG: {e}"))?;
            w.write_image_data(&self.pixels).map_err(|e| format!("PNG: {e}"))?;
        }
        Ok(out)
    }
}

impl Canvas for Raster {
    fn line(&mut self, a: (f64, f64), b: (f64, f64), color: Rgb, width: f64) {
        // Coverage of each pixel centre by a segment of this half width, with a one-pixel ramp.
        let half = width / 2.0;
        let (x0, x1) = (a.0.min(b.0) - half - 1.0, a.0.max(b.0) + half + 1.0);
        let (y0, y1) = (a.1.min(b.1) - half - 1.0, a.1.max(b.1) + half + 1.0);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = dx * dx + dy * dy;
        for y in y0.floor() as i64..=y1.ceil() as i64 {
            for x in x0.floor() as i64..=x1.ceil() as i64 {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = if len2 > 0.0 { (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
                let (cx, cy) = (a.0 + t * dx, a.1 + t * dy);
                let d = ((px - cx).powi(2) + (py - cy).powi(2)).sqrt();
                let alpha = (half + 0.5 - d).clamp(0.0, 1.0);
                self.blend(x, y, color, alpha);
            }
        }
    }

    fn text(&mut self, at: (f64, f64), text: &str, size: f64, anchor: Anchor, color: Rgb) {
        // The 8x8 glyphs at 1x, or 2x for titles.
        let scale = if size >= 15.0 { 2 } else { 1 };
        let advance = 8 * scale;
        let width = (text.chars().count() * advance) as f64;
        let left = match anchor {
            Anchor::Start => at.0,
            Anchor::Middle => at.0 - width / 2.0,
            Anchor::End => at.0 - width,
        }
        .round() as i64;
        let top = at.1.round() as i64 - 7 * scale as i64;
        for (i, ch) in text.chars().enumerate() {
            let Some(glyph) = font8x8::BASIC_FONTS.get(ch).or_else(|| font8x8::LATIN_FONTS.get(ch)) else {
                continue;
            };
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        for sy in 0..scale {
                            for sx in 0..scale {
                                let x = left + (i * advance + col * scale + sx) as i64;
                                let y = top + (row * scale + sy) as i64;
                                self.blend(x, y, color, 1.0);
                            }
                        }
                    }
                }
            }
        }
    }
}
