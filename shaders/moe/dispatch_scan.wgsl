// MoE dispatch, pass 2 of 4 (one workgroup): per expert, the tile counts become each
// tile's base rank, the expert's count, dropped and kept choices; then prefix sums over
// the experts give the padded segment offsets and the unpadded segment starts.
// Scratch layout (u32): [0, n) rank in tile; [n, n + tiles * E) per (tile, expert);
// then E + 1 unpadded segment starts (for the highest-gate pass).
const WG: u32 = 256u;

@group(0) @binding(0) var<storage, read_write> counts: array<u32>;
@group(0) @binding(1) var<storage, read_write> dropped: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> scratch: array<u32>;
// info: [n, E, block, capacity, rows, tiles, highest gate]
@group(0) @binding(4) var<storage, read> info: array<u32>;

var<workgroup> padded_part: array<u32, WG>;
var<workgroup> count_part: array<u32, WG>;

fn padded(count: u32, capacity: u32, block: u32) -> u32 {
    return (min(count, capacity) + block - 1u) / block * block;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32) {
    let n = info[0];
    let num_experts = info[1];
    let block = info[2];
    let capacity = info[3];
    let tiles = info[5];
    let starts = n + tiles * num_experts;
    // Each thread owns a contiguous range of experts.
    let per = (num_experts + WG - 1u) / WG;
    let lo = min(lid * per, num_experts);
    let hi = min(lo + per, num_experts);
    var pad_sum = 0u;
    var count_sum = 0u;
    for (var e = lo; e < hi; e++) {
        var run = 0u;
        for (var t = 0u; t < tiles; t++) {
            let at = n + t * num_experts + e;
            let c = scratch[at];
            scratch[at] = run;
            run += c;
        }
        counts[e] = run;
        dropped[e] = run - min(run, capacity);
        pad_sum += padded(run, capacity, block);
        count_sum += run;
    }
    padded_part[lid] = pad_sum;
    count_part[lid] = count_sum;
    workgroupBarrier();
    if lid == 0u {
        var p = 0u;
        var c = 0u;
        for (var i = 0u; i < WG; i++) {
            let dp = padded_part[i];
            let dc = count_part[i];
            padded_part[i] = p;
            count_part[i] = c;
            p += dp;
            c += dc;
        }
        offsets[num_experts] = p;
        scratch[starts + num_experts] = c;
    }
    workgroupBarrier();
    var off = padded_part[lid];
    var seg = count_part[lid];
    for (var e = lo; e < hi; e++) {
        offsets[e] = off;
        scratch[starts + e] = seg;
        off += padded(counts[e], capacity, block);
        seg += counts[e];
    }
}
