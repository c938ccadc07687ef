//! What a backend runs for one op: kernels as plain data. An op's lowering is a list of
//! [`Launch`]es (kernel source, bindings, the small `info` array, workgroup counts), so the
//! wgpu backend executes lowerings without knowing which op made them.

use crate::Value;

/// A kernel ready to be turned into a pipeline. Its key includes every specialisation
/// (dtype is already baked into `source`), so equal keys really are the same program.
#[derive(Clone, Debug)]
pub struct KernelSource {
    /// For messages and debugging labels.
    pub label: String,
    pub source: String,
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
    pub kernel: KernelSource,
    pub binds: Vec<Bind>,
    /// Sizes of the scratch buffers the launch binds: `(slot, bytes)`. Launches of one
    /// node that name the same slot share its buffer (sized for the largest request), so
    /// a multi-pass kernel can hand data from one pass to the next.
    pub scratch: Vec<(usize, u64)>,
    pub info: Vec<u32>,
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
