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
    Shape { op: &'static str, detail: String },

    /// A dtype the op does not accept.
    #[error("dtype error in `{op}`: expected {expected}, got {got}")]
    DType {
        op: &'static str,
        expected: String,
        got: DType,
    },

    /// A tensor handle from another graph, or a graph-level misuse.
    #[error("graph error: {0}")]
    Graph(String),

    // ---- found at compile time ----
    /// The backend cannot run this op or dtype; says which and why.
    #[error("unsupported on {backend}: {what}")]
    Unsupported { backend: String, what: String },

    /// A request over one of the adapter's limits that gradflux cannot split.
    #[error("{what} needs {requested} but the adapter's `{limit}` allows at most {allowed}")]
    Limit {
        limit: &'static str,
        what: String,
        requested: u64,
        allowed: u64,
    },

    /// WGSL that does not parse or validate, with the position of the first problem.
    #[error("WGSL error in {source_name} at line {line}, column {column}: {message}")]
    Shader {
        source_name: String,
        line: u32,
        column: u32,
        message: String,
    },

    // ---- found at run time ----
    /// An input the executable needs was not given.
    #[error("missing input `{name}` (expected {dtype} {shape})")]
    MissingInput {
        name: String,
        shape: Shape,
        dtype: DType,
    },

    /// An input was given with a name the graph does not have.
    #[error("unknown input `{name}`; the graph's inputs are: {known}")]
    UnknownInput { name: String, known: String },

    /// A parameter name the executable does not have.
    #[error("unknown parameter `{name}`; the executable's parameters are: {known}")]
    UnknownParameter { name: String, known: String },

    /// An input (or a parameter being set) of the wrong shape or dtype.
    #[error("`{name}` should be {expected_dtype} {expected_shape}, got {got_dtype} {got_shape}")]
    InputMismatch {
        name: String,
        expected_shape: Shape,
        expected_dtype: DType,
        got_shape: Shape,
        got_dtype: DType,
    },

    /// Host data whose length does not match its shape.
    #[error("data of length {len} does not fit shape {shape} ({numel} elements)")]
    DataLength {
        shape: Shape,
        numel: usize,
        len: usize,
    },

    /// A custom op's CPU function failed or returned the wrong outputs.
    #[error("custom op `{op}`: {detail}")]
    CustomOp { op: String, detail: String },

    /// A value the op cannot accept, found only once the data is known (negative
    /// transport weights, unequal masses of a balanced problem).
    #[error("invalid value in `{op}`: {detail}")]
    InvalidValue { op: &'static str, detail: String },

    /// An iterative op ran out of iterations above its tolerance.
    #[error(
        "`{op}` did not converge: marginal error {error:e} after {iterations} iterations, \
         tolerance {tolerance:e} ({hint})"
    )]
    NotConverged {
        op: &'static str,
        iterations: usize,
        error: f64,
        tolerance: f64,
        hint: &'static str,
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
