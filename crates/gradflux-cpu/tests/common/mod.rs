//! Helpers shared by the integration tests: compile on the CPU backend and run once.

#![allow(dead_code)]

use gradflux_core::{Backend, Graph, Tensor, TensorData};
use gradflux_cpu::CpuBackend;

/// Compiles `outputs` and runs them with `inputs`, panicking with the error on failure.
pub fn run(g: &Graph, outputs: &[Tensor], inputs: &[(&str, &TensorData)]) -> Vec<TensorData> {
    let mut exe = CpuBackend.compile(g, outputs).expect("compile");
    exe.run(inputs).expect("run")
}

/// Runs a single output with no inputs (graphs built from constants).
pub fn eval(g: &Graph, out: Tensor) -> TensorData {
    run(g, &[out], &[]).remove(0)
}

pub fn data<T: gradflux_core::Element>(shape: &[usize], values: Vec<T>) -> TensorData {
    TensorData::new(shape, values).expect("data matches shape")
}

/// A constant node holding `values` with `shape`.
pub fn constant<T: gradflux_core::Element>(g: &Graph, shape: &[usize], values: Vec<T>) -> Tensor {
    g.constant(data(shape, values)).expect("constant")
}
