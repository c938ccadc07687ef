//! CPU reference vs wgpu adapter for every op, at sizes that cross workgroup boundaries.

#[path = "../common/mod.rs"]
mod common;

mod elementwise;
mod index;
mod layout;
mod matmul;
mod moe;
mod moe_routing;
mod ot;
mod ot_sinkhorn;
mod ot_sinkhorn_implicit;
mod ot_sinkhorn_loop;
mod physics;
mod physics_anchors;
mod reduce;
mod scan;
mod select;
mod special_values;
mod zero_size;
