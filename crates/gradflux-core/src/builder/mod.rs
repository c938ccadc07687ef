//! Graph builder methods, one file per op family. Every method checks its operands at once
//! and returns an error naming the op and the offending shapes or dtypes.

pub(crate) use crate::ops::index::require_index;
pub use crate::ops::moe::{
    Capacity, DispatchOptions, ExpertChoice, ExpertDispatch, FusedRouting, GroupedTopK, Router,
    Routing,
};
pub use crate::ops::ot::{OtGeometry, OtGradient, OtSolution, SinkhornOptions};

use crate::{DType, Error, Graph, Result, Shape, Tensor};

/// Resolves a possibly negative axis (`-1` is the last) against a rank.
pub(crate) fn resolve_axis(op: &'static str, axis: isize, rank: usize) -> Result<usize> {
    let r = rank as isize;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return Err(Error::Shape {
            op,
            detail: format!("axis {axis} is out of range for a tensor of rank {rank}"),
        });
    }
    Ok(a as usize)
}

/// An `Error::Shape` from `op`.
pub(crate) fn shape_error(op: &'static str, detail: String) -> Error {
    Error::Shape { op, detail }
}

/// An `Error::InvalidValue` from `op`: a parameter's value, not a shape, is wrong.
pub(crate) fn invalid_value(op: &'static str, detail: String) -> Error {
    Error::InvalidValue { op, detail }
}

/// Refuses `v` unless it is a positive finite number, naming the parameter.
pub(crate) fn require_positive(op: &'static str, name: &str, v: f64) -> Result<()> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(invalid_value(
            op,
            format!("{name} = {v} must be a positive finite number"),
        ))
    }
}

pub(crate) fn require_float(op: &'static str, dtype: DType) -> Result<()> {
    if dtype.is_float() {
        Ok(())
    } else {
        Err(Error::DType {
            op,
            expected: "a float dtype (f32 or f64)".into(),
            got: dtype,
        })
    }
}

impl Graph {
    /// Checks that two operands share a dtype and returns it.
    pub(crate) fn same_dtype(&self, op: &'static str, a: Tensor, b: Tensor) -> Result<DType> {
        let (da, db) = (self.dtype(a)?, self.dtype(b)?);
        if da != db {
            return Err(Error::DType {
                op,
                expected: format!("both operands of the same dtype ({da}); cast one first"),
                got: db,
            });
        }
        Ok(da)
    }

    /// The broadcast of two operand shapes, or a shape error naming both.
    pub(crate) fn broadcast_shapes(&self, op: &'static str, a: &Shape, b: &Shape) -> Result<Shape> {
        Shape::broadcast(a, b).ok_or_else(|| Error::Shape {
            op,
            detail: format!("shapes {a} and {b} do not broadcast"),
        })
    }
}
