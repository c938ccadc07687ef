// Weight gradient of the grouped matmul: dw[e] = sum over the rows p of e's blocks of
// x[p]^T · dy[p], [E, K, N]. A workgroup owns a 64 x 64 tile of one expert's dw, walks
// the block list for that expert's blocks, and stages 16 rows of x and dy at a time;
// each of its 256 threads owns 4 x 4 outputs. The sum runs over rows in order, so it is
// deterministic. Where an adapter limits loop iterations per invocation, the block list
// is cut into info[8] spans of info[7] blocks: span s writes its sums at s · E·K·N (a
// scratch buffer then), and a sum over the spans follows.
const TK: u32 = 64u;
const TN: u32 = 64u;
const R: u32 = 16u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> block_experts: array<u32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
// info: [P, K, N, E, block, k tiles, n tiles, blocks per span, spans]
@group(0) @binding(4) var<storage, read> info: array<u32>;

var<workgroup> xs: array<f32, 1024>; // R x TK
var<workgroup> ds: array<f32, 1024>; // R x TN

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let rows = info[0];
    let k = info[1];
    let n = info[2];
    let block = info[4];
    let k_tiles = info[5];
    let n_tiles = info[6];
    let spans = info[8];
    let tile = (wg.x + wg.y * nwg.x) / spans;
    let span = (wg.x + wg.y * nwg.x) % spans;
    if tile >= info[3] * k_tiles * n_tiles {
        return;
    }
    let e = tile / (k_tiles * n_tiles);
    let k0 = ((tile / n_tiles) % k_tiles) * TK;
    let n0 = (tile % n_tiles) * TN;
    let tx = lid % 16u;
    let ty = lid / 16u;
    // Rows ty * 4 .. ty * 4 + 3 of the tile (of K), four columns (of N) each; unrolled
    // by hand because naga keeps loops, and an indexed array would live in slow memory.
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
    let first = span * info[7];
    for (var b = first; b < min(rows / block, first + info[7]); b++) {
        if block_experts[b] != e {
            continue;
        }
        let end = (b + 1u) * block;
        for (var r0 = b * block; r0 < end; r0 += R) {
            for (var i = lid; i < R * TK; i += 256u) {
                let r = r0 + i / TK;
                let c = k0 + i % TK;
                var v = 0.0;
                if r < end && c < k {
                    v = x[r * k + c];
                }
                xs[i] = v;
            }
            for (var i = lid; i < R * TN; i += 256u) {
                let r = r0 + i / TN;
                let c = n0 + i % TN;
                var v = 0.0;
                if r < end && c < n {
                    v = dy[r * n + c];
                }
                ds[i] = v;
            }
            workgroupBarrier();
            for (var rr = 0u; rr < R; rr++) {
                let d = vec4<f32>(
                    ds[rr * TN + tx * 4u],
                    ds[rr * TN + tx * 4u + 1u],
                    ds[rr * TN + tx * 4u + 2u],
                    ds[rr * TN + tx * 4u + 3u],
                );
                let a = rr * TK + ty * 4u;
                acc0 += xs[a] * d;
                acc1 += xs[a + 1u] * d;
                acc2 += xs[a + 2u] * d;
                acc3 += xs[a + 3u] * d;
            }
            workgroupBarrier();
        }
    }
    let c = n0 + tx * 4u;
    let at = span * info[3] * k * n;
    store(at, e, k0 + ty * 4u, c, acc0);
    store(at, e, k0 + ty * 4u + 1u, c, acc1);
    store(at, e, k0 + ty * 4u + 2u, c, acc2);
    store(at, e, k0 + ty * 4u + 3u, c, acc3);
}

// Writes the part of row kk of dw[e] that lies inside [K, N], `at` into dw.
fn store(at: u32, e: u32, kk: u32, c: u32, v: vec4<f32>) {
    let k = info[1];
    let n = info[2];
    if kk >= k {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if c + j < n {
            dw[at + (e * k + kk) * n + c + j] = v[j];
        }
    }
}
