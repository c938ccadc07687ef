//! The executable around the kernels: input binding, output order, memory report, async
//! runs, constants and custom ops.

mod common;

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use common::data;
use gradflux_core::{Backend, CustomOp, DType, Error, Graph, TensorData};
use gradflux_cpu::CpuBackend;

fn two_input_graph() -> (Graph, gradflux_core::Tensor) {
    let g = Graph::new();
    let x = g.input("x", [2], DType::F32).unwrap();
    let y = g.input("y", [2], DType::F32).unwrap();
    let z = g.mul(x, y).unwrap();
    (g, z)
}

#[test]
fn names_itself() {
    let (g, z) = two_input_graph();
    assert_eq!(CpuBackend.name(), "cpu (reference)");
    assert_eq!(
        CpuBackend.compile(&g, &[z]).unwrap().backend_name(),
        "cpu (reference)"
    );
}

#[test]
fn runs_repeatedly_with_new_inputs() {
    let (g, z) = two_input_graph();
    let mut exe = CpuBackend.compile(&g, &[z]).unwrap();
    for k in 1..4 {
        let x = data(&[2], vec![k as f32, 2.0]);
        let y = data(&[2], vec![3.0f32, k as f32]);
        let out = exe.run(&[("y", &y), ("x", &x)]).unwrap();
        assert_eq!(
            out[0].values::<f32>().unwrap(),
            &[3.0 * k as f32, 2.0 * k as f32]
        );
    }
}

#[test]
fn missing_input_is_named() {
    let (g, z) = two_input_graph();
    let mut exe = CpuBackend.compile(&g, &[z]).unwrap();
    let x = data(&[2], vec![1.0f32, 2.0]);
    let err = exe.run(&[("x", &x)]).unwrap_err();
    assert!(
        matches!(&err, Error::MissingInput { name, .. } if name == "y"),
        "{err}"
    );
}

#[test]
fn unknown_input_is_named_with_the_known_ones() {
    let (g, z) = two_input_graph();
    let mut exe = CpuBackend.compile(&g, &[z]).unwrap();
    let x = data(&[2], vec![1.0f32, 2.0]);
    let err = exe.run(&[("x", &x), ("y", &x), ("w", &x)]).unwrap_err();
    match &err {
        Error::UnknownInput { name, known } => {
            assert_eq!(name, "w");
            assert!(known.contains('x') && known.contains('y'), "{known}");
        }
        other => panic!("expected UnknownInput, got {other}"),
    }
}

#[test]
fn wrong_shape_or_dtype_is_reported() {
    let (g, z) = two_input_graph();
    let mut exe = CpuBackend.compile(&g, &[z]).unwrap();
    let good = data(&[2], vec![1.0f32, 2.0]);
    let long = data(&[3], vec![1.0f32, 2.0, 3.0]);
    let err = exe.run(&[("x", &good), ("y", &long)]).unwrap_err();
    assert!(
        matches!(&err, Error::InputMismatch { name, got_shape, .. }
            if name == "y" && got_shape.dims() == [3]),
        "{err}"
    );
    let ints = data(&[2], vec![1i32, 2]);
    let err = exe.run(&[("x", &ints), ("y", &good)]).unwrap_err();
    assert!(
        matches!(&err, Error::InputMismatch { name, got_dtype: DType::I32, .. } if name == "x"),
        "{err}"
    );
}

#[test]
fn inputs_the_outputs_ignore_are_optional_but_known() {
    let g = Graph::new();
    let x = g.input("x", [2], DType::F32).unwrap();
    let unused = g.input("unused", [5], DType::I32).unwrap();
    let _dead = g.neg(unused).unwrap();
    let y = g.neg(x).unwrap();
    let mut exe = CpuBackend.compile(&g, &[y]).unwrap();
    let xd = data(&[2], vec![1.0f32, -2.0]);
    assert_eq!(
        exe.run(&[("x", &xd)]).unwrap()[0].values::<f32>().unwrap(),
        &[-1.0, 2.0]
    );
    let ud = data(&[5], vec![0i32; 5]);
    assert!(exe.run(&[("x", &xd), ("unused", &ud)]).is_ok());
}

#[test]
fn outputs_come_back_in_the_order_asked_even_when_repeated() {
    let g = Graph::new();
    let x = g.input("x", [3], DType::I32).unwrap();
    let a = g.neg(x).unwrap();
    let b = g.add(a, x).unwrap();
    let c = g.mul(x, x).unwrap();
    let mut exe = CpuBackend.compile(&g, &[c, a, x, c, b]).unwrap();
    let xd = data(&[3], vec![1i32, 2, 3]);
    let out = exe.run(&[("x", &xd)]).unwrap();
    let got: Vec<Vec<i32>> = out
        .iter()
        .map(|t| t.values::<i32>().unwrap().to_vec())
        .collect();
    assert_eq!(
        got,
        vec![
            vec![1, 4, 9],
            vec![-1, -2, -3],
            vec![1, 2, 3],
            vec![1, 4, 9],
            vec![0, 0, 0]
        ]
    );
}

#[test]
fn compile_needs_an_output() {
    let g = Graph::new();
    g.input("x", [1], DType::F32).unwrap();
    assert!(matches!(CpuBackend.compile(&g, &[]), Err(Error::Graph(_))));
}

#[test]
fn memory_report_of_an_exp_chain_reuses_two_buffers() {
    let g = Graph::new();
    let x = g.input("x", [1000], DType::F32).unwrap();
    let mut y = x;
    for _ in 0..50 {
        y = g.exp(y).unwrap();
    }
    let mut exe = CpuBackend.compile(&g, &[y]).unwrap();
    let mem = exe.memory();
    assert_eq!(mem.peak_bytes, 3 * 4000);
    assert_eq!(mem.pooled_buffers, 2);
    assert_eq!(mem.total_value_bytes, 51 * 4000);

    let start: Vec<f32> = (0..1000).map(|i| -(i as f32) / 10.0).collect();
    let out = exe.run(&[("x", &data(&[1000], start.clone()))]).unwrap();
    let want: Vec<f32> = start
        .iter()
        .map(|&v| (0..50).fold(v, |a, _| a.exp()))
        .collect();
    assert_eq!(out[0].values::<f32>().unwrap(), &want[..]);
}

#[test]
fn run_async_gives_the_same_result_on_first_poll() {
    let (g, z) = two_input_graph();
    let mut exe = CpuBackend.compile(&g, &[z]).unwrap();
    let x = data(&[2], vec![2.0f32, 3.0]);
    let y = data(&[2], vec![4.0f32, 5.0]);
    let inputs = [("x", &x), ("y", &y)];
    let mut fut = pin!(exe.run_async(&inputs));
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(out) => assert_eq!(out.unwrap()[0].values::<f32>().unwrap(), &[8.0, 15.0]),
        Poll::Pending => panic!("the CPU backend has nothing to wait for"),
    }
}

#[test]
fn f64_graph_runs_end_to_end() {
    let g = Graph::new();
    let x = g.input("x", [3], DType::F64).unwrap();
    let w = g.constant(data(&[3, 1], vec![0.5f64, -1.0, 2.0])).unwrap();
    let y = g.sigmoid(g.matmul(x, w).unwrap()).unwrap();
    let xd = data(&[3], vec![1.0f64, 1e-9, 0.25]);
    let mut exe = CpuBackend.compile(&g, &[y]).unwrap();
    let out = exe.run(&[("x", &xd)]).unwrap();
    let z: f64 = 0.5 - 1e-9 + 0.5;
    assert_eq!(out[0].dtype(), DType::F64);
    assert_eq!(out[0].shape().dims(), &[1]);
    let e = (-z).exp();
    assert_eq!(out[0].values::<f64>().unwrap(), &[1.0 / (1.0 + e)]);
}

#[test]
fn custom_op_outputs_feed_later_nodes() {
    let split = CustomOp::builder("split_sign")
        .input([4], DType::F32)
        .output([4], DType::F32)
        .output([4], DType::F32)
        .cpu(|xs| {
            let v = xs[0].values::<f32>().map_err(|e| e.to_string())?;
            let pos: Vec<f32> = v.iter().map(|x| x.max(0.0)).collect();
            let neg: Vec<f32> = v.iter().map(|x| x.min(0.0)).collect();
            Ok(vec![
                TensorData::new([4], pos).map_err(|e| e.to_string())?,
                TensorData::new([4], neg).map_err(|e| e.to_string())?,
            ])
        })
        .build()
        .unwrap();
    let g = Graph::new();
    let x = g.input("x", [4], DType::F32).unwrap();
    let parts = g.custom(&split, &[x]).unwrap();
    let y = g.sub(parts[0], parts[1]).unwrap();
    let mut exe = CpuBackend.compile(&g, &[y, parts[1]]).unwrap();
    let xd = data(&[4], vec![-1.0f32, 2.0, -3.0, 4.0]);
    let out = exe.run(&[("x", &xd)]).unwrap();
    assert_eq!(out[0].values::<f32>().unwrap(), &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(out[1].values::<f32>().unwrap(), &[-1.0, 0.0, -3.0, 0.0]);
}

#[test]
fn custom_op_failures_surface_as_errors() {
    let bad = CustomOp::builder("bad")
        .input([2], DType::F32)
        .output([2], DType::F32)
        .cpu(|_| Err("refused".to_string()))
        .build()
        .unwrap();
    let g = Graph::new();
    let x = g.input("x", [2], DType::F32).unwrap();
    let y = g.custom(&bad, &[x]).unwrap()[0];
    let mut exe = CpuBackend.compile(&g, &[y]).unwrap();
    let xd = data(&[2], vec![0.0f32, 0.0]);
    let err = exe.run(&[("x", &xd)]).unwrap_err();
    assert!(matches!(&err, Error::CustomOp { op, detail } if op == "bad" && detail == "refused"));
}
