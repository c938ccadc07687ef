//! Conversions between [`TensorData`] and `ndarray` arrays (feature `ndarray`), for apps
//! that prepare inputs or read results with ndarray. Both directions copy (a
//! `TensorData` owns row-major storage; an array may be strided or in another layout).
//!
//! ```
//! use gradflux_core::TensorData;
//! let a = ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]);
//! let t = TensorData::from(a.clone());
//! let back: ndarray::ArrayD<f32> = (&t).try_into()?;
//! assert_eq!(back, a.into_dyn());
//! # Ok::<(), gradflux_core::Error>(())
//! ```

use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};

use crate::{Element, Error, Result, Shape, TensorData};

impl<T: Element, S: Data<Elem = T>, D: Dimension> From<ArrayBase<S, D>> for TensorData {
    /// The array's elements in row-major (logical) order, whatever its memory layout.
    fn from(a: ArrayBase<S, D>) -> TensorData {
        let shape = Shape::new(a.shape().to_vec());
        let values: Vec<T> = a.iter().copied().collect();
        TensorData::new(shape, values).expect("an array's shape matches its element count")
    }
}

impl<T: Element> TryFrom<&TensorData> for ArrayD<T> {
    type Error = Error;

    /// An array of `T`; a tensor of another dtype is an error naming both.
    fn try_from(t: &TensorData) -> Result<ArrayD<T>> {
        let values = t.values::<T>()?.to_vec();
        ArrayD::from_shape_vec(IxDyn(t.shape().dims()), values).map_err(|e| Error::Shape {
            op: "ndarray",
            detail: e.to_string(),
        })
    }
}
