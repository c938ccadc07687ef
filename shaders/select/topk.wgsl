// One pass of top-k along an axis of x viewed as [outer, n, inner] (a row is one
// (outer, inner) pair). Each workgroup bitonic-sorts one chunk of C candidates of one row
// in workgroup memory, by rank descending and index ascending, and keeps the first
// `keep`. The first pass takes the row's positions as candidates; later passes take the
// survivors of the previous pass, so each pass divides a long row by C / keep. The last
// pass (one chunk per row) writes the values and indices.
// The host rewrites the `alias` line for the dtype and the line marked `@op` for the key.
// #import lib/float.wgsl
alias T = f32;

override C: u32 = 1024u;
override WG: u32 = 256u;
override FIRST: bool = true;
override LAST: bool = true;

// A position that holds no candidate: ranks below every real one.
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> values: array<T>;
@group(0) @binding(2) var<storage, read_write> indices: array<u32>;
@group(0) @binding(3) var<storage, read> cand_in: array<u32>;
@group(0) @binding(4) var<storage, read_write> cand_out: array<u32>;
// info: [rows, n, inner, k, len (candidates per row read), chunks per row, keep]
@group(0) @binding(5) var<storage, read> info: array<u32>;

var<workgroup> keys: array<u32, C>;
var<workgroup> ids: array<u32, C>;

fn key_of(v: T) -> u32 {
    return float_key(v); // @op
}

@compute @workgroup_size(WG)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) t: u32,
) {
    let w = wg.x + wg.y * nwg.x;
    let chunks = info[5];
    if w >= info[0] * chunks {
        return;
    }
    let n = info[1];
    let inner = info[2];
    let k = info[3];
    let len = info[4];
    let keep = info[6];
    let row = w / chunks;
    let chunk = w % chunks;
    let base = (row / inner) * n * inner + row % inner;

    for (var e = t; e < C; e += WG) {
        let p = chunk * C + e;
        var id = NONE;
        if p < len {
            if FIRST {
                id = p;
            } else {
                id = cand_in[row * len + p];
            }
        }
        var key = 0u;
        if id != NONE {
            key = key_of(x[base + id * inner]);
        }
        keys[e] = key;
        ids[e] = id;
    }
    workgroupBarrier();

    // Bitonic sort, descending: blocks whose bit `size` is clear sort descending.
    for (var size = 2u; size <= C; size <<= 1u) {
        for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (var e = t; e < C / 2u; e += WG) {
                let lo = 2u * e - (e & (stride - 1u));
                let hi = lo + stride;
                let descending = (lo & size) == 0u;
                if ranks_before(keys[hi], ids[hi], keys[lo], ids[lo]) == descending {
                    let k_lo = keys[lo];
                    let i_lo = ids[lo];
                    keys[lo] = keys[hi];
                    ids[lo] = ids[hi];
                    keys[hi] = k_lo;
                    ids[hi] = i_lo;
                }
            }
            workgroupBarrier();
        }
    }

    if LAST {
        let out_base = (row / inner) * k * inner + row % inner;
        for (var e = t; e < k; e += WG) {
            let id = ids[e];
            values[out_base + e * inner] = x[base + id * inner];
            indices[out_base + e * inner] = id;
        }
    } else {
        let out_len = chunks * keep;
        for (var e = t; e < keep; e += WG) {
            cand_out[row * out_len + chunk * keep + e] = ids[e];
        }
    }
}
