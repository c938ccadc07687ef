// Squared distances between one point per thread and a tile of streamed points, for the
// kernels that compute costs on the fly (ot/point_softmin.wgsl and its gradient), imported
// with `// #import lib/point_tile.wgsl`.
// #requires p, q, WG: the importer declares `p` (its own points) and `q` (the streamed
// points), both arrays of T holding rows of d coordinates, and the `WG` override, so this
// file validates inside its importers, not alone.

// Streamed points per tile and coordinates per chunk of a tile.
const PT: u32 = 64u;
const PD: u32 = 8u;

var<workgroup> qtile: array<f32, 512>; // PT * PD

// |p_row − q_(q0 + jj)|² for jj < count (0 past it), walking the d coordinates PD at a
// time through workgroup memory. `prow` is the first coordinate of this thread's point;
// the whole workgroup calls it (it holds barriers).
fn tile_sq_dist(t: u32, prow: u32, q0: u32, count: u32, d: u32) -> array<f32, PT> {
    var dist: array<f32, PT>;
    for (var d0 = 0u; d0 < d; d0 += PD) {
        workgroupBarrier();
        for (var e = t; e < PT * PD; e += WG) {
            let jj = e / PD;
            let k = d0 + e % PD;
            var v = 0.0;
            if jj < count && k < d {
                v = f32(q[(q0 + jj) * d + k]);
            }
            qtile[e] = v;
        }
        workgroupBarrier();
        var pk: array<f32, PD>;
        for (var k = 0u; k < PD; k++) {
            if d0 + k < d {
                pk[k] = f32(p[prow + d0 + k]);
            }
        }
        for (var jj = 0u; jj < PT; jj++) {
            var acc = dist[jj];
            for (var k = 0u; k < PD; k++) {
                let diff = pk[k] - qtile[jj * PD + k];
                acc = fma(diff, diff, acc);
            }
            dist[jj] = acc;
        }
    }
    return dist;
}
