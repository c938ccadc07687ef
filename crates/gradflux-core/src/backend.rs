//! The contract between the facade and a backend.

use std::future::Future;
use std::pin::Pin;

use crate::{Error, Graph, MemoryReport, Plan, Result, Tensor, TensorData, Value};
use crate::{PlannedInput, PlannedParameter};

/// Named inputs for one run: `&[("x", &x_data), ("w", &w_data)]`.
pub type Inputs<'a> = [(&'a str, &'a TensorData)];

/// A future returned by [`Executable::run_async`].
pub type RunFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<TensorData>>> + 'a>>;

/// Something that compiles graphs: the CPU reference or a wgpu adapter.
pub trait Backend {
    /// Human-readable description (adapter name and API, or "cpu").
    fn name(&self) -> String;

    /// Compiles a graph for this backend, keeping only what `outputs` need.
    fn compile(&self, graph: &Graph, outputs: &[Tensor]) -> Result<Box<dyn Executable>>;
}

/// A compiled graph, run many times with new inputs.
pub trait Executable: Send {
    /// Runs once and returns the outputs, in the order given to `compile`.
    fn run(&mut self, inputs: &Inputs) -> Result<Vec<TensorData>>;

    /// Like [`Executable::run`], but returns a future; the work is submitted when the
    /// future is first polled.
    fn run_async<'a>(&'a mut self, inputs: &'a Inputs<'a>) -> RunFuture<'a>;

    /// Bytes held by the executable and bytes it would hold without reuse.
    fn memory(&self) -> MemoryReport;

    /// Which backend or adapter runs it.
    fn backend_name(&self) -> String;

    /// The current value of a parameter (on a GPU: one explicit readback).
    fn parameter(&self, name: &str) -> Result<TensorData>;

    /// Replaces a parameter's value (on a GPU: one explicit upload).
    fn set_parameter(&mut self, name: &str, data: &TensorData) -> Result<()>;

    /// The values of the tensors given to `compile`, in order.
    fn output_values(&self) -> &[Value];

    /// The inputs every run binds: name, value and type.
    fn planned_inputs(&self) -> &[PlannedInput];

    /// The parameters the executable holds: name, value, type and initial data (what
    /// weight files are matched against, by name).
    fn planned_parameters(&self) -> &[PlannedParameter];

    /// Like [`Executable::run_outputs`], with the inputs given by the handles
    /// [`Graph::input`](crate::Graph::input) returned instead of their names. A tensor
    /// that is not an input the executable binds is an error naming it.
    fn run_tensors(&mut self, inputs: &[(Tensor, &TensorData)]) -> Result<Outputs> {
        let planned = self.planned_inputs();
        let named = inputs
            .iter()
            .map(|(t, data)| {
                let p = planned
                    .iter()
                    .find(|p| p.value == t.value())
                    .ok_or_else(|| {
                        Error::Graph(format!(
                            "tensor %{} (slot {}) is not an input this executable binds (its \
                         inputs: {})",
                            t.value().node,
                            t.value().slot,
                            planned
                                .iter()
                                .map(|p| p.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                    })?;
                Ok((p.name.clone(), *data))
            })
            .collect::<Result<Vec<_>>>()?;
        let named: Vec<(&str, &TensorData)> = named.iter().map(|(n, d)| (n.as_str(), *d)).collect();
        self.run_outputs(&named)
    }

    /// Like [`Executable::run`], but the outputs can be looked up by the tensors given to
    /// `compile` ([`Outputs::get`]), so reordering that list cannot silently swap them.
    fn run_outputs(&mut self, inputs: &Inputs) -> Result<Outputs> {
        let data = self.run(inputs)?;
        Ok(Outputs {
            values: self.output_values().to_vec(),
            data,
        })
    }
}

/// The outputs of a run, by the tensors the executable was compiled for (or by position,
/// through `Index` and [`Outputs::into_vec`]).
#[derive(Clone, Debug)]
pub struct Outputs {
    values: Vec<Value>,
    data: Vec<TensorData>,
}

impl Outputs {
    /// The output computed for `t`, a tensor of the graph the executable was compiled
    /// from; an error naming it if it was not among the outputs.
    pub fn get(&self, t: Tensor) -> Result<&TensorData> {
        self.values
            .iter()
            .position(|&v| v == t.value())
            .map(|i| &self.data[i])
            .ok_or_else(|| {
                Error::Graph(format!(
                    "tensor %{} (slot {}) is not an output of this executable; pass it to \
                     `compile` to read it",
                    t.value().node,
                    t.value().slot
                ))
            })
    }

    /// The outputs in the order given to `compile`.
    pub fn into_vec(self) -> Vec<TensorData> {
        self.data
    }
}

impl std::ops::Index<usize> for Outputs {
    type Output = TensorData;
    fn index(&self, i: usize) -> &TensorData {
        &self.data[i]
    }
}

/// Finds a parameter of the plan by name, checking `data` against it when given.
pub fn find_parameter(plan: &Plan, name: &str, data: Option<&TensorData>) -> Result<usize> {
    let i = plan
        .parameters
        .iter()
        .position(|p| p.name == name)
        .ok_or_else(|| Error::UnknownParameter {
            name: name.to_string(),
            known: plan
                .parameters
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    if let Some(d) = data {
        let want = &plan.parameters[i].ty;
        if d.shape() != &want.shape || d.dtype() != want.dtype {
            return Err(Error::InputMismatch {
                name: name.to_string(),
                expected_shape: want.shape.clone(),
                expected_dtype: want.dtype,
                got_shape: d.shape().clone(),
                got_dtype: d.dtype(),
            });
        }
    }
    Ok(i)
}

/// Matches the given inputs against the plan's: returns them in the plan's order, or an
/// error naming the input that is missing, unknown, or of the wrong shape or dtype.
pub fn bind_inputs<'a>(
    graph_inputs: &[(String, crate::TensorType)],
    plan: &Plan,
    given: &'a Inputs<'a>,
) -> Result<Vec<&'a TensorData>> {
    for (name, _) in given {
        if !graph_inputs.iter().any(|(n, _)| n == name) {
            let known: Vec<&str> = graph_inputs.iter().map(|(n, _)| n.as_str()).collect();
            return Err(Error::UnknownInput {
                name: name.to_string(),
                known: known.join(", "),
            });
        }
    }
    plan.inputs
        .iter()
        .map(|input| {
            let (name, want) = (&input.name, &input.ty);
            let data = given
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, d)| *d)
                .ok_or_else(|| Error::MissingInput {
                    name: name.clone(),
                    shape: want.shape.clone(),
                    dtype: want.dtype,
                })?;
            if data.shape() != &want.shape || data.dtype() != want.dtype {
                return Err(Error::InputMismatch {
                    name: name.clone(),
                    expected_shape: want.shape.clone(),
                    expected_dtype: want.dtype,
                    got_shape: data.shape().clone(),
                    got_dtype: data.dtype(),
                });
            }
            Ok(data)
        })
        .collect()
}
