// Float helpers by their bits, imported with `// #import lib/float.wgsl`. Drivers may
// compile float comparisons on the assumption that there is no NaN, so NaN is found by
// its bits and orders are built on integer keys.

// NaN by its bits.
fn is_nan(v: f32) -> bool {
    return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
}

// An unsigned key whose order is the rank order of the floats: NaN highest, -0 equal to +0.
fn float_key(v: f32) -> u32 {
    var b = bitcast<u32>(v);
    if (b & 0x7fffffffu) > 0x7f800000u {
        return 0xffffffffu;
    }
    if b == 0x80000000u {
        b = 0u;
    }
    return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}

// Whether candidate (ka, ia) ranks before (kb, ib) by (float_key, index): the larger key
// first, ties to the smaller index. The total order top-k and routing share.
fn ranks_before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
    return ka > kb || (ka == kb && ia < ib);
}
