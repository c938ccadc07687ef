//! Host-side tensors: what goes into `run` and what comes back.

use crate::{DType, Element, Error, Result, Shape};

/// Untyped element storage; the variant is the dtype.
#[derive(Clone, Debug, PartialEq)]
pub enum Storage {
    /// [`DType::F16`] elements.
    F16(Vec<half::f16>),
    /// [`DType::F32`] elements.
    F32(Vec<f32>),
    /// [`DType::F64`] elements.
    F64(Vec<f64>),
    /// [`DType::I32`] elements.
    I32(Vec<i32>),
    /// [`DType::U32`] elements.
    U32(Vec<u32>),
}

impl Storage {
    /// The dtype the variant stands for.
    pub fn dtype(&self) -> DType {
        match self {
            Storage::F16(_) => DType::F16,
            Storage::F32(_) => DType::F32,
            Storage::F64(_) => DType::F64,
            Storage::I32(_) => DType::I32,
            Storage::U32(_) => DType::U32,
        }
    }

    /// Number of elements (not bytes).
    pub fn len(&self) -> usize {
        match self {
            Storage::F16(v) => v.len(),
            Storage::F32(v) => v.len(),
            Storage::F64(v) => v.len(),
            Storage::I32(v) => v.len(),
            Storage::U32(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Zero-filled storage of a dtype.
    pub fn zeros(dtype: DType, len: usize) -> Storage {
        match dtype {
            DType::F16 => Storage::F16(vec![half::f16::ZERO; len]),
            DType::F32 => Storage::F32(vec![0.0; len]),
            DType::F64 => Storage::F64(vec![0.0; len]),
            DType::I32 => Storage::I32(vec![0; len]),
            DType::U32 => Storage::U32(vec![0; len]),
        }
    }

    /// Element `i` as f64 (exact for all supported dtypes).
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            Storage::F16(v) => v[i].to_f64(),
            Storage::F32(v) => v[i] as f64,
            Storage::F64(v) => v[i],
            Storage::I32(v) => v[i] as f64,
            Storage::U32(v) => v[i] as f64,
        }
    }

    /// The raw bytes, as a device buffer holds them (every wgpu target is little-endian).
    /// Borrowed, so uploading an input copies nothing on the host.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Storage::F16(v) => bytemuck::cast_slice(v),
            Storage::F32(v) => bytemuck::cast_slice(v),
            Storage::F64(v) => bytemuck::cast_slice(v),
            Storage::I32(v) => bytemuck::cast_slice(v),
            Storage::U32(v) => bytemuck::cast_slice(v),
        }
    }

    /// Rebuilds storage from raw bytes (the inverse of [`Storage::as_bytes`]); the bytes
    /// need not be aligned.
    pub fn from_bytes(dtype: DType, bytes: &[u8]) -> Storage {
        fn read<T: bytemuck::Pod>(bytes: &[u8]) -> Vec<T> {
            let mut v = vec![T::zeroed(); bytes.len() / std::mem::size_of::<T>()];
            bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(bytes);
            v
        }
        match dtype {
            DType::F16 => Storage::F16(read(bytes)),
            DType::F32 => Storage::F32(read(bytes)),
            DType::F64 => Storage::F64(read(bytes)),
            DType::I32 => Storage::I32(read(bytes)),
            DType::U32 => Storage::U32(read(bytes)),
        }
    }
}

/// A tensor on the host: a shape and row-major data of one dtype.
///
/// ```
/// use gradflux_core::{TensorData, DType};
/// let t = TensorData::new([2, 2], vec![1.0f32, 2.0, 3.0, 4.0])?;
/// assert_eq!(t.dtype(), DType::F32);
/// assert_eq!(t.values::<f32>()?, &[1.0, 2.0, 3.0, 4.0]);
/// # Ok::<(), gradflux_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TensorData {
    shape: Shape,
    storage: Storage,
}

impl TensorData {
    /// Builds a tensor from a shape and matching data; the length must equal the element count.
    pub fn new<T: Element>(shape: impl Into<Shape>, values: Vec<T>) -> Result<Self> {
        Self::from_storage(shape.into(), T::wrap(values))
    }

    /// Builds a tensor from untyped storage; the length must equal the element count.
    pub fn from_storage(shape: Shape, storage: Storage) -> Result<Self> {
        if shape.numel() != storage.len() {
            return Err(Error::DataLength {
                numel: shape.numel(),
                len: storage.len(),
                shape,
            });
        }
        Ok(TensorData { shape, storage })
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(value: T) -> Self {
        TensorData {
            shape: Shape::scalar(),
            storage: T::wrap(vec![value]),
        }
    }

    /// A zero-filled tensor.
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Self {
        let shape = shape.into();
        let storage = Storage::zeros(dtype, shape.numel());
        TensorData { shape, storage }
    }

    /// The shape; its element count equals [`numel`](Self::numel).
    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    /// The element type, which is the storage's variant.
    pub fn dtype(&self) -> DType {
        self.storage.dtype()
    }

    /// The elements in row-major order, untyped.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Drops the shape and returns the row-major elements without copying.
    pub fn into_storage(self) -> Storage {
        self.storage
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.storage.len()
    }

    /// Borrows the values as `T`; an error names both dtypes if `T` is not the tensor's dtype.
    pub fn values<T: Element>(&self) -> Result<&[T]> {
        T::view(&self.storage).ok_or(Error::DType {
            op: "TensorData::values",
            expected: T::DTYPE.to_string(),
            got: self.dtype(),
        })
    }

    /// Every value converted to f64, whatever the dtype (handy for comparisons).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        (0..self.numel()).map(|i| self.storage.get_f64(i)).collect()
    }

    /// The same values in another dtype, converted on the host through f64 the way `as`
    /// converts (floats round to nearest, conversions to integers saturate). For preparing
    /// inputs, e.g. f16 data from f32; inside a graph use [`Graph::cast`](crate::Graph::cast).
    ///
    /// ```
    /// use gradflux_core::{DType, TensorData};
    /// let x = TensorData::new([3], vec![0.1f32, 1.0, 70000.0])?;
    /// let h = x.cast_to(DType::F16)?;
    /// assert_eq!(h.to_f64_vec(), vec![0.0999755859375, 1.0, f64::INFINITY]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn cast_to(&self, dtype: DType) -> Result<Self> {
        fn convert<T: Element>(s: &Storage) -> Storage {
            T::wrap((0..s.len()).map(|i| T::from_f64(s.get_f64(i))).collect())
        }
        let storage = match dtype {
            DType::F16 => convert::<half::f16>(&self.storage),
            DType::F32 => convert::<f32>(&self.storage),
            DType::F64 => convert::<f64>(&self.storage),
            DType::I32 => convert::<i32>(&self.storage),
            DType::U32 => convert::<u32>(&self.storage),
        };
        Self::from_storage(self.shape.clone(), storage)
    }

    /// The same data under another shape with the same element count.
    pub fn reshaped(mut self, shape: impl Into<Shape>) -> Result<Self> {
        let shape = shape.into();
        if shape.numel() != self.numel() {
            return Err(Error::DataLength {
                numel: shape.numel(),
                len: self.numel(),
                shape,
            });
        }
        self.shape = shape;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_must_match_shape() {
        let err = TensorData::new([2, 3], vec![0f32; 5]).unwrap_err();
        assert!(matches!(
            err,
            Error::DataLength {
                numel: 6,
                len: 5,
                ..
            }
        ));
    }

    #[test]
    fn bytes_round_trip() {
        let s = Storage::I32(vec![-1, 7, i32::MIN]);
        assert_eq!(Storage::from_bytes(DType::I32, s.as_bytes()), s);
    }
}
