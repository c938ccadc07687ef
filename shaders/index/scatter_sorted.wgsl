// scatter_add by sorted indices: the index positions j are sorted by (idx[j], j) with a
// bitonic network, each output row t finds its run of positions by binary search, and
// each output element sums its run in order of j — the order of the direct walk
// (scatter_add.wgsl), so the results are the same bits, in O(n log² n + outputs · run)
// instead of O(outputs · n). No atomics. Every entry point binds 3 buffers then `info`,
// except lane_gather_sum (4 then `info`).
alias T = f32;

override WG: u32 = 256u;

const NONE: u32 = 0xffffffffu;

// sort_init / sort_pass: perm holds positions (NONE past n), sorted in place.
@group(0) @binding(0) var<storage, read> so_idx: array<u32>;
@group(0) @binding(1) var<storage, read_write> so_perm: array<u32>;
@group(0) @binding(2) var<storage, read> so_unused: array<u32>;
// [n, padded length P, k, j]: pass (k, j) of the network
@group(0) @binding(3) var<storage, read> so_info: array<u32>;

fn linear(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

@compute @workgroup_size(WG)
fn sort_init(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear(gid, nwg);
    if i < so_info[1] {
        so_perm[i] = select(NONE, i, i < so_info[0]);
    }
}

// Whether position a sorts before position b: by index, then by position; NONE last.
fn before(a: u32, b: u32) -> bool {
    if a == NONE {
        return false;
    }
    if b == NONE {
        return true;
    }
    let ka = so_idx[a];
    let kb = so_idx[b];
    return ka < kb || (ka == kb && a < b);
}

@compute @workgroup_size(WG)
fn sort_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = linear(gid, nwg);
    let l = i ^ so_info[3];
    if i >= so_info[1] || l <= i {
        return;
    }
    let a = so_perm[i];
    let b = so_perm[l];
    let ascending = (i & so_info[2]) == 0u;
    if before(b, a) == ascending {
        so_perm[i] = b;
        so_perm[l] = a;
    }
}

// bounds (one thread per row t ≤ dim): the first sorted position whose index is ≥ t,
// written after the P sorted positions of the same buffer.
@group(0) @binding(0) var<storage, read> bo_idx: array<u32>;
@group(0) @binding(1) var<storage, read_write> bo_perm: array<u32>;
@group(0) @binding(2) var<storage, read> bo_unused: array<u32>;
// [n, padded length P, dim]
@group(0) @binding(3) var<storage, read> bo_info: array<u32>;

@compute @workgroup_size(WG)
fn bounds(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = linear(gid, nwg);
    if t > bo_info[2] {
        return;
    }
    var lo = 0u;
    var hi = bo_info[0];
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if bo_idx[bo_perm[mid]] < t {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    bo_perm[bo_info[1] + t] = lo;
}

// gather_sum (one thread per output element): its row's run of positions, in order.
@group(0) @binding(0) var<storage, read> gs_src: array<T>;
@group(0) @binding(1) var<storage, read> gs_perm: array<u32>;
@group(0) @binding(2) var<storage, read_write> gs_out: array<T>;
// [numel, inner, n_idx, dim, P]: the runs' starts follow the P sorted positions
@group(0) @binding(3) var<storage, read> gs_info: array<u32>;

@compute @workgroup_size(WG)
fn gather_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear(gid, nwg);
    if id >= gs_info[0] {
        return;
    }
    let inner = gs_info[1];
    let n_idx = gs_info[2];
    let dim = gs_info[3];
    let row = (id / inner) % dim;
    let o = id / (inner * dim);
    let src_base = o * n_idx * inner + id % inner;
    let first = gs_perm[gs_info[4] + row];
    let last = gs_perm[gs_info[4] + row + 1u];
    var acc = T(0);
    for (var r = first; r < last; r++) {
        acc += gs_src[src_base + gs_perm[r] * inner];
    }
    gs_out[id] = acc;
}

// ---- scatter_along by sorted indices: every lane (o, i) of idx [outer, m, inner] has its
// own m indices, so each lane's positions are sorted by (idx, position) in its own span of
// P entries of perm (lane_sort_init / lane_sort_pass), and each output element finds its
// row's run in its lane by binary search and sums it in position order (lane_gather_sum):
// the order of scatter_along.wgsl's walk, in O(P log² P) per lane + O(log m + run) per
// output instead of O(m) per output.
@group(0) @binding(0) var<storage, read> ls_idx: array<u32>;
@group(0) @binding(1) var<storage, read_write> ls_perm: array<u32>;
@group(0) @binding(2) var<storage, read> ls_unused: array<u32>;
// [lanes, m, inner, P, k, j]
@group(0) @binding(3) var<storage, read> ls_info: array<u32>;

// Position j's index in lane `lane` (o · inner + i).
fn lane_key(lane: u32, j: u32) -> u32 {
    let inner = ls_info[2];
    return ls_idx[(lane / inner) * ls_info[1] * inner + j * inner + lane % inner];
}

fn lane_before(lane: u32, a: u32, b: u32) -> bool {
    if a == NONE {
        return false;
    }
    if b == NONE {
        return true;
    }
    let ka = lane_key(lane, a);
    let kb = lane_key(lane, b);
    return ka < kb || (ka == kb && a < b);
}

@compute @workgroup_size(WG)
fn lane_sort_init(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear(gid, nwg);
    let p = ls_info[3];
    if id < ls_info[0] * p {
        let j = id % p;
        ls_perm[id] = select(NONE, j, j < ls_info[1]);
    }
}

@compute @workgroup_size(WG)
fn lane_sort_pass(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear(gid, nwg);
    let p = ls_info[3];
    if id >= ls_info[0] * p {
        return;
    }
    let lane = id / p;
    let i = id % p;
    let l = i ^ ls_info[5];
    if l <= i {
        return;
    }
    let a = ls_perm[lane * p + i];
    let b = ls_perm[lane * p + l];
    let ascending = (i & ls_info[4]) == 0u;
    if lane_before(lane, b, a) == ascending {
        ls_perm[lane * p + i] = b;
        ls_perm[lane * p + l] = a;
    }
}

@group(0) @binding(0) var<storage, read> lg_src: array<T>;
@group(0) @binding(1) var<storage, read> lg_perm: array<u32>;
@group(0) @binding(2) var<storage, read_write> lg_out: array<T>;
@group(0) @binding(3) var<storage, read> lg_idx: array<u32>;
// [numel, m, inner, dim, P]
@group(0) @binding(4) var<storage, read> lg_info: array<u32>;

// The first of lane `lane`'s sorted positions whose index is ≥ t.
fn lane_lower_bound(lane: u32, t: u32) -> u32 {
    let m = lg_info[1];
    let inner = lg_info[2];
    let p = lg_info[4];
    let base = (lane / inner) * m * inner + lane % inner;
    var lo = 0u;
    var hi = m;
    while lo < hi {
        let mid = (lo + hi) / 2u;
        if lg_idx[base + lg_perm[lane * p + mid] * inner] < t {
            lo = mid + 1u;
        } else {
            hi = mid;
        }
    }
    return lo;
}

@compute @workgroup_size(WG)
fn lane_gather_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let id = linear(gid, nwg);
    if id >= lg_info[0] {
        return;
    }
    let m = lg_info[1];
    let inner = lg_info[2];
    let dim = lg_info[3];
    let p = lg_info[4];
    let row = (id / inner) % dim;
    let o = id / (inner * dim);
    let lane = o * inner + id % inner;
    let base = o * m * inner + id % inner;
    let first = lane_lower_bound(lane, row);
    let last = lane_lower_bound(lane, row + 1u);
    var acc = T(0);
    for (var r = first; r < last; r++) {
        acc += lg_src[base + lg_perm[lane * p + r] * inner];
    }
    lg_out[id] = acc;
}
