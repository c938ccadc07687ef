//! Turns one graph node into the kernel launches that compute it: which specialised
//! kernel, which values it binds, the small `info` array of sizes and strides it reads,
//! and how many workgroups it needs.

use gradflux_core::{
    BinaryOp, CompareOp, DType, Dispatch, Error, Node, Op, ReduceOp, Result, Shape, TensorType,
    UnaryOp, Value,
};

use crate::matmul::{self, Chooser, Operands};
use crate::shaders::{self, ShaderFile};
pub use gradflux_core::kernel::{values, Bind, KernelSource, Launch, Workgroups};

/// Threads per workgroup of the one-thread-per-element kernels (their `WG` override).
pub const ELEMENTWISE_WG: u32 = 256;
/// Longest axis a sum or mean reduces with one thread per output (the reduce kernel's
/// `SERIAL` path); longer axes take a workgroup per output.
pub const SERIAL_REDUCE_LEN: usize = 32;
/// Largest rank the strided kernels index (the size of their `info` stride arrays).
pub const MAX_RANK: usize = 8;

pub(crate) fn kernel(
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

/// Kernels with the output followed by `info`: `bindings` counts both.
fn elementwise_kernel(
    file: &ShaderFile,
    label: &str,
    t: DType,
    r: DType,
    expr: Option<&str>,
    bindings: usize,
) -> KernelSource {
    kernel(
        file,
        format!("{label}<{t},{r}>"),
        t,
        r,
        expr,
        vec![("WG", ELEMENTWISE_WG as f64)],
        bindings,
    )
}

/// A broadcasting two-input elementwise launch of `expr` over bindings `[a, b, out]`.
pub(crate) fn binary_expr_launch(
    label: &str,
    dtype: DType,
    expr: &str,
    binds: [Bind; 3],
    out: &Shape,
    operands: [&Shape; 2],
) -> Launch {
    Launch {
        kernel: elementwise_kernel(&shaders::BINARY, label, dtype, dtype, Some(expr), 4),
        binds: binds.to_vec(),
        scratch: vec![],
        info: broadcast_info(out, &operands),
        workgroups: per_element(out.numel()),
    }
}

/// A one-input elementwise launch of `expr` over bindings `[x, out]`.
pub(crate) fn unary_launch(
    label: &str,
    dtype: DType,
    expr: &str,
    binds: [Bind; 2],
    numel: usize,
) -> Launch {
    Launch {
        kernel: elementwise_kernel(&shaders::UNARY, label, dtype, dtype, Some(expr), 3),
        binds: binds.to_vec(),
        scratch: vec![],
        info: vec![numel as u32],
        workgroups: per_element(numel),
    }
}

/// `gather_along` over bindings `[x, idx, out]`: `numel` outputs, `m` indices per lane of
/// the `[outer, m, inner]` output, read from lanes of `len`.
pub(crate) fn gather_along_launch(
    binds: [Bind; 3],
    (numel, m, inner, len): (usize, usize, usize, usize),
) -> Launch {
    Launch {
        kernel: kernel(
            &shaders::GATHER_ALONG,
            "gather_along".into(),
            DType::U32,
            DType::U32,
            None,
            vec![("WG", ELEMENTWISE_WG as f64)],
            4,
        ),
        binds: binds.to_vec(),
        scratch: vec![],
        info: u32s([numel, m, inner, len]),
        workgroups: per_element(numel),
    }
}

pub(crate) fn per_element(numel: usize) -> Workgroups {
    Workgroups::Linear((numel as u64).div_ceil(ELEMENTWISE_WG as u64))
}

pub(crate) fn u32s(v: impl IntoIterator<Item = usize>) -> Vec<u32> {
    v.into_iter().map(|x| x as u32).collect()
}

pub(crate) fn padded(v: &[usize]) -> Vec<u32> {
    let mut out = u32s(v.iter().copied());
    out.resize(MAX_RANK, 0);
    out
}

/// `[numel, rank, contiguous mask, dims[8], strides per operand[8]...]` for the
/// broadcasting elementwise kernels.
fn broadcast_info(out: &Shape, operands: &[&Shape]) -> Vec<u32> {
    let mut mask = 0u32;
    for (k, s) in operands.iter().enumerate() {
        if *s == out {
            mask |= 1 << k;
        }
    }
    let mut info = vec![out.numel() as u32, out.rank() as u32, mask];
    info.extend(padded(out.dims()));
    for s in operands {
        info.extend(padded(&s.broadcast_strides(out)));
    }
    info
}

/// `[numel, rank, src base, dst base, dims[8], src strides[8], dst strides[8]]`.
fn copy_info(
    dims: &[usize],
    src_base: usize,
    src_strides: &[usize],
    dst_base: usize,
    dst_strides: &[usize],
) -> Vec<u32> {
    let numel: usize = dims.iter().product();
    let mut info = vec![
        numel as u32,
        dims.len() as u32,
        src_base as u32,
        dst_base as u32,
    ];
    info.extend(padded(dims));
    info.extend(padded(src_strides));
    info.extend(padded(dst_strides));
    info
}

fn copy_launch(src: Value, dst: Value, info: Vec<u32>) -> Launch {
    let numel = info[0] as usize;
    Launch {
        kernel: kernel(
            &shaders::STRIDED_COPY,
            "strided_copy".into(),
            DType::U32,
            DType::U32,
            None,
            vec![("WG", ELEMENTWISE_WG as f64)],
            3,
        ),
        binds: values([src, dst]),
        scratch: vec![],
        info,
        workgroups: per_element(numel),
    }
}

pub fn unary_expr(op: UnaryOp, dtype: DType) -> &'static str {
    match (op, dtype) {
        (UnaryOp::Neg, _) => "-a",
        (UnaryOp::Abs, DType::U32) => "a",
        (UnaryOp::Abs, _) => "abs(a)",
        (UnaryOp::Relu, DType::I32 | DType::U32) => "max(a, T(0))",
        (UnaryOp::Relu, _) => "select(max(a, T(0)), a, is_nan(f32(a)))",
        (UnaryOp::Exp, _) => "exp(a)",
        (UnaryOp::Log, _) => "log_f32(a)",
        (UnaryOp::Sqrt, _) => "sqrt_f32(a)",
        (UnaryOp::Sigmoid, _) => "sigmoid_f32(a)",
        (UnaryOp::Tanh, _) => "tanh_f32(a)",
    }
}

pub fn binary_expr(op: BinaryOp, dtype: DType) -> &'static str {
    match (op, dtype) {
        (BinaryOp::Add, _) => "x + y",
        (BinaryOp::Sub, _) => "x - y",
        (BinaryOp::Mul, _) => "x * y",
        (BinaryOp::Div, DType::I32) => "div_i32(x, y)",
        (BinaryOp::Div, DType::U32) => "div_u32(x, y)",
        (BinaryOp::Div, _) => "x / y",
        (BinaryOp::Pow, _) => "pow_f32(x, y)",
        (BinaryOp::Maximum, DType::I32 | DType::U32) => "max(x, y)",
        (BinaryOp::Minimum, DType::I32 | DType::U32) => "min(x, y)",
        (BinaryOp::Maximum, _) => "max_nan(x, y)",
        (BinaryOp::Minimum, _) => "min_nan(x, y)",
    }
}

/// IEEE comparisons: with a NaN operand every comparison is false but `ne`, which is true
/// (so `ne(x, x)` is the usual NaN test). The NaN test is by bits, never folded away.
pub fn compare_expr(op: CompareOp, dtype: DType) -> String {
    let sym = match op {
        CompareOp::Eq => "==",
        CompareOp::Ne => "!=",
        CompareOp::Lt => "<",
        CompareOp::Le => "<=",
        CompareOp::Gt => ">",
        CompareOp::Ge => ">=",
    };
    if !dtype.is_float() {
        return format!("select(0u, 1u, x {sym} y)");
    }
    if op == CompareOp::Ne {
        return "select(0u, 1u, x != y || unordered(x, y))".into();
    }
    format!("select(0u, 1u, x {sym} y && !unordered(x, y))")
}

/// A float-to-integer conversion gives 0 for NaN (WGSL leaves it to the driver).
pub fn cast_expr(from: DType, to: DType) -> &'static str {
    if from.is_float() && !to.is_float() {
        "R(select(a, T(0), is_nan(f32(a))))"
    } else {
        "R(a)"
    }
}

pub fn reduce_code(op: ReduceOp) -> f64 {
    match op {
        ReduceOp::Sum => 0.0,
        ReduceOp::Mean => 1.0,
        ReduceOp::Max => 2.0,
        ReduceOp::Min => 3.0,
        ReduceOp::LogSumExp => 4.0,
        ReduceOp::ArgMax => 5.0,
    }
}

/// The launches that compute `node` (node id `id`); `ty` gives the type of any value.
/// `choose` picks the tile configuration of matmuls; `loop_limit` is the device's budget
/// of loop iterations per invocation (`WgpuDevice::loop_limit`), which long walks are split
/// to stay within.
pub fn launches(
    node: &Node,
    id: usize,
    ty: &dyn Fn(Value) -> TensorType,
    choose: &Chooser,
    loop_limit: Option<u64>,
) -> Result<Vec<Launch>> {
    let out = Value { node: id, slot: 0 };
    let oty = node.ty().clone();
    let ins: Vec<TensorType> = node.inputs.iter().map(|v| ty(*v)).collect();
    let input = |k: usize| node.inputs[k];
    let launch = |kernel: KernelSource, binds: Vec<Value>, info: Vec<u32>, wg: Workgroups| Launch {
        kernel,
        binds: values(binds),
        scratch: vec![],
        info,
        workgroups: wg,
    };
    let numel = oty.shape.numel();
    let l = match &node.op {
        Op::Input { .. } | Op::Constant(_) | Op::Parameter { .. } | Op::Reshape | Op::Detach => {
            vec![]
        }
        Op::Unary(u) => vec![launch(
            elementwise_kernel(
                &shaders::UNARY,
                u.name(),
                ins[0].dtype,
                oty.dtype,
                Some(unary_expr(*u, oty.dtype)),
                3,
            ),
            vec![input(0), out],
            vec![numel as u32],
            per_element(numel),
        )],
        Op::Cast => vec![launch(
            elementwise_kernel(
                &shaders::UNARY,
                "cast",
                ins[0].dtype,
                oty.dtype,
                Some(cast_expr(ins[0].dtype, oty.dtype)),
                3,
            ),
            vec![input(0), out],
            vec![numel as u32],
            per_element(numel),
        )],
        Op::Binary(b) => vec![launch(
            elementwise_kernel(
                &shaders::BINARY,
                b.name(),
                ins[0].dtype,
                oty.dtype,
                Some(binary_expr(*b, oty.dtype)),
                4,
            ),
            vec![input(0), input(1), out],
            broadcast_info(&oty.shape, &[&ins[0].shape, &ins[1].shape]),
            per_element(numel),
        )],
        Op::Compare(c) => vec![launch(
            elementwise_kernel(
                &shaders::BINARY,
                c.name(),
                ins[0].dtype,
                DType::U32,
                Some(&compare_expr(*c, ins[0].dtype)),
                4,
            ),
            vec![input(0), input(1), out],
            broadcast_info(&oty.shape, &[&ins[0].shape, &ins[1].shape]),
            per_element(numel),
        )],
        Op::Select => vec![launch(
            elementwise_kernel(&shaders::SELECT, "select", oty.dtype, oty.dtype, None, 5),
            vec![input(0), input(1), input(2), out],
            broadcast_info(&oty.shape, &[&ins[0].shape, &ins[1].shape, &ins[2].shape]),
            per_element(numel),
        )],
        Op::Reduce { op, axis, .. } => crate::reduce::launches(
            *op,
            (input(0), out),
            (ins[0].dtype, oty.dtype),
            ins[0].shape.split_at_axis(*axis),
        ),
        Op::Softmax { axis, log } => crate::reduce::softmax_launches(
            *log,
            (input(0), out),
            oty.dtype,
            ins[0].shape.split_at_axis(*axis),
        ),
        Op::Permute { perm } => {
            let src = ins[0].shape.strides();
            let src_strides: Vec<usize> = perm.iter().map(|&p| src[p]).collect();
            vec![copy_launch(
                input(0),
                out,
                copy_info(oty.shape.dims(), 0, &src_strides, 0, &oty.shape.strides()),
            )]
        }
        Op::Slice { axis, start, step } => {
            let mut src_strides = ins[0].shape.strides();
            let base = start * src_strides[*axis];
            src_strides[*axis] *= step;
            vec![copy_launch(
                input(0),
                out,
                copy_info(
                    oty.shape.dims(),
                    base,
                    &src_strides,
                    0,
                    &oty.shape.strides(),
                ),
            )]
        }
        Op::BroadcastTo => vec![copy_launch(
            input(0),
            out,
            copy_info(
                oty.shape.dims(),
                0,
                &ins[0].shape.broadcast_strides(&oty.shape),
                0,
                &oty.shape.strides(),
            ),
        )],
        Op::Concat { axis } => {
            let dst_strides = oty.shape.strides();
            let mut along = 0;
            let mut parts = Vec::new();
            for (k, t) in ins.iter().enumerate() {
                if t.shape.numel() > 0 {
                    parts.push(copy_launch(
                        input(k),
                        out,
                        copy_info(
                            t.shape.dims(),
                            0,
                            &t.shape.strides(),
                            along * dst_strides[*axis],
                            &dst_strides,
                        ),
                    ));
                }
                along += t.shape.dims()[*axis];
            }
            parts
        }
        Op::MatMul(spec) => matmul::launch(
            spec,
            Operands {
                a: (input(0), &ins[0]),
                b: (input(1), &ins[1]),
                bias: spec.bias.then(|| (input(2), &ins[2])),
                out: (out, &oty),
            },
            choose,
            loop_limit,
        )?,
        Op::Gather { .. } | Op::GatherRowsWithInverse => {
            let axis = match &node.op {
                Op::Gather { axis } => axis,
                _ => &0,
            };
            let (_, dim, inner) = ins[0].shape.split_at_axis(*axis);
            let n_idx = ins[1].shape.numel();
            vec![launch(
                kernel(
                    &shaders::GATHER,
                    "gather".into(),
                    DType::U32,
                    DType::U32,
                    None,
                    vec![("WG", ELEMENTWISE_WG as f64)],
                    4,
                ),
                vec![input(0), input(1), out],
                u32s([numel, inner, n_idx, dim]),
                per_element(numel),
            )]
        }
        Op::ScatterAdd { axis, dim_size } => {
            let (_, _, inner) = oty.shape.split_at_axis(*axis);
            let n_idx = ins[1].shape.numel();
            crate::index::scatter_launches(
                (&shaders::SCATTER_ADD, "scatter_add"),
                [input(0), input(1), out],
                (oty.dtype, oty.dtype),
                (numel, n_idx),
                [numel, inner, n_idx, *dim_size],
                loop_limit,
            )
        }
        Op::TopK { axis, k } => crate::topk::launches(
            input(0),
            [out, Value { node: id, slot: 1 }],
            ins[0].dtype,
            ins[0].shape.split_at_axis(*axis),
            *k,
        )?,
        Op::GatherAlong { axis } => {
            let len = ins[0].shape.dims()[*axis];
            let (_, m, inner) = oty.shape.split_at_axis(*axis);
            vec![gather_along_launch(
                [input(0).into(), input(1).into(), out.into()],
                (numel, m, inner, len),
            )]
        }
        Op::ScatterAlong { axis, dim_size } => {
            let (_, m, inner) = ins[0].shape.split_at_axis(*axis);
            crate::index::scatter_launches(
                (&shaders::SCATTER_ALONG, "scatter_along"),
                [input(0), input(1), out],
                (oty.dtype, DType::U32),
                (numel, m),
                [numel, m, inner, *dim_size],
                loop_limit,
            )
        }
        Op::MoeDispatch(spec) => {
            let outs = std::array::from_fn(|slot| Value { node: id, slot });
            let (n, rows) = (ins[0].shape.numel(), node.outputs[0].shape.numel());
            crate::moe::dispatch_launches(
                spec,
                &node.inputs,
                ins.get(1).map(|t| t.dtype),
                outs,
                (n, rows),
                loop_limit,
            )?
        }
        Op::Softmin { eps, axis } => crate::ot::softmin_op_launches(
            [input(0), input(1), out],
            ins[0].dtype,
            matrix_sizes(&ins[0]),
            *eps,
            *axis,
            loop_limit,
        )?,
        Op::PointSoftmin { eps, cost } => {
            let how = crate::ot::Softmin {
                eps: *eps,
                lambda: 1.0,
            };
            crate::ot::point_softmin_launch(
                [input(0).into(), input(1).into(), out.into()],
                crate::ot::Potential::plain(input(2)),
                ins[0].dtype,
                point_sizes(&ins[0], &ins[1]),
                how,
                *cost,
                loop_limit,
            )?
        }
        Op::PointSoftminBackward { eps, cost } => crate::ot::point_softmin_backward_launches(
            std::array::from_fn(input),
            std::array::from_fn(|slot| Value { node: id, slot }),
            ins[0].dtype,
            point_sizes(&ins[0], &ins[1]),
            *eps,
            *cost,
            loop_limit,
        )?,
        Op::SinkhornAdjoint(spec) => {
            let (batch, n, m, d) = match spec.points {
                None => {
                    let (batch, n, m) = matrix_sizes(&ins[0]);
                    (batch, n, m, 0)
                }
                Some(_) => point_sizes(&ins[0], &ins[1]),
            };
            crate::adjoint::adjoint_launches(
                spec,
                &node.inputs,
                id,
                ins[0].dtype,
                (batch, n, m, d),
                loop_limit,
            )?
        }
        Op::Sinkhorn(_) => {
            return Err(Error::Unsupported {
                backend: "wgpu".into(),
                what: "`sinkhorn` as a list of launches: it runs as a loop (see looped.rs)".into(),
            })
        }
        Op::FusedRoute(spec) => {
            let dims = ins[0].shape.dims();
            crate::route::launches(
                spec,
                input(0),
                ins[0].dtype,
                std::array::from_fn(|slot| Value { node: id, slot }),
                (dims[0], dims[1]),
            )?
        }
        Op::GroupedMatMul { block, transpose_b } => {
            let (rows, k) = (ins[0].shape.dims()[0], ins[0].shape.dims()[1]);
            vec![crate::moe::grouped_matmul_launch(
                [input(0), input(1), input(2), out],
                oty.dtype,
                (rows, k, oty.shape.dims()[1], ins[1].shape.dims()[0]),
                (*block, *transpose_b),
            )?]
        }
        Op::GroupedMatMulWeightGrad { block, num_experts } => {
            let (rows, k) = (ins[0].shape.dims()[0], ins[0].shape.dims()[1]);
            crate::moe::grouped_matmul_weight_grad_launch(
                [input(0), input(1), input(2), out],
                oty.dtype,
                (rows, k, ins[1].shape.dims()[1], *num_experts),
                *block,
                loop_limit,
            )?
        }
        Op::Kernel(op) => op.lower(&gradflux_core::kernel::LowerCx {
            node: id,
            inputs: &node.inputs,
            input_types: &ins,
            output_types: &node.outputs,
            loop_limit,
        })?,
        Op::Custom(op) => {
            let k = op.wgsl.as_ref().ok_or_else(|| Error::Unsupported {
                backend: "wgpu".into(),
                what: format!(
                    "custom op `{}` has no WGSL kernel; give it one with `.wgsl(...)` or run it \
                     on the CPU backend",
                    op.name
                ),
            })?;
            let n_in = node.inputs.len();
            let n_out = node.outputs.len();
            let mut read_only = vec![true; n_in];
            read_only.extend(vec![false; n_out]);
            let mut binds = values(node.inputs.iter().copied());
            binds.extend((0..n_out).map(|slot| Bind::Value(Value { node: id, slot })));
            let workgroups = match k.dispatch {
                Dispatch::Workgroups(w) => Workgroups::Fixed(w),
                Dispatch::Threads {
                    threads,
                    workgroup_size,
                } => Workgroups::Linear(threads.div_ceil(workgroup_size as u64)),
            };
            vec![Launch {
                kernel: KernelSource {
                    label: format!("custom:{}", op.name),
                    source: k.source.clone(),
                    entry_point: k.entry_point.clone(),
                    constants: vec![],
                    read_only,
                },
                binds,
                scratch: vec![],
                info: vec![],
                workgroups,
            }]
        }
    };
    Ok(l)
}

/// `(batch, n, m)` of a batch of `[.., n, m]` matrices.
pub(crate) fn matrix_sizes(t: &TensorType) -> (usize, usize, usize) {
    let dims = t.shape.dims();
    let (n, m) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    (dims[..dims.len() - 2].iter().product(), n, m)
}

/// `(batch, n, m, d)` of point clouds `x [.., n, d]` and `y [.., m, d]`.
pub(crate) fn point_sizes(x: &TensorType, y: &TensorType) -> (usize, usize, usize, usize) {
    let (xd, yd) = (x.shape.dims(), y.shape.dims());
    let r = xd.len();
    let batch = xd[..r - 2].iter().product();
    (batch, xd[r - 2], yd[r - 2], xd[r - 1])
}
