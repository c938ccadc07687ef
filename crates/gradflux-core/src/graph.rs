//! The graph: an arena of nodes in the order they were added (which is a topological order,
//! since a node can only read nodes added before it).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::{DType, Error, Op, Result, Shape, TensorData};

static NEXT_GRAPH_ID: AtomicU64 = AtomicU64::new(1);

/// Shape and dtype of a value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorType {
    /// Dimensions, fixed when the graph is built.
    pub shape: Shape,
    /// Element type.
    pub dtype: DType,
}

impl TensorType {
    /// The type of a `shape` tensor of `dtype` elements.
    pub fn new(shape: impl Into<Shape>, dtype: DType) -> Self {
        TensorType {
            shape: shape.into(),
            dtype,
        }
    }

    /// Bytes the value occupies (saturating; see [`checked_size_bytes`](Self::checked_size_bytes)).
    pub fn size_bytes(&self) -> u64 {
        self.checked_size_bytes().unwrap_or(u64::MAX)
    }

    /// Bytes the value occupies, or `None` past [`MAX_TENSOR_BYTES`].
    pub fn checked_size_bytes(&self) -> Option<u64> {
        self.shape
            .checked_numel()
            .and_then(|n| n.checked_mul(self.dtype.size_bytes()))
            .filter(|&b| b as u64 <= MAX_TENSOR_BYTES)
            .map(|b| b as u64)
    }
}

/// The largest tensor gradflux represents, in bytes (`isize::MAX` on 64-bit hosts): past
/// it, element and byte counts could overflow. Devices have far smaller limits of their own.
pub const MAX_TENSOR_BYTES: u64 = i64::MAX as u64;

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.dtype, self.shape)
    }
}

/// One output of one node: what a [`Tensor`] handle points at inside its graph.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value {
    /// Index of the node in its graph, in the order nodes were added.
    pub node: usize,
    /// Which of the node's outputs (0 for single-output ops).
    pub slot: usize,
}

/// A node of the graph: an op, the values it reads, the types it produces.
#[derive(Clone, Debug)]
pub struct Node {
    /// What the node computes.
    pub op: Op,
    /// The values it reads, in the op's argument order; all from earlier nodes.
    pub inputs: Vec<Value>,
    /// The type of each output, indexed by [`Value::slot`].
    pub outputs: Vec<TensorType>,
}

impl Node {
    /// Type of the first (usually only) output.
    pub fn ty(&self) -> &TensorType {
        &self.outputs[0]
    }
}

/// A handle to a value in a [`Graph`]. Cheap to copy; only meaningful with its own graph
/// (using it with another graph is an [`Error::Graph`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tensor {
    graph: u64,
    value: Value,
}

impl Tensor {
    /// The node output this handle refers to.
    pub fn value(&self) -> Value {
        self.value
    }
}

#[derive(Default)]
struct GraphInner {
    nodes: Vec<Node>,
    inputs: BTreeMap<String, Value>,
    parameters: BTreeMap<String, Value>,
    /// (parameter, its value for the next run), in the order assigned.
    updates: Vec<(Value, Value)>,
    /// Scalar constants by (dtype, value bits), so builders and gradient rules that ask for
    /// the same scalar again share one node (and one device buffer).
    scalars: HashMap<(DType, u64), Tensor>,
}

/// A compute graph under construction.
///
/// Builder methods take `&self`, check shapes and dtypes at once and return
/// `Result<Tensor>`, so calls nest:
///
/// ```
/// use gradflux_core::{Graph, DType};
/// let g = Graph::new();
/// let x = g.input("x", [4, 3], DType::F32)?;
/// let w = g.input("w", [3, 2], DType::F32)?;
/// let y = g.relu(g.matmul(x, w)?)?;
/// assert_eq!(g.shape(y)?.dims(), &[4, 2]);
/// // A bad shape is an error that names the op and both shapes:
/// let err = g.matmul(x, x).unwrap_err();
/// assert!(err.to_string().contains("matmul"));
/// # Ok::<(), gradflux_core::Error>(())
/// ```
pub struct Graph {
    id: u64,
    inner: RefCell<GraphInner>,
}

impl Default for Graph {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.borrow();
        writeln!(f, "Graph #{} ({} nodes)", self.id, inner.nodes.len())?;
        for (i, n) in inner.nodes.iter().enumerate() {
            let ins: Vec<String> = n.inputs.iter().map(|v| format!("%{}", v.node)).collect();
            let outs: Vec<String> = n.outputs.iter().map(|t| t.to_string()).collect();
            writeln!(
                f,
                "  %{i} = {}({}) -> {}",
                n.op.name(),
                ins.join(", "),
                outs.join(", ")
            )?;
        }
        Ok(())
    }
}

impl Graph {
    /// An empty graph. Each graph has its own id, so it rejects tensors of other graphs.
    pub fn new() -> Self {
        Graph {
            id: NEXT_GRAPH_ID.fetch_add(1, Ordering::Relaxed),
            inner: RefCell::new(GraphInner::default()),
        }
    }

    /// A named input, supplied at every run. Names are unique within a graph.
    pub fn input(&self, name: &str, shape: impl Into<Shape>, dtype: DType) -> Result<Tensor> {
        self.check_new_name(name)?;
        let t = self.push(
            Op::Input {
                name: name.to_string(),
            },
            &[],
            vec![TensorType::new(shape, dtype)],
        )?[0];
        self.inner
            .borrow_mut()
            .inputs
            .insert(name.to_string(), t.value);
        Ok(t)
    }

    fn check_new_name(&self, name: &str) -> Result<()> {
        let inner = self.inner.borrow();
        if inner.inputs.contains_key(name) || inner.parameters.contains_key(name) {
            return Err(Error::Graph(format!(
                "an input or parameter named `{name}` already exists in this graph"
            )));
        }
        Ok(())
    }

    /// A parameter: state that lives in each executable compiled from this graph (in a
    /// device buffer on a GPU), starts at `init`, and persists between runs. Read it with
    /// `Executable::parameter` and set it with `Executable::set_parameter`; give it a new
    /// value every run with [`Graph::assign`].
    pub fn parameter(&self, name: &str, init: TensorData) -> Result<Tensor> {
        self.check_new_name(name)?;
        let ty = TensorType::new(init.shape().clone(), init.dtype());
        let t = self.push1(
            Op::Parameter {
                name: name.to_string(),
                init: Arc::new(init),
            },
            &[],
            ty,
        )?;
        self.inner
            .borrow_mut()
            .parameters
            .insert(name.to_string(), t.value);
        Ok(t)
    }

    /// Makes `value` the parameter's value for the next run. The update happens in place
    /// at the end of each run (on a GPU: a buffer copy, no host round trip), so every read
    /// of the parameter during a run sees the value it had when the run started. One
    /// assignment per parameter.
    pub fn assign(&self, parameter: Tensor, value: Tensor) -> Result<()> {
        self.operands("assign", &[("parameter", parameter), ("value", value)])?;
        let p = self.check(parameter)?;
        let v = self.check(value)?;
        let (pt, vt) = (self.ty(parameter)?, self.ty(value)?);
        let mut inner = self.inner.borrow_mut();
        let Op::Parameter { name, .. } = &inner.nodes[p.node].op else {
            return Err(Error::Graph(format!(
                "assign needs a parameter, got the output of `{}`",
                inner.nodes[p.node].op.name()
            )));
        };
        if pt != vt {
            return Err(Error::Shape {
                op: "assign",
                detail: format!("parameter `{name}` is {pt}, the new value is {vt}"),
            });
        }
        if inner.updates.iter().any(|(q, _)| *q == p) {
            return Err(Error::Graph(format!(
                "parameter `{name}` is already assigned in this graph"
            )));
        }
        inner.updates.push((p, v));
        Ok(())
    }

    /// The name of a parameter tensor, or an error if `t` is not a parameter.
    pub fn parameter_name(&self, t: Tensor) -> Result<String> {
        let v = self.check(t)?;
        match &self.inner.borrow().nodes[v.node].op {
            Op::Parameter { name, .. } => Ok(name.clone()),
            other => Err(Error::Graph(format!(
                "expected a parameter, got the output of `{}`",
                other.name()
            ))),
        }
    }

    /// The name of an input tensor (the one given to [`Graph::input`]).
    pub fn input_name(&self, t: Tensor) -> Result<String> {
        let v = self.check(t)?;
        match &self.inner.borrow().nodes[v.node].op {
            Op::Input { name } => Ok(name.clone()),
            other => Err(Error::Graph(format!(
                "expected an input, got the output of `{}`",
                other.name()
            ))),
        }
    }

    /// The (parameter, new value) pairs given to [`Graph::assign`].
    pub fn updates(&self) -> Vec<(Value, Value)> {
        self.inner.borrow().updates.clone()
    }

    /// The parameter named `name`.
    pub fn parameter_named(&self, name: &str) -> Result<Tensor> {
        let v = self.inner.borrow().parameters.get(name).copied();
        v.map(|v| self.tensor(v))
            .ok_or_else(|| Error::UnknownParameter {
                name: name.to_string(),
                known: self
                    .inner
                    .borrow()
                    .parameters
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// A constant tensor, uploaded once when the graph is compiled.
    pub fn constant(&self, data: TensorData) -> Result<Tensor> {
        let ty = TensorType::new(data.shape().clone(), data.dtype());
        Ok(self.push(Op::Constant(Arc::new(data)), &[], vec![ty])?[0])
    }

    /// A rank-0 constant of `dtype` holding `value` (converted like `as`). Asking twice for
    /// the same value and dtype returns the same tensor.
    pub fn scalar(&self, value: f64, dtype: DType) -> Result<Tensor> {
        let key = (dtype, value.to_bits());
        if let Some(&t) = self.inner.borrow().scalars.get(&key) {
            return Ok(t);
        }
        let data = match dtype {
            DType::F16 => TensorData::scalar(half::f16::from_f64(value)),
            DType::F32 => TensorData::scalar(value as f32),
            DType::F64 => TensorData::scalar(value),
            DType::I32 => TensorData::scalar(value as i32),
            DType::U32 => TensorData::scalar(value as u32),
        };
        let t = self.constant(data)?;
        self.inner.borrow_mut().scalars.insert(key, t);
        Ok(t)
    }

    /// The tensor of the input named `name`.
    pub fn input_named(&self, name: &str) -> Result<Tensor> {
        let v = self.inner.borrow().inputs.get(name).copied();
        v.map(|v| self.tensor(v)).ok_or_else(|| {
            let known: Vec<String> = self.inputs().into_iter().map(|(n, _)| n).collect();
            Error::UnknownInput {
                name: name.to_string(),
                known: known.join(", "),
            }
        })
    }

    /// Shape and dtype of a tensor.
    pub fn ty(&self, t: Tensor) -> Result<TensorType> {
        let v = self.check(t)?;
        Ok(self.inner.borrow().nodes[v.node].outputs[v.slot].clone())
    }

    /// Shape of a tensor.
    pub fn shape(&self, t: Tensor) -> Result<Shape> {
        Ok(self.ty(t)?.shape)
    }

    /// Element type of a tensor.
    pub fn dtype(&self, t: Tensor) -> Result<DType> {
        Ok(self.ty(t)?.dtype)
    }

    /// Number of nodes added so far.
    pub fn len(&self) -> usize {
        self.inner.borrow().nodes.len()
    }

    /// True until the first node is added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of the nodes, for backends to compile from.
    pub fn nodes(&self) -> Vec<Node> {
        self.inner.borrow().nodes.clone()
    }

    /// The named inputs with their types, sorted by name.
    pub fn inputs(&self) -> Vec<(String, TensorType)> {
        let inner = self.inner.borrow();
        inner
            .inputs
            .iter()
            .map(|(name, v)| (name.clone(), inner.nodes[v.node].outputs[v.slot].clone()))
            .collect()
    }

    /// The value a tensor refers to, after checking it belongs to this graph.
    pub fn check(&self, t: Tensor) -> Result<Value> {
        if t.graph != self.id {
            return Err(Error::Graph(
                "tensor belongs to another graph; build each graph from its own tensors"
                    .to_string(),
            ));
        }
        Ok(t.value)
    }

    /// Refuses, naming the op and the operand, a tensor from another graph: the first
    /// thing every builder method does, so the message says where the mix-up happened.
    pub(crate) fn operands(&self, op: &str, operands: &[(&str, Tensor)]) -> Result<()> {
        for (name, t) in operands {
            if t.graph != self.id {
                return Err(Error::Graph(format!(
                    "`{op}`: operand `{name}` belongs to another graph (#{}) than the one the \
                     op is added to (#{}); build each graph from its own tensors",
                    t.graph, self.id
                )));
            }
        }
        Ok(())
    }

    /// The handle of a value of this graph (for graph transforms such as `grad`).
    pub(crate) fn tensor(&self, value: Value) -> Tensor {
        Tensor {
            graph: self.id,
            value,
        }
    }

    /// Appends a node whose inputs and output types were already checked by the caller.
    /// Refuses outputs too large to address, so no size computation downstream overflows.
    pub(crate) fn push(
        &self,
        op: Op,
        inputs: &[Tensor],
        outputs: Vec<TensorType>,
    ) -> Result<Vec<Tensor>> {
        let inputs = inputs
            .iter()
            .map(|t| self.check(*t))
            .collect::<Result<Vec<_>>>()?;
        if let Some(t) = outputs.iter().find(|t| t.checked_size_bytes().is_none()) {
            return Err(Error::Shape {
                op: op.name(),
                detail: format!(
                    "a {} tensor of shape {} is over the largest size gradflux addresses ({MAX_TENSOR_BYTES} bytes; its element count overflows or its bytes do)",
                    t.dtype, t.shape
                ),
            });
        }
        let mut inner = self.inner.borrow_mut();
        let node = inner.nodes.len();
        let n_out = outputs.len();
        inner.nodes.push(Node {
            op,
            inputs,
            outputs,
        });
        Ok((0..n_out)
            .map(|slot| Tensor {
                graph: self.id,
                value: Value { node, slot },
            })
            .collect())
    }

    /// Looks at the node that produces `value` (for builder peepholes).
    pub(crate) fn with_node<R>(&self, value: Value, f: impl FnOnce(&Node) -> R) -> R {
        f(&self.inner.borrow().nodes[value.node])
    }

    /// Appends a single-output node.
    pub(crate) fn push1(&self, op: Op, inputs: &[Tensor], output: TensorType) -> Result<Tensor> {
        Ok(self.push(op, inputs, vec![output])?[0])
    }
}
