//! Reverse-mode gradients as a graph transform: walk the nodes backwards from the outputs,
//! ask each op for its vector-Jacobian product, and add those products as ordinary nodes.
//! The gradient is then just more graph, so it compiles and runs on every backend.

mod rules;

use std::collections::HashMap;

use crate::{Error, Graph, Result, Shape, Tensor, Value};

impl Graph {
    /// Gradients of a scalar `loss` with respect to each tensor in `wrt` (same shapes).
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType};
    /// let g = Graph::new();
    /// let x = g.input("x", [3], DType::F64)?;
    /// let loss = g.sum_all(g.mul(x, x)?)?;       // sum(x^2)
    /// let dx = g.grad(loss, &[x])?[0];            // 2x
    /// assert_eq!(g.shape(dx)?.dims(), &[3]);
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn grad(&self, loss: Tensor, wrt: &[Tensor]) -> Result<Vec<Tensor>> {
        self.operands("grad", &[("loss", loss)])?;
        for t in wrt {
            self.operands("grad", &[("wrt", *t)])?;
        }
        let ty = self.ty(loss)?;
        if ty.shape.numel() != 1 {
            return Err(Error::Shape {
                op: "grad",
                detail: format!(
                    "the loss must have one element, got {}; use `vjp` with a cotangent for \
                     other outputs",
                    ty.shape
                ),
            });
        }
        let one = self.scalar(1.0, ty.dtype)?;
        let seed = self.reshape(one, ty.shape)?;
        self.vjp(&[loss], &[seed], wrt)
    }

    /// Vector-Jacobian product: for outputs `ys` with cotangents `cts` (one per output, same
    /// shape and dtype), the gradient of `sum(ys[i] * cts[i])` with respect to each of `wrt`.
    /// A value used several times accumulates the gradients of every use. A `wrt` that the
    /// outputs do not depend on gets zeros.
    pub fn vjp(&self, ys: &[Tensor], cts: &[Tensor], wrt: &[Tensor]) -> Result<Vec<Tensor>> {
        if ys.len() != cts.len() {
            return Err(Error::Graph(format!(
                "vjp needs one cotangent per output: {} outputs, {} cotangents",
                ys.len(),
                cts.len()
            )));
        }
        for &w in wrt {
            let d = self.dtype(w)?;
            if !d.is_float() {
                return Err(Error::DType {
                    op: "grad",
                    expected: "a float tensor to differentiate with respect to".into(),
                    got: d,
                });
            }
        }
        let nodes = self.nodes();
        let wrt_values: Vec<Value> = wrt.iter().map(|t| self.check(*t)).collect::<Result<_>>()?;

        // Only nodes that depend on some `wrt` need a cotangent.
        let mut depends = vec![false; nodes.len()];
        for v in &wrt_values {
            depends[v.node] = true;
        }
        for (n, node) in nodes.iter().enumerate() {
            if node.inputs.iter().any(|v| depends[v.node]) {
                depends[n] = true;
            }
        }

        let mut cot: HashMap<Value, Tensor> = HashMap::new();
        for (&y, &c) in ys.iter().zip(cts) {
            let (ty, tc) = (self.ty(y)?, self.ty(c)?);
            if ty != tc {
                return Err(Error::Shape {
                    op: "vjp",
                    detail: format!("cotangent {tc} does not match output {ty}"),
                });
            }
            accumulate(self, &mut cot, self.check(y)?, c)?;
        }
        let last = ys.iter().map(|t| t.value().node).max().unwrap_or(0);
        for n in (0..=last.min(nodes.len().saturating_sub(1))).rev() {
            if !depends[n] {
                continue;
            }
            let node = &nodes[n];
            let outs: Vec<Option<Tensor>> = (0..node.outputs.len())
                .map(|slot| cot.get(&Value { node: n, slot }).copied())
                .collect();
            if outs.iter().all(Option::is_none) {
                continue;
            }
            let needs: Vec<bool> = node.inputs.iter().map(|v| depends[v.node]).collect();
            if !needs.iter().any(|&b| b) {
                continue;
            }
            let grads = rules::vjp(self, node, n, &outs, &needs)?;
            for ((input, need), grad) in node.inputs.iter().zip(needs).zip(grads) {
                if let (true, Some(gt)) = (need, grad) {
                    accumulate(self, &mut cot, *input, gt)?;
                }
            }
        }
        wrt_values
            .iter()
            .zip(wrt)
            .map(|(v, &t)| match cot.get(v) {
                Some(g) => Ok(*g),
                None => self.zeros_like(t),
            })
            .collect()
    }

    /// Zeros of `t`'s shape and dtype (a broadcast scalar).
    pub fn zeros_like(&self, t: Tensor) -> Result<Tensor> {
        let ty = self.ty(t)?;
        self.full(0.0, ty.shape, ty.dtype)
    }

    /// A tensor of `shape` filled with `value`.
    pub fn full(&self, value: f64, shape: impl Into<Shape>, dtype: crate::DType) -> Result<Tensor> {
        let s = self.scalar(value, dtype)?;
        let shape = shape.into();
        if shape.rank() == 0 {
            return Ok(s);
        }
        self.broadcast_to(s, shape)
    }

    /// Sums `t` down to `target`, undoing numpy broadcasting (the adjoint of
    /// `broadcast_to`).
    pub fn sum_to(&self, t: Tensor, target: &Shape) -> Result<Tensor> {
        let shape = self.shape(t)?;
        if &shape == target {
            return Ok(t);
        }
        if !target.broadcasts_to(&shape) {
            return Err(Error::Shape {
                op: "sum_to",
                detail: format!("{target} is not a broadcast source of {shape}"),
            });
        }
        let mut cur = t;
        for _ in 0..shape.rank() - target.rank() {
            cur = self.sum(cur, 0)?;
        }
        for (d, &dim) in target.dims().iter().enumerate() {
            if dim == 1 && self.shape(cur)?.dims()[d] != 1 {
                cur = self.sum_keepdim(cur, d as isize)?;
            }
        }
        self.reshape(cur, target.clone())
    }
}

fn accumulate(g: &Graph, cot: &mut HashMap<Value, Tensor>, v: Value, t: Tensor) -> Result<()> {
    let sum = match cot.get(&v) {
        Some(prev) => g.add(*prev, t)?,
        None => t,
    };
    cot.insert(v, sum);
    Ok(())
}
