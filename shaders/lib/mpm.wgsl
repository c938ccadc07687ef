// What the MLS-MPM kernels of both dimensions share, imported with
// `// #import lib/mpm.wgsl` (through lib/mpm2.wgsl in 2D, directly by physics/mpm3.wgsl):
// the layout of `info`, the state slots, the walls and the actuators. It declares the
// `info` binding (7) and the state's (0) that every MPM entry point uses.
// #requires DIM: the importer's dimension (2 or 3), which sizes the grid.
//
// `info` holds the whole system: a header (below), then its tables. Word 0 is the launch's
// mode: 0 works on the rollout's state (slot 0), 1 on a segment the backward rebuilds,
// where substep k reads slot (k mod ck) and writes the next slot.
// #import lib/rollout.wgsl

const H_N: u32 = 1u; // particles
const H_GRID: u32 = 2u; // nodes per axis
const H_CK: u32 = 3u;
const H_SUBSTEPS: u32 = 4u;
const H_DX: u32 = 5u;
const H_INV_DX: u32 = 6u;
const H_DT: u32 = 7u;
const H_MASS: u32 = 8u;
const H_STRESS: u32 = 9u; // −dt·V·4/dx²
const H_GSTEP: u32 = 10u; // dt·g
const H_BOUND: u32 = 11u;
const H_MATERIAL: u32 = 12u; // 0 fixed-corotated, 1 fluid, 2 plastic
const H_TWO_MU: u32 = 13u;
const H_LAMBDA: u32 = 14u;
const H_OBSERVED: u32 = 15u;
const H_AT_OBSERVE: u32 = 16u; // where the observed steps start
const H_CROWDED: u32 = 17u; // the most particles one cell may hold
const H_CLIP: u32 = 18u; // the backward's clamp on the state's cotangents (inf: none)
const H_ACTUATORS: u32 = 19u;
const H_STRENGTH: u32 = 20u;
// Tables: each particle's actuator (or NONE) [n]; the particles of each actuator in
// particle order, as offsets [actuators + 1] into a list.
const H_AT_ACT_OF: u32 = 21u;
const H_AT_ACT_OFFSETS: u32 = 22u;
const H_AT_ACT_LIST: u32 = 23u;
const H_STEPS: u32 = 24u;
const H_PLASTIC_LO: u32 = 25u; // 1 − compression
const H_PLASTIC_HI: u32 = 26u; // 1 + stretch

const WG: u32 = 64u;
const NONE: u32 = 0xffffffffu;
// Status word 1's flags.
const LEFT: u32 = 1u;
const CROWDED: u32 = 2u;

@group(0) @binding(7) var<storage, read> info: array<u32>;

// Slot 0 of every entry that reads or writes particle states.
@group(0) @binding(0) var<storage, read_write> state: array<f32>;

// Nodes (and cells) of the grid.
fn cells() -> u32 {
    let n = info[H_GRID];
    return select(n * n, n * n * n, DIM == 3u);
}

// The state slot substep k reads, in particles.
fn src_slot(k: u32) -> u32 {
    return select(0u, (k % info[H_CK]) * info[H_N], info[0] == 1u);
}

fn dst_slot(k: u32) -> u32 {
    return select(0u, (k % info[H_CK] + 1u) * info[H_N], info[0] == 1u);
}

// Whether the wall band stops a node at `at` along an axis with velocity `v`.
fn walled(at: u32, v: f32) -> bool {
    let n = info[H_GRID];
    let b = info[H_BOUND];
    return (at < b && v < 0.0) || (at > n - b && v > 0.0);
}

// Whether particle p is driven by an actuator.
fn actuated(p: u32) -> bool {
    return info[H_ACTUATORS] != 0u && info[info[H_AT_ACT_OF] + p] != NONE;
}

