//! The float arithmetic the physics references are written in, once for `f64` and `f32`,
//! with the small 3-vector algebra they need. Two-dimensional systems use the first two
//! components and keep the third at zero, which adds only exact zeros to every sum.

use std::ops::{Add, Div, Mul, Neg, Sub};

use crate::Element;

/// `f32` or `f64`.
pub trait Real:
    Element
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
{
    /// `0`.
    const ZERO: Self;
    /// `1`.
    const ONE: Self;
    /// The gap between 1 and the next number.
    const EPSILON: Self;
    /// The value of an `f32` setting.
    fn lit(v: f32) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Cube root.
    fn cbrt(self) -> Self;
    /// `atan2(self, x)`.
    fn atan2(self, x: Self) -> Self;
    /// Sine.
    fn sin(self) -> Self;
    /// Cosine.
    fn cos(self) -> Self;
    /// Not NaN or infinite.
    fn finite(self) -> bool;
    /// The smaller (the second when equal, as `min` in WGSL and Warp).
    fn min(self, other: Self) -> Self {
        if self < other {
            self
        } else {
            other
        }
    }
    /// The absolute value.
    fn abs(self) -> Self {
        if self < Self::ZERO {
            -self
        } else {
            self
        }
    }
}

macro_rules! real {
    ($t:ty) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const EPSILON: Self = <$t>::EPSILON;
            fn lit(v: f32) -> Self {
                v as $t
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn cbrt(self) -> Self {
                <$t>::cbrt(self)
            }
            fn atan2(self, x: Self) -> Self {
                <$t>::atan2(self, x)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn finite(self) -> bool {
                self.is_finite()
            }
        }
    };
}
real!(f32);
real!(f64);

/// A 3-vector.
pub type V3<R> = [R; 3];

/// `a + b`.
pub fn add<R: Real>(a: V3<R>, b: V3<R>) -> V3<R> {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2]]
}

/// `a − b`.
pub fn sub<R: Real>(a: V3<R>, b: V3<R>) -> V3<R> {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

/// `a · s`.
pub fn scale<R: Real>(a: V3<R>, s: R) -> V3<R> {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// `a · b`, summed left to right (as the kernels do: no `dot` builtin, no fused terms).
pub fn dot<R: Real>(a: V3<R>, b: V3<R>) -> R {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

/// `|a|`.
pub fn length<R: Real>(a: V3<R>) -> R {
    dot(a, a).sqrt()
}

/// The zero vector.
pub fn zero<R: Real>() -> V3<R> {
    [R::ZERO; 3]
}
