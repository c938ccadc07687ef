//! What a backend runs for one op: kernels as plain data. An op's lowering is a list of
//! [`Launch`]es (kernel source, bindings, the small `info` array, workgroup counts), so the
//! wgpu backend executes lowerings without knowing which op made them.

use crate::kernel::shaders::{self, ShaderFile};
use crate::{DType, TensorType, Value};

/// A kernel ready to be turned into a pipeline. Its key includes every specialisation
/// (dtype is already baked into `source`), so equal keys really are the same program.
#[derive(Clone, Debug)]
pub struct KernelSource {
    /// For messages and debugging labels.
    pub label: String,
    /// The WGSL text, specialised and with its imports expanded.
    pub source: String,
    /// The entry point the pipeline runs.
    pub entry_point: String,
    /// WGSL `override` values.
    pub constants: Vec<(&'static str, f64)>,
    /// One entry per binding, in order: true for read-only storage.
    pub read_only: Vec<bool>,
}

/// How many workgroups a launch needs.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Workgroups {
    /// A count the kernel reads back as `wg.x + wg.y * nwg.x`: split over y when needed.
    Linear(u64),
    /// Exact counts (custom kernels).
    Fixed([u32; 3]),
}

/// What one binding of a launch names.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Bind {
    /// A graph value's buffer.
    Value(Value),
    /// One of the node's scratch buffers, by slot.
    Scratch(usize),
    /// The index of the loop step being run, one `u32` (read-only): how a launch of a
    /// [`LoopPlan`](super::LoopPlan) body knows which step it serves (which control to
    /// read, which checkpoint to write). Outside a loop body it is an error.
    Step,
}

impl From<Value> for Bind {
    fn from(v: Value) -> Bind {
        Bind::Value(v)
    }
}

/// The bindings naming `values`, in order.
pub fn values(values: impl IntoIterator<Item = Value>) -> Vec<Bind> {
    values.into_iter().map(Bind::Value).collect()
}

/// One dispatch: kernel, its bindings in order (then the `info` buffer, if any), and size.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The program.
    pub kernel: KernelSource,
    /// What each binding names, in binding order (the `info` buffer follows when set).
    pub binds: Vec<Bind>,
    /// Sizes of the scratch buffers the launch binds: `(slot, bytes)`. Launches of one
    /// node that name the same slot share its buffer (sized for the largest request), so
    /// a multi-pass kernel can hand data from one pass to the next.
    pub scratch: Vec<(usize, u64)>,
    /// Small per-launch constants (sizes, strides, scalars as bits), bound last as a
    /// read-only `array<u32>`; none when empty.
    pub info: Vec<u32>,
    /// How many workgroups to dispatch.
    pub workgroups: Workgroups,
}

impl Launch {
    /// This launch naming `scratch` (every launch of a node that share slots may list
    /// them; each slot is sized for its largest request).
    pub fn with_scratch(mut self, scratch: &[(usize, u64)]) -> Launch {
        self.scratch = scratch.to_vec();
        self
    }
}

/// Threads per workgroup of the one-thread-per-element kernels (their `WG` override).
pub const ELEMENTWISE_WG: u32 = 256;
/// Largest rank the strided kernels index (the size of their `info` stride arrays).
pub const MAX_RANK: usize = 8;

/// The kernel of `file` specialised for input type `t`, output type `r` and the op's
/// expression, with `bindings` bindings of which the second to last (the output) is
/// written and the rest read.
pub fn kernel(
    file: &ShaderFile,
    label: String,
    t: DType,
    r: DType,
    expr: Option<&str>,
    constants: Vec<(&'static str, f64)>,
    bindings: usize,
) -> KernelSource {
    let mut read_only = vec![true; bindings];
    read_only[bindings - 2] = false; // output
    KernelSource {
        label,
        source: shaders::specialise(file, t, r, expr),
        entry_point: "main".into(),
        constants,
        read_only,
    }
}

/// Workgroups for one thread per element of `numel`.
pub fn per_element(numel: usize) -> Workgroups {
    Workgroups::Linear((numel as u64).div_ceil(ELEMENTWISE_WG as u64))
}

/// Sizes as `info` words.
pub fn u32s(v: impl IntoIterator<Item = usize>) -> Vec<u32> {
    v.into_iter().map(|x| x as u32).collect()
}

/// Sizes as `info` words padded with zeros to [`MAX_RANK`] (a strided kernel's fixed-size
/// dims or strides array).
pub fn padded(v: &[usize]) -> Vec<u32> {
    let mut out = u32s(v.iter().copied());
    out.resize(MAX_RANK, 0);
    out
}

/// `(batch, n, m)` of a batch of `[.., n, m]` matrices.
pub fn matrix_sizes(t: &TensorType) -> (usize, usize, usize) {
    let dims = t.shape.dims();
    let (n, m) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    (dims[..dims.len() - 2].iter().product(), n, m)
}

/// `(batch, n, m, d)` of point clouds `x [.., n, d]` and `y [.., m, d]`.
pub fn point_sizes(x: &TensorType, y: &TensorType) -> (usize, usize, usize, usize) {
    let (xd, yd) = (x.shape.dims(), y.shape.dims());
    let r = xd.len();
    let batch = xd[..r - 2].iter().product();
    (batch, xd[r - 2], yd[r - 2], xd[r - 1])
}
