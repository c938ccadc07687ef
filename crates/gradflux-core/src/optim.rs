//! Optimizers as graph-level updates: `minimize` adds the gradient, the optimizer's
//! arithmetic, and an [`assign`](Graph::assign) per parameter, so a training step is one
//! run of one executable and parameters and optimizer state never leave the device.

use crate::{DType, Graph, Result, Tensor, TensorData};

/// Stochastic gradient descent with momentum (PyTorch's convention):
/// `g += weight_decay * p; v = momentum * v + g; p -= lr * v`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Sgd {
    /// Learning rate: the step is `lr * v`.
    pub lr: f64,
    /// Momentum coefficient; 0 keeps no velocity state.
    pub momentum: f64,
    /// L2 penalty added to the gradient (coupled, unlike [`Adam`]'s); 0 for none.
    pub weight_decay: f64,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd {
            lr: 0.01,
            momentum: 0.9,
            weight_decay: 0.0,
        }
    }
}

/// Adam with decoupled weight decay (AdamW): with `t` counting steps from 1,
/// `m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps) + lr * weight_decay * p`.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// Decay rate of the first-moment (mean) estimate `m`.
    pub beta1: f64,
    /// Decay rate of the second-moment estimate `v`.
    pub beta2: f64,
    /// Added to the denominator, so the step stays finite where `v` is near zero.
    pub eps: f64,
    /// Decoupled weight decay: `lr * weight_decay * p` comes off each step; 0 for none.
    pub weight_decay: f64,
}

impl Default for Adam {
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Which update rule [`Graph::minimize`] adds.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Optimizer {
    /// SGD with momentum; its state is `<param>.momentum`.
    Sgd(Sgd),
    /// AdamW; its state is `<param>.adam_m`, `.adam_v`, `.adam_b1_pow` and `.adam_b2_pow`.
    Adam(Adam),
}

impl Graph {
    /// Adds one optimizer step on `params` (which must be parameters) for a scalar `loss`.
    /// Optimizer state becomes parameters named after each parameter (`w.momentum`,
    /// `w.adam_m`, `w.adam_v`, and `w.adam_b1_pow`/`w.adam_b2_pow` holding `b1^t`, `b2^t`), readable and settable like any other.
    ///
    /// ```
    /// # use gradflux_core::{Graph, DType, TensorData, Optimizer, Adam};
    /// let g = Graph::new();
    /// let x = g.input("x", [8, 3], DType::F32)?;
    /// let w = g.parameter("w", TensorData::zeros([3, 1], DType::F32))?;
    /// let loss = g.mean(g.reshape(g.matmul(x, w)?, [8])?, 0)?;
    /// g.minimize(loss, &[w], Optimizer::Adam(Adam::default()))?;
    /// // compile `loss`: every run is one training step
    /// # Ok::<(), gradflux_core::Error>(())
    /// ```
    pub fn minimize(&self, loss: Tensor, params: &[Tensor], optimizer: Optimizer) -> Result<()> {
        let names = params
            .iter()
            .map(|&p| self.parameter_name(p))
            .collect::<Result<Vec<_>>>()?;
        let grads = self.grad(loss, params)?;
        for ((&p, g), name) in params.iter().zip(grads).zip(&names) {
            let next = match optimizer {
                Optimizer::Sgd(o) => self.sgd_update(p, g, name, o)?,
                Optimizer::Adam(o) => self.adam_update(p, g, name, o)?,
            };
            self.assign(p, next)?;
        }
        Ok(())
    }

    fn state_like(&self, p: Tensor, name: String) -> Result<Tensor> {
        let ty = self.ty(p)?;
        self.parameter(&name, TensorData::zeros(ty.shape, ty.dtype))
    }

    fn sgd_update(&self, p: Tensor, g: Tensor, name: &str, o: Sgd) -> Result<Tensor> {
        let d = self.dtype(p)?;
        let c = |v: f64| self.scalar(v, d);
        let g = if o.weight_decay != 0.0 {
            self.add(g, self.mul(c(o.weight_decay)?, p)?)?
        } else {
            g
        };
        let step = if o.momentum != 0.0 {
            let v = self.state_like(p, format!("{name}.momentum"))?;
            let v_next = self.add(self.mul(c(o.momentum)?, v)?, g)?;
            self.assign(v, v_next)?;
            v_next
        } else {
            g
        };
        self.sub(p, self.mul(c(o.lr)?, step)?)
    }

    fn adam_update(&self, p: Tensor, g: Tensor, name: &str, o: Adam) -> Result<Tensor> {
        let d = self.dtype(p)?;
        let c = |v: f64| self.scalar(v, d);
        let m = self.state_like(p, format!("{name}.adam_m"))?;
        let v = self.state_like(p, format!("{name}.adam_v"))?;
        // b1^t and b2^t as state updated by multiplication, which every backend rounds
        // exactly, rather than `pow`, whose few-ulp error 1 - b2^t would magnify.
        let b1_pow = self.parameter(&format!("{name}.adam_b1_pow"), scalar_one(d)?)?;
        let b2_pow = self.parameter(&format!("{name}.adam_b2_pow"), scalar_one(d)?)?;
        let b1_next = self.mul(b1_pow, c(o.beta1)?)?;
        let b2_next = self.mul(b2_pow, c(o.beta2)?)?;
        let m_next = self.add(self.mul(c(o.beta1)?, m)?, self.mul(c(1.0 - o.beta1)?, g)?)?;
        let v_next = self.add(
            self.mul(c(o.beta2)?, v)?,
            self.mul(c(1.0 - o.beta2)?, self.mul(g, g)?)?,
        )?;
        self.assign(m, m_next)?;
        self.assign(v, v_next)?;
        self.assign(b1_pow, b1_next)?;
        self.assign(b2_pow, b2_next)?;
        let m_hat = self.div(m_next, self.sub(c(1.0)?, b1_next)?)?;
        let v_hat = self.div(v_next, self.sub(c(1.0)?, b2_next)?)?;
        let mut step = self.div(m_hat, self.add(self.sqrt(v_hat)?, c(o.eps)?)?)?;
        if o.weight_decay != 0.0 {
            step = self.add(step, self.mul(c(o.weight_decay)?, p)?)?;
        }
        self.sub(p, self.mul(c(o.lr)?, step)?)
    }
}

/// A rank-0 one in the parameter's dtype (an f16 parameter's state is f16 too).
fn scalar_one(d: DType) -> Result<TensorData> {
    TensorData::scalar(1.0f64).cast_to(d)
}

#[cfg(test)]
mod tests {
    use crate::{Adam, DType, Graph, Optimizer, TensorData};

    #[test]
    fn adam_builds_for_every_float_dtype() {
        for d in [DType::F16, DType::F32, DType::F64] {
            let g = Graph::new();
            let init = TensorData::new([2], vec![0.5f64, -1.0])
                .unwrap()
                .cast_to(d)
                .unwrap();
            let w = g.parameter("w", init).unwrap();
            let loss = g.sum_all(g.mul(w, w).unwrap()).unwrap();
            g.minimize(loss, &[w], Optimizer::Adam(Adam::default()))
                .unwrap_or_else(|e| panic!("Adam on {d}: {e}"));
        }
    }
}
