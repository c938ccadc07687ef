//! Core of gradflux: the [`Graph`] builder, [`Tensor`] handles, [`Shape`], [`DType`], host
//! [`TensorData`], the op set, the liveness [`Plan`] both backends share, and the one
//! [`Error`] type.
//!
//! Most users depend on the `gradflux` facade crate, which re-exports all of this.

#![warn(missing_docs)]

mod autodiff;
mod backend;
mod builder;
mod custom;
mod custom_kernel;
mod data;
mod dtype;
mod error;
mod graph;
#[cfg(feature = "ndarray")]
mod interop_ndarray;
/// The `ndarray` crate the conversions of [`TensorData`] are for (feature `ndarray`).
#[cfg(feature = "ndarray")]
pub use ndarray;
pub mod kernel;
mod op;
pub mod ops;
mod optim;
mod plan;
mod shape;
mod tolerance;
mod wgsl;

pub use backend::{bind_inputs, find_parameter, Backend, Executable, Inputs, Outputs, RunFuture};
pub use builder::{
    Capacity, DispatchOptions, ExpertChoice, ExpertDispatch, FusedRouting, GroupedTopK, OtGeometry,
    OtGradient, OtSolution, Router, Routing, SinkhornOptions,
};
pub use custom::{CpuKernel, CustomOp, CustomOpBuilder, Dispatch, WgslKernel};
pub use data::{Storage, TensorData};
pub use dtype::{DType, Element};
pub use error::{Error, Result};
pub use graph::{Graph, Node, Tensor, TensorType, Value, MAX_TENSOR_BYTES};
pub use kernel::Checkpoint;
pub use op::{
    Activation, BinaryOp, CompareOp, DropPolicy, FusedRouteSpec, MatMulSpec, MoeDispatchSpec, Op,
    ReduceOp, RouteScore, SoftminAxis, UnaryOp,
};
pub use ops::ot::spec::{
    not_converged, within_tolerance, worst_error, EpsScaling, ImplicitSolve, PointCost,
    SinkhornSpec, MASS_TOLERANCE,
};
pub use ops::physics::{
    GroundContact, Lattice, MassSpring, Mpm, MpmMaterial, RolloutOptions, RolloutStates,
    SpringForm, SpringValues, WallFriction,
};
pub use optim::{Adam, Optimizer, Sgd};
pub use plan::{Home, MemoryReport, Plan, PlannedInput, PlannedParameter};
pub use shape::Shape;
pub use tolerance::{compare, Mismatch, Tolerance};
pub use wgsl::validate_wgsl;

/// The `half` crate, whose `f16` is gradflux's f16 element type.
pub use half;
