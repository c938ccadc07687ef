//! CPU reference vs wgpu adapter for every op, at sizes that cross workgroup boundaries.

#[path = "../common/mod.rs"]
mod common;

mod elementwise;
mod index;
mod layout;
mod matmul;
mod moe;
mod ot;
mod reduce;
mod routing;
mod scan;
mod select;
mod sinkhorn;
mod sinkhorn_implicit;
mod sinkhorn_loop;
mod special_values;
mod zero_size;
