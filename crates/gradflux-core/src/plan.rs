//! What both backends do before running anything: prune to what the outputs need, fix the
//! order, and plan storage by liveness so a buffer is reused once its last reader has run.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::{Error, Graph, Node, Op, Result, Tensor, Value};

/// Memory a compiled executable needs, so the effect of buffer reuse is visible.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryReport {
    /// Bytes held at once: pooled intermediate buffers plus inputs and constants.
    pub peak_bytes: u64,
    /// Bytes every value would take with no reuse at all.
    pub total_value_bytes: u64,
    /// Number of pooled intermediate buffers.
    pub pooled_buffers: usize,
    /// Bytes of a backend's private scratch buffers (the wgpu passes of `top_k` on long
    /// rows and of MoE dispatch hand data between passes in them), held for the
    /// executable's life and included in `peak_bytes`.
    pub scratch_bytes: u64,
}

/// Where a value's bytes live.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Home {
    /// The upload buffer of a named input (index into [`Plan::inputs`]).
    Input(usize),
    /// A constant uploaded at compile time (index into [`Plan::constants`]).
    Constant(usize),
    /// A parameter's persistent buffer (index into [`Plan::parameters`]).
    Parameter(usize),
    /// A pooled buffer shared over time with other values.
    Pool(usize),
}

/// A named input of the executable: its name, value and type.
#[derive(Clone, Debug)]
pub struct PlannedInput {
    /// The name runs supply it under.
    pub name: String,
    /// The input node's value in the graph.
    pub value: Value,
    /// Shape and dtype every run must supply.
    pub ty: crate::TensorType,
}

/// A parameter of the executable: its name, value, type and initial data.
#[derive(Clone, Debug)]
pub struct PlannedParameter {
    /// The name it is read and set by.
    pub name: String,
    /// The parameter node's value in the graph.
    pub value: Value,
    /// Shape and dtype of its buffer.
    pub ty: crate::TensorType,
    /// The data its buffer holds when the executable is compiled.
    pub init: std::sync::Arc<crate::TensorData>,
}

/// The compiled schedule and storage assignment of a graph.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The nodes, pruned and in graph order.
    pub nodes: Vec<Node>,
    /// Node ids (into the original graph) of `nodes`, same order.
    pub node_ids: Vec<usize>,
    /// The values asked for, in the order asked.
    pub outputs: Vec<Value>,
    /// The inputs the outputs depend on, in graph order; `Home::Input(i)` indexes this list.
    pub inputs: Vec<PlannedInput>,
    /// Values of constant nodes, in schedule order.
    pub constants: Vec<Value>,
    /// Parameters in graph order; `Home::Parameter(i)` indexes this list.
    pub parameters: Vec<PlannedParameter>,
    /// `(index into parameters, value)`: copied into the parameter at the end of each run.
    pub updates: Vec<(usize, Value)>,
    /// Byte size of each pooled buffer.
    pub pool_sizes: Vec<u64>,
    /// Where every live value's bytes are (reshapes share their source's home).
    pub homes: HashMap<Value, Home>,
    /// For each step (index into `nodes`), the values whose last reader is that step.
    pub dead_after: Vec<Vec<Value>>,
    /// What the plan's storage takes; `scratch_bytes` is 0 here, for the backend to
    /// fill in.
    pub memory: MemoryReport,
}

impl Plan {
    /// Plans a graph for the given outputs.
    pub fn new(graph: &Graph, outputs: &[Tensor]) -> Result<Plan> {
        if outputs.is_empty() {
            return Err(Error::Graph("compile needs at least one output".into()));
        }
        let outputs = outputs
            .iter()
            .map(|t| graph.check(*t))
            .collect::<Result<Vec<_>>>()?;
        let all = graph.nodes();
        let assigned = graph.updates();

        // Prune: walk back from the outputs and from every parameter update.
        let mut needed = vec![false; all.len()];
        let mut stack: Vec<usize> = outputs.iter().map(|v| v.node).collect();
        stack.extend(assigned.iter().flat_map(|(p, v)| [p.node, v.node]));
        while let Some(n) = stack.pop() {
            if !std::mem::replace(&mut needed[n], true) {
                stack.extend(all[n].inputs.iter().map(|v| v.node));
            }
        }
        let node_ids: Vec<usize> = (0..all.len()).filter(|&n| needed[n]).collect();
        let nodes: Vec<Node> = node_ids.iter().map(|&n| all[n].clone()).collect();

        // Last reader of every value; outputs live to the end.
        let end = nodes.len();
        let mut last_use: BTreeMap<Value, usize> = BTreeMap::new();
        for (s, node) in nodes.iter().enumerate() {
            for slot in 0..node.outputs.len() {
                last_use.insert(
                    Value {
                        node: node_ids[s],
                        slot,
                    },
                    s,
                );
            }
            for v in &node.inputs {
                last_use.insert(*v, s);
            }
        }
        let mut output_set: HashSet<Value> = outputs.iter().copied().collect();
        output_set.extend(assigned.iter().map(|(_, v)| *v));
        for v in &output_set {
            last_use.insert(*v, end);
        }
        let mut dead_after = vec![Vec::new(); nodes.len()];
        for (v, &s) in &last_use {
            if s < end {
                dead_after[s].push(*v);
            }
        }

        // Storage: a reshape shares its source's home, so a home lives as long as the
        // longest-lived value that shares it.
        let mut root: HashMap<Value, Value> = HashMap::new();
        for (s, node) in nodes.iter().enumerate() {
            for slot in 0..node.outputs.len() {
                let v = Value {
                    node: node_ids[s],
                    slot,
                };
                let r = match node.op {
                    Op::Reshape | Op::Detach => root[&node.inputs[0]],
                    _ => v,
                };
                root.insert(v, r);
            }
        }
        let mut root_end: HashMap<Value, usize> = HashMap::new();
        for (v, r) in &root {
            let e = root_end.entry(*r).or_insert(0);
            *e = (*e).max(last_use[v]);
        }

        let mut inputs = Vec::new();
        let mut constants = Vec::new();
        let mut parameters = Vec::new();
        let mut root_home: HashMap<Value, Home> = HashMap::new();
        let mut pool_sizes: Vec<u64> = Vec::new();
        let mut free: Vec<usize> = Vec::new();
        let mut release_at: Vec<Vec<usize>> = vec![Vec::new(); nodes.len() + 1];
        let mut total_value_bytes = 0u64;
        let mut fixed_bytes = 0u64;
        for (s, node) in nodes.iter().enumerate() {
            let id = node_ids[s];
            for (slot, ty) in node.outputs.iter().enumerate() {
                let v = Value { node: id, slot };
                if root[&v] != v {
                    continue;
                }
                let bytes = ty.size_bytes();
                total_value_bytes += bytes;
                let home = match &node.op {
                    Op::Input { name } => {
                        inputs.push(PlannedInput {
                            name: name.clone(),
                            value: v,
                            ty: ty.clone(),
                        });
                        fixed_bytes += bytes;
                        Home::Input(inputs.len() - 1)
                    }
                    Op::Constant(_) => {
                        constants.push(v);
                        fixed_bytes += bytes;
                        Home::Constant(constants.len() - 1)
                    }
                    Op::Parameter { name, init } => {
                        parameters.push(PlannedParameter {
                            name: name.clone(),
                            value: v,
                            ty: ty.clone(),
                            init: init.clone(),
                        });
                        fixed_bytes += bytes;
                        Home::Parameter(parameters.len() - 1)
                    }
                    _ => {
                        let b = take_buffer(&mut free, &mut pool_sizes, bytes);
                        release_at[root_end[&v]].push(b);
                        Home::Pool(b)
                    }
                };
                root_home.insert(v, home);
            }
            // Buffers whose last reader is this step become free for the next step.
            free.append(&mut release_at[s]);
        }
        let homes = root.iter().map(|(v, r)| (*v, root_home[r])).collect();
        let updates = assigned
            .iter()
            .map(|(p, v)| {
                let i = parameters
                    .iter()
                    .position(|q| q.value == *p)
                    .expect("assigned parameters are kept by pruning");
                (i, *v)
            })
            .collect();
        let memory = MemoryReport {
            peak_bytes: fixed_bytes + pool_sizes.iter().sum::<u64>(),
            total_value_bytes,
            pooled_buffers: pool_sizes.len(),
            scratch_bytes: 0,
        };
        Ok(Plan {
            nodes,
            node_ids,
            outputs,
            inputs,
            constants,
            parameters,
            updates,
            pool_sizes,
            homes,
            dead_after,
            memory,
        })
    }
}

/// Picks a free buffer for `bytes`: the smallest that fits, else the largest free one grown
/// to fit, else a new one.
fn take_buffer(free: &mut Vec<usize>, sizes: &mut Vec<u64>, bytes: u64) -> usize {
    let fitting = free
        .iter()
        .enumerate()
        .filter(|(_, &b)| sizes[b] >= bytes)
        .min_by_key(|(_, &b)| sizes[b]);
    let chosen = match fitting {
        Some((i, _)) => Some(i),
        None => free
            .iter()
            .enumerate()
            .max_by_key(|(_, &b)| sizes[b])
            .map(|(i, _)| i),
    };
    match chosen {
        Some(i) => {
            let b = free.swap_remove(i);
            sizes[b] = sizes[b].max(bytes);
            b
        }
        None => {
            sizes.push(bytes);
            sizes.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DType;

    #[test]
    fn chain_reuses_two_buffers() {
        let g = Graph::new();
        let x = g.input("x", [1000], DType::F32).unwrap();
        let mut y = x;
        for _ in 0..50 {
            y = g.exp(y).unwrap();
        }
        let plan = Plan::new(&g, &[y]).unwrap();
        assert_eq!(plan.memory.pooled_buffers, 2);
        assert_eq!(plan.memory.peak_bytes, 3 * 4000);
        assert_eq!(plan.memory.total_value_bytes, 51 * 4000);
    }

    #[test]
    fn prunes_unused_nodes_and_inputs() {
        let g = Graph::new();
        let x = g.input("x", [4], DType::F32).unwrap();
        let unused = g.input("unused", [4], DType::F32).unwrap();
        let _dead = g.exp(unused).unwrap();
        let y = g.neg(x).unwrap();
        let plan = Plan::new(&g, &[y]).unwrap();
        assert_eq!(plan.nodes.len(), 2);
        assert_eq!(plan.inputs.len(), 1);
    }

    #[test]
    fn input_homes_index_the_input_list() {
        let g = Graph::new();
        let x = g.input("x", [2], DType::F32).unwrap();
        let w = g.input("w", [2], DType::F32).unwrap();
        let y = g.add(x, w).unwrap();
        let plan = Plan::new(&g, &[y]).unwrap();
        for (i, input) in plan.inputs.iter().enumerate() {
            assert_eq!(plan.homes[&input.value], Home::Input(i));
        }
    }

    #[test]
    fn output_buffers_are_never_reused() {
        let g = Graph::new();
        let x = g.input("x", [8], DType::F32).unwrap();
        let a = g.exp(x).unwrap();
        let b = g.neg(a).unwrap();
        let c = g.neg(b).unwrap();
        let plan = Plan::new(&g, &[a, c]).unwrap();
        assert_ne!(plan.homes[&a.value()], plan.homes[&c.value()]);
        assert_ne!(plan.homes[&b.value()], plan.homes[&a.value()]);
    }

    #[test]
    fn reshape_shares_its_source_home() {
        let g = Graph::new();
        let x = g.input("x", [2, 3], DType::F32).unwrap();
        let e = g.exp(x).unwrap();
        let r = g.reshape(e, [6]).unwrap();
        let n = g.neg(r).unwrap();
        let plan = Plan::new(&g, &[n]).unwrap();
        assert_eq!(plan.homes[&e.value()], plan.homes[&r.value()]);
        assert_ne!(plan.homes[&n.value()], plan.homes[&e.value()]);
    }
}
