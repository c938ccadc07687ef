//! Element types. Every tensor carries one; ops check them when they are added to a graph.

use std::fmt;

/// The element type of a tensor.
///
/// `F32`, `I32` and `U32` run on every backend. `F64` runs on the CPU reference backend only:
/// it exists so gradients can be checked by finite differences without f32 round-off.
/// `F16` ([`half::f16`]) is a storage type for memory-bound and tensor-core work: every op
/// runs on it on the CPU backend (each result rounded once to f16); on wgpu it needs the
/// adapter's `SHADER_F16` feature and runs in `cast` and `matmul`/`linear` (which sum
/// in f32); cast to f32 for the rest.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// IEEE half precision ([`half::f16`]), 2 bytes.
    F16,
    /// IEEE single precision, 4 bytes.
    F32,
    /// IEEE double precision, 8 bytes; CPU backend only.
    F64,
    /// Signed 32-bit integer; arithmetic wraps.
    I32,
    /// Unsigned 32-bit integer; arithmetic wraps. Masks and indices use it.
    U32,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        match self {
            DType::F64 => 8,
            DType::F16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
        }
    }

    /// True for `F16`, `F32` and `F64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }

    /// True for `I32` and `U32`.
    pub fn is_int(self) -> bool {
        !self.is_float()
    }

    /// True for the types that have negative values.
    pub fn is_signed(self) -> bool {
        !matches!(self, DType::U32)
    }

    /// The WGSL spelling of the type (`f64` has none in core WGSL).
    pub fn wgsl_name(self) -> &'static str {
        match self {
            DType::F16 => "f16",
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::U32 => "u32",
        }
    }

    /// All dtypes, for tests that sweep them.
    pub const ALL: [DType; 5] = [DType::F16, DType::F32, DType::F64, DType::I32, DType::U32];
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wgsl_name())
    }
}

/// A Rust scalar type that maps to a [`DType`]; used by the typed accessors of
/// [`TensorData`](crate::TensorData).
pub trait Element: Copy + Send + Sync + PartialEq + fmt::Debug + 'static {
    /// The dtype of tensors holding this type.
    const DTYPE: DType;
    /// Wraps a vector of this type into untyped storage.
    fn wrap(values: Vec<Self>) -> crate::data::Storage;
    /// Borrows storage as a slice of this type, if the dtype matches.
    fn view(storage: &crate::data::Storage) -> Option<&[Self]>;
    /// Converts to f64 (exact for every value of every supported type).
    fn to_f64(self) -> f64;
    /// Converts from f64 the way `as` does (saturating for integers).
    fn from_f64(v: f64) -> Self;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(values: Vec<Self>) -> crate::data::Storage {
                crate::data::Storage::$variant(values)
            }
            fn view(storage: &crate::data::Storage) -> Option<&[Self]> {
                match storage {
                    crate::data::Storage::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
        }
    };
}

element!(f32, F32);

impl Element for half::f16 {
    const DTYPE: DType = DType::F16;
    fn wrap(values: Vec<Self>) -> crate::data::Storage {
        crate::data::Storage::F16(values)
    }
    fn view(storage: &crate::data::Storage) -> Option<&[Self]> {
        match storage {
            crate::data::Storage::F16(v) => Some(v),
            _ => None,
        }
    }
    fn to_f64(self) -> f64 {
        self.to_f64()
    }
    /// Rounds to nearest even, once (f64 to f16 directly, not through f32).
    fn from_f64(v: f64) -> Self {
        half::f16::from_f64(v)
    }
}
element!(f64, F64);
element!(i32, I32);
element!(u32, U32);
