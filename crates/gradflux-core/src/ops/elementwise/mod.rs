//! Elementwise ops: one-input ([`UnaryOp`]), two-input with numpy broadcasting
//! ([`BinaryOp`], [`CompareOp`]), `select` and `cast`. The op enums are themselves the
//! [`KernelOp`] values. Builder methods in `build.rs`, CPU references in `cpu.rs`, launches
//! in `wgsl.rs` (`shaders/elementwise/`, specialised per op by its `@op` line).
//!
//! Tie rules, where the derivative does not exist: `maximum`/`minimum` split the gradient
//! evenly between equal operands; `abs` and `relu` have gradient 0 at 0.

mod build;
pub mod cpu;
pub mod wgsl;

use crate::kernel::launch::{per_element, values, MAX_RANK};
use crate::kernel::shaders::{shader, ShaderFile};
use crate::kernel::{arg, KernelOp, Launch, LowerCx, Lowering, VjpCx};
use crate::{BinaryOp, CompareOp, DType, Result, Tensor, TensorData, TensorType, UnaryOp};

use wgsl::{broadcast_info, elementwise_kernel};

shader!(UNARY, "elementwise/unary.wgsl");
shader!(BINARY, "elementwise/binary.wgsl");
shader!(SELECT, "elementwise/select.wgsl");

/// The family's kernels.
pub const SHADERS: &[ShaderFile] = &[UNARY, BINARY, SELECT];

/// `select(cond, a, b)`: `a` where `cond != 0`, else `b`; all three broadcast.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Select;

/// Conversion to the node's dtype (see [`Graph::cast`](crate::Graph::cast)).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Cast;

/// The broadcast offset of each operand walks the rank.
const RANK: u64 = MAX_RANK as u64;

/// One thread per element of the output over the node's inputs and output.
fn launch(cx: &LowerCx<'_>, kernel: crate::kernel::KernelSource, info: Vec<u32>) -> Launch {
    let numel = cx.output_types[0].shape.numel();
    let mut binds = values(cx.inputs.iter().copied());
    binds.push(cx.output(0).into());
    Launch {
        kernel,
        binds,
        scratch: vec![],
        info,
        workgroups: per_element(numel),
    }
}

/// `launch` of a kernel over one input with the `@op` expression `expr`.
fn unary_launch(cx: &LowerCx<'_>, label: &str, expr: &str) -> Launch {
    let (t, r) = (cx.input_types[0].dtype, cx.output_types[0].dtype);
    let kernel = elementwise_kernel(&UNARY, label, t, r, Some(expr), 3);
    let numel = cx.output_types[0].shape.numel();
    launch(cx, kernel, vec![numel as u32])
}

/// `launch` of a broadcasting kernel of `file` over every input.
fn broadcast_launch(cx: &LowerCx<'_>, file: &ShaderFile, label: &str, expr: Option<&str>) -> Launch {
    let (t, r) = (cx.input_types.last().map_or(DType::F32, |t| t.dtype), cx.output_types[0].dtype);
    let kernel = elementwise_kernel(file, label, t, r, expr, cx.inputs.len() + 2);
    let shapes: Vec<_> = cx.input_types.iter().map(|t| &t.shape).collect();
    launch(cx, kernel, broadcast_info(&cx.output_types[0].shape, &shapes))
}

impl KernelOp for UnaryOp {
    fn name(&self) -> &'static str {
        UnaryOp::name(*self)
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let (g, a, y) = (cx.graph, cx.inputs[0], cx.outputs[0]);
        let dtype = g.dtype(y)?;
        let c = |v: f64| g.scalar(v, dtype);
        let as_dtype = |mask: Tensor| g.cast(mask, dtype);
        let d = match self {
            UnaryOp::Neg => g.neg(gy)?,
            UnaryOp::Abs => {
                let zero = c(0.0)?;
                let sign = g.sub(as_dtype(g.gt(a, zero)?)?, as_dtype(g.lt(a, zero)?)?)?;
                g.mul(gy, sign)?
            }
            UnaryOp::Relu => g.mul(gy, as_dtype(g.gt(a, c(0.0)?)?)?)?,
            UnaryOp::Exp => g.mul(gy, y)?,
            UnaryOp::Log => g.div(gy, a)?,
            UnaryOp::Sqrt => g.div(gy, g.mul(c(2.0)?, y)?)?,
            UnaryOp::Sigmoid => g.mul(gy, g.mul(y, g.sub(c(1.0)?, y)?)?)?,
            UnaryOp::Tanh => g.mul(gy, g.sub(c(1.0)?, g.mul(y, y)?)?)?,
        };
        Ok(vec![Some(d)])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = arg(KernelOp::name(self), inputs, 0)?;
        Ok(vec![cpu::unary(*self, x, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let expr = wgsl::unary_expr(*self, cx.output_types[0].dtype);
        Ok(vec![unary_launch(cx, UnaryOp::name(*self), expr)].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(0)
    }
}

impl KernelOp for BinaryOp {
    fn name(&self) -> &'static str {
        BinaryOp::name(*self)
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let (g, a, bb, y) = (cx.graph, cx.inputs[0], cx.inputs[1], cx.outputs[0]);
        let dtype = g.dtype(y)?;
        let c = |v: f64| g.scalar(v, dtype);
        let as_dtype = |mask: Tensor| g.cast(mask, dtype);
        // Only the gradients asked for are built, each summed back to its operand's shape.
        let side = |k: usize, f: &dyn Fn() -> Result<Tensor>| -> Result<Option<Tensor>> {
            cx.needs[k]
                .then(|| g.sum_to(f()?, &g.shape(cx.inputs[k])?))
                .transpose()
        };
        Ok(match self {
            BinaryOp::Add => vec![side(0, &|| Ok(gy))?, side(1, &|| Ok(gy))?],
            BinaryOp::Sub => vec![side(0, &|| Ok(gy))?, side(1, &|| g.neg(gy))?],
            BinaryOp::Mul => vec![side(0, &|| g.mul(gy, bb))?, side(1, &|| g.mul(gy, a))?],
            BinaryOp::Div => vec![
                side(0, &|| g.div(gy, bb))?,
                side(1, &|| g.neg(g.div(g.mul(gy, y)?, bb)?))?,
            ],
            BinaryOp::Pow => vec![
                side(0, &|| g.mul(gy, g.mul(bb, g.pow(a, g.sub(bb, c(1.0)?)?)?)?))?,
                // d/db a^b = a^b log a, taken as 0 where a <= 0 (log undefined there).
                side(1, &|| {
                    let positive = g.gt(a, c(0.0)?)?;
                    g.mul(gy, g.select(positive, g.mul(y, g.log(a)?)?, c(0.0)?)?)
                })?,
            ],
            BinaryOp::Maximum | BinaryOp::Minimum => {
                let wins = if *self == BinaryOp::Maximum {
                    g.gt(a, bb)?
                } else {
                    g.lt(a, bb)?
                };
                let half_ties = g.mul(as_dtype(g.eq(a, bb)?)?, c(0.5)?)?;
                let wa = g.add(as_dtype(wins)?, half_ties)?;
                vec![
                    side(0, &|| g.mul(gy, wa))?,
                    side(1, &|| g.mul(gy, g.sub(c(1.0)?, wa)?))?,
                ]
            }
        })
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let name = KernelOp::name(self);
        let (a, b) = (arg(name, inputs, 0)?, arg(name, inputs, 1)?);
        Ok(vec![cpu::binary(*self, a, b, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let expr = wgsl::binary_expr(*self, cx.output_types[0].dtype);
        Ok(vec![broadcast_launch(cx, &BINARY, BinaryOp::name(*self), Some(expr))].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(2 * RANK)
    }
}

impl KernelOp for CompareOp {
    fn name(&self) -> &'static str {
        CompareOp::name(*self)
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        Ok(cx.none())
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let name = KernelOp::name(self);
        let (a, b) = (arg(name, inputs, 0)?, arg(name, inputs, 1)?);
        Ok(vec![cpu::compare(*self, a, b, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let expr = wgsl::compare_expr(*self, cx.input_types[0].dtype);
        Ok(vec![broadcast_launch(cx, &BINARY, CompareOp::name(*self), Some(&expr))].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(2 * RANK)
    }
}

impl KernelOp for Select {
    fn name(&self) -> &'static str {
        "select"
    }

    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let (g, cond) = (cx.graph, cx.inputs[0]);
        let zero = g.scalar(0.0, g.dtype(gy)?)?;
        let da = g.select(cond, gy, zero)?;
        let db = g.select(cond, zero, gy)?;
        let to = |k: usize, d: Tensor| {
            cx.needs[k]
                .then(|| g.sum_to(d, &g.shape(cx.inputs[k])?))
                .transpose()
        };
        Ok(vec![None, to(1, da)?, to(2, db)?])
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        let x = |k| arg("select", inputs, k);
        Ok(vec![cpu::select(x(0)?, x(1)?, x(2)?, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        Ok(vec![broadcast_launch(cx, &SELECT, "select", None)].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(3 * RANK)
    }
}

impl KernelOp for Cast {
    fn name(&self) -> &'static str {
        "cast"
    }

    // Between floats the cotangent converts back; through integers nothing flows.
    fn vjp(&self, cx: &VjpCx<'_>) -> Result<Vec<Option<Tensor>>> {
        let Some(gy) = cx.cotangents[0] else {
            return Ok(cx.none());
        };
        let g = cx.graph;
        let (from, to) = (g.dtype(cx.inputs[0])?, g.dtype(cx.outputs[0])?);
        if from.is_float() && to.is_float() {
            Ok(vec![Some(g.cast(gy, from)?)])
        } else {
            Ok(cx.none())
        }
    }

    fn eval_cpu(&self, inputs: &[&TensorData], outputs: &[TensorType]) -> Result<Vec<TensorData>> {
        Ok(vec![cpu::cast(arg("cast", inputs, 0)?, &outputs[0])?])
    }

    fn lower(&self, cx: &LowerCx<'_>) -> Result<Lowering> {
        let (from, to) = (cx.input_types[0].dtype, cx.output_types[0].dtype);
        Ok(vec![unary_launch(cx, "cast", wgsl::cast_expr(from, to))].into())
    }

    fn loop_trips(&self, _: &[TensorType], _: &[TensorType], _: u64) -> Option<u64> {
        Some(0)
    }

    fn wgpu_f16(&self) -> bool {
        true
    }
}
