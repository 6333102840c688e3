//! The language's built-in function words (`tanh`, `sigm`, ...), with their canonical names and
//! aliases. They belong to the vocabulary like keywords: the parser's hints name them ("call a
//! function with parentheses") and the checker resolves calls to them; neither gives them a
//! meaning (that is `ir::op`).

/// A built-in element-wise function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Func {
    Tanh,
    Sigm,
    Relu,
    Id,
    Exp,
    Softplus,
    Abs,
    /// The square root, as in a normalisation's `sqrt(mean(d*d) + eps)`.
    Sqrt,
}

impl Func {
    pub const ALL: [Func; 8] =
        [Func::Tanh, Func::Sigm, Func::Relu, Func::Id, Func::Exp, Func::Softplus, Func::Abs, Func::Sqrt];

    /// The canonical name (`sigmoid` is an alias of `sigm`).
    pub fn name(self) -> &'static str {
        match self {
            Func::Tanh => "tanh",
            Func::Sigm => "sigm",
            Func::Relu => "relu",
            Func::Id => "id",
            Func::Exp => "exp",
            Func::Softplus => "softplus",
            Func::Abs => "abs",
            Func::Sqrt => "sqrt",
        }
    }

    pub fn from_name(name: &str) -> Option<Func> {
        if name == "sigmoid" {
            return Some(Func::Sigm);
        }
        Func::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Every name a user may call, aliases included.
    pub fn all_names() -> impl Iterator<Item = &'static str> {
        Func::ALL.into_iter().map(Func::name).chain(["sigmoid"])
    }
}

/// A built-in reduction over a vector: one number per example, which broadcasts back along the
/// vector wherever it meets one (`d = v - mean(v)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reduction {
    Mean,
    Sum,
}

impl Reduction {
    pub const ALL: [Reduction; 2] = [Reduction::Mean, Reduction::Sum];

    pub fn name(self) -> &'static str {
        match self {
            Reduction::Mean => "mean",
            Reduction::Sum => "sum",
        }
    }

    pub fn from_name(name: &str) -> Option<Reduction> {
        Reduction::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// A built-in regulariser that multiplies by a random mask while training and by the mask's
/// expectation when evaluating. The last argument is the rate `p`, a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stochastic {
    /// `dropout(v, p)`: each entry of `v` zeroed with probability `p`, the rest scaled by
    /// 1/(1-p); a new mask every step (recurrent dropout, Semeniuta et al. 2016).
    Dropout,
    /// `vardropout(v, p)`: the same, with one mask per sequence, kept for all its steps
    /// (variational dropout, Gal & Ghahramani 2016).
    VarDropout,
    /// `zoneout(new, old, p)`: each entry keeps its old value with probability `p`, else takes
    /// the new one; at evaluation `p*old + (1-p)*new` (Krueger et al. 2016).
    Zoneout,
}

impl Stochastic {
    pub const ALL: [Stochastic; 3] = [Stochastic::Dropout, Stochastic::VarDropout, Stochastic::Zoneout];

    pub fn name(self) -> &'static str {
        match self {
            Stochastic::Dropout => "dropout",
            Stochastic::VarDropout => "vardropout",
            Stochastic::Zoneout => "zoneout",
        }
    }

    pub fn from_name(name: &str) -> Option<Stochastic> {
        Stochastic::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The number of arguments, the rate included.
    pub fn arity(self) -> usize {
        match self {
            Stochastic::Dropout | Stochastic::VarDropout => 2,
            Stochastic::Zoneout => 3,
        }
    }

    /// The call's shape, for help lines.
    pub fn usage(self) -> &'static str {
        match self {
            Stochastic::Dropout => "dropout(v, 0.25)",
            Stochastic::VarDropout => "vardropout(v, 0.25)",
            Stochastic::Zoneout => "zoneout(new, old, 0.1)",
        }
    }
}

/// Whether `name` is a built-in function of any kind.
pub fn is_builtin(name: &str) -> bool {
    Func::from_name(name).is_some() || Reduction::from_name(name).is_some() || Stochastic::from_name(name).is_some()
}

/// Every built-in name a user may call: the element-wise functions, their aliases, the
/// reductions, the regularisers.
pub fn builtin_names() -> impl Iterator<Item = &'static str> {
    Func::all_names()
        .chain(Reduction::ALL.into_iter().map(Reduction::name))
        .chain(Stochastic::ALL.into_iter().map(Stochastic::name))
}
