//! The `index` family (its ops are still `Op` variants; see `ops/mod.rs`).

pub mod cpu;
pub mod wgsl;
