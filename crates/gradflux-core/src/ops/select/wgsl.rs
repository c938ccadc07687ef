//! Launch planning for `top_k`: chunked bitonic passes (`shaders/select/topk.wgsl`).
//!
//! A row of up to [`MAX_CHUNK`] elements is sorted by one workgroup in one pass (the
//! short-row path, with the chunk rounded up to a power of two). A longer row is cut into
//! chunks of `MAX_CHUNK`; each pass keeps the best `min(k, chunk)` of every chunk, so with
//! `k <= MAX_CHUNK / 2` every pass at least halves the candidates, and the last pass (one
//! chunk per row) writes the result. Candidates pass between passes as positions in two
//! scratch buffers used in turn.

use crate::{DType, Error, Result, Value};

use crate::kernel::launch::{kernel, per_element, u32s, Bind, Launch, Workgroups, ELEMENTWISE_WG};
use crate::kernel::shaders::specialise;
use crate::kernel::KernelSource;

/// Largest chunk one workgroup sorts: two `u32`s per element fill 16 KiB of workgroup
/// memory, WebGPU's guaranteed minimum.
pub const MAX_CHUNK: usize = 2048;
/// Largest `k` on rows longer than [`MAX_CHUNK`].
pub const MAX_K_LONG_ROWS: usize = MAX_CHUNK / 2;

/// The key expression that orders `dtype`'s values as `top_k` ranks them (the `@op` line
/// of `shaders/select/topk.wgsl`).
pub fn key_expr(dtype: DType) -> Result<&'static str> {
    match dtype {
        DType::F32 => Ok("float_key(v)"),
        DType::I32 => Ok("bitcast<u32>(v) ^ 0x80000000u"),
        DType::U32 => Ok("v"),
        other => Err(Error::Unsupported {
            backend: "wgpu".into(),
            what: format!("top_k on {other}; cast to f32 first"),
        }),
    }
}

/// The passes computing `top_k` of `x` viewed as `[outer, n, inner]` into `values` and
/// `indices`.
pub fn launches(
    x: Value,
    [values, indices]: [Value; 2],
    dtype: DType,
    (outer, n, inner): (usize, usize, usize),
    k: usize,
) -> Result<Vec<Launch>> {
    if n > MAX_CHUNK && k > MAX_K_LONG_ROWS {
        return Err(Error::Unsupported {
            backend: "wgpu".into(),
            what: format!(
                "top_k with k = {k} on rows of {n} elements: rows longer than {MAX_CHUNK} \
                 take k up to {MAX_K_LONG_ROWS}"
            ),
        });
    }
    let expr = key_expr(dtype)?;
    let rows = outer * inner;
    let chunk = n.next_power_of_two().clamp(2, MAX_CHUNK);
    let keep = k.min(chunk);
    let mut out = Vec::new();
    let mut len = n;
    let mut pass = 0;
    loop {
        let chunks = len.div_ceil(chunk);
        let last = chunks == 1;
        let out_len = chunks * keep;
        // Pass p reads slot (p + 1) % 2 and writes slot p % 2; the first and last passes
        // bind a slot they do not touch (a 4-byte one where nothing else needs it).
        let scratch_bytes = if last { 4 } else { (rows * out_len * 4) as u64 };
        let wg = (chunk / 2).min(256);
        out.push(Launch {
            kernel: KernelSource {
                label: format!(
                    "top_k<{dtype}> chunk {chunk}{}",
                    if last { " last" } else { "" }
                ),
                source: specialise(&super::TOPK, dtype, dtype, Some(expr)),
                entry_point: "main".into(),
                constants: vec![
                    ("C", chunk as f64),
                    ("WG", wg as f64),
                    ("FIRST", if pass == 0 { 1.0 } else { 0.0 }),
                    ("LAST", if last { 1.0 } else { 0.0 }),
                ],
                read_only: vec![true, false, false, true, false, true],
            },
            binds: vec![
                x.into(),
                values.into(),
                indices.into(),
                Bind::Scratch((pass + 1) % 2),
                Bind::Scratch(pass % 2),
            ],
            scratch: vec![((pass + 1) % 2, 4), (pass % 2, scratch_bytes)],
            info: u32s([rows, n, inner, k, len, chunks, keep]),
            workgroups: Workgroups::Linear((rows * chunks) as u64),
        });
        if last {
            return Ok(out);
        }
        len = out_len;
        pass += 1;
    }
}

/// `gather_along` over bindings `[x, idx, out]`: `numel` outputs, `m` indices per lane of
/// the `[outer, m, inner]` output, read from lanes of `len`.
pub fn gather_along_launch(
    binds: [Bind; 3],
    (numel, m, inner, len): (usize, usize, usize, usize),
) -> Launch {
    Launch {
        kernel: kernel(
            &crate::ops::index::GATHER_ALONG,
            "gather_along".into(),
            DType::U32,
            DType::U32,
            None,
            vec![("WG", ELEMENTWISE_WG as f64)],
            4,
        ),
        binds: binds.to_vec(),
        scratch: vec![],
        info: u32s([numel, m, inner, len]),
        workgroups: per_element(numel),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(node: usize) -> Value {
        Value { node, slot: 0 }
    }

    #[test]
    fn short_rows_take_one_pass_and_long_rows_shrink_each_pass() {
        let passes = |n, k| {
            launches(v(0), [v(1), v(2)], DType::F32, (3, n, 1), k)
                .unwrap()
                .len()
        };
        assert_eq!(passes(1, 1), 1);
        assert_eq!(passes(256, 256), 1);
        assert_eq!(passes(2048, 2000), 1);
        // 2^20 / 2048 = 512 chunks of 8 survivors, then 4096 -> 2 chunks of 8, then 1.
        assert_eq!(passes(1 << 20, 8), 3);
        // k = 1024 halves the row each pass: 2^20 -> 2^19 ... -> 2048 -> 1 chunk.
        assert_eq!(passes(1 << 20, 1024), 10);
    }

    #[test]
    fn unsupported_cases_are_refused_by_name() {
        let err = launches(v(0), [v(1), v(2)], DType::F32, (1, 5000, 1), 1025).unwrap_err();
        assert!(err.to_string().contains("k up to 1024"), "{err}");
        let err = launches(v(0), [v(1), v(2)], DType::F16, (1, 50, 1), 2).unwrap_err();
        assert!(err.to_string().contains("f16"), "{err}");
    }
}
