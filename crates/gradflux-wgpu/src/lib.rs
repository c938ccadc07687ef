//! wgpu backend for gradflux: runs graphs as WGSL compute kernels on any wgpu adapter
//! (Vulkan, Metal, DX12, GL, and Mesa's software Vulkan driver, lavapipe).
//!
//! [`WgpuDevice`] opens an adapter; as a [`gradflux_core::Backend`] it compiles graphs into
//! executables that keep every buffer, pipeline and bind group between runs.

mod adjoint;
mod device;
mod dispatch;
mod executable;
mod index;
mod launch;
mod loop_trips;
mod loop_trips_families;
mod looped;
pub mod matmul;
mod moe;
mod ot;
mod pipelines;
mod readback;
mod recorder;
mod reduce;
mod route;
pub use gradflux_core::kernel::shaders;
mod sinkhorn;
mod timing;
mod topk;

pub use wgpu;

use gradflux_core::{Backend, Executable, Graph, Result, Tensor};

pub use device::{wanted_features, AdapterSummary, WgpuDevice};
pub use dispatch::split_workgroups;
pub use executable::WgpuExecutable;
pub use launch::{binary_expr, cast_expr, compare_expr, unary_expr, ELEMENTWISE_WG, MAX_RANK};
pub use matmul::tune::{TunerStats, Tuning};
pub use pipelines::KernelSource;
pub use recorder::MAX_DISPATCHES_PER_SUBMIT;
pub use timing::Clock;
pub use topk::key_expr as topk_key_expr;

impl Backend for WgpuDevice {
    fn name(&self) -> String {
        self.summary().describe()
    }

    fn compile(&self, graph: &Graph, outputs: &[Tensor]) -> Result<Box<dyn Executable>> {
        Ok(Box::new(self.compile_wgpu(graph, outputs)?))
    }
}

impl WgpuDevice {
    /// Like [`Backend::compile`], returning the concrete executable for what only wgpu
    /// has, such as [`WgpuExecutable::kernel_seconds`].
    pub fn compile_wgpu(&self, graph: &Graph, outputs: &[Tensor]) -> Result<WgpuExecutable> {
        WgpuExecutable::new(self.ctx.clone(), graph, outputs)
    }
}
