//! The one error type of gradflux. Every builder method, compile and run returns it; nothing
//! panics on user input.

use crate::{DType, Shape};

/// Everything that can go wrong, grouped by where it is found. Non-exhaustive: new kinds of
/// failure may be added without a breaking release, so a `match` needs a `_` arm.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- found while building a graph ----
    /// Shapes that do not fit the op: names the op and the shapes involved.
    #[error("shape error in `{op}`: {detail}")]
    Shape {
        /// The op that refused.
        op: &'static str,
        /// What does not fit, with the shapes involved.
        detail: String,
    },

    /// A dtype the op does not accept.
    #[error("dtype error in `{op}`: expected {expected}, got {got}")]
    DType {
        /// The op that refused.
        op: &'static str,
        /// What it accepts, in words (e.g. `a float dtype`).
        expected: String,
        /// The dtype it was given.
        got: DType,
    },

    /// A tensor handle from another graph, or a graph-level misuse.
    #[error("graph error: {0}")]
    Graph(String),

    // ---- found at compile time ----
    /// The backend cannot run this op or dtype; says which and why.
    #[error("unsupported on {backend}: {what}")]
    Unsupported {
        /// What refused: the backend (e.g. `wgpu`), or `autodiff` for an op with no gradient.
        backend: String,
        /// The op or dtype, and why.
        what: String,
    },

    /// A request over one of the adapter's limits that gradflux cannot split.
    #[error("{what} needs {requested} but the adapter's `{limit}` allows at most {allowed}")]
    Limit {
        /// The limit: a `wgpu::Limits` field, or `loop iterations per shader invocation` (a
        /// software driver's, see [`LLVMPIPE_LOOP_LIMIT`](crate::kernel::LLVMPIPE_LOOP_LIMIT)).
        limit: &'static str,
        /// What asked for it: the op and the resource.
        what: String,
        /// How much it needs, in the limit's unit.
        requested: u64,
        /// The most the limit allows.
        allowed: u64,
    },

    /// WGSL that does not parse or validate, with the position of the first problem.
    #[error("WGSL error in {source_name} at line {line}, column {column}: {message}")]
    Shader {
        /// The name given to [`validate_wgsl`](crate::validate_wgsl), or the custom op's name.
        source_name: String,
        /// 1-based line of the problem; 0 when naga gives no position.
        line: u32,
        /// 1-based column in bytes; 0 when naga gives no position.
        column: u32,
        /// naga's description of the problem.
        message: String,
    },

    // ---- found at run time ----
    /// An input the executable needs was not given.
    #[error("missing input `{name}` (expected {dtype} {shape})")]
    MissingInput {
        /// The input's name.
        name: String,
        /// The shape the graph declared for it.
        shape: Shape,
        /// The dtype the graph declared for it.
        dtype: DType,
    },

    /// An input was given with a name the graph does not have.
    #[error("unknown input `{name}`; the graph's inputs are: {known}")]
    UnknownInput {
        /// The name given.
        name: String,
        /// The graph's input names, comma-separated.
        known: String,
    },

    /// A parameter name the executable does not have.
    #[error("unknown parameter `{name}`; the executable's parameters are: {known}")]
    UnknownParameter {
        /// The name given.
        name: String,
        /// The parameter names there are, comma-separated.
        known: String,
    },

    /// An input (or a parameter being set) of the wrong shape or dtype.
    #[error("`{name}` should be {expected_dtype} {expected_shape}, got {got_dtype} {got_shape}")]
    InputMismatch {
        /// The input or parameter.
        name: String,
        /// The shape the graph declared.
        expected_shape: Shape,
        /// The dtype the graph declared.
        expected_dtype: DType,
        /// The shape of the data given.
        got_shape: Shape,
        /// The dtype of the data given.
        got_dtype: DType,
    },

    /// Host data whose length does not match its shape.
    #[error("data of length {len} does not fit shape {shape} ({numel} elements)")]
    DataLength {
        /// The shape the data was given for.
        shape: Shape,
        /// Elements the shape holds.
        numel: usize,
        /// Elements the data holds.
        len: usize,
    },

    /// A custom op's CPU function failed or returned the wrong outputs.
    #[error("custom op `{op}`: {detail}")]
    CustomOp {
        /// The custom op's name.
        op: String,
        /// The CPU function's own message, or what does not match the declaration.
        detail: String,
    },

    /// A value the op cannot accept, found only once the data is known (negative
    /// transport weights, unequal masses of a balanced problem).
    #[error("invalid value in `{op}`: {detail}")]
    InvalidValue {
        /// The op that refused.
        op: &'static str,
        /// Which value, and why it is refused.
        detail: String,
    },

    /// An iterative op ran out of iterations above its tolerance.
    #[error(
        "`{op}` did not converge: marginal error {error:e} after {iterations} iterations, \
         tolerance {tolerance:e} ({hint})"
    )]
    NotConverged {
        /// The iterative op (e.g. `sinkhorn`).
        op: &'static str,
        /// Iterations run before it gave up.
        iterations: usize,
        /// The worst problem's error at the end; NaN if any problem's is NaN.
        error: f64,
        /// The error it had to reach.
        tolerance: f64,
        /// What to try, in words.
        hint: &'static str,
    },

    /// A simulation's state became NaN or infinite: names the first step where it did.
    #[error("`{op}`'s state became non-finite at step {step} ({hint})")]
    NonFinite {
        /// The simulation op (e.g. `mass_spring_rollout`).
        op: &'static str,
        /// The first step (counting from 0) whose result was not finite.
        step: usize,
        /// What to try, in words.
        hint: &'static str,
    },

    // ---- files ----
    /// A file could not be read or written: its path and the system's reason.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        reason: String,
    },

    /// A weight or data file whose content is not what its format says, or holds what
    /// gradflux has no type for: the format, where it came from and what was wrong.
    #[error("{format} {source_name}: {detail}")]
    Format {
        /// `npy` or `safetensors`.
        format: &'static str,
        /// The file's path, or what the bytes were.
        source_name: String,
        /// What was wrong, and what was expected.
        detail: String,
    },

    // ---- device ----
    /// No adapter matched the request.
    #[error("no adapter: {0}")]
    NoAdapter(String),

    /// wgpu reported a validation or out-of-memory error.
    #[error("device error: {0}")]
    Device(String),

    /// The device was lost; every later call on it fails with this.
    #[error("the device was lost: {0}")]
    DeviceLost(String),
}

/// Shorthand used across gradflux.
pub type Result<T, E = Error> = std::result::Result<T, E>;
