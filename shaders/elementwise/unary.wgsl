// One-input elementwise op, one thread per element.
// The host rewrites the `alias` lines for the dtypes and the line marked `@op` for the op.
alias T = f32;
alias R = f32;

override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> out: array<R>;
// info[0] = element count
@group(0) @binding(2) var<storage, read> info: array<u32>;

// Stable for large |v|: never evaluates exp of a large positive number.
fn sigmoid_f32(v: f32) -> f32 {
    if v >= 0.0 {
        return 1.0 / (1.0 + exp(-v));
    }
    let e = exp(v);
    return e / (1.0 + e);
}

// tanh saturates to +-1 in f32 well before 15; clamping keeps drivers that expand tanh
// through exp from overflowing to NaN.
fn tanh_f32(v: f32) -> f32 {
    return tanh(clamp(v, -15.0, 15.0));
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
