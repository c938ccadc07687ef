// Weight gradient of the grouped matmul: dw[e] = sum over the rows p of e's blocks of
// x[p]^T · dy[p], [E, K, N]. A workgroup owns a 64 x 64 tile of one expert's dw, walks
// the block list for that expert's blocks, and stages 16 rows of x and dy at a time;
// each of its 256 threads owns 4 x 4 outputs. The sum runs over rows in order, so it is
// deterministic.
const TK: u32 = 64u;
const TN: u32 = 64u;
const R: u32 = 16u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> block_experts: array<u32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
// info: [P, K, N, E, block, k tiles, n tiles]
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
    let tile = wg.x + wg.y * nwg.x;
    if tile >= info[3] * k_tiles * n_tiles {
        return;
    }
    let e = tile / (k_tiles * n_tiles);
    let k0 = ((tile / n_tiles) % k_tiles) * TK;
    let n0 = (tile % n_tiles) * TN;
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc: array<f32, 16>;
    for (var b = 0u; b < rows / block; b++) {
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
                for (var i = 0u; i < 4u; i++) {
                    let a = xs[rr * TK + ty * 4u + i];
                    for (var j = 0u; j < 4u; j++) {
                        acc[i * 4u + j] += a * ds[rr * TN + tx * 4u + j];
                    }
                }
            }
            workgroupBarrier();
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let kk = k0 + ty * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let c = n0 + tx * 4u + j;
            if kk < k && c < n {
                dw[(e * k + kk) * n + c] = acc[i * 4u + j];
            }
        }
    }
}
