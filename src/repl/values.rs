//! The numbers a REPL session pokes a cell with: hidden and input size, the seed, and the input
//! and state vectors the user gave with `let` (the rest are drawn from the seed).

use std::collections::BTreeMap;

use ndarray::ArrayD;

use crate::init::name_hash;
use crate::ir::Graph;
use crate::rng::Rng;

/// A value given with `let NAME = ...`.
#[derive(Clone, Debug, PartialEq)]
pub enum Given {
    /// `let h = 0.5`: every entry.
    Fill(f64),
    /// `let h = [0.1, -0.2, ...]`.
    Vector(Vec<f64>),
}

/// Sizes, seed and given vectors.
#[derive(Clone, Debug)]
pub struct Values {
    pub hidden: usize,
    /// `let D = n`; `None` means D = H.
    pub input: Option<usize>,
    pub seed: u64,
    pub given: BTreeMap<String, Given>,
}

/// Largest H or D the REPL accepts: it prints whole vectors and interprets in f64.
pub const MAX_SIZE: usize = 4096;

impl Default for Values {
    fn default() -> Self {
        Values { hidden: 4, input: None, seed: 0, given: BTreeMap::new() }
    }
}

/// Everything one step of the cell reads, at the session's sizes.
pub struct Point {
    pub hidden: usize,
    pub input: usize,
    pub weights: Vec<ArrayD<f64>>,
    pub x: Vec<f64>,
    pub states: Vec<Vec<f64>>,
    /// The names that were drawn at random rather than given.
    pub random: Vec<String>,
}

impl Values {
    /// The input size for a cell: H when the cell ties them, else `let D` or H.
    pub fn input_for(&self, g: &Graph) -> usize {
        if g.sig.d_equals_h { self.hidden } else { self.input.unwrap_or(self.hidden) }
    }

    /// Weights from the cell's init rules, and `x` and the states as given or drawn from the seed.
    pub fn point(&self, g: &Graph) -> Result<Point, String> {
        let (h, d) = (self.hidden, self.input_for(g));
        let weights = crate::init::initialise(&g.sig, h, d, 1.0, self.seed);
        let mut random = vec![];
        let mut vector = |name: &str, n: usize, size: &str| -> Result<Vec<f64>, String> {
            match self.given.get(name) {
                Some(Given::Fill(v)) => Ok(vec![*v; n]),
                Some(Given::Vector(v)) if v.len() == n => Ok(v.clone()),
                Some(Given::Vector(v)) => Err(format!(
                    "`{name}` has {} values but {size} = {n}; give {n} values or `let {size} = {}`",
                    v.len(),
                    v.len()
                )),
                None => {
                    random.push(name.to_string());
                    let mut rng = Rng::new(self.seed).fork(name_hash(name));
                    Ok((0..n).map(|_| rng.uniform(-1.0, 1.0)).collect())
                }
            }
        };
        let x = vector("x", d, if g.sig.d_equals_h { "H" } else { "D" })?;
        let states = g.sig.states.iter().map(|s| vector(s, h, "H")).collect::<Result<Vec<_>, _>>()?;
        Ok(Point { hidden: h, input: d, weights, x, states, random })
    }

    /// Applies `let NAME = VALUE` (the text after `let`); returns what to tell the user.
    pub fn assign(&mut self, text: &str) -> Result<String, String> {
        let Some((name, value)) = text.split_once('=') else {
            return Err("write `let NAME = VALUE`, for example `let H = 8` or `let h = [0.1, -0.2, 0, 0.5]`".into());
        };
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("`{name}` is not a name; `let` sets H, D, seed, x or a state such as h"));
        }
        match name {
            "H" | "D" => {
                let n = parse_size(name, value)?;
                if name == "H" {
                    self.hidden = n;
                } else {
                    self.input = Some(n);
                }
                let dropped = self.drop_mismatched();
                Ok(format!("{name} = {n}{dropped}"))
            }
            "seed" => {
                self.seed = value.parse().map_err(|_| format!("seed must be a whole number, not `{value}`"))?;
                Ok(format!("seed = {}: new weights and random inputs", self.seed))
            }
            _ => {
                let given = parse_given(value)?;
                let shown = match &given {
                    Given::Fill(v) => format!("{name} = {} in every entry", fmt_number(*v)),
                    Given::Vector(v) => format!("{name} = {}", fmt_vector(v)),
                };
                self.given.insert(name.to_string(), given);
                Ok(shown)
            }
        }
    }

    /// Forgets given vectors whose length no longer fits after H or D changed.
    fn drop_mismatched(&mut self) -> String {
        let (h, d) = (self.hidden, self.input.unwrap_or(self.hidden));
        let stale: Vec<String> = self
            .given
            .iter()
            .filter(|(name, g)| {
                let want = if name.as_str() == "x" { d } else { h };
                matches!(g, Given::Vector(v) if v.len() != want)
            })
            .map(|(n, _)| n.clone())
            .collect();
        for n in &stale {
            self.given.remove(n);
        }
        if stale.is_empty() { String::new() } else { format!(" (forgot {}: wrong length now)", stale.join(", ")) }
    }

    /// One line describing the sizes and where values come from.
    pub fn describe(&self) -> String {
        let d = self.input.map_or("D = H".to_string(), |d| format!("D = {d}"));
        let given: Vec<&str> = self.given.keys().map(String::as_str).collect();
        let given = if given.is_empty() { "none".to_string() } else { given.join(", ") };
        format!("H = {}, {d}, seed {}; given: {given}", self.hidden, self.seed)
    }
}

fn parse_size(name: &str, value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_SIZE).contains(&n) => Ok(n),
        _ => Err(format!("{name} must be a whole number from 1 to {MAX_SIZE}, not `{value}`")),
    }
}

/// `0.5`, `-1` or `[0.1, -0.2, 3e-2]`.
fn parse_given(value: &str) -> Result<Given, String> {
    let number = |s: &str| -> Result<f64, String> {
        let s = s.trim();
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!("`{s}` is not a finite number")),
        }
    };
    match value.strip_prefix('[') {
        Some(rest) => {
            let inner = rest.strip_suffix(']').ok_or("a vector ends with `]`: `[0.1, -0.2, 0.5]`")?;
            if inner.trim().is_empty() {
                return Err("a vector needs at least one number".into());
            }
            let v = inner.split(',').map(number).collect::<Result<Vec<_>, _>>()?;
            if v.len() > MAX_SIZE {
                return Err(format!("at most {MAX_SIZE} values"));
            }
            Ok(Given::Vector(v))
        }
        None => number(value).map(Given::Fill),
    }
}

/// A number as the REPL prints it: 4 decimals, no negative zero.
pub fn fmt_number(v: f64) -> String {
    let s = format!("{v:.4}");
    if s == "-0.0000" { "0.0000".into() } else { s }
}

/// `[0.1000, -0.2000, ...]`; long vectors show their first 8 entries and the count.
pub fn fmt_vector(v: &[f64]) -> String {
    const SHOWN: usize = 8;
    let parts: Vec<String> = v.iter().take(SHOWN).map(|&x| fmt_number(x)).collect();
    if v.len() > SHOWN {
        format!("[{}, ... ({} values)]", parts.join(", "), v.len())
    } else {
        format!("[{}]", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn let_parses_sizes_vectors_and_fills() {
        let mut v = Values::default();
        assert_eq!(v.assign("H = 3").unwrap(), "H = 3");
        assert_eq!(v.assign("h = [0.1, -0.2, 0.5]").unwrap(), "h = [0.1000, -0.2000, 0.5000]");
        assert_eq!(v.given["h"], Given::Vector(vec![0.1, -0.2, 0.5]));
        assert!(v.assign("c = 0").unwrap().contains("every entry"));
        assert!(v.assign("H = 0").is_err());
        assert!(v.assign("h = [1, nan]").is_err());
        assert!(v.assign("h = [1, 2").is_err());
        assert!(v.assign("seed = x").is_err());
        assert!(v.assign("H 3").is_err());
        assert_eq!(v.assign("H = 5").unwrap(), "H = 5 (forgot h: wrong length now)");
    }

    #[test]
    fn numbers_print_without_negative_zero() {
        assert_eq!(fmt_number(-0.00001), "0.0000");
        assert_eq!(
            fmt_vector(&[1.0; 10]),
            "[1.0000, 1.0000, 1.0000, 1.0000, 1.0000, 1.0000, 1.0000, 1.0000, ... (10 values)]"
        );
    }
}
