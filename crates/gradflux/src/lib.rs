//! # gradflux
//!
//! Differentiable compute graphs of WGSL kernels, dispatched through wgpu, with a CPU
//! reference backend that defines the right answer for every op.
//!
//! Build a [`Graph`] once, [`Device::compile`] it, and run the executable many times:
//!
//! ```
//! use gradflux::{Device, DType, Graph, TensorData};
//!
//! let g = Graph::new();
//! let x = g.input("x", [2, 3], DType::F32)?;
//! let w = g.input("w", [3, 2], DType::F32)?;
//! let y = g.softmax(g.matmul(x, w)?, -1)?;
//!
//! let device = Device::Cpu; // or Device::auto()? for the best GPU
//! let mut exe = device.compile(&g, &[y])?;
//! let xs = TensorData::new([2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
//! let ws = TensorData::new([3, 2], vec![0.5f32, -0.5, 0.25, 0.0, -1.0, 1.0])?;
//! let out = exe.run(&[("x", &xs), ("w", &ws)])?;
//! let probs = out[0].values::<f32>()?;
//! assert!((probs[0] + probs[1] - 1.0).abs() < 1e-6);
//! # Ok::<(), gradflux::Error>(())
//! ```
//!
//! The op set lives on [`Graph`] (elementwise, reductions, softmax, layout, matmul,
//! gather/scatter, casts, and [`CustomOp`] for your own WGSL). Every builder method checks
//! shapes and dtypes when it is called and returns an [`Error`] naming the op and the shapes.

#![warn(missing_docs)]

mod device;
mod gradcheck;
pub mod io;

/// The `ndarray` crate `TensorData` converts from and to (feature `ndarray`).
#[cfg(feature = "ndarray")]
pub use gradflux_core::ndarray;

pub use device::{Device, DEVICE_ENV};
pub use gradcheck::{check_gradients, GradCheck, GradCheckReport};
// The user API, at the root.
pub use gradflux_core::{
    compare, half, kernel, validate_wgsl, Activation, Adam, BinaryOp, Capacity, CompareOp,
    CpuKernel, CustomOp, CustomOpBuilder, DType, Dispatch, DispatchOptions, DropPolicy, Element,
    EpsScaling, Error, Executable, ExpertChoice, ExpertDispatch, FusedRouting, Graph, GroupedTopK,
    ImplicitSolve, Inputs, MemoryReport, Mismatch, Optimizer, OtGeometry, OtGradient, OtSolution,
    Outputs, PointCost, ReduceOp, Result, RouteScore, Router, Routing, RunFuture, Sgd, Shape,
    SinkhornOptions, SoftminAxis, Storage, Tensor, TensorData, TensorType, Tolerance, UnaryOp,
    WgslKernel, MAX_TENSOR_BYTES,
};
pub use gradflux_core::{
    Checkpoint, GroundContact, Lattice, MassSpring, Mpm, MpmMaterial, RolloutOptions,
    RolloutStates, SpringForm, SpringValues, WallFriction,
};

/// What backends and graph tools work with, below the user API: the node and op
/// representation, the liveness plan, the op families and their attribute records, and the
/// CPU backend's type.
pub mod backend {
    pub use gradflux_core::ops;
    pub use gradflux_core::{
        bind_inputs, find_parameter, not_converged, within_tolerance, worst_error, Backend,
        FusedRouteSpec, Home, MatMulSpec, MoeDispatchSpec, Node, Op, Plan, PlannedInput,
        PlannedParameter, SinkhornSpec, Value, MASS_TOLERANCE,
    };
}
#[cfg(feature = "wgpu")]
pub use gradflux_wgpu::matmul::{CoopCaps, TileConfig};
#[cfg(feature = "wgpu")]
pub use gradflux_wgpu::{
    required_limits, AdapterSummary, TunerStats, Tuning, WgpuDevice, WgpuExecutable,
    MAX_DISPATCHES_PER_SUBMIT,
};

/// The wgpu crate gradflux is built on, for apps that need its types.
#[cfg(feature = "wgpu")]
pub use gradflux_wgpu::wgpu;

/// The README's examples, compiled and run as doctests so they cannot drift from the API.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
