//! The numeric vocabulary the kernels are written in, so each op is written once and
//! instantiated for `f32`, `f64`, `i32` and `u32`.
//!
//! The integer rules here (wrapping arithmetic, `x / 0 == x`) are WGSL's, because the GPU
//! backend must agree with this crate bit for bit on integers.

use crate::{Element, Error};

/// Arithmetic every dtype supports, with the wrapping and division rules of WGSL.
pub trait Num: Element + PartialOrd {
    const ZERO: Self;

    /// What sums are carried in: `f64` for floats, so `f32` sums do not lose low bits to
    /// partial-sum rounding; the type itself for integers, so overflow wraps the same way
    /// it does on the GPU.
    type Acc: Copy;
    const ACC_ZERO: Self::Acc;
    fn acc_add(acc: Self::Acc, x: Self) -> Self::Acc;
    /// `acc + a * b`. For floats the product is formed in `f64` (exact for `f32` inputs) and
    /// not fused, so the result does not depend on FMA availability.
    fn acc_mul_add(acc: Self::Acc, a: Self, b: Self) -> Self::Acc;
    fn acc_finish(acc: Self::Acc) -> Self;

    fn add(self, other: Self) -> Self;
    fn sub(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
    fn div(self, other: Self) -> Self;
    fn neg(self) -> Self;
    fn abs(self) -> Self;
    /// Float `max` propagates NaN (as NumPy's `maximum` and PyTorch's do): a NaN operand is
    /// the result. `max(-0.0, 0.0)` may be either zero.
    fn maximum(self, other: Self) -> Self;
    fn minimum(self, other: Self) -> Self;
}

/// The transcendental functions, which only exist for floats (the builder rejects them on
/// integers, so integer kernels never need them).
pub trait Float: Num {
    const ONE: Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn powf(self, e: Self) -> Self;
}

macro_rules! float_num {
    ($t:ty) => {
        impl Num for $t {
            const ZERO: Self = 0.0;
            type Acc = f64;
            const ACC_ZERO: f64 = 0.0;
            fn acc_add(acc: f64, x: Self) -> f64 {
                acc + x as f64
            }
            fn acc_mul_add(acc: f64, a: Self, b: Self) -> f64 {
                acc + a as f64 * b as f64
            }
            fn acc_finish(acc: f64) -> Self {
                acc as $t
            }
            fn add(self, o: Self) -> Self {
                self + o
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn mul(self, o: Self) -> Self {
                self * o
            }
            fn div(self, o: Self) -> Self {
                self / o
            }
            fn neg(self) -> Self {
                -self
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn maximum(self, o: Self) -> Self {
                if self.is_nan() {
                    self
                } else if o.is_nan() {
                    o
                } else {
                    <$t>::max(self, o)
                }
            }
            fn minimum(self, o: Self) -> Self {
                if self.is_nan() {
                    self
                } else if o.is_nan() {
                    o
                } else {
                    <$t>::min(self, o)
                }
            }
        }

        impl Float for $t {
            const ONE: Self = 1.0;
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
        }
    };
}

float_num!(f32);
float_num!(f64);

use half::f16;

/// f16 arithmetic is done in f64 and rounded once to f16, which is the correctly rounded
/// f16 result (f64 holds every exact sum and product of two f16 values, and is wide enough
/// that rounding a quotient or a transcendental twice does not change it).
fn h(f: impl FnOnce(f64) -> f64, x: f16) -> f16 {
    f16::from_f64(f(x.to_f64()))
}

impl Num for f16 {
    const ZERO: Self = f16::ZERO;
    type Acc = f64;
    const ACC_ZERO: f64 = 0.0;
    fn acc_add(acc: f64, x: Self) -> f64 {
        acc + x.to_f64()
    }
    fn acc_mul_add(acc: f64, a: Self, b: Self) -> f64 {
        acc + a.to_f64() * b.to_f64()
    }
    fn acc_finish(acc: f64) -> Self {
        f16::from_f64(acc)
    }
    fn add(self, o: Self) -> Self {
        h(|x| x + o.to_f64(), self)
    }
    fn sub(self, o: Self) -> Self {
        h(|x| x - o.to_f64(), self)
    }
    fn mul(self, o: Self) -> Self {
        h(|x| x * o.to_f64(), self)
    }
    fn div(self, o: Self) -> Self {
        h(|x| x / o.to_f64(), self)
    }
    fn neg(self) -> Self {
        -self
    }
    fn abs(self) -> Self {
        h(f64::abs, self)
    }
    fn maximum(self, o: Self) -> Self {
        if self.is_nan() {
            self
        } else if o.is_nan() {
            o
        } else {
            h(|x| x.max(o.to_f64()), self)
        }
    }
    fn minimum(self, o: Self) -> Self {
        if self.is_nan() {
            self
        } else if o.is_nan() {
            o
        } else {
            h(|x| x.min(o.to_f64()), self)
        }
    }
}

impl Float for f16 {
    const ONE: Self = f16::ONE;
    fn exp(self) -> Self {
        h(f64::exp, self)
    }
    fn ln(self) -> Self {
        h(f64::ln, self)
    }
    fn sqrt(self) -> Self {
        h(f64::sqrt, self)
    }
    fn tanh(self) -> Self {
        h(f64::tanh, self)
    }
    fn powf(self, e: Self) -> Self {
        h(|x| x.powf(e.to_f64()), self)
    }
}

macro_rules! int_num {
    ($t:ty, $abs:expr) => {
        impl Num for $t {
            const ZERO: Self = 0;
            type Acc = $t;
            const ACC_ZERO: $t = 0;
            fn acc_add(acc: $t, x: Self) -> $t {
                acc.wrapping_add(x)
            }
            fn acc_mul_add(acc: $t, a: Self, b: Self) -> $t {
                acc.wrapping_add(a.wrapping_mul(b))
            }
            fn acc_finish(acc: $t) -> Self {
                acc
            }
            fn add(self, o: Self) -> Self {
                self.wrapping_add(o)
            }
            fn sub(self, o: Self) -> Self {
                self.wrapping_sub(o)
            }
            fn mul(self, o: Self) -> Self {
                self.wrapping_mul(o)
            }
            /// WGSL defines `x / 0` as `x` and `MIN / -1` as `MIN` rather than trapping.
            fn div(self, o: Self) -> Self {
                if o == 0 {
                    self
                } else {
                    self.wrapping_div(o)
                }
            }
            fn neg(self) -> Self {
                self.wrapping_neg()
            }
            fn abs(self) -> Self {
                let f: fn($t) -> $t = $abs;
                f(self)
            }
            fn maximum(self, o: Self) -> Self {
                Ord::max(self, o)
            }
            fn minimum(self, o: Self) -> Self {
                Ord::min(self, o)
            }
        }
    };
}

int_num!(i32, i32::wrapping_abs);
// `u32` has no negative values, so `abs` is the identity.
int_num!(u32, |x| x);

/// An op reached a dtype the builder should have rejected. Reported as an error rather than
/// a panic so that a gap in the builder's checks fails one run instead of the process.
pub fn unsupported(op: &str, dtype: crate::DType) -> Error {
    Error::Unsupported {
        backend: "cpu (reference)".to_string(),
        what: format!("`{op}` on {dtype}"),
    }
}

/// Runs `$body` with `$T` bound to the Rust type of `$dtype`.
macro_rules! by_dtype {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            crate::DType::F16 => {
                type $T = half::f16;
                $body
            }
            crate::DType::F32 => {
                type $T = f32;
                $body
            }
            crate::DType::F64 => {
                type $T = f64;
                $body
            }
            crate::DType::I32 => {
                type $T = i32;
                $body
            }
            crate::DType::U32 => {
                type $T = u32;
                $body
            }
        }
    };
}

/// Like `by_dtype!` for float-only kernels; integer dtypes become an `Unsupported` error
/// naming `$op`.
macro_rules! by_float_dtype {
    ($dtype:expr, $op:expr, $T:ident => $body:expr) => {
        match $dtype {
            crate::DType::F16 => {
                type $T = half::f16;
                $body
            }
            crate::DType::F32 => {
                type $T = f32;
                $body
            }
            crate::DType::F64 => {
                type $T = f64;
                $body
            }
            other => Err($crate::ops::num::unsupported($op, other)),
        }
    };
}
