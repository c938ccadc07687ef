// Two-input elementwise op with numpy broadcasting, one thread per output element.
// The host rewrites the `alias` lines for the dtypes and the line marked `@op` for the op.
// #import lib/float.wgsl
// #import lib/broadcast.wgsl
alias T = f32;
alias R = f32;

override WG: u32 = 256u;

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<R>;
// info: [numel, rank, contiguous mask, dims[8], strides of a[8], strides of b[8]]
@group(0) @binding(3) var<storage, read> info: array<u32>;

// Float max and min that propagate NaN (NumPy's `maximum`): a NaN operand is the result.
fn max_nan(x: T, y: T) -> T {
    return select(select(max(x, y), y, is_nan(f32(y))), x, is_nan(f32(x)));
}

fn min_nan(x: T, y: T) -> T {
    return select(select(min(x, y), y, is_nan(f32(y))), x, is_nan(f32(x)));
}

// Whether either operand is NaN, which makes every ordered comparison false.
fn unordered(x: T, y: T) -> bool {
    return is_nan(f32(x)) || is_nan(f32(y));
}

// x^y for a finite x > 0. A subnormal x is scaled by 2^24 into the normal range first
// (some drivers' pow treats subnormal bases as a nearby normal number).
fn pow_positive(x: f32, y: f32) -> f32 {
    if x < 1.17549435e-38 {
        return exp2(y * (log2(x * 16777216.0) - 24.0));
    }
    return pow(x, y);
}

// C `pow` on f32 (as Rust's `powf`): pow(x, ±0) = pow(1, y) = 1 even for NaN; otherwise
// NaN in, NaN out; a negative base needs an integral exponent; zeros and infinities give
// C's signed zeros and infinities.
fn pow_f32(x: f32, y: f32) -> f32 {
    let inf = bitcast<f32>(0x7f800000u);
    if y == 0.0 || x == 1.0 {
        return 1.0;
    }
    if is_nan(x) || is_nan(y) {
        return bitcast<f32>(0x7fc00000u);
    }
    let ax = abs(x);
    if abs(y) == inf {
        if ax == 1.0 {
            return 1.0;
        }
        return select(0.0, inf, (ax > 1.0) == (y > 0.0));
    }
    let integral = fract(y) == 0.0;
    let odd = integral && fract(y * 0.5) != 0.0;
    let negative = (bitcast<u32>(x) >> 31u) != 0u;
    if x == 0.0 || ax == inf {
        // |x|^y is 0 or inf; an odd exponent keeps the base's sign.
        let big = (ax == inf) == (y > 0.0);
        let m = select(0.0, inf, big);
        return select(m, -m, odd && negative);
    }
    if x > 0.0 {
        return pow_positive(x, y);
    }
    if !integral {
        return bitcast<f32>(0x7fc00000u);
    }
    let m = pow_positive(ax, y);
    return select(m, -m, odd);
}

// WGSL integer division: x / 0 == x and MIN / -1 == MIN, without ever dividing by zero.
fn div_i32(x: i32, y: i32) -> i32 {
    let bad = y == 0 || (x == i32(-2147483648) && y == -1);
    return select(x / select(y, 1, bad), x, bad);
}

fn div_u32(x: u32, y: u32) -> u32 {
    return select(x / select(y, 1u, y == 0u), x, y == 0u);
}

fn apply(x: T, y: T) -> R {
    return x + y; // @op
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if i >= info[0] {
        return;
    }
    out[i] = apply(a[offset(i, 0u)], b[offset(i, 1u)]);
}
