// Grouped matmul: out[p] = x[p] · w[e] for every row p of x [P, K], with
// e = block_experts[p / block] and w [E, K, N] (or [E, N, K] read transposed). A
// workgroup computes a BM x 64 output tile whose rows share one expert (BM divides the
// block); each of its 256 threads owns up to 4 rows x 4 columns. Blocks whose expert is
// E or more (padding past the rows in use) are written as zeros.
override BM: u32 = 64u;
override TRANSPOSE_B: bool = false;
const BN: u32 = 64u;
const BK: u32 = 16u;

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> block_experts: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// info: [P, K, N, E, block, column tiles]
@group(0) @binding(4) var<storage, read> info: array<u32>;

var<workgroup> xs: array<f32, 1024>; // BM x BK, BM <= 64
var<workgroup> ws: array<f32, 1024>; // BK x BN

@compute @workgroup_size(256)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let rows = info[0];
    let k = info[1];
    let n = info[2];
    let col_tiles = info[5];
    let tile = wg.x + wg.y * nwg.x;
    if tile >= (rows / BM) * col_tiles {
        return;
    }
    let row0 = (tile / col_tiles) * BM;
    let col0 = (tile % col_tiles) * BN;
    let e = block_experts[row0 / info[4]];
    let tx = lid % 16u;
    let ty = lid / 16u;
    var acc: array<f32, 16>;
    if e < info[3] {
        for (var k0 = 0u; k0 < k; k0 += BK) {
            for (var i = lid; i < BM * BK; i += 256u) {
                let gk = k0 + i % BK;
                var v = 0.0;
                if gk < k {
                    v = x[(row0 + i / BK) * k + gk];
                }
                xs[i] = v;
            }
            for (var i = lid; i < BK * BN; i += 256u) {
                let gk = k0 + i / BN;
                let gc = col0 + i % BN;
                var v = 0.0;
                if gk < k && gc < n {
                    if TRANSPOSE_B {
                        v = w[(e * n + gc) * k + gk];
                    } else {
                        v = w[(e * k + gk) * n + gc];
                    }
                }
                ws[i] = v;
            }
            workgroupBarrier();
            for (var kk = 0u; kk < BK; kk++) {
                let b = vec4<f32>(
                    ws[kk * BN + tx * 4u],
                    ws[kk * BN + tx * 4u + 1u],
                    ws[kk * BN + tx * 4u + 2u],
                    ws[kk * BN + tx * 4u + 3u],
                );
                for (var i = 0u; i < 4u; i++) {
                    let r = ty + 16u * i;
                    if r < BM {
                        let a = xs[r * BK + kk];
                        acc[i * 4u] += a * b.x;
                        acc[i * 4u + 1u] += a * b.y;
                        acc[i * 4u + 2u] += a * b.z;
                        acc[i * 4u + 3u] += a * b.w;
                    }
                }
            }
            workgroupBarrier();
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let r = ty + 16u * i;
        if r < BM {
            for (var j = 0u; j < 4u; j++) {
                let c = col0 + tx * 4u + j;
                if c < n {
                    out[(row0 + r) * n + c] = acc[i * 4u + j];
                }
            }
        }
    }
}
