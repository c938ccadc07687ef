//! Running sums: `cumsum` and `reverse_cumsum` over every axis, every 32-bit dtype, and
//! lanes long enough to take the chunked path (several chunks, then their totals).

use gradflux::{DType, Device, Graph, TensorData, Tolerance, WgpuDevice};

use crate::common::{check, in_ci, random, shapes, Rng};

/// The GPU sums in f32 (in chunks, then the chunks' offsets), the reference in f64.
fn scan_tol(dtype: DType, len: usize) -> Tolerance {
    if dtype.is_float() {
        Tolerance::new(1e-5, 4e-7 * len as f64)
    } else {
        Tolerance::EXACT
    }
}

#[test]
fn running_sums_match_over_every_axis_and_dtype() {
    let mut rng = Rng::new(41);
    let mut all = shapes();
    // Past one chunk of 1024: 3 and 5 chunks per lane, and a last chunk of one element.
    all.extend([vec![2, 2500], vec![4097, 3], vec![3, 5121]].map(gradflux::Shape));
    for dtype in [DType::F32, DType::I32, DType::U32] {
        for shape in &all {
            for axis in 0..shape.rank() {
                let g = Graph::new();
                let x = g.input("x", shape.clone(), dtype).unwrap();
                let y = g.cumsum(x, axis as isize).unwrap();
                let r = g.reverse_cumsum(x, axis as isize).unwrap();
                let data = random(&mut rng, shape.clone(), dtype, -3.0, 3.0);
                check(
                    &format!("cumsum {dtype} {shape} axis {axis}"),
                    &g,
                    &[y, r],
                    &[("x", &data)],
                    scan_tol(dtype, shape.dims()[axis]),
                );
            }
        }
    }
}

#[test]
fn running_sums_follow_numpy_and_wrap_integers() {
    let g = Graph::new();
    let x = g.input("x", [2, 3], DType::F32).unwrap();
    let rows = g.cumsum(x, -1).unwrap();
    let cols = g.cumsum(x, 0).unwrap();
    let back = g.reverse_cumsum(x, 1).unwrap();
    let u = g.input("u", [3], DType::U32).unwrap();
    let wrapped = g.cumsum(u, 0).unwrap();
    let e = g.cumsum(x, 2).unwrap_err().to_string();
    assert!(e.contains("cumsum") && e.contains("axis"), "{e}");
    let xs = TensorData::new([2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
    let us = TensorData::new([3], vec![u32::MAX, 2, 3]).unwrap();
    let out = check(
        "cumsum examples",
        &g,
        &[rows, cols, back, wrapped],
        &[("x", &xs), ("u", &us)],
        Tolerance::EXACT,
    );
    assert_eq!(
        out[0].values::<f32>().unwrap(),
        [1.0, 3.0, 6.0, 4.0, 9.0, 15.0]
    );
    assert_eq!(
        out[1].values::<f32>().unwrap(),
        [1.0, 2.0, 3.0, 5.0, 7.0, 9.0]
    );
    assert_eq!(
        out[2].values::<f32>().unwrap(),
        [6.0, 5.0, 3.0, 15.0, 11.0, 6.0]
    );
    assert_eq!(out[3].values::<u32>().unwrap(), [u32::MAX, 1, 4]);
}

#[test]
fn a_long_lane_stays_within_a_small_loop_budget() {
    // Under a budget of 4096 iterations, 5 M elements in chunks of 1024 would leave a lane
    // 4883 totals to walk: the chunks grow (to 1357) so that neither walk passes it.
    let device = match WgpuDevice::best() {
        Ok(d) => d,
        Err(e) => {
            assert!(!in_ci(), "CI=true but no wgpu adapter was found: {e}");
            return;
        }
    };
    device.set_loop_limit(Some(4096)).unwrap();
    let n = 5_000_000;
    let g = Graph::new();
    let x = g.input("x", [n], DType::I32).unwrap();
    let y = g.cumsum(x, 0).unwrap();
    let ones = TensorData::new([n], vec![1i32; n]).unwrap();
    let device = Device::Wgpu(device);
    let out = device
        .compile(&g, &[y])
        .and_then(|mut exe| exe.run(&[("x", &ones)]))
        .unwrap();
    let got = out[0].values::<i32>().unwrap();
    let wrong = got.iter().enumerate().find(|(i, v)| **v != *i as i32 + 1);
    assert_eq!(wrong, None, "first wrong running count");
}
