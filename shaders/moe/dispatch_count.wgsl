// MoE dispatch, pass 1 of 4: per tile of 256 routing choices, each choice's rank among
// the earlier choices of the same expert in its tile, and the tile's count per expert.
// Scratch layout (u32): [0, n) rank in tile; [n, n + tiles * E) count per (tile, expert),
// turned into the tile's base rank by the scan pass.
const TILE: u32 = 256u;
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> experts: array<u32>;
@group(0) @binding(1) var<storage, read_write> scratch: array<u32>;
// info: [n, E, block, capacity, rows, tiles, highest gate]
@group(0) @binding(2) var<storage, read> info: array<u32>;

var<workgroup> tile_experts: array<u32, TILE>;

@compute @workgroup_size(TILE)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let tile = wg.x + wg.y * nwg.x;
    let n = info[0];
    let num_experts = info[1];
    if tile >= info[5] {
        return;
    }
    let a = tile * TILE + lid;
    var e = NONE;
    if a < n && experts[a] < num_experts {
        e = experts[a];
    }
    tile_experts[lid] = e;
    let counts = n + tile * num_experts;
    for (var x = lid; x < num_experts; x += TILE) {
        scratch[counts + x] = 0u;
    }
    workgroupBarrier();
    storageBarrier();
    if e == NONE {
        return;
    }
    var before = 0u;
    var after = 0u;
    for (var j = 0u; j < TILE; j++) {
        if tile_experts[j] == e {
            if j < lid {
                before += 1u;
            } else if j > lid {
                after += 1u;
            }
        }
    }
    scratch[a] = before;
    // The expert's last choice in the tile knows the tile's count.
    if after == 0u {
        scratch[counts + e] = before + 1u;
    }
}
