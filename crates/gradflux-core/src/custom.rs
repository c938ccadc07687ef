//! User kernels as first-class ops: WGSL for the GPU and a closure for the CPU reference.

use std::fmt;
use std::sync::Arc;

use crate::wgsl::{entry_interface, validate_with_info, EntryInterface};
use crate::{DType, Error, Graph, Op, Result, Shape, Tensor, TensorData, TensorType};

/// The CPU half of a custom op: reads the inputs, returns one tensor per declared output.
pub type CpuKernel =
    Arc<dyn Fn(&[&TensorData]) -> std::result::Result<Vec<TensorData>, String> + Send + Sync>;

/// How many workgroups a custom kernel is launched with.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dispatch {
    /// Exactly these workgroup counts (each at most the adapter's per-dimension limit).
    Workgroups([u32; 3]),
    /// Enough workgroups of `workgroup_size` threads to cover `threads` threads. Past the
    /// per-dimension limit (65535) the launch spreads over `y`, so the kernel must compute
    /// its thread index as
    /// `gid.x + gid.y * num_workgroups.x * WORKGROUP_SIZE` and return when it is `>= threads`.
    Threads {
        /// Threads to cover, e.g. one per output element.
        threads: u64,
        /// Threads per workgroup, as the entry point's `@workgroup_size` declares; at least 1.
        workgroup_size: u32,
    },
}

/// The WGSL half of a custom op.
#[derive(Clone, Debug)]
pub struct WgslKernel {
    /// The WGSL module; [`CustomOpBuilder::build`] validates it.
    pub source: String,
    /// Name of the `@compute` function to run.
    pub entry_point: String,
    /// How many workgroups each run launches.
    pub dispatch: Dispatch,
    /// Bytes of `var<workgroup>` memory the entry point uses, found when the op is built;
    /// a backend refuses a kernel over its adapter's limit.
    pub workgroup_bytes: u64,
    /// The entry point's `@workgroup_size`.
    pub workgroup_size: [u32; 3],
}

/// A user-defined op. Build one with [`CustomOp::builder`] and add it to graphs with
/// [`Graph::custom`].
///
/// Binding convention for the WGSL: group 0, inputs at bindings `0..n` as
/// `var<storage, read>`, then outputs at bindings `n..n+m` as `var<storage, read_write>`.
/// Shapes are static, so sizes can be written into the source as constants.
/// [`CustomOpBuilder::build`] holds the entry point to this: every output must be bound
/// and written (an output the kernel never writes would come back as zeros), inputs must be
/// read-only, and no other binding may exist.
///
/// ```
/// use gradflux_core::{CustomOp, Dispatch, DType, Graph, TensorData};
/// let n = 6;
/// let wgsl = format!("
/// @group(0) @binding(0) var<storage, read> x: array<f32>;
/// @group(0) @binding(1) var<storage, read_write> y: array<f32>;
/// @compute @workgroup_size(64)
/// fn main(@builtin(global_invocation_id) gid: vec3<u32>) {{
///     if gid.x < {n}u {{ y[gid.x] = x[gid.x] * x[gid.x] * x[gid.x]; }}
/// }}");
/// let cube = CustomOp::builder("cube")
///     .input([n], DType::F32)
///     .output([n], DType::F32)
///     .wgsl(wgsl, "main", Dispatch::Threads { threads: n as u64, workgroup_size: 64 })
///     .cpu(|xs| {
///         let v: Vec<f32> = xs[0].values::<f32>().map_err(|e| e.to_string())?
///             .iter().map(|x| x * x * x).collect();
///         Ok(vec![TensorData::new([v.len()], v).map_err(|e| e.to_string())?])
///     })
///     .build()?;
/// let g = Graph::new();
/// let x = g.input("x", [n], DType::F32)?;
/// let y = g.custom(&cube, &[x])?[0];
/// # Ok::<(), gradflux_core::Error>(())
/// ```
pub struct CustomOp {
    /// Names the op in errors and in its GPU kernel's label (`custom:<name>`).
    pub name: String,
    /// Declared input types, in binding order; [`Graph::custom`] checks its
    /// arguments against them.
    pub inputs: Vec<TensorType>,
    /// Declared output types, bound after the inputs; one tensor each.
    pub outputs: Vec<TensorType>,
    /// The GPU kernel; `None` runs on the CPU backend only.
    pub wgsl: Option<WgslKernel>,
    /// The CPU reference, which defines the op's meaning (see
    /// [`CustomOp::run_cpu`]).
    pub cpu: CpuKernel,
    /// The op that computes this op's input gradients, if it has one (see
    /// [`CustomOpBuilder::backward`]).
    pub backward: Option<Arc<CustomOp>>,
}

impl fmt::Debug for CustomOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomOp")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .field("has_wgsl", &self.wgsl.is_some())
            .field("has_backward", &self.backward.is_some())
            .finish()
    }
}

impl CustomOp {
    /// Starts declaring an op named `name`.
    pub fn builder(name: &str) -> CustomOpBuilder {
        CustomOpBuilder {
            name: name.to_string(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            wgsl: None,
            cpu: None,
            backward: None,
        }
    }

    /// Runs the CPU closure and checks that it returned the declared outputs.
    pub fn run_cpu(&self, inputs: &[&TensorData]) -> Result<Vec<TensorData>> {
        let outs = (self.cpu)(inputs).map_err(|detail| Error::CustomOp {
            op: self.name.clone(),
            detail,
        })?;
        if outs.len() != self.outputs.len() {
            return Err(Error::CustomOp {
                op: self.name.clone(),
                detail: format!(
                    "CPU function returned {} outputs, {} declared",
                    outs.len(),
                    self.outputs.len()
                ),
            });
        }
        for (i, (o, t)) in outs.iter().zip(&self.outputs).enumerate() {
            if o.shape() != &t.shape || o.dtype() != t.dtype {
                return Err(Error::CustomOp {
                    op: self.name.clone(),
                    detail: format!(
                        "CPU function returned {} {} for output {i}, declared {t}",
                        o.dtype(),
                        o.shape()
                    ),
                });
            }
        }
        Ok(outs)
    }
}

/// Holds a kernel's bindings to the convention: group 0, inputs `0..n_in` read-only
/// storage, outputs `n_in..n_in + n_out` writable storage that the entry point writes.
fn check_bindings(
    interface: &EntryInterface,
    n_in: usize,
    n_out: usize,
) -> std::result::Result<(), String> {
    let declared = n_in + n_out;
    for b in &interface.bindings {
        let at = format!(
            "`{}` at @group({}) @binding({})",
            b.name, b.group, b.binding
        );
        if b.group != 0 || b.binding as usize >= declared {
            return Err(format!(
                "WGSL binds {at}, but the op declares {n_in} inputs and {n_out} outputs: \
                 bindings 0..{declared} of group 0"
            ));
        }
        let output = b.binding as usize >= n_in;
        match (b.storage_writable, output) {
            (None, _) => {
                return Err(format!(
                    "WGSL binds {at} as something other than a storage buffer; inputs and \
                     outputs are `var<storage, ..>` arrays"
                ))
            }
            (Some(true), false) => {
                return Err(format!(
                    "WGSL binds input {at} as read_write; inputs are `var<storage, read>`"
                ))
            }
            (Some(false), true) => {
                return Err(format!(
                    "WGSL binds output {at} read-only; outputs are `var<storage, read_write>`"
                ))
            }
            _ => {}
        }
    }
    for slot in 0..n_out {
        let binding = (n_in + slot) as u32;
        let found = interface
            .bindings
            .iter()
            .find(|b| b.group == 0 && b.binding == binding);
        match found {
            None => {
                return Err(format!(
                    "output {slot} should be bound at @group(0) @binding({binding}), but the \
                     entry point uses no such binding, so it would never be written"
                ))
            }
            Some(b) if !b.written => {
                return Err(format!(
                    "output {slot} (`{}` at @binding({binding})) is never written by the \
                     entry point",
                    b.name
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Collects the parts of a [`CustomOp`]; `build` checks them.
pub struct CustomOpBuilder {
    name: String,
    inputs: Vec<TensorType>,
    outputs: Vec<TensorType>,
    wgsl: Option<WgslKernel>,
    cpu: Option<CpuKernel>,
    backward: Option<Arc<CustomOp>>,
}

impl CustomOpBuilder {
    /// The op's backward: another custom op that takes this op's inputs, then its outputs,
    /// then one cotangent per output (same types as the outputs), and returns one gradient
    /// per input (same types as the inputs). Being a custom op itself, it has a CPU closure
    /// and optionally WGSL, so gradients run on every backend. Without it, asking for a
    /// gradient through this op is an error naming it.
    pub fn backward(mut self, op: Arc<CustomOp>) -> Self {
        self.backward = Some(op);
        self
    }

    /// Declares the next input's shape and dtype.
    pub fn input(mut self, shape: impl Into<Shape>, dtype: DType) -> Self {
        self.inputs.push(TensorType::new(shape, dtype));
        self
    }

    /// Declares the next output's shape and dtype.
    pub fn output(mut self, shape: impl Into<Shape>, dtype: DType) -> Self {
        self.outputs.push(TensorType::new(shape, dtype));
        self
    }

    /// The GPU kernel. Optional: without it the op runs on the CPU backend only, and
    /// compiling it for a GPU is an error naming the op.
    pub fn wgsl(
        mut self,
        source: impl Into<String>,
        entry_point: &str,
        dispatch: Dispatch,
    ) -> Self {
        self.wgsl = Some(WgslKernel {
            source: source.into(),
            entry_point: entry_point.to_string(),
            dispatch,
            workgroup_bytes: 0,
            workgroup_size: [0; 3],
        });
        self
    }

    /// The CPU reference (required: it defines the op's meaning).
    pub fn cpu(
        mut self,
        f: impl Fn(&[&TensorData]) -> std::result::Result<Vec<TensorData>, String>
            + Send
            + Sync
            + 'static,
    ) -> Self {
        self.cpu = Some(Arc::new(f));
        self
    }

    /// Checks the declaration and validates the WGSL (errors carry line and column), then
    /// holds the entry point's bindings to the convention of [`CustomOp`].
    pub fn build(mut self) -> Result<Arc<CustomOp>> {
        let err = |detail: String| Error::CustomOp {
            op: self.name.clone(),
            detail,
        };
        if self.outputs.is_empty() {
            return Err(err("declares no outputs".into()));
        }
        let cpu = self
            .cpu
            .clone()
            .ok_or_else(|| err("has no CPU function; `.cpu(...)` is required".into()))?;
        if let Some(k) = &mut self.wgsl {
            let (module, info) = validate_with_info(&self.name, &k.source)?;
            let Some(index) = module
                .entry_points
                .iter()
                .position(|e| e.name == k.entry_point)
            else {
                let found: Vec<&str> = module
                    .entry_points
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect();
                return Err(err(format!(
                    "WGSL has no entry point `{}` (found: {})",
                    k.entry_point,
                    found.join(", ")
                )));
            };
            let interface = entry_interface(&module, &info, index);
            check_bindings(&interface, self.inputs.len(), self.outputs.len()).map_err(&err)?;
            k.workgroup_bytes = interface.workgroup_bytes;
            k.workgroup_size = interface.workgroup_size;
            if let Dispatch::Threads {
                workgroup_size: 0, ..
            } = k.dispatch
            {
                return Err(err("workgroup_size must be at least 1".into()));
            }
        }
        if let Some(bw) = &self.backward {
            let mut want_in = self.inputs.clone();
            want_in.extend(self.outputs.iter().cloned());
            want_in.extend(self.outputs.iter().cloned());
            if bw.inputs != want_in || bw.outputs != self.inputs {
                let list = |ts: &[TensorType]| {
                    ts.iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(err(format!(
                    "backward `{}` must take (inputs, outputs, output cotangents) = ({}) and \
                     return the input gradients ({}); it takes ({}) and returns ({})",
                    bw.name,
                    list(&want_in),
                    list(&self.inputs),
                    list(&bw.inputs),
                    list(&bw.outputs)
                )));
            }
        }
        Ok(Arc::new(CustomOp {
            name: self.name,
            inputs: self.inputs,
            outputs: self.outputs,
            wgsl: self.wgsl,
            cpu,
            backward: self.backward,
        }))
    }
}

impl Graph {
    /// Adds a custom op; inputs must match its declared shapes and dtypes. Returns one
    /// tensor per declared output.
    pub fn custom(&self, op: &Arc<CustomOp>, inputs: &[Tensor]) -> Result<Vec<Tensor>> {
        if inputs.len() != op.inputs.len() {
            return Err(Error::CustomOp {
                op: op.name.clone(),
                detail: format!("takes {} inputs, got {}", op.inputs.len(), inputs.len()),
            });
        }
        for (i, (&t, want)) in inputs.iter().zip(&op.inputs).enumerate() {
            self.operands(&op.name, &[(&format!("input {i}"), t)])?;
            let got = self.ty(t)?;
            if &got != want {
                return Err(Error::CustomOp {
                    op: op.name.clone(),
                    detail: format!("input {i} should be {want}, got {got}"),
                });
            }
        }
        self.push(Op::Kernel(op.clone()), inputs, op.outputs.clone())
    }
}
