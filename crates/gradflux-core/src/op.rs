//! The op set. A small set of primitives; composite ops (e.g. `mean` of a product) are built
//! from these in the builder, so each backend implements only what is listed here.

use std::sync::Arc;

use crate::{kernel::KernelOp, TensorData};

/// One-input elementwise ops.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x` (signed dtypes; integers wrap).
    Neg,
    /// `|x|`; integers wrap at the minimum, and `u32` is unchanged.
    Abs,
    /// `max(x, 0)`; NaN stays NaN.
    Relu,
    /// `e^x` (floats).
    Exp,
    /// Natural logarithm (floats).
    Log,
    /// Square root (floats).
    Sqrt,
    /// `1 / (1 + e^-x)`, computed without overflow (floats).
    Sigmoid,
    /// Hyperbolic tangent (floats).
    Tanh,
}

impl UnaryOp {
    /// Every variant, for tests that sweep them.
    pub const ALL: [UnaryOp; 8] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Relu,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
    ];

    /// The op's name in messages, which is also its [`Graph`](crate::Graph) method's.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Relu => "relu",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
        }
    }

    /// Transcendental ops have no meaning on integers.
    pub fn float_only(self) -> bool {
        matches!(
            self,
            UnaryOp::Exp | UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Sigmoid | UnaryOp::Tanh
        )
    }
}

/// The activations a matmul can apply in its epilogue, before the result is written.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Activation {
    #[default]
    /// No activation: the result is written as is.
    Identity,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)` (floats).
    Sigmoid,
    /// Hyperbolic tangent (floats).
    Tanh,
}

impl Activation {
    /// Every variant, for tests that sweep them.
    pub const ALL: [Activation; 4] = [
        Activation::Identity,
        Activation::Relu,
        Activation::Sigmoid,
        Activation::Tanh,
    ];

    /// The elementwise op this activation applies, if any.
    pub fn unary(self) -> Option<UnaryOp> {
        match self {
            Activation::Identity => None,
            Activation::Relu => Some(UnaryOp::Relu),
            Activation::Sigmoid => Some(UnaryOp::Sigmoid),
            Activation::Tanh => Some(UnaryOp::Tanh),
        }
    }

    /// `identity`, or the name of the [`UnaryOp`] it applies.
    pub fn name(self) -> &'static str {
        self.unary().map_or("identity", UnaryOp::name)
    }
}

/// How a matmul node reads its operands and what it does to the result before writing it.
///
/// Transposed operands are read in place (no copy); the bias add and activation run in the
/// kernel's epilogue, so `relu(x·w + b)` is one pass over memory instead of three.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MatMulSpec {
    /// `a` is stored as `[..., k, m]`.
    pub transpose_a: bool,
    /// `b` is stored as `[..., n, k]`.
    pub transpose_b: bool,
    /// A third input, broadcast to the output shape, is added before the activation.
    pub bias: bool,
    /// Applied last, after the bias add.
    pub activation: Activation,
}

/// Two-input elementwise ops with numpy broadcasting; both inputs share one dtype.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`; integers wrap.
    Add,
    /// `a - b`; integers wrap.
    Sub,
    /// `a * b`; integers wrap.
    Mul,
    /// Float division; integer division truncates toward zero and `x / 0 == x` (WGSL's rule).
    Div,
    /// Float only; follows C `pow` (negative base with an integral exponent is defined).
    Pow,
    /// The larger operand; a float NaN operand is the result.
    Maximum,
    /// The smaller operand; a float NaN operand is the result.
    Minimum,
}

impl BinaryOp {
    /// Every variant, for tests that sweep them.
    pub const ALL: [BinaryOp; 7] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];

    /// The op's name in messages, which is also its [`Graph`](crate::Graph) method's.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }
}

/// Comparisons; the result is a `u32` mask of 0 and 1.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `a == b`.
    Eq,
    /// `a != b`; the only comparison that is true for a NaN operand.
    Ne,
    /// `a < b`.
    Lt,
    /// `a <= b`.
    Le,
    /// `a > b`.
    Gt,
    /// `a >= b`.
    Ge,
}

impl CompareOp {
    /// Every variant, for tests that sweep them.
    pub const ALL: [CompareOp; 6] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Lt,
        CompareOp::Le,
        CompareOp::Gt,
        CompareOp::Ge,
    ];

    /// The op's name in messages, which is also its [`Graph`](crate::Graph) method's.
    pub fn name(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
        }
    }
}

/// Reductions over one axis.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// Sum; integers wrap.
    Sum,
    /// Sum divided by the axis length (floats).
    Mean,
    /// Largest value; NaN propagates.
    Max,
    /// Smallest value; NaN propagates.
    Min,
    /// `log(sum(exp(x)))`, computed stably (floats).
    LogSumExp,
    /// Index (`u32`) of the largest value; ties go to the smallest index.
    ArgMax,
}

impl ReduceOp {
    /// Every variant, for tests that sweep them.
    pub const ALL: [ReduceOp; 6] = [
        ReduceOp::Sum,
        ReduceOp::Mean,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::LogSumExp,
        ReduceOp::ArgMax,
    ];

    /// The op's name in messages, which is also its [`Graph`](crate::Graph) method's.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Mean => "mean",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::LogSumExp => "logsumexp",
            ReduceOp::ArgMax => "argmax",
        }
    }

    /// Mean and log-sum-exp have no meaning on integers.
    pub fn float_only(self) -> bool {
        matches!(self, ReduceOp::Mean | ReduceOp::LogSumExp)
    }
}

/// Which of an over-capacity expert's routed tokens it keeps.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum DropPolicy {
    /// The earliest routing choices in token order (`t * k + j` increasing).
    #[default]
    FirstCome,
    /// The choices with the largest gates (ties: earlier choice first); the expert's
    /// segment is then ordered by gate, largest first.
    HighestGate,
}

/// Attributes of [`MoeDispatchSpec`], resolved by the builder.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct MoeDispatchSpec {
    /// `E`; an expert id `>= E` routes nowhere.
    pub num_experts: usize,
    /// Each expert's segment is padded to a multiple of this many rows.
    pub block: usize,
    /// Most choices an expert keeps; `None` is dropless.
    pub capacity: Option<usize>,
    /// Which choices an expert over capacity keeps; `FirstCome` when dropless.
    pub policy: DropPolicy,
}

/// How [`Graph::fused_route`](crate::Graph::fused_route) turns a token's router logits into gate weights.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RouteScore {
    /// Softmax over the experts.
    Softmax,
    /// An independent sigmoid per expert.
    Sigmoid,
}

/// Attributes of [`Graph::fused_route`](crate::Graph::fused_route).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct FusedRouteSpec {
    /// Experts per token.
    pub k: usize,
    /// How logits become gates: a softmax over the experts or a sigmoid each.
    pub score: RouteScore,
    /// Divide each token's `k` gates by their sum.
    pub renormalize: bool,
}

/// Which way [`Graph::softmin`](crate::Graph::softmin) reduces a `[.., n, m]` cost matrix.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SoftminAxis {
    /// One value per row `i`, reducing over the columns `j` (`h` is `[.., m]`): the
    /// Sinkhorn update of the first potential.
    PerRow,
    /// One value per column `j`, reducing over the rows `i` (`h` is `[.., n]`): the update
    /// of the second potential, without transposing the cost.
    PerColumn,
}

/// What a node computes. Shapes and dtypes live on the node, so ops carry only the
/// attributes a kernel needs.
#[derive(Clone, Debug)]
pub enum Op {
    /// A named value supplied at every run.
    Input {
        /// Unique among the graph's inputs and parameters; each run supplies the value under it.
        name: String,
    },
    /// A value fixed when the graph is built, uploaded once at compile time.
    Constant(Arc<TensorData>),
    /// State that lives in the executable (a device buffer on a GPU), starts at `init`, and
    /// persists between runs; [`Graph::assign`](crate::Graph::assign) gives it a new value
    /// at the end of every run.
    Parameter {
        /// Unique among the graph's inputs and parameters; the executable reads and sets
        /// the value under it.
        name: String,
        /// The value before the first run.
        init: Arc<TensorData>,
    },
    /// Same data, new shape; backends may alias the input's storage.
    Reshape,
    /// The input unchanged, with no gradient flowing back through it (a stop-gradient);
    /// backends alias the input's storage.
    Detach,
    /// An op of a family module (`src/ops/`): everything about it is behind the trait.
    Kernel(Arc<dyn KernelOp>),
}

impl Op {
    /// The family op of type `T` this node holds, if it is one (for builder peepholes).
    pub fn kernel<T: KernelOp>(&self) -> Option<&T> {
        match self {
            Op::Kernel(k) => {
                let any: &dyn std::any::Any = k.as_ref();
                any.downcast_ref()
            }
            _ => None,
        }
    }

    /// A short name for messages and reports.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Constant(_) => "constant",
            Op::Parameter { .. } => "parameter",
            Op::Reshape => "reshape",
            Op::Detach => "detach",
            Op::Kernel(k) => k.name(),
        }
    }
}
