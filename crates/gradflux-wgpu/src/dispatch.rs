//! Spreading a long 1-D launch over two dispatch dimensions, so no kernel is limited to
//! 65535 workgroups.

use gradflux_core::{Error, Result};

/// Workgroup counts for `count` workgroups when each dimension allows at most `max`:
/// `[count, 1, 1]` when it fits, else `[max, ceil(count / max), 1]`. Kernels recover the
/// linear index as `wg.x + wg.y * num_workgroups.x` and skip the overshoot.
pub fn split_workgroups(count: u64, max: u32, op: &str) -> Result<[u32; 3]> {
    let max64 = max as u64;
    if count <= max64 {
        return Ok([count as u32, 1, 1]);
    }
    let y = count.div_ceil(max64);
    if y > max64 {
        return Err(Error::Limit {
            limit: "max_compute_workgroups_per_dimension",
            what: format!("`{op}` launch of {count} workgroups (over two dimensions)"),
            requested: count,
            allowed: max64 * max64,
        });
    }
    Ok([max, y as u32, 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_in_one_dimension() {
        assert_eq!(split_workgroups(65535, 65535, "t").unwrap(), [65535, 1, 1]);
    }

    #[test]
    fn splits_past_the_limit() {
        assert_eq!(split_workgroups(65536, 65535, "t").unwrap(), [65535, 2, 1]);
        assert_eq!(
            split_workgroups(200_000, 65535, "t").unwrap(),
            [65535, 4, 1]
        );
    }

    #[test]
    fn refuses_past_two_dimensions() {
        let e = split_workgroups(65535u64 * 65535 + 1, 65535, "t").unwrap_err();
        assert!(matches!(
            e,
            Error::Limit {
                limit: "max_compute_workgroups_per_dimension",
                ..
            }
        ));
    }
}
