//! One vector-Jacobian rule per op: given a node y = op(a, b) and the adjoint g of y, the
//! contributions to the adjoints of a and b. Each rule reuses the forward value y where the maths
//! allows, so the backward pass reads values the forward pass already computed.

use crate::check::Func;
use crate::ir::{Graph, NodeId, Op};

/// Where a contribution goes.
pub enum Contribution {
    /// Add this node to the adjoint of argument `k`.
    Arg(usize, NodeId),
    /// Accumulate the outer product `g ⊗ v` into weight matrix `p`'s gradient.
    Outer { param: u32, g: NodeId, v: NodeId },
}

use Contribution::{Arg, Outer};

/// The contributions of node `y` with adjoint `g`, for the arguments where `need[k]` holds (a
/// constant argument needs no adjoint).
pub fn vjp(graph: &mut Graph, y: NodeId, g: NodeId, need: [bool; 2]) -> Vec<Contribution> {
    let node = *graph.node(y);
    let [a, b] = node.args;
    let mut out = vec![];
    let mut push = |k: usize, graph: &mut Graph, f: &dyn Fn(&mut Graph) -> NodeId| {
        if need[k] {
            out.push(Arg(k, f(graph)));
        }
    };
    match node.op {
        // Leaves: their adjoints are outputs of the backward pass (collected by the caller).
        Op::Input | Op::State(_) | Op::Param(_) | Op::Const(_) | Op::AdjNext(_) | Op::Mask(_) => {}
        // y = a + b:  da = g,  db = g
        Op::Add => {
            push(0, graph, &|_| g);
            push(1, graph, &|_| g);
        }
        // y = a - b:  da = g,  db = -g
        Op::Sub => {
            push(0, graph, &|_| g);
            push(1, graph, &|gr| gr.neg(g));
        }
        // y = a * b:  da = g b,  db = g a
        Op::Mul => {
            push(0, graph, &|gr| gr.mul(g, b));
            push(1, graph, &|gr| gr.mul(g, a));
        }
        // y = a / b:  da = g / b,  db = -g a / b² = -(g y) / b
        Op::Div => {
            push(0, graph, &|gr| gr.div(g, b));
            push(1, graph, &|gr| {
                let gy = gr.mul(g, y);
                let gy_b = gr.div(gy, b);
                gr.neg(gy_b)
            });
        }
        // y = -a:  da = -g
        Op::Neg => push(0, graph, &|gr| gr.neg(g)),
        // y = f(a):  da = g f'(a), with f' written in terms of y where possible
        Op::Act(f) => push(0, graph, &|gr| activation_vjp(gr, f, y, a, g)),
        // Step and Sign are piecewise constant: zero derivative almost everywhere.
        Op::Step | Op::Sign => {}
        // y = W v:  dv = Wᵀ g,  dW += g ⊗ v
        Op::MatVec(p) => {
            push(0, graph, &|gr| gr.build(Op::MatVecT(p), &[g]));
            out.push(Outer { param: p, g, v: a });
        }
        // y = sum(a) (one number per example):  da = g, repeated along a
        Op::Sum(d) => push(0, graph, &|gr| gr.build(Op::Broadcast(d), &[g])),
        // y = mean(a):  da = g / n, repeated along a
        Op::Mean(d) => push(0, graph, &|gr| gr.build(Op::Spread(d), &[g])),
        // The adjoints of those, for the derivative of a derivative: each other's transposes.
        Op::Broadcast(d) => push(0, graph, &|gr| gr.build(Op::Sum(d), &[g])),
        Op::Spread(d) => push(0, graph, &|gr| gr.build(Op::Mean(d), &[g])),
        // y = Wᵀ u:  du = W g,  dW += u ⊗ g
        Op::MatVecT(p) => {
            push(0, graph, &|gr| gr.build(Op::MatVec(p), &[g]));
            out.push(Outer { param: p, g: a, v: g });
        }
    }
    out
}

/// g f'(a) for each activation y = f(a).
fn activation_vjp(graph: &mut Graph, f: Func, y: NodeId, a: NodeId, g: NodeId) -> NodeId {
    let one = graph.constant(1.0);
    match f {
        // tanh' = 1 - y²
        Func::Tanh => {
            let yy = graph.mul(y, y);
            let d = graph.sub(one, yy);
            graph.mul(g, d)
        }
        // sigm' = y (1 - y), applied as (g y)(1 - y)
        Func::Sigm => {
            let one_minus = graph.sub(one, y);
            let gy = graph.mul(g, y);
            graph.mul(gy, one_minus)
        }
        // relu' = step(y): y > 0 exactly where a > 0
        Func::Relu => {
            let step = graph.build(Op::Step, &[y]);
            graph.mul(g, step)
        }
        // id' = 1
        Func::Id => g,
        // exp' = y
        Func::Exp => graph.mul(g, y),
        // softplus' = sigm(a)
        Func::Softplus => {
            let s = graph.act(Func::Sigm, a);
            graph.mul(g, s)
        }
        // abs' = sign(a)
        Func::Abs => {
            let s = graph.build(Op::Sign, &[a]);
            graph.mul(g, s)
        }
        // sqrt' = 1 / (2 y), applied as (g / y) / 2
        Func::Sqrt => {
            let g_y = graph.div(g, y);
            let two = graph.constant(2.0);
            graph.div(g_y, two)
        }
    }
}
