//! Inline approximations of the activations in CLIF, generic over `f32x4` and `f32`, so one
//! emitter gives a kernel's vector loop and its scalar tail. No calls: every function is a
//! polynomial or rational function on registers.
//!
//! - tanh: the 13/6 rational approximation of Eigen, XLA and MLAS, on x clamped to ±7.905; below
//!   |x| < 4e-4 it returns x.
//! - exp: Cody-Waite reduction x = n ln2 + r, a degree-6 polynomial for e^r (Cephes), and 2^n
//!   applied in two halves so e^x stays finite up to x = 88.72; above that +inf, below -87.34 zero.
//! - sigm(x) = 1 / (1 + exp(-x)).
//! - softplus(x) = max(x, 0) + log1p(exp(-|x|)), with log1p(e) = log(1 + e) e / ((1 + e) - 1)
//!   and log from the Cephes polynomial.
//!
//! Clamps use the `bitselect(fcmp lt)` idiom with the data second, which lowers to one
//! `vminps`/`vmaxps` and lets NaN through. `tests/jit.rs` measures every function against f64.

use cranelift::codegen::ir::condcodes::FloatCC;
use cranelift::prelude::*;

/// Emits math for one function being built.
#[derive(Clone, Copy)]
pub struct Math {
    /// Whether the host has fused multiply-add (else a*b + c is two instructions).
    pub fma: bool,
    /// `F32X4` or `F32`.
    pub ty: Type,
}

impl Math {
    fn vector(&self) -> bool {
        self.ty.is_vector()
    }

    /// A constant of this type.
    pub fn c(&self, b: &mut FunctionBuilder, v: f32) -> Value {
        let s = b.ins().f32const(v);
        if self.vector() { b.ins().splat(self.ty, s) } else { s }
    }

    /// a*b + c.
    pub fn madd(&self, b: &mut FunctionBuilder, a: Value, x: Value, c: Value) -> Value {
        if self.fma {
            b.ins().fma(a, x, c)
        } else {
            let m = b.ins().fmul(a, x);
            b.ins().fadd(m, c)
        }
    }

    /// `if x <cond> y { a } else { e }`, lane by lane.
    pub fn pick(&self, b: &mut FunctionBuilder, cond: FloatCC, x: Value, y: Value, a: Value, e: Value) -> Value {
        let test = b.ins().fcmp(cond, x, y);
        if self.vector() {
            let mask = b.ins().bitcast(self.ty, MemFlagsData::new(), test);
            b.ins().bitselect(mask, a, e)
        } else {
            b.ins().select(test, a, e)
        }
    }

    /// x clamped to [lo, hi]; NaN stays NaN.
    fn clamp(&self, b: &mut FunctionBuilder, x: Value, lo: f32, hi: f32) -> Value {
        let (lo, hi) = (self.c(b, lo), self.c(b, hi));
        let t = self.pick(b, FloatCC::LessThan, x, lo, lo, x);
        self.pick(b, FloatCC::LessThan, hi, t, hi, t)
    }

    /// Horner's rule: coefficients from the highest power down.
    fn poly(&self, b: &mut FunctionBuilder, x: Value, coeffs: &[f32]) -> Value {
        let mut acc = self.c(b, coeffs[0]);
        for &k in &coeffs[1..] {
            let k = self.c(b, k);
            acc = self.madd(b, acc, x, k);
        }
        acc
    }

    // The coefficients are written as published (Eigen, Cephes), digits beyond f32 included.
    #[allow(clippy::excessive_precision)]
    pub fn tanh(&self, b: &mut FunctionBuilder, x: Value) -> Value {
        const ALPHA: [f32; 7] = [
            -2.760_768_5e-16,
            2.000_187_9e-13,
            -8.604_672e-11,
            5.122_297e-8,
            1.485_722_4e-5,
            6.372_619_3e-4,
            4.893_524_6e-3,
        ];
        const BETA: [f32; 4] = [1.198_258_4e-6, 1.185_347_1e-4, 2.268_434_6e-3, 4.893_525e-3];
        let xc = self.clamp(b, x, -7.905_311, 7.905_311);
        let x2 = b.ins().fmul(xc, xc);
        let p = self.poly(b, x2, &ALPHA);
        let p = b.ins().fmul(p, xc);
        let q = self.poly(b, x2, &BETA);
        let y = b.ins().fdiv(p, q);
        // Large |x|: exactly ±1, as tanh rounds to in f32 beyond 8.67 (the rational stops one
        // ulp short, and 1 - y² would then be 1.2e-7 instead of the 0 of a saturated unit).
        let ax = b.ins().fabs(x);
        let (zero, one, minus_one) = (self.c(b, 0.0), self.c(b, 1.0), self.c(b, -1.0));
        let sign = self.pick(b, FloatCC::LessThan, x, zero, minus_one, one);
        let big = self.c(b, 8.67);
        let y = self.pick(b, FloatCC::GreaterThan, ax, big, sign, y);
        // Tiny |x|: tanh(x) = x to full relative precision (the rational loses it near 0).
        let tiny = self.c(b, 4e-4);
        self.pick(b, FloatCC::LessThan, ax, tiny, x, y)
    }

    #[allow(clippy::excessive_precision)]
    pub fn exp(&self, b: &mut FunctionBuilder, x: Value) -> Value {
        const HI: f32 = 88.722_84;
        const LO: f32 = -87.336_55;
        let int_ty = if self.vector() { types::I32X4 } else { types::I32 };
        let xc = self.clamp(b, x, LO, HI);
        let log2e = self.c(b, std::f32::consts::LOG2_E);
        let t = b.ins().fmul(xc, log2e);
        // Round t to the nearest integer by adding and subtracting 1.5 * 2^23: the sum's low
        // mantissa bits are then the integer itself, so n's integer form is a subtraction of bit
        // patterns, not a (slow, saturating) float-to-int conversion. Exact for |t| < 2^22.
        let magic = self.c(b, 12_582_912.0);
        let shifted = b.ins().fadd(t, magic);
        let n = b.ins().fsub(shifted, magic);
        // r = x - n ln2, in two parts so r keeps full precision.
        let ln2_hi = self.c(b, -0.693_359_4);
        let ln2_lo = self.c(b, 2.121_944_4e-4);
        let r = self.madd(b, n, ln2_hi, xc);
        let r = self.madd(b, n, ln2_lo, r);
        let p = self.poly(
            b,
            r,
            &[1.987_569_1e-4, 1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1],
        );
        let r2 = b.ins().fmul(r, r);
        let one = self.c(b, 1.0);
        let r1 = b.ins().fadd(r, one);
        let e = self.madd(b, p, r2, r1);
        // 2^n as two factors 2^(n/2) 2^(n - n/2), so n = 128 does not overflow the exponent.
        let shifted_bits = b.ins().bitcast(int_ty, MemFlagsData::new(), shifted);
        let magic_bits = b.ins().bitcast(int_ty, MemFlagsData::new(), magic);
        let ni = b.ins().isub(shifted_bits, magic_bits);
        let half = b.ins().sshr_imm_u(ni, 1);
        let rest = b.ins().isub(ni, half);
        let s1 = self.pow2(b, half);
        let s2 = self.pow2(b, rest);
        let y = b.ins().fmul(e, s1);
        let y = b.ins().fmul(y, s2);
        let inf = self.c(b, f32::INFINITY);
        let zero = self.c(b, 0.0);
        let hi = self.c(b, HI);
        let lo = self.c(b, LO);
        let y = self.pick(b, FloatCC::GreaterThan, x, hi, inf, y);
        self.pick(b, FloatCC::LessThan, x, lo, zero, y)
    }

    /// 2^k for an integer k in [-126, 127], built in the exponent bits.
    fn pow2(&self, b: &mut FunctionBuilder, k: Value) -> Value {
        // `iadd_imm` is scalar only: splat the bias for vectors.
        let bias = b.ins().iconst(types::I32, 127);
        let bias = if self.vector() { b.ins().splat(types::I32X4, bias) } else { bias };
        let biased = b.ins().iadd(k, bias);
        let bits = b.ins().ishl_imm_u(biased, 23);
        b.ins().bitcast(self.ty, MemFlagsData::new(), bits)
    }

    pub fn sigmoid(&self, b: &mut FunctionBuilder, x: Value) -> Value {
        let nx = b.ins().fneg(x);
        let e = self.exp(b, nx);
        let one = self.c(b, 1.0);
        let d = b.ins().fadd(one, e);
        b.ins().fdiv(one, d)
    }

    pub fn softplus(&self, b: &mut FunctionBuilder, x: Value) -> Value {
        let zero = self.c(b, 0.0);
        let pos = self.pick(b, FloatCC::LessThan, x, zero, zero, x);
        let ax = b.ins().fabs(x);
        let nax = b.ins().fneg(ax);
        let e = self.exp(b, nax);
        let one = self.c(b, 1.0);
        let u = b.ins().fadd(one, e);
        let lu = self.log_1_2(b, u);
        let um1 = b.ins().fsub(u, one);
        let ratio = b.ins().fdiv(e, um1);
        let l1p = b.ins().fmul(lu, ratio);
        // u == 1 when e is below half an ulp of 1: then log1p(e) = e.
        let l1p = self.pick(b, FloatCC::Equal, u, one, e, l1p);
        b.ins().fadd(pos, l1p)
    }

    /// ln(u) for u in [1, 2] (NaN passes through): ln(m) + k ln2 with m in [sqrt(1/2), sqrt(2)).
    fn log_1_2(&self, b: &mut FunctionBuilder, u: Value) -> Value {
        let sqrt2 = self.c(b, std::f32::consts::SQRT_2);
        let half = self.c(b, 0.5);
        let one = self.c(b, 1.0);
        let zero = self.c(b, 0.0);
        let m_half = b.ins().fmul(u, half);
        let m = self.pick(b, FloatCC::GreaterThan, u, sqrt2, m_half, u);
        let k = self.pick(b, FloatCC::GreaterThan, u, sqrt2, one, zero);
        let f = b.ins().fsub(m, one);
        let z = b.ins().fmul(f, f);
        let p = self.poly(
            b,
            f,
            &[
                7.037_683_6e-2,
                -1.151_461_1e-1,
                1.167_699_9e-1,
                -1.242_014_1e-1,
                1.424_932_3e-1,
                -1.666_805_8e-1,
                2.000_071_4e-1,
                -2.499_999_4e-1,
                3.333_333e-1,
            ],
        );
        let fz = b.ins().fmul(f, z);
        let y = b.ins().fmul(p, fz);
        let c1 = self.c(b, -2.121_944_4e-4);
        let y = self.madd(b, k, c1, y);
        let mhalf = self.c(b, -0.5);
        let y = self.madd(b, z, mhalf, y);
        let x = b.ins().fadd(f, y);
        let c2 = self.c(b, 0.693_359_4);
        self.madd(b, k, c2, x)
    }

    /// max(x, 0), NaN passing through.
    pub fn relu(&self, b: &mut FunctionBuilder, x: Value) -> Value {
        let zero = self.c(b, 0.0);
        self.pick(b, FloatCC::UnorderedOrGreaterThan, x, zero, x, zero)
    }

    /// 1 where x > 0, else 0; NaN passes through.
    pub fn step(&self, b: &mut FunctionBuilder, x: Value) -> Value {
        let (zero, one) = (self.c(b, 0.0), self.c(b, 1.0));
        let s = self.pick(b, FloatCC::GreaterThan, x, zero, one, zero);
        self.pick(b, FloatCC::Unordered, x, x, x, s)
    }

    /// The sign of x (0 at ±0); NaN passes through.
    pub fn sign(&self, b: &mut FunctionBuilder, x: Value) -> Value {
        let (zero, one, minus) = (self.c(b, 0.0), self.c(b, 1.0), self.c(b, -1.0));
        let neg = self.pick(b, FloatCC::LessThan, x, zero, minus, zero);
        let s = self.pick(b, FloatCC::GreaterThan, x, zero, one, neg);
        self.pick(b, FloatCC::Unordered, x, x, x, s)
    }
}
