//! Running sums along an axis: `cumsum` and its mirror `reverse_cumsum`, each the other's
//! adjoint.

mod cpu;
mod wgsl;

use crate::builder::resolve_axis;
use crate::kernel::shaders::{shader, ShaderFile};
use crate::kernel::{KernelOp, Lowering, LowerCx, VjpCx};
use crate::{Error, Graph, Op, Result, Tensor, TensorData, TensorType};

shader!(CUMSUM, "scan/cumsum.wgsl");

/// The family's kernels.
pub const SHADERS: &[ShaderFile] = &[CUMSUM];

/// An inclusive running sum along `axis`: `out[.., j, ..] = Σ_{k ≤ j} x[.., k, ..]`, or
/// `Σ_{k ≥ j}` when `reverse`. Floats are summed in the order of the axis; integers wrap.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cumsum {
    /// The summed axis (non-negative).
    pub axis: usize,
    /// Sum from the end of the axis instead of its start.
    pub reverse: bool,
}

impl Graph {
    /// The running sum of `x` along `axis` (negative counts from the end): element `j` is
    /// the sum of elements `0..=j`, as numpy's `cumsum`. Same shape and dtype as `x`.
    ///
    /// ```
    /// # use gradflux_core::{DType, Graph};
    /// let g = Graph::new();
    /// let x = g.input("x", [2, 5], DType::F32)?;
    /// let running = g.cumsum(x, -1)?; // [2, 5]: each row's prefix sums
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn cumsum(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.scan(x, axis, false)
    }

    /// The running sum from the end of `axis`: element `j` is the sum of elements `j..`.
    /// It is the adjoint of [`cumsum`](Graph::cumsum) (and the other way round).
    pub fn reverse_cumsum(&self, x: Tensor, axis: isize) -> Result<Tensor> {
        self.scan(x, axis, true)
    }

    fn scan(&self, x: Tensor, axis: isize, reverse: bool) -> Result<Tensor> {
        let name = if reverse { "reverse_cumsum" } else { "cumsum" };
        self.operands(name, &[("x", x)])?;
        let ty = self.ty(x)?;
        let axis = resolve_axis(name, axis, ty.shape.rank())?;
        let op = Cumsum { axis, reverse };
        self.push1(Op::Kernel(std::sync::Arc::new(op)), &[x], ty)
    }
}

impl Cumsum {
    /// `[outer, n, inner]`: the shape seen as lanes along the axis.
    fn lanes(&self, ty: &TensorType) -> (usize, usize, usize) {
        let dims = ty.shape.dims();
        let outer = dims[..self.axis].iter().product();
        let inner = dims[self.axis + 1..].iter().product();
        (outer, dims[self.axis], inner)
    }
}

impl KernelOp for Cumsum {
    fn name(&self) -> &'static str {
        if self.reverse {
            "reverse_cumsum"
        } else {
            "cumsum"
        }
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        if !cx.graph.dtype(gy)?.is_float() {
            return Ok(cx.none());
        }
        let axis = self.axis as isize;
        let dx = if self.reverse {
            cx.graph.cumsum(gy, axis)?
        } else {
            cx.graph.reverse_cumsum(gy, axis)?
        };
        Ok(vec![Some(dx)])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = inputs.first().ok_or_else(|| Error::Graph(format!(
            "`{}` node has no input",
            self.name()
        )))?;
        let (outer, n, inner) = self.lanes(&outputs[0]);
        Ok(vec![cpu::cumsum(x, (outer, n, inner), self.reverse)?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let ty = &cx.output_types[0];
        let plan = wgsl::Plan::new(self.lanes(ty), cx.loop_limit);
        Ok(wgsl::launches(&plan, ty.dtype, self.reverse, cx).into())
    }

    fn loop_trips(&self, inputs: &[TensorType], _: &[TensorType], limit: u64) -> Option<u64> {
        let plan = wgsl::Plan::new(self.lanes(&inputs[0]), Some(limit));
        Some(plan.loop_trips())
    }
}
