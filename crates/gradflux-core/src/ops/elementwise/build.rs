use std::sync::Arc;

use super::{Cast, Select};
use crate::builder::require_float;
use crate::{BinaryOp, CompareOp, DType, Error, Graph, Op, Result, Tensor, TensorType, UnaryOp};

impl Graph {
    /// Applies a one-input elementwise op.
    pub fn unary(&self, op: UnaryOp, x: Tensor) -> Result<Tensor> {
        self.operands(op.name(), &[("x", x)])?;
        let ty = self.ty(x)?;
        if op.float_only() {
            require_float(op.name(), ty.dtype)?;
        }
        if op == UnaryOp::Neg && ty.dtype == DType::U32 {
            return Err(Error::DType {
                op: "neg",
                expected: "a signed dtype (f32, f64 or i32)".into(),
                got: ty.dtype,
            });
        }
        self.push1(Op::Kernel(Arc::new(op)), &[x], ty)
    }

    /// Applies a two-input elementwise op with numpy broadcasting.
    pub fn binary(&self, op: BinaryOp, a: Tensor, b: Tensor) -> Result<Tensor> {
        self.operands(op.name(), &[("a", a), ("b", b)])?;
        let dtype = self.same_dtype(op.name(), a, b)?;
        if op == BinaryOp::Pow {
            require_float("pow", dtype)?;
        }
        let shape = self.broadcast_shapes(op.name(), &self.shape(a)?, &self.shape(b)?)?;
        self.push1(Op::Kernel(Arc::new(op)), &[a, b], TensorType::new(shape, dtype))
    }

    /// Compares elementwise with broadcasting; the result is a `u32` mask of 0 and 1.
    pub fn compare(&self, op: CompareOp, a: Tensor, b: Tensor) -> Result<Tensor> {
        self.operands(op.name(), &[("a", a), ("b", b)])?;
        self.same_dtype(op.name(), a, b)?;
        let shape = self.broadcast_shapes(op.name(), &self.shape(a)?, &self.shape(b)?)?;
        self.push1(Op::Kernel(Arc::new(op)), &[a, b], TensorType::new(shape, DType::U32))
    }

    /// `a` where `cond != 0`, else `b`. `cond` is a `u32` mask (as comparisons return);
    /// all three broadcast together.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType};
    /// let g = Graph::new();
    /// let x = g.input("x", [5], DType::F32)?;
    /// let zero = g.scalar(0.0, DType::F32)?;
    /// let relu = g.select(g.gt(x, zero)?, x, zero)?; // same as g.relu(x)
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn select(&self, cond: Tensor, a: Tensor, b: Tensor) -> Result<Tensor> {
        self.operands("select", &[("cond", cond), ("a", a), ("b", b)])?;
        let ct = self.ty(cond)?;
        if ct.dtype != DType::U32 {
            return Err(Error::DType {
                op: "select",
                expected: "a u32 mask as the condition".into(),
                got: ct.dtype,
            });
        }
        let dtype = self.same_dtype("select", a, b)?;
        let ab = self.broadcast_shapes("select", &self.shape(a)?, &self.shape(b)?)?;
        let shape = self.broadcast_shapes("select", &ct.shape, &ab)?;
        self.push1(Op::Kernel(Arc::new(Select)), &[cond, a, b], TensorType::new(shape, dtype))
    }

    /// Converts to another dtype. Float to int truncates toward zero and saturates at the
    /// largest f32 inside the integer range (`2147483520` for i32, as WGSL defines it); NaN
    /// gives 0; `i32` and `u32` reinterpret each other's bits.
    pub fn cast(&self, x: Tensor, dtype: DType) -> Result<Tensor> {
        self.operands("cast", &[("x", x)])?;
        let ty = self.ty(x)?;
        if ty.dtype == dtype {
            return Ok(x);
        }
        self.push1(Op::Kernel(Arc::new(Cast)), &[x], TensorType::new(ty.shape, dtype))
    }
}

macro_rules! unary_methods {
    ($($name:ident => $op:ident, $doc:literal;)*) => {
        impl Graph {
            $(
                #[doc = $doc]
                pub fn $name(&self, x: Tensor) -> Result<Tensor> {
                    self.unary(UnaryOp::$op, x)
                }
            )*
        }
    };
}

unary_methods! {
    neg => Neg, "`-x` (signed dtypes; integers wrap).";
    abs => Abs, "`|x|` (integers wrap at the minimum).";
    relu => Relu, "`max(x, 0)`.";
    exp => Exp, "`e^x` (floats).";
    log => Log, "Natural logarithm (floats).";
    sqrt => Sqrt, "Square root (floats).";
    sigmoid => Sigmoid, "`1 / (1 + e^-x)`, computed without overflow (floats).";
    tanh => Tanh, "Hyperbolic tangent, computed without overflow (floats).";
}

macro_rules! binary_methods {
    ($($name:ident => $op:ident, $doc:literal;)*) => {
        impl Graph {
            $(
                #[doc = $doc]
                pub fn $name(&self, a: Tensor, b: Tensor) -> Result<Tensor> {
                    self.binary(BinaryOp::$op, a, b)
                }
            )*
        }
    };
}

binary_methods! {
    add => Add, "`a + b` with broadcasting (integers wrap).";
    sub => Sub, "`a - b` with broadcasting (integers wrap).";
    mul => Mul, "`a * b` with broadcasting (integers wrap).";
    div => Div, "`a / b` with broadcasting; integers truncate toward zero and `x / 0 == x`.";
    pow => Pow, "`a ^ b` with broadcasting (floats; C `pow` rules).";
    maximum => Maximum, "Elementwise maximum with broadcasting.";
    minimum => Minimum, "Elementwise minimum with broadcasting.";
}

macro_rules! compare_methods {
    ($($name:ident => $op:ident;)*) => {
        impl Graph {
            $(
                #[doc = concat!("Elementwise `", stringify!($name), "` comparison; a `u32` mask of 0 and 1.")]
                pub fn $name(&self, a: Tensor, b: Tensor) -> Result<Tensor> {
                    self.compare(CompareOp::$op, a, b)
                }
            )*
        }
    };
}

compare_methods! {
    eq => Eq;
    ne => Ne;
    lt => Lt;
    le => Le;
    gt => Gt;
    ge => Ge;
}
