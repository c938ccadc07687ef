//! Data movement: reshape, permute, slice, concat and broadcast. None of these do
//! arithmetic, so they work on any dtype and copy values bit for bit.

use crate::{Element, Result, Storage, TensorData, TensorType};

use crate::ops::strided::{broadcast_offsets, gather, strided_offsets};

/// Row-major data does not change under a reshape, so only the shape is replaced.
pub fn reshape(x: &TensorData, out: &TensorType) -> Result<TensorData> {
    TensorData::from_storage(out.shape.clone(), x.storage().clone())
}

/// Output axis `i` walks input axis `perm[i]`, i.e. with that axis's stride.
pub fn permute(perm: &[usize], x: &TensorData, out: &TensorType) -> Result<TensorData> {
    let strides = x.shape().strides();
    let permuted: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
    let offsets = strided_offsets(out.shape.dims(), &permuted);
    gather_through(x, &offsets, out)
}

/// `x` repeated along its size-1 (or missing leading) axes to `out.shape`.
pub fn broadcast_to(x: &TensorData, out: &TensorType) -> Result<TensorData> {
    let offsets = broadcast_offsets(x.shape(), &out.shape);
    gather_through(x, &offsets, out)
}

/// Output index `k` along `axis` reads input index `start + k * step`; the output length
/// comes from the node, which already accounts for the range's end.
pub fn slice(
    axis: usize,
    start: usize,
    step: usize,
    x: &TensorData,
    out: &TensorType,
) -> Result<TensorData> {
    let (outer, len, inner) = x.shape().split_at_axis(axis);
    let out_len = out.shape.dims()[axis];
    let mut offsets = Vec::with_capacity(out.shape.numel());
    for o in 0..outer {
        for k in 0..out_len {
            let row = (o * len + start + k * step) * inner;
            offsets.extend(row..row + inner);
        }
    }
    gather_through(x, &offsets, out)
}

/// For each outer index, the inputs' `[len_t, inner]` blocks follow one another.
pub fn concat(axis: usize, xs: &[&TensorData], out: &TensorType) -> Result<TensorData> {
    let storage = by_dtype!(out.dtype, T => {
        let parts = xs
            .iter()
            .map(|x| Ok((x.values::<T>()?, x.shape().split_at_axis(axis))))
            .collect::<Result<Vec<_>>>()?;
        let (outer, _, _) = out.shape.split_at_axis(axis);
        let mut values: Vec<T> = Vec::with_capacity(out.shape.numel());
        for o in 0..outer {
            for (v, (_, len, inner)) in &parts {
                let block = len * inner;
                values.extend_from_slice(&v[o * block..(o + 1) * block]);
            }
        }
        T::wrap(values)
    });
    TensorData::from_storage(out.shape.clone(), storage)
}

fn gather_through(x: &TensorData, offsets: &[usize], out: &TensorType) -> Result<TensorData> {
    let storage = match x.storage() {
        Storage::F16(v) => Storage::F16(gather(v, offsets)),
        Storage::F32(v) => Storage::F32(gather(v, offsets)),
        Storage::F64(v) => Storage::F64(gather(v, offsets)),
        Storage::I32(v) => Storage::I32(gather(v, offsets)),
        Storage::U32(v) => Storage::U32(gather(v, offsets)),
    };
    TensorData::from_storage(out.shape.clone(), storage)
}
