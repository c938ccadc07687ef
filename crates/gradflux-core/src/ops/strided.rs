//! Strided index walks: the one piece of addressing that broadcasting, permutation and
//! batched matmul share, so each of those is a gather through a list of offsets.

use crate::Shape;

/// The offset `sum(index[d] * strides[d])` of every index of `dims`, in row-major order.
///
/// Returned as a vector rather than an iterator because callers zip it with several
/// operands, and reference-backend sizes are small.
pub fn strided_offsets(dims: &[usize], strides: &[usize]) -> Vec<usize> {
    debug_assert_eq!(dims.len(), strides.len());
    let n: usize = dims.iter().product();
    let mut offsets = Vec::with_capacity(n);
    let mut index = vec![0usize; dims.len()];
    let mut offset = 0usize;
    for _ in 0..n {
        offsets.push(offset);
        // Odometer increment: bump the last axis, carrying into earlier ones.
        for d in (0..dims.len()).rev() {
            index[d] += 1;
            offset += strides[d];
            if index[d] < dims[d] {
                break;
            }
            offset -= strides[d] * dims[d];
            index[d] = 0;
        }
    }
    offsets
}

/// Where each element of `target` reads from a tensor of shape `source` under numpy
/// broadcasting.
pub fn broadcast_offsets(source: &Shape, target: &Shape) -> Vec<usize> {
    strided_offsets(target.dims(), &source.broadcast_strides(target))
}

/// Gathers `data` through `offsets`.
pub fn gather<T: Copy>(data: &[T], offsets: &[usize]) -> Vec<T> {
    offsets.iter().map(|&o| data[o]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_row_major_with_arbitrary_strides() {
        // A [2, 3] view of a transposed [3, 2] buffer.
        assert_eq!(strided_offsets(&[2, 3], &[1, 2]), vec![0, 2, 4, 1, 3, 5]);
        assert_eq!(strided_offsets(&[], &[]), vec![0]);
        assert!(strided_offsets(&[2, 0, 3], &[0, 3, 1]).is_empty());
    }

    #[test]
    fn broadcast_repeats_stretched_axes() {
        let src = Shape::from([3, 1]);
        let dst = Shape::from([2, 3, 2]);
        assert_eq!(
            broadcast_offsets(&src, &dst),
            vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]
        );
    }
}
