//! The `moe` family (its ops are still `Op` variants; see `ops/mod.rs`).

pub mod cpu;
pub mod cpu_route;
pub mod wgsl;
pub mod wgsl_route;
