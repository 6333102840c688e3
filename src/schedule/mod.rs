//! The schedule: how a cell's forward and backward graphs run as matrix products (GEMMs) and
//! fused element-wise kernels over batch-major buffers. Size-independent: widths are H or D and
//! column offsets are `a*H + b*D`, so one schedule (and one set of compiled kernels) serves every
//! hidden size, batch and sequence length.
//!
//! Five phases, in the order they run:
//! 0. **setup** (one row): values of the parameters alone, like `W*b`; they broadcast.
//! 1. **forward pre** (all T*B rows at once): everything that does not depend on the state, above
//!    all the input projections, stacked into one GEMM per shared operand (x times [W_xr; W_xz; W_xh]).
//! 2. **forward step** (B rows, for t = 0..T): GEMMs of the recurrent matrices grouped by operand,
//!    then one fused kernel for everything up to the next GEMM that needs its result.
//! 3. **backward step** (B rows, for t = T-1..0): only the chain that carries the state adjoints
//!    to the step before.
//! 4. **backward post** (all T*B rows): the input gradient and the values weight gradients read,
//!    then the weight gradients themselves as one GEMM over all steps per outer-product term.
//!
//! Every value a later stage, phase or the backward pass reads is stored for all steps; the rest
//! lives in registers inside one kernel.

mod build;
pub mod passes;
mod print;

pub use build::plan;
pub use print::describe;

use crate::check::Dim;
use crate::ir::NodeId;

/// A column count `h*H + d*D`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Cols {
    pub h: u32,
    pub d: u32,
}

impl Cols {
    pub fn of(dim: Dim) -> Cols {
        match dim {
            Dim::H => Cols { h: 1, d: 0 },
            Dim::D => Cols { h: 0, d: 1 },
        }
    }

    pub fn at(self, hidden: usize, input: usize) -> usize {
        self.h as usize * hidden + self.d as usize * input
    }

    pub fn plus(self, other: Cols) -> Cols {
        Cols { h: self.h + other.h, d: self.d + other.d }
    }
}

/// How many row blocks of B rows a buffer has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocks {
    /// T blocks: a value at every step.
    Steps,
    /// T + 1 blocks: states (block t is the value before step t) and state adjoints.
    StatesPlusOne,
    /// One row shared by every row (a parameter vector, or a value of parameters alone; row
    /// stride 0).
    Broadcast,
    /// [`MAX_PARTS`] rows: row p sums a value over the rows that part p of the backward post
    /// phase's parallel split runs (a vector parameter's gradient, summed inside its kernel
    /// instead of stored for every row and summed afterwards).
    Parts,
}

/// The most parts the backward post phase splits its rows into (its threads).
pub const MAX_PARTS: usize = 64;

/// What a buffer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BufferRole {
    /// The input x, [T*B, D].
    Input,
    /// State `s`, [(T+1)*B, H].
    State(usize),
    /// The adjoint of the next value of state `s`: block t+1 holds it for step t, block 0 ends as
    /// the gradient of the initial state.
    StateAdjoint(usize),
    /// The gradient of x, [T*B, D].
    InputGrad,
    /// Vector parameter `p` (the weights themselves).
    Param(usize),
    /// Mask `k` of the regularisers, [T*B, its size]: filled by the runtime before each forward
    /// run (random draws while training, the expectation otherwise), read like x.
    Mask(usize),
    /// Intermediate values.
    Temp,
}

/// A buffer of `width` columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buffer {
    pub name: String,
    pub role: BufferRole,
    pub width: Cols,
    pub blocks: Blocks,
}

/// Index of a buffer in [`Schedule::buffers`].
pub type BufId = usize;

/// Where a value lives: a column block of a buffer, `shift` blocks later than the step reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    pub buf: BufId,
    pub col: Cols,
    pub dim: Dim,
    /// Added to the step's block index (states: 0 reads the value before the step, 1 the value
    /// after it).
    pub shift: i32,
}

/// How a kernel writes an output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Store {
    Set,
    /// Add to what is there (state adjoints flowing into the previous step).
    Accumulate,
}

/// One fused element-wise kernel: loads `inputs`, computes `nodes` in order, stores `outputs`.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelSpec {
    pub name: String,
    pub dim: Dim,
    pub inputs: Vec<NodeId>,
    pub nodes: Vec<NodeId>,
    pub outputs: Vec<(NodeId, Store)>,
}

/// Matrices stacked side by side for one GEMM.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WeightStack {
    pub params: Vec<usize>,
    /// Forward: [W_1ᵀ | W_2ᵀ | ...], each Wᵀ is [cols, rows]. Backward: [W_1 | W_2 | ...].
    pub transposed: bool,
}

/// A step of a phase.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// `out[rows, sum of widths] (=|+=) operand[rows, K] × stack`.
    Gemm { operand: Slot, stack: usize, out: Slot, nodes: Vec<NodeId> },
    /// `kernels[kernel]` with one slot per input, then one per output.
    Kernel { kernel: usize, args: Vec<Slot> },
}

/// A parameter's gradient, summed over every row of every step.
#[derive(Clone, Debug, PartialEq)]
pub enum GradPlan {
    /// Column sums of this slot over all T*B rows (all zero if `None`).
    Vector(Option<Slot>),
    /// Sum over terms of G[all rows]ᵀ × V[all rows].
    Matrix(Vec<(Slot, Slot)>),
}

/// The input gradient as a signed sum over all rows: `sign * G[rows, N] × W` for each
/// (parameter W, slot of G, sign), plus `sign * slot` for each other term. Kept apart from the
/// kernels so the runtime can form it with GEMMs over all rows, or directly for the rows of an
/// embedding table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InputGradPlan {
    pub matvecs: Vec<(usize, Slot, f32)>,
    pub rest: Vec<(Slot, f32)>,
}

/// The complete plan for one cell.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub buffers: Vec<Buffer>,
    pub kernels: Vec<KernelSpec>,
    pub stacks: Vec<WeightStack>,
    pub setup: Vec<Stage>,
    pub forward_pre: Vec<Stage>,
    pub forward_step: Vec<Stage>,
    pub backward_step: Vec<Stage>,
    pub backward_post: Vec<Stage>,
    pub grads: Vec<GradPlan>,
    pub input_grad: InputGradPlan,
    /// The buffer of each state, of each state adjoint, of x and of its gradient.
    pub state_bufs: Vec<BufId>,
    pub adjoint_bufs: Vec<BufId>,
    pub input_buf: BufId,
    pub input_grad_buf: BufId,
}

impl Schedule {
    /// All stages, with the phase each belongs to, in run order.
    pub fn phases(&self) -> [(&'static str, &[Stage]); 5] {
        [
            ("setup (once)", &self.setup),
            ("forward pre (all steps)", &self.forward_pre),
            ("forward step", &self.forward_step),
            ("backward step", &self.backward_step),
            ("backward post (all steps)", &self.backward_post),
        ]
    }
}
