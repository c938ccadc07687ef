//! `sinkhorn`: the whole log-domain loop of `Sinkhorn`, in `f64` with the potentials
//! rounded to the dtype after every half-step (as the GPU stores them), the same ε
//! schedule, the same checks, and the same stopping rule as the wgpu launcher.

use crate::{
    not_converged, within_tolerance, worst_error, Error, Result, SinkhornSpec, TensorData,
    TensorType,
};

use crate::ops::ot::cpu::{soft_minima, Geometry};
use crate::ops::ot::cpu_points::{round_to, to_tensor, Clouds};

/// One node's problems: their sizes and the geometry.
pub struct Problem {
    /// Where the costs come from.
    pub geometry: Geometry,
    /// Independent problems solved together.
    pub batch: usize,
    /// Length of the first marginal `a` (rows of the cost).
    pub n: usize,
    /// Length of the second marginal `b` (columns of the cost).
    pub m: usize,
}

impl Problem {
    /// The geometry from the leading inputs of `Sinkhorn` (or its adjoint), sized by
    /// the weights `a`, `b` that follow; returns the inputs after the geometry.
    pub fn from_inputs<'a>(
        spec: &SinkhornSpec,
        inputs: &'a [&'a TensorData],
    ) -> (Problem, &'a [&'a TensorData]) {
        let (geometry, rest) = match spec.points {
            None => {
                let dims = inputs[0].shape().dims();
                let (n, m) = (dims[dims.len() - 2], dims[dims.len() - 1]);
                let cost = inputs[0].to_f64_vec();
                (Geometry::Dense { cost, n, m }, &inputs[1..])
            }
            Some(kind) => (
                Geometry::Points(Clouds::new(inputs[0], inputs[1], kind)),
                &inputs[2..],
            ),
        };
        let (n, m) = (rest[0].shape().dims().last(), rest[1].shape().dims().last());
        let (n, m) = (*n.expect("rank ≥ 1"), *m.expect("rank ≥ 1"));
        let a_dims = rest[0].shape().dims();
        let batch = a_dims[..a_dims.len() - 1].iter().product();
        let problem = Problem {
            geometry,
            batch,
            n,
            m,
        };
        (problem, rest)
    }

    /// `−eps · log Σ_j exp(lw_j + pot_j/eps − c_ij/eps)` for every row (`rows`), or the
    /// same over `i` for every column.
    pub fn softmin(&self, eps: f64, rows: bool, lw: &[f64], pot: &[f64]) -> Vec<f64> {
        let h: Vec<f64> = lw.iter().zip(pot).map(|(l, p)| l + p / eps).collect();
        soft_minima(&self.geometry, (self.batch, self.n, self.m), eps, rows, &h)
    }
}

/// The outputs `f`, `g`, `error`, `iterations` of `Sinkhorn`; inputs in its order.
pub fn sinkhorn(
    spec: &SinkhornSpec,
    inputs: &[&TensorData],
    outs: &[TensorType],
) -> Result<Vec<TensorData>> {
    let (problem, rest) = Problem::from_inputs(spec, inputs);
    let (batch, n, m) = (problem.batch, problem.n, problem.m);
    let [a, b, f0, g0] = [rest[0], rest[1], rest[2], rest[3]];
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    if spec.tolerance.is_some() {
        check_weights(spec, &a, &b, (batch, n, m))?;
    }
    let log = |w: &[f64]| w.iter().map(|v| v.ln()).collect::<Vec<_>>();
    let (log_a, log_b) = (log(&a), log(&b));
    let (mut f, mut g) = (f0.to_f64_vec(), g0.to_f64_vec());
    let dtype = outs[0].dtype;
    let update = |s: Vec<f64>, rho: Option<f64>, eps: f64| -> Vec<f64> {
        let damping = SinkhornSpec::damping(rho, eps);
        s.into_iter()
            .map(|v| round_to(dtype, round_to(dtype, v) * damping))
            .collect()
    };
    let error = |f: &[f64], g: &[f64]| -> Vec<f64> {
        let eps = spec.eps;
        let s = problem.softmin(eps, true, &log_b, g);
        let inv_rho = spec.rho_a.map_or(0.0, |r| 1.0 / r);
        (0..batch)
            .map(|p| {
                (p * n..(p + 1) * n)
                    .map(|i| {
                        let mass = a[i] * ((f[i] - s[i]) / eps).exp();
                        (mass - a[i] * (-f[i] * inv_rho).exp()).abs()
                    })
                    .sum::<f64>()
            })
            .collect()
    };
    let mut iterations = 0;
    let mut errors = None;
    for t in 0..spec.max_iterations {
        let eps = spec.eps_at(t);
        f = update(problem.softmin(eps, true, &log_b, &g), spec.rho_a, eps);
        g = update(problem.softmin(eps, false, &log_a, &f), spec.rho_b, eps);
        iterations = t + 1;
        errors = None;
        if spec.checks_after(t) {
            let e: Vec<f64> = error(&f, &g)
                .into_iter()
                .map(|v| round_to(dtype, v))
                .collect();
            let done = within_tolerance(&e, spec.tolerance);
            errors = Some(e);
            if done {
                break;
            }
        }
    }
    let errors = match errors {
        Some(e) => e,
        None => error(&f, &g)
            .into_iter()
            .map(|v| round_to(dtype, v))
            .collect(),
    };
    if let Some(tolerance) = spec.tolerance {
        if !within_tolerance(&errors, spec.tolerance) {
            return Err(not_converged(iterations, worst_error(&errors), tolerance));
        }
    }
    Ok(vec![
        to_tensor(&outs[0], &f)?,
        to_tensor(&outs[1], &g)?,
        to_tensor(&outs[2], &errors)?,
        TensorData::new(outs[3].shape.clone(), vec![iterations as u32])?,
    ])
}

/// Refuses negative or non-finite weights, a problem with no mass, and (when both
/// marginals are exact) unequal masses.
fn check_weights(
    spec: &SinkhornSpec,
    a: &[f64],
    b: &[f64],
    (batch, n, m): (usize, usize, usize),
) -> Result<()> {
    for p in 0..batch {
        let (wa, wb) = (&a[p * n..(p + 1) * n], &b[p * m..(p + 1) * m]);
        for (name, w) in [("a", wa), ("b", wb)] {
            if let Some((i, v)) = w
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
            {
                return Err(Error::InvalidValue {
                    op: "sinkhorn",
                    detail: format!(
                        "problem {p}: {name} holds a negative or non-finite weight ({name}[{i}] = \
                         {v}); weights must be finite and non-negative"
                    ),
                });
            }
        }
        let (sa, sb) = (wa.iter().sum::<f64>(), wb.iter().sum::<f64>());
        spec.check_masses(p, sa, sb)?;
    }
    Ok(())
}
