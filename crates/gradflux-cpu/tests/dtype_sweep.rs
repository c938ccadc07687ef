//! Every op the builder allows on a dtype runs on that dtype, and on small integers (exact
//! in every type) every dtype gives the same numbers as `f64`.

mod common;

use common::run;
use gradflux_core::{DType, Graph, Storage, Tensor, TensorData};

fn tensor(dtype: DType, shape: &[usize], values: &[f64]) -> TensorData {
    let storage = match dtype {
        DType::F16 => Storage::F16(values.iter().map(|&v| half::f16::from_f64(v)).collect()),
        DType::F32 => Storage::F32(values.iter().map(|&v| v as f32).collect()),
        DType::F64 => Storage::F64(values.to_vec()),
        DType::I32 => Storage::I32(values.iter().map(|&v| v as i32).collect()),
        DType::U32 => Storage::U32(values.iter().map(|&v| v as u32).collect()),
    };
    TensorData::from_storage(shape.into(), storage).unwrap()
}

/// Builds the shared graph for one dtype and returns its outputs' values as f64.
fn outputs_for(dtype: DType) -> Vec<Vec<f64>> {
    let g = Graph::new();
    let x = g.input("x", [2, 3], dtype).unwrap();
    let y = g.input("y", [3], dtype).unwrap();
    let idx = g
        .constant(TensorData::new([4], vec![2u32, 0, 2, 7]).unwrap())
        .unwrap();
    let mut outs: Vec<Tensor> = vec![
        g.add(x, y).unwrap(),
        g.sub(x, y).unwrap(),
        g.mul(x, y).unwrap(),
        g.div(x, y).unwrap(),
        g.maximum(x, y).unwrap(),
        g.minimum(x, y).unwrap(),
        g.abs(x).unwrap(),
        g.relu(x).unwrap(),
        g.select(g.gt(x, y).unwrap(), x, y).unwrap(),
        g.ge(x, y).unwrap(),
        g.sum(x, 0).unwrap(),
        g.max_keepdim(x, 1).unwrap(),
        g.min(x, 0).unwrap(),
        g.argmax(x, 1).unwrap(),
        g.transpose(x, 0, 1).unwrap(),
        g.slice_step(x, 1, 0, 3, 2).unwrap(),
        g.concat(&[x, x], 0).unwrap(),
        g.broadcast_to(y, [2, 2, 3]).unwrap(),
        g.matmul(x, g.transpose(x, 0, 1).unwrap()).unwrap(),
        g.matmul(x, y).unwrap(),
        g.gather(x, 1, idx).unwrap(),
        g.scatter_add(x, 1, g.slice(idx, 0, 0, 3).unwrap(), 3)
            .unwrap(),
        g.reshape(x, [3, 2]).unwrap(),
    ];
    for to in DType::ALL {
        outs.push(g.cast(x, to).unwrap());
    }
    if dtype.is_signed() {
        outs.push(g.neg(x).unwrap());
    }
    let xd = tensor(dtype, &[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let yd = tensor(dtype, &[3], &[1.0, 1.0, 3.0]);
    run(&g, &outs, &[("x", &xd), ("y", &yd)])
        .iter()
        .map(TensorData::to_f64_vec)
        .collect()
}

#[test]
fn every_dtype_agrees_with_f64_on_small_integers() {
    let reference = outputs_for(DType::F64);
    for dtype in [DType::F16, DType::F32, DType::I32, DType::U32] {
        let got = outputs_for(dtype);
        // Unsigned graphs lack the trailing `neg`.
        for (i, (r, v)) in reference.iter().zip(&got).enumerate() {
            assert_eq!(r, v, "{dtype}: output {i}");
        }
    }
}

#[test]
fn float_only_ops_run_on_every_float_dtype() {
    for dtype in [DType::F16, DType::F32, DType::F64] {
        let g = Graph::new();
        let x = g.input("x", [2, 2], dtype).unwrap();
        let outs = [
            g.exp(x).unwrap(),
            g.log(x).unwrap(),
            g.sqrt(x).unwrap(),
            g.sigmoid(x).unwrap(),
            g.tanh(x).unwrap(),
            g.pow(x, x).unwrap(),
            g.mean(x, 0).unwrap(),
            g.logsumexp(x, 1).unwrap(),
            g.softmax(x, 1).unwrap(),
            g.log_softmax(x, 0).unwrap(),
        ];
        let xd = tensor(dtype, &[2, 2], &[1.0, 2.0, 3.0, 4.0]);
        let out = run(&g, &outs, &[("x", &xd)]);
        assert!(out.iter().all(|t| t.dtype() == dtype));
        assert_eq!(out[5].to_f64_vec(), vec![1.0, 4.0, 27.0, 256.0]);
        assert_eq!(out[6].to_f64_vec(), vec![2.0, 3.0]);
    }
}
