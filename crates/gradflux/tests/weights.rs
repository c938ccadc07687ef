//! Weights and data in the Python ecosystem's files: `.npy` files written by `np.save` and
//! `.safetensors` files written by the `safetensors` package (`tests/fixtures/weights.py`)
//! read back exactly; files gradflux writes are the bytes numpy writes (`.npy`) or read
//! back to the same tensors (`.safetensors`); an executable's parameters load and save by
//! name with every mismatch named; ndarray conversions round-trip. Each part runs with its
//! feature (`cargo xtask test` turns every feature on).
#![cfg(any(feature = "npy", feature = "safetensors", feature = "ndarray"))]

#[cfg(any(feature = "npy", feature = "safetensors"))]
use std::path::PathBuf;

use gradflux::TensorData;
#[cfg(feature = "safetensors")]
use gradflux::{DType, Device, Graph};

#[cfg(any(feature = "npy", feature = "safetensors"))]
fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/weights")
        .join(name)
}

#[cfg(any(feature = "npy", feature = "safetensors"))]
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gradflux-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[cfg(feature = "npy")]
fn f32_2x3() -> TensorData {
    TensorData::new([2, 3], (0..6).map(|i| i as f32 * 0.5 - 1.0).collect()).unwrap()
}

/// What `weights.py` saved, as gradflux tensors.
#[cfg(feature = "npy")]
fn npy_fixtures() -> Vec<(&'static str, TensorData)> {
    use gradflux::half::f16;
    let f16s = [0.5f32, -1.0, 65504.0, 0.0009765625, -0.0].map(f16::from_f32);
    vec![
        ("f32_2x3", f32_2x3()),
        (
            "f64_4",
            TensorData::new([4], vec![0.1f64, -2.5, 1e300, -0.0]).unwrap(),
        ),
        (
            "i32_2x2",
            TensorData::new([2, 2], vec![-7i32, 0, i32::MAX, i32::MIN]).unwrap(),
        ),
        (
            "u32_3",
            TensorData::new([3], vec![0u32, 1, u32::MAX]).unwrap(),
        ),
        ("f16_5", TensorData::new([5], f16s.to_vec()).unwrap()),
        ("scalar_f32", TensorData::new([], vec![3.25f32]).unwrap()),
        (
            "empty_f32_0x4",
            TensorData::new([0, 4], Vec::<f32>::new()).unwrap(),
        ),
    ]
}

#[cfg(feature = "npy")]
#[test]
fn npy_files_from_numpy_read_exactly_and_are_written_byte_for_byte() {
    use gradflux::io::npy;
    for (name, want) in npy_fixtures() {
        let path = fixture(&format!("{name}.npy"));
        let got = npy::read(&path).unwrap();
        assert_eq!(got.dtype(), want.dtype(), "{name}");
        assert_eq!(got.shape(), want.shape(), "{name}");
        assert_eq!(
            got.storage().as_bytes(),
            want.storage().as_bytes(),
            "{name}"
        );
        // numpy's own bytes, header and padding included.
        let numpy_bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            npy::to_bytes(&want),
            numpy_bytes,
            "{name}: not np.save's bytes"
        );
        let out = scratch(&format!("{name}.npy"));
        npy::write(&out, &want).unwrap();
        assert_eq!(npy::read(&out).unwrap(), got, "{name}: round trip");
    }
}

#[cfg(feature = "npy")]
#[test]
fn npy_files_gradflux_cannot_hold_are_refused_by_name() {
    use gradflux::io::npy;
    let err = |name: &str| npy::read(fixture(name)).unwrap_err().to_string();
    let e = err("fortran_f32_2x3.npy");
    assert!(
        e.contains("Fortran") && e.contains("np.ascontiguousarray"),
        "{e}"
    );
    let e = err("big_endian_f32_3.npy");
    assert!(e.contains("big-endian data (`>f4`)"), "{e}");
    let e = err("i64_3.npy");
    assert!(e.contains("dtype `<i8` has no gradflux type"), "{e}");
    let e = npy::read(scratch("no-such-file.npy"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no-such-file.npy"), "{e}");
    let e = npy::from_bytes(b"not numpy at all")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no \\x93NUMPY magic"), "{e}");
    let mut cut = std::fs::read(fixture("f32_2x3.npy")).unwrap();
    cut.truncate(cut.len() - 4);
    let e = npy::from_bytes(&cut).unwrap_err().to_string();
    assert!(
        e.contains("f32 [2, 3] needs 24 bytes of data, the file has 20"),
        "{e}"
    );
}

#[cfg(feature = "safetensors")]
fn model_fixture() -> Vec<(&'static str, TensorData)> {
    use gradflux::half::f16;
    let b = [1.0f32, -0.5, 0.25, 2.0].map(f16::from_f32);
    vec![
        ("layer.b", TensorData::new([4], b.to_vec()).unwrap()),
        (
            "layer.w",
            TensorData::new([3, 4], (0..12).map(|i| i as f32 * 0.25 - 1.0).collect()).unwrap(),
        ),
        (
            "optimizer.m",
            TensorData::new([2], vec![0.125f64, 0.5]).unwrap(),
        ),
        ("steps", TensorData::new([2], vec![3i32, -4]).unwrap()),
    ]
}

#[cfg(feature = "safetensors")]
#[test]
fn safetensors_files_from_python_read_exactly_and_round_trip() {
    use gradflux::io::safetensors;
    let got = safetensors::read(fixture("model.safetensors")).unwrap();
    let want = model_fixture();
    assert_eq!(got.len(), want.len());
    for ((gn, gt), (wn, wt)) in got.iter().zip(&want) {
        assert_eq!(gn, wn);
        assert_eq!(gt, wt, "{wn}");
    }
    let named: Vec<(&str, &TensorData)> = want.iter().map(|(n, t)| (*n, t)).collect();
    let out = scratch("model.safetensors");
    safetensors::write(&out, &named).unwrap();
    assert_eq!(safetensors::read(&out).unwrap(), got);
    let e = safetensors::read(fixture("int64.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tensor `x` is I64, which gradflux has no type for"),
        "{e}"
    );
    let twice = [("a", &want[0].1), ("a", &want[1].1)];
    let e = safetensors::to_bytes(&twice).unwrap_err().to_string();
    assert!(e.contains("`a` is given twice"), "{e}");
}

/// A graph with the fixture's parameter names: `layer.w` f32 `w_shape`, `layer.b` f16 [4],
/// `steps` i32 [2]; its outputs `x · layer.w` and the other two parameters (an executable
/// holds the parameters its outputs use).
#[cfg(feature = "safetensors")]
fn model_graph(w_shape: [usize; 2]) -> (Graph, Vec<gradflux::Tensor>) {
    let g = Graph::new();
    let x = g.input("x", [1, 3], DType::F32).unwrap();
    let zeros = |shape: Vec<usize>, dtype| TensorData::zeros(shape, dtype);
    let w = g
        .parameter("layer.w", zeros(w_shape.to_vec(), DType::F32))
        .unwrap();
    let b = g.parameter("layer.b", zeros(vec![4], DType::F16)).unwrap();
    let steps = g.parameter("steps", zeros(vec![2], DType::I32)).unwrap();
    let y = g.matmul(x, w).unwrap();
    (g, vec![y, b, steps])
}

#[cfg(feature = "safetensors")]
#[test]
fn parameters_load_and_save_by_name_with_every_mismatch_named() {
    use gradflux::io::safetensors;
    let mut devices = vec![Device::Cpu];
    devices.extend(common::gpu());
    for device in &devices {
        let (g, outs) = model_graph([3, 4]);
        let mut exe = device.compile(&g, &outs).unwrap();
        let unused =
            safetensors::load_parameters(exe.as_mut(), fixture("model.safetensors")).unwrap();
        assert_eq!(unused, ["optimizer.m"], "{}", device.name());
        let want = model_fixture();
        for (name, t) in want.iter().filter(|(n, _)| *n != "optimizer.m") {
            assert_eq!(
                &exe.parameter(name).unwrap(),
                t,
                "{}: {name}",
                device.name()
            );
        }
        // x = [1, 0, 0] picks the first row of the loaded weights.
        let x = TensorData::new([1, 3], vec![1.0f32, 0.0, 0.0]).unwrap();
        let out = exe.run(&[("x", &x)]).unwrap();
        assert_eq!(out[0].values::<f32>().unwrap(), &[-1.0, -0.75, -0.5, -0.25]);
        let saved = scratch(&format!("saved-{}.safetensors", device.is_cpu()));
        safetensors::save_parameters(exe.as_ref(), &saved).unwrap();
        let back = safetensors::read(&saved).unwrap();
        let names: Vec<&str> = back.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["layer.b", "layer.w", "steps"]);
    }
    // A wrong shape and a missing tensor are both named; nothing is set.
    let (g, mut outs) = model_graph([3, 5]);
    outs.push(
        g.parameter("head", TensorData::zeros(vec![2], DType::F32))
            .unwrap(),
    );
    let mut exe = Device::Cpu.compile(&g, &outs).unwrap();
    let e = safetensors::load_parameters(exe.as_mut(), fixture("model.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("parameter `layer.w` is f32 [3, 5] in the graph, f32 [3, 4] in the file"),
        "{e}"
    );
    assert!(
        e.contains("parameter `head` (f32 [2]) is not in the file"),
        "{e}"
    );
    assert_eq!(
        exe.parameter("layer.b").unwrap(),
        TensorData::zeros(vec![4], DType::F16)
    );
}

#[cfg(feature = "ndarray")]
#[test]
fn ndarray_arrays_convert_both_ways_whatever_their_layout() {
    let a =
        gradflux::ndarray::Array2::from_shape_fn((2, 3), |(i, j)| i as f32 * 0.5 + j as f32 - 1.0);
    let t = TensorData::from(a.clone());
    assert_eq!(t.shape().dims(), &[2, 3]);
    let back: gradflux::ndarray::ArrayD<f32> = (&t).try_into().unwrap();
    assert_eq!(back, a.clone().into_dyn());
    // A transposed view converts in its logical (row-major) order.
    let tt = TensorData::from(a.t());
    assert_eq!(tt.shape().dims(), &[3, 2]);
    assert_eq!(tt.values::<f32>().unwrap()[..2], [a[[0, 0]], a[[1, 0]]]);
    let wrong: Result<gradflux::ndarray::ArrayD<i32>, _> = (&t).try_into();
    assert!(wrong.unwrap_err().to_string().contains("f32"));
}

#[cfg(feature = "safetensors")]
mod common;
