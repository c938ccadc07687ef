//! Elementwise kernels: unary and binary math, comparisons, `select` and casts.
//!
//! Float math runs in the tensor's own precision (an `f32` `exp` is `f32::exp`), because
//! that is what a GPU kernel does; promoting to `f64` here would make the reference
//! disagree with the device by more than the device's own error.

use crate::{
    BinaryOp, CompareOp, DType, Element, Result, Shape, Storage, TensorData, TensorType, UnaryOp,
};

use crate::ops::num::{unsupported, Float, Num};
use crate::ops::strided::broadcast_offsets;

/// `op` on every element of `x`; integers wrap, and a float-only op on them is an error.
pub fn unary(op: UnaryOp, x: &TensorData, out: &TensorType) -> Result<TensorData> {
    let storage = match out.dtype {
        DType::F16 => map::<half::f16>(x, float_unary(op))?,
        DType::F32 => map::<f32>(x, float_unary(op))?,
        DType::F64 => map::<f64>(x, float_unary(op))?,
        DType::I32 => map::<i32>(
            x,
            int_unary(op).ok_or_else(|| unsupported(op.name(), out.dtype))?,
        )?,
        DType::U32 => map::<u32>(
            x,
            int_unary(op).ok_or_else(|| unsupported(op.name(), out.dtype))?,
        )?,
    };
    TensorData::from_storage(out.shape.clone(), storage)
}

/// `op` on `a` and `b` broadcast to `out.shape`; integers follow WGSL's wrapping and
/// division rules.
pub fn binary(
    op: BinaryOp,
    a: &TensorData,
    b: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let storage = match out.dtype {
        DType::F16 => zip_map::<half::f16>(a, b, &out.shape, float_binary(op))?,
        DType::F32 => zip_map::<f32>(a, b, &out.shape, float_binary(op))?,
        DType::F64 => zip_map::<f64>(a, b, &out.shape, float_binary(op))?,
        DType::I32 => {
            let f = int_binary(op).ok_or_else(|| unsupported(op.name(), out.dtype))?;
            zip_map::<i32>(a, b, &out.shape, f)?
        }
        DType::U32 => {
            let f = int_binary(op).ok_or_else(|| unsupported(op.name(), out.dtype))?;
            zip_map::<u32>(a, b, &out.shape, f)?
        }
    };
    TensorData::from_storage(out.shape.clone(), storage)
}

/// Compares in the operands' dtype (NaN compares unequal to everything, so only `ne` is
/// true for it) and writes a `u32` mask.
pub fn compare(
    op: CompareOp,
    a: &TensorData,
    b: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let mask: Vec<u32> = by_dtype!(a.dtype(), T => {
        let f = compare_fn::<T>(op);
        broadcast_zip(a.values::<T>()?, a.shape(), b.values::<T>()?, b.shape(), &out.shape)
            .map(|(x, y)| f(&x, &y) as u32)
            .collect()
    });
    TensorData::new(out.shape.clone(), mask)
}

/// `a` where the `u32` mask `cond` is nonzero, else `b`; all three broadcast to
/// `out.shape`.
pub fn select(
    cond: &TensorData,
    a: &TensorData,
    b: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let c = cond.values::<u32>()?;
    let oc = broadcast_offsets(cond.shape(), &out.shape);
    let storage = by_dtype!(out.dtype, T => {
        let picked: Vec<T> = broadcast_zip(
            a.values::<T>()?,
            a.shape(),
            b.values::<T>()?,
            b.shape(),
            &out.shape,
        )
        .zip(&oc)
        .map(|((x, y), &i)| if c[i] != 0 { x } else { y })
        .collect();
        T::wrap(picked)
    });
    TensorData::from_storage(out.shape.clone(), storage)
}

/// The f32 bounds WGSL clamps to before converting to an integer (NaN still gives 0).
const WGSL_I32_LOW: f32 = -2147483648.0;
const WGSL_I32_HIGH: f32 = 2147483520.0;
const WGSL_U32_HIGH: f32 = 4294967040.0;

/// Rust `as` between every pair of dtypes, except that f32 to integer saturates the way WGSL
/// does: at the largest f32 inside the integer range (`2147483520` for i32, `4294967040` for
/// u32), not at the integer type's own maximum. Written out per pair rather than through
/// `f64` because `i32 <-> u32` must reinterpret bits, which a detour through `f64` would not.
pub fn cast(x: &TensorData, out: &TensorType) -> Result<TensorData> {
    macro_rules! cast_to {
        ($v:expr) => {
            match out.dtype {
                DType::F16 => {
                    Storage::F16($v.iter().map(|&e| half::f16::from_f64(e as f64)).collect())
                }
                DType::F32 => Storage::F32($v.iter().map(|&e| e as f32).collect()),
                DType::F64 => Storage::F64($v.iter().map(|&e| e as f64).collect()),
                DType::I32 => Storage::I32($v.iter().map(|&e| e as i32).collect()),
                DType::U32 => Storage::U32($v.iter().map(|&e| e as u32).collect()),
            }
        };
    }
    let storage = match (x.storage(), out.dtype) {
        (Storage::F32(v), DType::I32) => Storage::I32(
            v.iter()
                .map(|&e| e.clamp(WGSL_I32_LOW, WGSL_I32_HIGH) as i32)
                .collect(),
        ),
        (Storage::F32(v), DType::U32) => Storage::U32(
            v.iter()
                .map(|&e| e.clamp(0.0, WGSL_U32_HIGH) as u32)
                .collect(),
        ),
        (Storage::F32(v), _) => cast_to!(v),
        // WGSL clamps f16 to integer conversions at f16's largest finite value.
        (Storage::F16(v), DType::I32) => Storage::I32(
            v.iter()
                .map(|&e| e.to_f32().clamp(-65504.0, 65504.0) as i32)
                .collect(),
        ),
        (Storage::F16(v), DType::U32) => Storage::U32(
            v.iter()
                .map(|&e| e.to_f32().clamp(0.0, 65504.0) as u32)
                .collect(),
        ),
        (Storage::F16(v), _) => {
            let wide: Vec<f64> = v.iter().map(|e| e.to_f64()).collect();
            cast_to!(wide)
        }
        (Storage::F64(v), _) => cast_to!(v),
        (Storage::I32(v), _) => cast_to!(v),
        (Storage::U32(v), _) => cast_to!(v),
    };
    TensorData::from_storage(out.shape.clone(), storage)
}

fn map<T: Num>(x: &TensorData, f: fn(T) -> T) -> Result<Storage> {
    Ok(T::wrap(x.values::<T>()?.iter().map(|&v| f(v)).collect()))
}

fn zip_map<T: Num>(
    a: &TensorData,
    b: &TensorData,
    out: &Shape,
    f: fn(T, T) -> T,
) -> Result<Storage> {
    let values = broadcast_zip(
        a.values::<T>()?,
        a.shape(),
        b.values::<T>()?,
        b.shape(),
        out,
    )
    .map(|(x, y)| f(x, y))
    .collect();
    Ok(T::wrap(values))
}

/// Pairs of operand elements for every element of `out`, under numpy broadcasting.
fn broadcast_zip<'a, T: Copy>(
    a: &'a [T],
    a_shape: &Shape,
    b: &'a [T],
    b_shape: &Shape,
    out: &Shape,
) -> impl Iterator<Item = (T, T)> + 'a {
    let oa = broadcast_offsets(a_shape, out);
    let ob = broadcast_offsets(b_shape, out);
    oa.into_iter().zip(ob).map(move |(i, j)| (a[i], b[j]))
}

fn relu<T: Num>(x: T) -> T {
    x.maximum(T::ZERO)
}

/// Written in two branches so `exp` never sees a large positive argument, which would
/// overflow to `inf` and turn the result into NaN.
fn sigmoid<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE.div(T::ONE.add(x.neg().exp()))
    } else {
        let e = x.exp();
        e.div(T::ONE.add(e))
    }
}

fn float_unary<T: Float>(op: UnaryOp) -> fn(T) -> T {
    match op {
        UnaryOp::Neg => Num::neg,
        UnaryOp::Abs => Num::abs,
        UnaryOp::Relu => relu,
        UnaryOp::Exp => Float::exp,
        UnaryOp::Log => Float::ln,
        UnaryOp::Sqrt => Float::sqrt,
        UnaryOp::Sigmoid => sigmoid,
        UnaryOp::Tanh => Float::tanh,
    }
}

fn int_unary<T: Num>(op: UnaryOp) -> Option<fn(T) -> T> {
    match op {
        UnaryOp::Neg => Some(Num::neg),
        UnaryOp::Abs => Some(Num::abs),
        UnaryOp::Relu => Some(relu),
        _ => None,
    }
}

fn float_binary<T: Float>(op: BinaryOp) -> fn(T, T) -> T {
    // `pow` is the only binary op integers lack.
    int_binary(op).unwrap_or(Float::powf)
}

fn int_binary<T: Num>(op: BinaryOp) -> Option<fn(T, T) -> T> {
    match op {
        BinaryOp::Add => Some(Num::add),
        BinaryOp::Sub => Some(Num::sub),
        BinaryOp::Mul => Some(Num::mul),
        BinaryOp::Div => Some(Num::div),
        BinaryOp::Maximum => Some(Num::maximum),
        BinaryOp::Minimum => Some(Num::minimum),
        BinaryOp::Pow => None,
    }
}

fn compare_fn<T: PartialOrd>(op: CompareOp) -> fn(&T, &T) -> bool {
    match op {
        CompareOp::Eq => PartialEq::eq,
        CompareOp::Ne => PartialEq::ne,
        CompareOp::Lt => PartialOrd::lt,
        CompareOp::Le => PartialOrd::le,
        CompareOp::Gt => PartialOrd::gt,
        CompareOp::Ge => PartialOrd::ge,
    }
}
