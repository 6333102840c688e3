//! The SVG back end of [`super::Canvas`]: one element per call.

use super::{Anchor, Canvas, Rgb};

pub struct Svg {
    body: String,
    width: f64,
    height: f64,
}

fn color((r, g, b): Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

impl Svg {
    pub fn new(width: f64, height: f64) -> Svg {
        Svg { body: String::new(), width, height }
    }

    pub fn finish(self) -> String {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
             font-family=\"Helvetica, Arial, sans-serif\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{}</svg>\n",
            self.body,
            w = self.width,
            h = self.height
        )
    }
}

impl Canvas for Svg {
    fn line(&mut self, a: (f64, f64), b: (f64, f64), c: Rgb, width: f64) {
        self.body.push_str(&format!(
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"{width}\"/>\n",
            a.0,
            a.1,
            b.0,
            b.1,
            color(c)
        ));
    }

    fn polyline(&mut self, points: &[(f64, f64)], c: Rgb, width: f64) {
        if points.len() < 2 {
            return;
        }
        let pts: Vec<String> = points.iter().map(|p| format!("{:.1},{:.1}", p.0, p.1)).collect();
        self.body.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{width}\" stroke-linejoin=\"round\"/>\n",
            pts.join(" "),
            color(c)
        ));
    }

    fn text(&mut self, at: (f64, f64), text: &str, size: f64, anchor: Anchor, c: Rgb) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        self.body.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"{size}\" text-anchor=\"{anchor}\" fill=\"{}\">{}</text>\n",
            at.0,
            at.1,
            color(c),
            escape(text)
        ));
    }
}
