//! The CPU reference backend of gradflux: the executable specification every other backend
//! is tested against.
//!
//! It favours plain loops and exact rules over speed. Float sums, means, softmax and matmul
//! accumulate in `f64` and round once; elementwise float math runs in the tensor's own
//! precision; integer arithmetic wraps and follows WGSL's division rules.
//!
//! ```
//! use gradflux_core::{Backend, DType, Graph, TensorData};
//! use gradflux_cpu::CpuBackend;
//!
//! let g = Graph::new();
//! let x = g.input("x", [3], DType::F32)?;
//! let y = g.relu(x)?;
//! let mut exe = CpuBackend.compile(&g, &[y])?;
//! let x_data = TensorData::new([3], vec![-1.0f32, 0.5, 2.0])?;
//! let out = exe.run(&[("x", &x_data)])?;
//! assert_eq!(out[0].values::<f32>()?, &[0.0, 0.5, 2.0]);
//! # Ok::<(), gradflux_core::Error>(())
//! ```

#![warn(missing_docs)]

mod eval;

use std::collections::HashMap;

use gradflux_core::{
    bind_inputs, find_parameter, Backend, Error, Executable, Graph, Home, Inputs, MemoryReport, Op,
    Plan, Result, RunFuture, Tensor, TensorData, TensorType, Value,
};

pub(crate) const BACKEND_NAME: &str = "cpu (reference)";

/// The CPU reference backend. Stateless, so one value can compile any number of graphs.
#[derive(Copy, Clone, Debug, Default)]
pub struct CpuBackend;

impl Backend for CpuBackend {
    fn name(&self) -> String {
        BACKEND_NAME.to_string()
    }

    fn compile(&self, graph: &Graph, outputs: &[Tensor]) -> Result<Box<dyn Executable>> {
        let plan = Plan::new(graph, outputs)?;
        let parameters = plan
            .parameters
            .iter()
            .map(|p| TensorData::clone(&p.init))
            .collect();
        Ok(Box::new(CpuExecutable {
            plan,
            graph_inputs: graph.inputs(),
            parameters,
        }))
    }
}

/// A graph compiled for the CPU: the shared liveness plan, evaluated node by node.
///
/// Values are freed as soon as the plan says their last reader has run, so the memory a
/// run touches follows the same liveness the GPU backend's buffer pool is built from.
#[derive(Debug)]
pub struct CpuExecutable {
    plan: Plan,
    /// Every input the graph declares, not only those the outputs need, so a run that
    /// passes an input the outputs ignore is still accepted rather than called unknown.
    graph_inputs: Vec<(String, TensorType)>,
    /// Current value of every parameter, in `plan.parameters` order.
    parameters: Vec<TensorData>,
}

impl CpuExecutable {
    /// One run: the outputs, then every parameter update applied (after all reads, so the
    /// run saw the values it started with).
    fn evaluate(&mut self, inputs: &Inputs) -> Result<Vec<TensorData>> {
        let plan = &self.plan;
        let bound = bind_inputs(&self.graph_inputs, plan, inputs)?;
        let bound: HashMap<Value, &TensorData> =
            plan.inputs.iter().map(|i| i.value).zip(bound).collect();

        let mut values: HashMap<Value, TensorData> = HashMap::new();
        for (step, node) in plan.nodes.iter().enumerate() {
            let id = plan.node_ids[step];
            let outputs = match &node.op {
                Op::Input { .. } => {
                    let v = Value { node: id, slot: 0 };
                    let data = bound.get(&v).ok_or_else(|| missing_value(v))?;
                    vec![TensorData::clone(data)]
                }
                Op::Parameter { .. } => {
                    let v = Value { node: id, slot: 0 };
                    let Some(Home::Parameter(i)) = plan.homes.get(&v) else {
                        return Err(missing_value(v));
                    };
                    vec![self.parameters[*i].clone()]
                }
                _ => {
                    let args = node
                        .inputs
                        .iter()
                        .map(|v| values.get(v).ok_or_else(|| missing_value(*v)))
                        .collect::<Result<Vec<_>>>()?;
                    eval::eval_node(node, &args)?
                }
            };
            for (slot, data) in outputs.into_iter().enumerate() {
                values.insert(Value { node: id, slot }, data);
            }
            for v in &plan.dead_after[step] {
                values.remove(v);
            }
        }

        let updated = plan
            .updates
            .iter()
            .map(|(i, v)| Ok((*i, values.get(v).ok_or_else(|| missing_value(*v))?.clone())))
            .collect::<Result<Vec<_>>>()?;
        for (i, data) in updated {
            self.parameters[i] = data;
        }

        // Move each output out of the map, cloning only when the same value is asked for
        // again later in the list.
        let wanted = &plan.outputs;
        (0..wanted.len())
            .map(|i| {
                let v = wanted[i];
                let data = if wanted[i + 1..].contains(&v) {
                    values.get(&v).cloned()
                } else {
                    values.remove(&v)
                };
                data.ok_or_else(|| missing_value(v))
            })
            .collect()
    }
}

impl Executable for CpuExecutable {
    fn output_values(&self) -> &[gradflux_core::Value] {
        &self.plan.outputs
    }

    fn planned_inputs(&self) -> &[gradflux_core::PlannedInput] {
        &self.plan.inputs
    }

    fn planned_parameters(&self) -> &[gradflux_core::PlannedParameter] {
        &self.plan.parameters
    }

    fn run(&mut self, inputs: &Inputs) -> Result<Vec<TensorData>> {
        self.evaluate(inputs)
    }

    /// Runs on the calling thread when first polled: there is no device to wait for.
    fn run_async<'a>(&'a mut self, inputs: &'a Inputs<'a>) -> RunFuture<'a> {
        Box::pin(async move { self.evaluate(inputs) })
    }

    fn memory(&self) -> MemoryReport {
        self.plan.memory
    }

    fn backend_name(&self) -> String {
        BACKEND_NAME.to_string()
    }

    fn parameter(&self, name: &str) -> Result<TensorData> {
        Ok(self.parameters[find_parameter(&self.plan, name, None)?].clone())
    }

    fn set_parameter(&mut self, name: &str, data: &TensorData) -> Result<()> {
        let i = find_parameter(&self.plan, name, Some(data))?;
        self.parameters[i] = data.clone();
        Ok(())
    }
}

/// A value read before it was computed or after it was freed: a planning bug, reported
/// rather than panicking.
fn missing_value(v: Value) -> Error {
    Error::Graph(format!(
        "internal: value %{}.{} is not available on the CPU backend",
        v.node, v.slot
    ))
}
