// The running pair (max, sum of exp(t − max)) of an online log-sum-exp, imported with
// `// #import lib/online_lse.wgsl`. An empty set is (-inf, 0). Terms equal to the running
// maximum add exactly 1, so +inf terms count as tied maxima (never inf − inf) and an all
// -inf set counts its terms (softmax's rule); a lower term adds exp(t − max), 0 for -inf.
// NaN terms are the caller's to flag apart.

// The pair after the term t.
fn push(acc: vec2<f32>, t: f32) -> vec2<f32> {
    if t > acc.x {
        return vec2<f32>(t, acc.y * exp(acc.x - t) + 1.0);
    }
    if t == acc.x {
        return vec2<f32>(acc.x, acc.y + 1.0);
    }
    return vec2<f32>(acc.x, acc.y + exp(t - acc.x));
}

// Two pairs merged: the larger top keeps its sum, equal tops add, the smaller side is
// scaled by exp(its top − top).
fn merge(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let top = max(a.x, b.x);
    let sa = select(a.y * exp(a.x - top), a.y, a.x == top);
    let sb = select(b.y * exp(b.x - top), b.y, b.x == top);
    return vec2<f32>(top, sa + sb);
}

// Softmax's shift of t by the maximum m, taken as 0 where t == m: infinite maxima count as
// tied (never inf − inf), matching the pair's rule above.
fn shifted(t: f32, m: f32) -> f32 {
    return select(t - m, 0.0, t == m);
}
