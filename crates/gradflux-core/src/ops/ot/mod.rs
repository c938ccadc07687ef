//! The `ot` family (its ops are still `Op` variants; see `ops/mod.rs`).

pub mod cpu;
pub mod cpu_adjoint;
pub mod cpu_points;
pub mod cpu_sinkhorn;
pub mod wgsl;
pub mod wgsl_adjoint;
pub mod wgsl_sinkhorn;
