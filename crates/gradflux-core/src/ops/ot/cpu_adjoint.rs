//! `sinkhorn_adjoint`: the linear solve of implicit Sinkhorn gradients
//! (`SinkhornAdjoint`), in `f64`, step for step what the wgpu kernels do.
//!
//! With `α = log a + f/ε`, `β = log b + g/ε`, the row soft minimum `s` (against `β`) and
//! the column one `t` (against `α`) (inputs: the graph computes them for the pull-back),
//! the plan normalised by its rows is
//! `Π_r[i, j] = exp(β_j + s_i/ε − C_ij/ε)` and by its columns
//! `Π_c[i, j] = exp(α_i + t_j/ε − C_ij/ε)`. Eliminating `wf = vf − λ_b Π_c wg` leaves
//! `(I − λ M) wg = vg − λ_a Π_rᵀ vf` with `M = Π_rᵀ Π_c` and `λ = λ_a λ_b`. `M` is
//! self-adjoint and has its eigenvalues in `[0, 1]` in the inner product weighted by
//! `1/c` (`c = exp(β − t/ε)`, the plan's column sums), so conjugate gradients in that
//! inner product solve it. Columns with no mass (`c_j = 0`) are not coupled: their `wg_j`
//! is the right-hand side's and stays fixed. A balanced problem (`λ = 1`) is singular
//! along `c` (the potentials' constant shift); the right-hand side's component there is
//! projected out.

use crate::{Result, SinkhornSpec, TensorData, TensorType};

use crate::ops::ot::cpu::kernel_products;
use crate::ops::ot::cpu_points::to_tensor;
use crate::ops::ot::cpu_sinkhorn::Problem;

/// The outputs `wf`, `wg` of `SinkhornAdjoint`; inputs in its order.
pub fn sinkhorn_adjoint(
    spec: &SinkhornSpec,
    inputs: &[&TensorData],
    outs: &[TensorType],
) -> Result<Vec<TensorData>> {
    let (problem, rest) = Problem::from_inputs(spec, inputs);
    let [a, b, f, g, s, t, vf, vg] = std::array::from_fn(|k| rest[k].to_f64_vec());
    let solve = spec.implicit.unwrap_or_default();
    let plan = Plan::new(spec, &problem, [a, b, f, g, s, t]);
    let (lambda_a, lambda_b) = (
        SinkhornSpec::damping(spec.rho_a, spec.eps),
        SinkhornSpec::damping(spec.rho_b, spec.eps),
    );
    let lambda = lambda_a * lambda_b;
    let balanced = spec.rho_a.is_none() && spec.rho_b.is_none();
    let (batch, m) = (problem.batch, problem.m);

    let weight: Vec<f64> = plan
        .c
        .iter()
        .map(|&c| {
            if c > 0.0 && (1.0 / c).is_finite() {
                1.0 / c
            } else {
                0.0
            }
        })
        .collect();
    let coupled = |j: usize| weight[j] > 0.0;
    let dot = |p: usize, x: &[f64], y: &[f64]| -> f64 {
        (p * m..(p + 1) * m).map(|j| x[j] * y[j] * weight[j]).sum()
    };
    // Removes the component along c (balanced problems only).
    let project = |p: usize, r: &mut [f64]| {
        if balanced {
            let range = p * m..(p + 1) * m;
            let along: f64 = range.clone().filter(|&j| coupled(j)).map(|j| r[j]).sum();
            let mass: f64 = range
                .clone()
                .filter(|&j| coupled(j))
                .map(|j| plan.c[j])
                .sum();
            if mass > 0.0 {
                for j in range.filter(|&j| coupled(j)) {
                    r[j] -= along / mass * plan.c[j];
                }
            }
        }
    };

    let pv = plan.rows_transposed(&vf);
    let q: Vec<f64> = (0..batch * m).map(|j| vg[j] - lambda_a * pv[j]).collect();
    // Uncoupled columns are solved already; the rest start at zero.
    let mut y: Vec<f64> = (0..batch * m)
        .map(|j| if coupled(j) { 0.0 } else { q[j] })
        .collect();
    let my = plan.m_times(&y);
    let mut r: Vec<f64> = (0..batch * m)
        .map(|j| {
            if coupled(j) {
                q[j] + lambda * my[j]
            } else {
                0.0
            }
        })
        .collect();
    let mut rr = vec![0.0; batch];
    let mut rr0 = vec![0.0; batch];
    let mut done = vec![false; batch];
    for p in 0..batch {
        project(p, &mut r);
        rr[p] = dot(p, &r, &r);
        rr0[p] = rr[p];
        done[p] = !positive(rr[p]);
    }
    let mut dir = r.clone();
    for _ in 0..solve.max_iterations {
        if done.iter().all(|&d| d) {
            break;
        }
        let md = plan.m_times(&dir);
        for p in 0..batch {
            if done[p] {
                continue;
            }
            let range = p * m..(p + 1) * m;
            let ad: Vec<f64> = range
                .clone()
                .map(|j| {
                    if coupled(j) {
                        dir[j] - lambda * md[j]
                    } else {
                        0.0
                    }
                })
                .collect();
            let curvature: f64 = range
                .clone()
                .zip(&ad)
                .map(|(j, adj)| dir[j] * adj * weight[j])
                .sum();
            if !positive(curvature) {
                done[p] = true;
                continue;
            }
            let step = rr[p] / curvature;
            for (j, adj) in range.clone().zip(&ad) {
                y[j] += step * dir[j];
                r[j] -= step * adj;
            }
            project(p, &mut r);
            let next = dot(p, &r, &r);
            if next <= solve.tolerance * solve.tolerance * rr0[p] {
                done[p] = true;
                continue;
            }
            let beta = next / rr[p];
            for j in range {
                dir[j] = r[j] + beta * dir[j];
            }
            rr[p] = next;
        }
    }
    let cy = plan.columns(&y);
    let wf: Vec<f64> = vf.iter().zip(&cy).map(|(v, c)| v - lambda_b * c).collect();
    Ok(vec![to_tensor(&outs[0], &wf)?, to_tensor(&outs[1], &y)?])
}

/// `x > 0`, false for NaN (a step the solve cannot take).
fn positive(x: f64) -> bool {
    x > 0.0
}

/// The normalised plans of one solved problem, as products with vectors.
struct Plan<'a> {
    problem: &'a Problem,
    eps: f64,
    alpha: Vec<f64>,
    beta: Vec<f64>,
    /// `s / ε` and `t / ε`.
    s: Vec<f64>,
    t: Vec<f64>,
    /// The plan's column sums.
    c: Vec<f64>,
}

impl<'a> Plan<'a> {
    /// From the weights, the potentials and the iteration's soft minima `s`, `t`.
    fn new(
        spec: &SinkhornSpec,
        problem: &'a Problem,
        [a, b, f, g, s, t]: [Vec<f64>; 6],
    ) -> Plan<'a> {
        let eps = spec.eps;
        let pot = |w: &[f64], p: &[f64]| -> Vec<f64> {
            w.iter().zip(p).map(|(w, p)| w.ln() + p / eps).collect()
        };
        let (alpha, beta) = (pot(&a, &f), pot(&b, &g));
        let scaled = |v: Vec<f64>| -> Vec<f64> { v.into_iter().map(|x| x / eps).collect() };
        let (s, t) = (scaled(s), scaled(t));
        let c = beta.iter().zip(&t).map(|(b, t)| (b - t).exp()).collect();
        Plan {
            problem,
            eps,
            alpha,
            beta,
            s,
            t,
            c,
        }
    }

    fn dims(&self) -> (usize, usize, usize) {
        (self.problem.batch, self.problem.n, self.problem.m)
    }

    /// `Π_c u` (one value per row).
    fn columns(&self, u: &[f64]) -> Vec<f64> {
        let pots = (self.alpha.as_slice(), self.t.as_slice());
        kernel_products(&self.problem.geometry, self.dims(), self.eps, true, pots, u)
    }

    /// `Π_rᵀ x` (one value per column).
    fn rows_transposed(&self, x: &[f64]) -> Vec<f64> {
        let pots = (self.beta.as_slice(), self.s.as_slice());
        kernel_products(
            &self.problem.geometry,
            self.dims(),
            self.eps,
            false,
            pots,
            x,
        )
    }

    /// `M u = Π_rᵀ Π_c u`.
    fn m_times(&self, u: &[f64]) -> Vec<f64> {
        self.rows_transposed(&self.columns(u))
    }
}
