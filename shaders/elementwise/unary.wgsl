// One-input elementwise op, one thread per element.
// The host rewrites the `alias` lines for the dtypes and the line marked `@op` for the op.
// #import lib/float.wgsl
alias T = f32;
alias R = f32;

override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<R>;
// info[0] = element count
@group(0) @binding(2) var<storage, read> info: array<u32>;

// Stable for large |v|: never evaluates exp of a large positive number. NaN stays NaN.
fn sigmoid_f32(v: f32) -> f32 {
    if is_nan(v) {
        return v;
    }
    if v >= 0.0 {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

// tanh saturates to +-1 in f32 well before 15; clamping keeps drivers that expand tanh
// through exp from overflowing to NaN. A NaN argument is passed through (clamp would turn
// it into a number on some drivers).
fn tanh_f32(v: f32) -> f32 {
    return select(tanh(clamp(v, -15.0, 15.0)), v, is_nan(v));
}

// log and sqrt of a subnormal, computed on its value scaled by 2^24 into the normal range
// (some drivers' log and sqrt treat subnormal inputs as a nearby normal number). A device
// that flushes subnormal operands to zero gives log(0) and sqrt(0), as flushing means.
const SMALLEST_NORMAL: f32 = 1.17549435e-38;

fn log_f32(v: f32) -> f32 {
    if v > 0.0 && v < SMALLEST_NORMAL {
        return log(v * 16777216.0) - 16.635532;
    }
    return log(v);
}

fn sqrt_f32(v: f32) -> f32 {
    if v > 0.0 && v < SMALLEST_NORMAL {
        return sqrt(v * 16777216.0) * 0.000244140625;
    }
    return sqrt(v);
}

fn apply(a: T) -> R {
    return a; // @op
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= info[0] {
        return;
    }
    out[i] = apply(x[i]);
}
