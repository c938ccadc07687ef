// Numpy broadcasting through per-operand strides, imported with
// `// #import lib/broadcast.wgsl` by the elementwise kernels.
// #requires info: the importer declares `info: array<u32>` laid out as
// [numel, rank, contiguous mask, dims[MAX_RANK], strides of operand 0[MAX_RANK], ...],
// so this file validates inside its importers, not alone.

const MAX_RANK: u32 = 8u;

// Element offset of operand `k` for output element `i` (the operand's own index when bit
// `k` of the contiguous mask says it has the output's shape).
fn offset(i: u32, k: u32) -> u32 {
    if (info[2] & (1u << k)) != 0u {
        return i;
    }
    var rem = i;
    var off = 0u;
    let rank = info[1];
    for (var d = 0u; d < rank; d++) {
        let axis = rank - 1u - d;
        let dim = info[3u + axis];
        off += (rem % dim) * info[3u + MAX_RANK * (k + 1u) + axis];
        rem /= dim;
    }
    return off;
}
