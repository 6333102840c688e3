//! Shared test helpers: fixtures, a workspace that checks text, and random cell generators.
#![allow(dead_code)] // each test binary uses a different part of this module

pub mod browser;
pub mod dashboard;
pub mod pg_server;
pub mod python;
pub mod reference;
pub mod small_search;

use cellc::check::Cell;
use cellc::diag::{self, RenderStyle};
use cellc::rng::Rng;
use cellc::workspace::{Checked, Workspace};

/// Parses and checks `text` as a file called `name`.
pub fn check_text(name: &str, text: &str) -> (Workspace, Checked) {
    let mut ws = Workspace::new();
    let file = ws.add(name, text);
    let checked = ws.check(file);
    (ws, checked)
}

/// All diagnostics of a checked file rendered in the fixed golden style.
pub fn render(ws: &Workspace, checked: &Checked) -> String {
    diag::render_all(&checked.diagnostics, &ws.sources, RenderStyle::PLAIN)
}

/// The one checked cell of `text`, panicking with the rendered diagnostics if it has errors.
pub fn checked_cell(text: &str) -> Cell {
    let (ws, checked) = check_text("test.cell", text);
    assert!(!checked.has_errors(), "unexpected errors:\n{}", render(&ws, &checked));
    assert_eq!(checked.cells.len(), 1, "expected one cell");
    checked.cells.into_iter().next().unwrap()
}

/// `(name, path)` of every file in `dir` with extension `ext`, sorted by name.
pub fn fixtures(dir: &str, ext: &str) -> Vec<(String, std::path::PathBuf)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out: Vec<_> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    out.sort();
    out
}

/// Options for [`random_cell`].
#[derive(Clone, Copy)]
pub struct CellGen {
    pub max_states: usize,
    pub max_locals: usize,
    pub max_depth: usize,
    /// Allow `/` (whose derivative can blow up near zero).
    pub division: bool,
    /// Use the reductions `mean` and `sum`, also as a layer normalisation.
    pub reductions: bool,
    /// Wrap some equations in the regularisers `dropout`, `vardropout` and `zoneout` (a
    /// next state's zoneout keeps its old value), as people write them: around a whole value,
    /// which later equations read by name (so a mask is not copied along with the text).
    pub masks: bool,
}

impl Default for CellGen {
    fn default() -> Self {
        CellGen { max_states: 2, max_locals: 4, max_depth: 3, division: true, reductions: false, masks: false }
    }
}

/// A random cell that is valid by construction: every matrix name is used once (so shapes never
/// conflict), a matrix always multiplies a vector, locals only read earlier locals (no cycles),
/// and every state gets an equation.
pub fn random_cell(rng: &mut Rng, name: &str, opts: CellGen) -> String {
    let states: Vec<&str> = ["h", "c", "s"][..rng.range(1, opts.max_states.min(3))].to_vec();
    let n_locals = rng.range(0, opts.max_locals);
    let mut g = ExprGen { rng, mats: 0, opts, vars: vec![("x".into(), true)] };
    g.vars.extend(states.iter().map(|s| (s.to_string(), true)));
    let mut out = format!("cell {name} {{\n    state {}\n", states.join(", "));
    for k in 0..n_locals {
        let (e, is_vector) = g.expr(opts.max_depth);
        let (e, is_vector) = if opts.masks { g.regularised(e, is_vector, "h") } else { (e, is_vector) };
        out.push_str(&format!("    l{k} = {e}\n"));
        g.vars.push((format!("l{k}"), is_vector));
    }
    for s in &states {
        let (e, v) = g.expr(opts.max_depth);
        let e = if opts.masks { g.regularised(e, v, s).0 } else { e };
        out.push_str(&format!("    {s}' = {e}\n"));
    }
    out.push_str("}\n");
    out
}

struct ExprGen<'a> {
    rng: &'a mut Rng,
    mats: usize,
    opts: CellGen,
    /// Names readable so far, and whether each is a vector (a local may be a plain number).
    vars: Vec<(String, bool)>,
}

impl ExprGen<'_> {
    /// An expression and whether its value is a vector.
    fn expr(&mut self, depth: usize) -> (String, bool) {
        // Drawn only when asked for, so the cells of the other tests stay the same.
        if self.opts.reductions && depth > 0 && self.rng.chance(0.25) {
            return self.reduction(depth);
        }
        let choice = if depth == 0 { self.rng.below(3) } else { self.rng.below(9) };
        match choice {
            0 => self.rng.pick(&self.vars).clone(),
            1 => (format!("b{}", self.rng.below(4)), true),
            2 => ((*self.rng.pick(&["0.5", "1", "2", "0.25"])).to_string(), false),
            3 | 4 => {
                let f = *self.rng.pick(&["tanh", "sigm", "relu", "id", "exp", "softplus", "abs", "sigmoid", "sqrt"]);
                // exp only of bounded arguments, so values stay finite; sqrt only of arguments in
                // [0.5, 1.5], away from its infinite slope at 0.
                let (arg, v) = self.expr(depth - 1);
                match f {
                    "exp" => (format!("exp(tanh({arg}))"), v),
                    "sqrt" => (format!("sqrt(0.5 + sigm({arg}))"), v),
                    _ => (format!("{f}({arg})"), v),
                }
            }
            5 => {
                self.mats += 1;
                let m = self.mats;
                let (arg, v) = self.expr(depth - 1);
                let arg = if v { arg } else { format!("{arg} + h") };
                (format!("W{m}*({arg})"), true)
            }
            6 => {
                let ((a, va), (b, vb)) = (self.expr(depth - 1), self.expr(depth - 1));
                (format!("{a} + {b}"), va || vb)
            }
            7 => {
                let ((a, va), (b, vb)) = (self.expr(depth - 1), self.expr(depth - 1));
                (format!("({a})*({b})"), va || vb)
            }
            _ => {
                let ((a, va), (b, vb)) = (self.expr(depth - 1), self.expr(depth - 1));
                if self.opts.division && self.rng.chance(0.3) {
                    (format!("({a})/(1.5 + tanh({b}))"), va || vb)
                } else {
                    (format!("-({a}) - {b}"), va || vb)
                }
            }
        }
    }
}

impl ExprGen<'_> {
    /// `e`, or half the time `e` made a vector and regularised: dropout (a new mask each step,
    /// or one per sequence) or zoneout between it and `old`.
    fn regularised(&mut self, e: String, is_vector: bool, old: &str) -> (String, bool) {
        if !self.rng.chance(0.5) {
            return (e, is_vector);
        }
        let e = if is_vector { e } else { format!("{e} + h") };
        let rate = *self.rng.pick(&["0", "0.1", "0.5", "0.75"]);
        match self.rng.below(3) {
            0 => (format!("dropout({e}, {rate})"), true),
            1 => (format!("vardropout({e}, {rate})"), true),
            _ => (format!("zoneout({e}, {old}, {rate})"), true),
        }
    }

    /// A reduction of a vector: its mean, its (scaled) sum, or the vector layer-normalised. A
    /// mean or sum is one number per example, which counts as "not a vector" here (a matrix
    /// cannot multiply it, a reduction cannot reduce it).
    fn reduction(&mut self, depth: usize) -> (String, bool) {
        let (a, v) = self.expr(depth - 1);
        let a = if v { a } else { format!("{a} + h") };
        match self.rng.below(3) {
            0 => (format!("mean({a})"), false),
            1 => (format!("sum({a})*0.25"), false),
            _ => {
                let d = format!("(({a}) - mean({a}))");
                (format!("{d}/sqrt(mean({d}*{d}) + 0.5)"), true)
            }
        }
    }
}

/// The `cellc` binary as a command (no colour).
pub fn cellc_cmd() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cellc"));
    cmd.env("NO_COLOR", "1");
    cmd
}

/// Runs the `cellc` binary with `args` (no colour).
pub fn cellc(args: &[&str]) -> std::process::Output {
    cellc_cmd().args(args).output().expect("run cellc")
}

/// A fresh, empty directory for one test: `<tmp>/cellc-<pid>-<name>` (the pid keeps test
/// binaries apart, the name keeps a binary's tests apart).
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cellc-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}
