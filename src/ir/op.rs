//! The closed set of primitive operations: the one place to add an op. Each op knows its arity,
//! its shape rule and its value (used by the interpreter and by constant folding alike).

use crate::check::{Dim, Func, Shape};

/// A primitive operation. Leaves take no arguments; element-wise ops broadcast scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// The input vector `x` (size D).
    Input,
    /// The previous value of state `i` (size H).
    State(u32),
    /// Vector parameter `i`.
    Param(u32),
    /// A number, stored as the bits of an f64 (so ops can be hashed).
    Const(u64),
    /// Backward only: the adjoint of the next value of state `i`, given to a backward step.
    AdjNext(u32),
    /// Mask `i` of a regulariser (`sig.masks[i]`): random while training, its expectation
    /// when evaluating; a constant to the derivative.
    Mask(u32),
    Add,
    Sub,
    Mul,
    Div,
    Neg,
    Act(Func),
    /// Backward only: 1 where the argument is positive, else 0 (the derivative of relu).
    Step,
    /// Backward only: the sign of the argument, 0 at 0 (the derivative of abs).
    Sign,
    /// Weight matrix `i` times the argument.
    MatVec(u32),
    /// The transpose of weight matrix `i` times the argument (backward).
    MatVecT(u32),
    /// The sum over the vector of this size the argument is (or broadcasts to): one number per
    /// example (`Shape::Row`).
    Sum(Dim),
    /// The mean over the vector of this size the argument is (or broadcasts to).
    Mean(Dim),
    /// Backward only: one number per example repeated along a vector of this size (the adjoint
    /// of a sum).
    Broadcast(Dim),
    /// Backward only: one number per example divided by this size and repeated along the vector
    /// (the adjoint of a mean).
    Spread(Dim),
}

impl Op {
    /// The constant op for `v` (with -0 folded to 0 and one NaN), so equal numbers hash equal.
    pub fn constant(v: f64) -> Op {
        let v = if v == 0.0 {
            0.0
        } else if v.is_nan() {
            f64::NAN
        } else {
            v
        };
        Op::Const(v.to_bits())
    }

    pub fn const_value(self) -> Option<f64> {
        match self {
            Op::Const(bits) => Some(f64::from_bits(bits)),
            _ => None,
        }
    }

    pub fn arity(self) -> usize {
        match self {
            Op::Input | Op::State(_) | Op::Param(_) | Op::Const(_) | Op::AdjNext(_) | Op::Mask(_) => 0,
            Op::Neg | Op::Act(_) | Op::Step | Op::Sign | Op::MatVec(_) | Op::MatVecT(_) => 1,
            Op::Sum(_) | Op::Mean(_) | Op::Broadcast(_) | Op::Spread(_) => 1,
            Op::Add | Op::Sub | Op::Mul | Op::Div => 2,
        }
    }

    /// Whether each lane of the result depends on the same lane of the arguments only.
    pub fn is_elementwise(self) -> bool {
        !matches!(self, Op::MatVec(_) | Op::MatVecT(_)) && !self.is_row_op()
    }

    /// Whether the op moves between a vector and one number per example (a reduction, or the
    /// adjoint's way back).
    pub fn is_row_op(self) -> bool {
        matches!(self, Op::Sum(_) | Op::Mean(_) | Op::Broadcast(_) | Op::Spread(_))
    }

    /// The value of an element-wise op on numbers: the single definition the interpreter, constant
    /// folding and (as the specification) the JIT share.
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            Op::Add => a + b,
            Op::Sub => a - b,
            Op::Mul => a * b,
            Op::Div => a / b,
            Op::Neg => -a,
            Op::Act(f) => activation(f, a),
            Op::Step => {
                if a > 0.0 {
                    1.0
                } else if a.is_nan() {
                    a
                } else {
                    0.0
                }
            }
            Op::Sign => {
                if a > 0.0 {
                    1.0
                } else if a < 0.0 {
                    -1.0
                } else {
                    a * 0.0 // 0 for ±0, NaN for NaN
                }
            }
            other => panic!("Op::apply on non-element-wise op {other:?}"),
        }
    }
}

/// The activation functions, in f64.
pub fn activation(f: Func, a: f64) -> f64 {
    match f {
        Func::Tanh => a.tanh(),
        Func::Sigm => sigmoid(a),
        // NaN stays NaN (`a > 0` is false for NaN, so test it first).
        Func::Relu => {
            if a > 0.0 || a.is_nan() {
                a
            } else {
                0.0
            }
        }
        Func::Id => a,
        Func::Exp => a.exp(),
        Func::Softplus => softplus(a),
        Func::Abs => a.abs(),
        Func::Sqrt => a.sqrt(),
    }
}

/// 1/(1+e^-a), written to stay accurate for large |a|.
pub fn sigmoid(a: f64) -> f64 {
    if a >= 0.0 {
        1.0 / (1.0 + (-a).exp())
    } else {
        let e = a.exp();
        e / (1.0 + e)
    }
}

/// ln(1 + e^a), without overflow for large a.
pub fn softplus(a: f64) -> f64 {
    if a > 30.0 { a + (-a).exp().ln_1p() } else { a.exp().ln_1p() }
}

/// The shape of an element-wise result: scalars and rows broadcast; H and D only meet when D = H.
pub fn broadcast(a: Shape, b: Shape) -> Shape {
    match (a, b) {
        (Shape::Scalar, s) | (s, Shape::Scalar) => s,
        (Shape::Row, s) | (s, Shape::Row) => s,
        (Shape::Vector(x), Shape::Vector(y)) if x == y => Shape::Vector(x),
        _ => Shape::Vector(Dim::H),
    }
}
