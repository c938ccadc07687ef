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
    // Rows ty, ty + 16, ty + 32, ty + 48 of the tile, four columns each; written out by
    // hand because naga keeps loops, and an indexed array would live in slow memory.
    var acc0 = vec4<f32>();
    var acc1 = vec4<f32>();
    var acc2 = vec4<f32>();
    var acc3 = vec4<f32>();
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
                if ty < BM {
                    acc0 += xs[ty * BK + kk] * b;
                }
                if ty + 16u < BM {
                    acc1 += xs[(ty + 16u) * BK + kk] * b;
                }
                if ty + 32u < BM {
                    acc2 += xs[(ty + 32u) * BK + kk] * b;
                    acc3 += xs[(ty + 48u) * BK + kk] * b;
                }
            }
            workgroupBarrier();
        }
    }
    if ty < BM {
        store(row0 + ty, col0 + tx * 4u, n, acc0);
    }
    if ty + 16u < BM {
        store(row0 + ty + 16u, col0 + tx * 4u, n, acc1);
    }
    if ty + 32u < BM {
        store(row0 + ty + 32u, col0 + tx * 4u, n, acc2);
        store(row0 + ty + 48u, col0 + tx * 4u, n, acc3);
    }
}

// Writes the columns of `v` that lie inside the n columns of row r.
fn store(r: u32, c: u32, n: u32, v: vec4<f32>) {
    for (var j = 0u; j < 4u; j++) {
        if c + j < n {
            out[r * n + c + j] = v[j];
        }
    }
}
