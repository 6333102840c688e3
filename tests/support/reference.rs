//! Straightforward implementations of the GRU, LSTM and MUT1, forward and backward through time,
//! written from the paper's equations and derived by hand, sharing no code with cellc. The
//! differential tests compare `cellc eval` against these.

use std::collections::BTreeMap;

pub type Vector = Vec<f64>;
/// Row-major [rows][cols].
pub type Matrix = Vec<Vec<f64>>;

/// Parameters by name: matrices and vectors.
#[derive(Clone, Debug, Default)]
pub struct Params {
    pub m: BTreeMap<String, Matrix>,
    pub v: BTreeMap<String, Vector>,
}

/// Gradients in the same layout.
pub type Grads = Params;

fn mv(w: &Matrix, x: &[f64]) -> Vector {
    w.iter().map(|row| row.iter().zip(x).map(|(a, b)| a * b).sum()).collect()
}

fn mtv(w: &Matrix, g: &[f64]) -> Vector {
    let cols = w[0].len();
    (0..cols).map(|c| w.iter().zip(g).map(|(row, gr)| row[c] * gr).sum()).collect()
}

fn add(a: &[f64], b: &[f64]) -> Vector {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

fn mul(a: &[f64], b: &[f64]) -> Vector {
    a.iter().zip(b).map(|(x, y)| x * y).collect()
}

fn sig(a: &[f64]) -> Vector {
    a.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect()
}

fn tanh(a: &[f64]) -> Vector {
    a.iter().map(|v| v.tanh()).collect()
}

fn add_outer(acc: &mut Matrix, g: &[f64], v: &[f64]) {
    for (r, gr) in g.iter().enumerate() {
        for (c, vc) in v.iter().enumerate() {
            acc[r][c] += gr * vc;
        }
    }
}

fn add_into(acc: &mut Vector, g: &[f64]) {
    acc.iter_mut().zip(g).for_each(|(a, b)| *a += b);
}

fn zeros_like(p: &Params) -> Grads {
    Grads {
        m: p.m.iter().map(|(k, w)| (k.clone(), vec![vec![0.0; w[0].len()]; w.len()])).collect(),
        v: p.v.iter().map(|(k, b)| (k.clone(), vec![0.0; b.len()])).collect(),
    }
}

/// A cell written out by hand: one step forward (keeping what backward needs) and one step back.
pub trait HandCell {
    /// Number of state vectors; state 0 is the output.
    fn states(&self) -> usize;
    /// Next states from `x` and the previous states.
    fn step(&self, p: &Params, x: &[f64], s: &[Vector]) -> Vec<Vector>;
    /// Given the adjoints of the next states, adds parameter gradients to `g` and returns the
    /// adjoints of the previous states and of `x`.
    fn step_back(&self, p: &Params, x: &[f64], s: &[Vector], dnext: &[Vector], g: &mut Grads) -> (Vec<Vector>, Vector);
}

/// Runs a sequence: `x[t][b]`, `s0[state][b]`. Returns `y[t][b]` and the final states.
pub fn forward(
    cell: &dyn HandCell,
    p: &Params,
    x: &[Vec<Vector>],
    s0: &[Vec<Vector>],
) -> (Vec<Vec<Vector>>, Vec<Vec<Vector>>) {
    let mut s = s0.to_vec();
    let mut y = vec![];
    for xt in x {
        let mut next = vec![vec![]; cell.states()];
        for (b, xb) in xt.iter().enumerate() {
            let prev: Vec<Vector> = s.iter().map(|st| st[b].clone()).collect();
            for (k, v) in cell.step(p, xb, &prev).into_iter().enumerate() {
                next[k].push(v);
            }
        }
        s = next;
        y.push(s[0].clone());
    }
    (y, s)
}

/// Backpropagation through time of L = sum(dy * y): gradients of the parameters, of x and of
/// the initial states.
pub fn backward(
    cell: &dyn HandCell,
    p: &Params,
    x: &[Vec<Vector>],
    s0: &[Vec<Vector>],
    dy: &[Vec<Vector>],
) -> (Grads, Vec<Vec<Vector>>, Vec<Vec<Vector>>) {
    // Recompute the states at every step.
    let mut states_at = vec![s0.to_vec()];
    for xt in x {
        let cur = states_at.last().unwrap().clone();
        let mut next = vec![vec![]; cell.states()];
        for (b, xb) in xt.iter().enumerate() {
            let prev: Vec<Vector> = cur.iter().map(|st| st[b].clone()).collect();
            for (k, v) in cell.step(p, xb, &prev).into_iter().enumerate() {
                next[k].push(v);
            }
        }
        states_at.push(next);
    }
    let mut g = zeros_like(p);
    let batch = x[0].len();
    let mut carry: Vec<Vec<Vector>> = s0.iter().map(|st| st.iter().map(|v| vec![0.0; v.len()]).collect()).collect();
    let mut dx = vec![vec![]; x.len()];
    for t in (0..x.len()).rev() {
        let mut new_carry = carry.clone();
        dx[t] = vec![vec![]; batch];
        for b in 0..batch {
            let prev: Vec<Vector> = states_at[t].iter().map(|st| st[b].clone()).collect();
            let mut dnext: Vec<Vector> = carry.iter().map(|c| c[b].clone()).collect();
            add_into(&mut dnext[0], &dy[t][b]);
            let (dprev, dxb) = cell.step_back(p, &x[t][b], &prev, &dnext, &mut g);
            for (k, d) in dprev.into_iter().enumerate() {
                new_carry[k][b] = d;
            }
            dx[t][b] = dxb;
        }
        carry = new_carry;
    }
    (g, dx, carry)
}

/// GRU: r = σ(W_xr x + W_hr h + b_r), z = σ(W_xz x + W_hz h + b_z),
/// n = tanh(W_xh x + W_hh (r⊙h) + b_h), h' = z⊙h + (1 − z)⊙n.
pub struct Gru;

impl HandCell for Gru {
    fn states(&self) -> usize {
        1
    }

    fn step(&self, p: &Params, x: &[f64], s: &[Vector]) -> Vec<Vector> {
        let h = &s[0];
        let r = sig(&add(&add(&mv(&p.m["W_xr"], x), &mv(&p.m["W_hr"], h)), &p.v["b_r"]));
        let z = sig(&add(&add(&mv(&p.m["W_xz"], x), &mv(&p.m["W_hz"], h)), &p.v["b_z"]));
        let n = tanh(&add(&add(&mv(&p.m["W_xh"], x), &mv(&p.m["W_hh"], &mul(&r, h))), &p.v["b_h"]));
        vec![(0..h.len()).map(|i| z[i] * h[i] + (1.0 - z[i]) * n[i]).collect()]
    }

    fn step_back(&self, p: &Params, x: &[f64], s: &[Vector], dnext: &[Vector], g: &mut Grads) -> (Vec<Vector>, Vector) {
        let h = &s[0];
        let dh1 = &dnext[0];
        let r = sig(&add(&add(&mv(&p.m["W_xr"], x), &mv(&p.m["W_hr"], h)), &p.v["b_r"]));
        let z = sig(&add(&add(&mv(&p.m["W_xz"], x), &mv(&p.m["W_hz"], h)), &p.v["b_z"]));
        let rh = mul(&r, h);
        let n = tanh(&add(&add(&mv(&p.m["W_xh"], x), &mv(&p.m["W_hh"], &rh)), &p.v["b_h"]));
        let len = h.len();
        // h' = z h + (1 - z) n
        let dz: Vector = (0..len).map(|i| dh1[i] * (h[i] - n[i])).collect();
        let dn: Vector = (0..len).map(|i| dh1[i] * (1.0 - z[i])).collect();
        let mut dh: Vector = (0..len).map(|i| dh1[i] * z[i]).collect();
        // n = tanh(a_n)
        let dan: Vector = (0..len).map(|i| dn[i] * (1.0 - n[i] * n[i])).collect();
        add_outer(g.m.get_mut("W_xh").unwrap(), &dan, x);
        add_outer(g.m.get_mut("W_hh").unwrap(), &dan, &rh);
        add_into(g.v.get_mut("b_h").unwrap(), &dan);
        let drh = mtv(&p.m["W_hh"], &dan);
        let dr = mul(&drh, h);
        add_into(&mut dh, &mul(&drh, &r));
        // z = σ(a_z), r = σ(a_r)
        let daz: Vector = (0..len).map(|i| dz[i] * z[i] * (1.0 - z[i])).collect();
        let dar: Vector = (0..len).map(|i| dr[i] * r[i] * (1.0 - r[i])).collect();
        add_outer(g.m.get_mut("W_xz").unwrap(), &daz, x);
        add_outer(g.m.get_mut("W_hz").unwrap(), &daz, h);
        add_into(g.v.get_mut("b_z").unwrap(), &daz);
        add_outer(g.m.get_mut("W_xr").unwrap(), &dar, x);
        add_outer(g.m.get_mut("W_hr").unwrap(), &dar, h);
        add_into(g.v.get_mut("b_r").unwrap(), &dar);
        add_into(&mut dh, &mtv(&p.m["W_hz"], &daz));
        add_into(&mut dh, &mtv(&p.m["W_hr"], &dar));
        let dx = add(&add(&mtv(&p.m["W_xr"], &dar), &mtv(&p.m["W_xz"], &daz)), &mtv(&p.m["W_xh"], &dan));
        (vec![dh], dx)
    }
}

/// LSTM (paper's names): i = tanh(a_i) candidate, j = σ(a_j) input gate, f = σ(a_f), o = σ(a_o),
/// a_g = W_xg x + W_hg h + b_g; c' = c⊙f + i⊙j; h' = tanh(c')⊙o. States (h, c).
pub struct Lstm;

const GATES: [&str; 4] = ["i", "j", "f", "o"];

impl Lstm {
    fn gates(p: &Params, x: &[f64], h: &[f64]) -> [Vector; 4] {
        GATES.map(|g| {
            let a =
                add(&add(&mv(&p.m[&format!("W_x{g}")], x), &mv(&p.m[&format!("W_h{g}")], h)), &p.v[&format!("b_{g}")]);
            if g == "i" { tanh(&a) } else { sig(&a) }
        })
    }
}

impl HandCell for Lstm {
    fn states(&self) -> usize {
        2
    }

    fn step(&self, p: &Params, x: &[f64], s: &[Vector]) -> Vec<Vector> {
        let (h, c) = (&s[0], &s[1]);
        let [i, j, f, o] = Lstm::gates(p, x, h);
        let c1: Vector = (0..c.len()).map(|k| c[k] * f[k] + i[k] * j[k]).collect();
        let h1: Vector = (0..c.len()).map(|k| c1[k].tanh() * o[k]).collect();
        vec![h1, c1]
    }

    fn step_back(&self, p: &Params, x: &[f64], s: &[Vector], dnext: &[Vector], g: &mut Grads) -> (Vec<Vector>, Vector) {
        let (h, c) = (&s[0], &s[1]);
        let [i, j, f, o] = Lstm::gates(p, x, h);
        let len = h.len();
        let c1: Vector = (0..len).map(|k| c[k] * f[k] + i[k] * j[k]).collect();
        let tc = tanh(&c1);
        let (dh1, dc1_in) = (&dnext[0], &dnext[1]);
        // h' = tanh(c') o
        let d_o: Vector = (0..len).map(|k| dh1[k] * tc[k]).collect();
        let dc1: Vector = (0..len).map(|k| dc1_in[k] + dh1[k] * o[k] * (1.0 - tc[k] * tc[k])).collect();
        // c' = c f + i j
        let di = mul(&dc1, &j);
        let dj = mul(&dc1, &i);
        let df = mul(&dc1, c);
        let dc = mul(&dc1, &f);
        let pre: [Vector; 4] = [
            (0..len).map(|k| di[k] * (1.0 - i[k] * i[k])).collect(),
            (0..len).map(|k| dj[k] * j[k] * (1.0 - j[k])).collect(),
            (0..len).map(|k| df[k] * f[k] * (1.0 - f[k])).collect(),
            (0..len).map(|k| d_o[k] * o[k] * (1.0 - o[k])).collect(),
        ];
        let mut dh = vec![0.0; len];
        let mut dx = vec![0.0; x.len()];
        for (gate, da) in GATES.iter().zip(&pre) {
            add_outer(g.m.get_mut(&format!("W_x{gate}")).unwrap(), da, x);
            add_outer(g.m.get_mut(&format!("W_h{gate}")).unwrap(), da, h);
            add_into(g.v.get_mut(&format!("b_{gate}")).unwrap(), da);
            add_into(&mut dh, &mtv(&p.m[&format!("W_h{gate}")], da));
            add_into(&mut dx, &mtv(&p.m[&format!("W_x{gate}")], da));
        }
        (vec![dh, dc], dx)
    }
}

/// MUT1: z = σ(W_xz x + b_z), r = σ(W_xr x + W_hr h + b_r),
/// h' = tanh(W_hh (r⊙h) + tanh(x) + b_h)⊙z + h⊙(1 − z). Needs D = H.
pub struct Mut1;

impl Mut1 {
    fn parts(p: &Params, x: &[f64], h: &[f64]) -> (Vector, Vector, Vector, Vector) {
        let z = sig(&add(&mv(&p.m["W_xz"], x), &p.v["b_z"]));
        let r = sig(&add(&add(&mv(&p.m["W_xr"], x), &mv(&p.m["W_hr"], h)), &p.v["b_r"]));
        let rh = mul(&r, h);
        let cand = tanh(&add(&add(&mv(&p.m["W_hh"], &rh), &tanh(x)), &p.v["b_h"]));
        (z, r, rh, cand)
    }
}

impl HandCell for Mut1 {
    fn states(&self) -> usize {
        1
    }

    fn step(&self, p: &Params, x: &[f64], s: &[Vector]) -> Vec<Vector> {
        let h = &s[0];
        let (z, _, _, cand) = Mut1::parts(p, x, h);
        vec![(0..h.len()).map(|k| cand[k] * z[k] + h[k] * (1.0 - z[k])).collect()]
    }

    fn step_back(&self, p: &Params, x: &[f64], s: &[Vector], dnext: &[Vector], g: &mut Grads) -> (Vec<Vector>, Vector) {
        let h = &s[0];
        let dh1 = &dnext[0];
        let (z, r, rh, cand) = Mut1::parts(p, x, h);
        let len = h.len();
        let dcand = mul(dh1, &z);
        let dz: Vector = (0..len).map(|k| dh1[k] * (cand[k] - h[k])).collect();
        let mut dh: Vector = (0..len).map(|k| dh1[k] * (1.0 - z[k])).collect();
        let dac: Vector = (0..len).map(|k| dcand[k] * (1.0 - cand[k] * cand[k])).collect();
        add_outer(g.m.get_mut("W_hh").unwrap(), &dac, &rh);
        add_into(g.v.get_mut("b_h").unwrap(), &dac);
        let drh = mtv(&p.m["W_hh"], &dac);
        let dr = mul(&drh, h);
        add_into(&mut dh, &mul(&drh, &r));
        let tx = tanh(x);
        let mut dx: Vector = (0..len).map(|k| dac[k] * (1.0 - tx[k] * tx[k])).collect();
        let daz: Vector = (0..len).map(|k| dz[k] * z[k] * (1.0 - z[k])).collect();
        add_outer(g.m.get_mut("W_xz").unwrap(), &daz, x);
        add_into(g.v.get_mut("b_z").unwrap(), &daz);
        add_into(&mut dx, &mtv(&p.m["W_xz"], &daz));
        let dar: Vector = (0..len).map(|k| dr[k] * r[k] * (1.0 - r[k])).collect();
        add_outer(g.m.get_mut("W_xr").unwrap(), &dar, x);
        add_outer(g.m.get_mut("W_hr").unwrap(), &dar, h);
        add_into(g.v.get_mut("b_r").unwrap(), &dar);
        add_into(&mut dh, &mtv(&p.m["W_hr"], &dar));
        add_into(&mut dx, &mtv(&p.m["W_xr"], &dar));
        (vec![dh], dx)
    }
}
