//! wgpu backend for gradflux: runs graphs as WGSL compute kernels on any wgpu adapter
//! (Vulkan, Metal, DX12, GL, and Mesa's software Vulkan driver, lavapipe).
//!
//! [`WgpuDevice`] opens an adapter; as a [`gradflux_core::Backend`] it compiles graphs into
//! executables that keep every buffer, pipeline and bind group between runs.

#![warn(missing_docs)]

mod app_buffers;
mod block;
mod device;
mod dispatch;
mod executable;
mod launch;
mod looped;
pub mod matmul;
mod pipelines;
mod readback;
mod recorder;
mod timing;

pub use wgpu;

use gradflux_core::{Backend, Executable, Graph, Result, Tensor};

pub use device::{required_limits, wanted_features, AdapterSummary, WgpuDevice};
pub use executable::WgpuExecutable;
pub use gradflux_core::kernel::LLVMPIPE_LOOP_LIMIT;
pub use matmul::tune::{TunerStats, Tuning};
pub use pipelines::KernelSource;
pub use recorder::MAX_DISPATCHES_PER_SUBMIT;
pub use timing::Clock;

/// What the crate's offline shader tests reach into (the shader registry, the expression
/// each op specialises a kernel with, the workgroup splitting): not an API.
#[doc(hidden)]
pub mod test_hooks {
    pub use crate::dispatch::split_workgroups;
    pub use gradflux_core::kernel::launch::{ELEMENTWISE_WG, MAX_RANK};
    pub use gradflux_core::kernel::shaders;
    pub use gradflux_core::ops::elementwise::wgsl::{
        binary_expr, cast_expr, compare_expr, unary_expr,
    };
    pub use gradflux_core::ops::select::wgsl::key_expr as topk_key_expr;
}

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
