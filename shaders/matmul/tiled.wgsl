// Batched matmul C[b] = A[b] x B[b], 16x16 output tiles with both operand tiles staged in
// workgroup memory. Batch dimensions broadcast through per-operand batch strides (0 where
// an operand is repeated). A correct portable kernel; the fast paths live beside it.
alias T = f32;

const TILE: u32 = 16u;
const MAX_RANK: u32 = 8u;

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<T>;
@group(0) @binding(2) var<storage, read_write> c: array<T>;
// info: [m, n, k, batches, tiles_m, tiles_n, batch_rank, 0,
//        batch dims[8], A batch strides[8], B batch strides[8]]
@group(0) @binding(3) var<storage, read> info: array<u32>;

var<workgroup> ta: array<array<T, TILE>, TILE>;
var<workgroup> tb: array<array<T, TILE>, TILE>;

@compute @workgroup_size(TILE, TILE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let w = wg.x + wg.y * nwg.x;
    let m = info[0];
    let n = info[1];
    let k = info[2];
    let tiles = info[4] * info[5];
    if w >= info[3] * tiles {
        return;
    }
    let batch = w / tiles;
    let tile = w % tiles;
    let row = (tile / info[5]) * TILE + lid.y;
    let col = (tile % info[5]) * TILE + lid.x;

    var rem = batch;
    var a_off = 0u;
    var b_off = 0u;
    let rank = info[6];
    for (var d = 0u; d < rank; d++) {
        let axis = rank - 1u - d;
        let dim = info[8u + axis];
        let coord = rem % dim;
        rem /= dim;
        a_off += coord * info[8u + MAX_RANK + axis];
        b_off += coord * info[8u + 2u * MAX_RANK + axis];
    }

    var acc = T(0);
    for (var t0 = 0u; t0 < k; t0 += TILE) {
        let ac = t0 + lid.x;
        var av = T(0);
        if row < m && ac < k {
            av = a[a_off + row * k + ac];
        }
        ta[lid.y][lid.x] = av;
        let br = t0 + lid.y;
        var bv = T(0);
        if br < k && col < n {
            bv = b[b_off + br * n + col];
        }
        tb[lid.y][lid.x] = bv;
        workgroupBarrier();
        for (var p = 0u; p < TILE; p++) {
            acc += ta[lid.y][p] * tb[p][lid.x];
        }
        workgroupBarrier();
    }
    if row < m && col < n {
        c[batch * m * n + row * n + col] = acc;
    }
}
