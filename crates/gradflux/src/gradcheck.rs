//! Checking gradients against central finite differences, in f64 on the CPU reference, for
//! any graph: the built-in ops, your own compositions, and custom ops with a backward.

use gradflux_core::{DType, Error, Executable, Graph, Result, Storage, Tensor, TensorData};

use crate::Device;

/// Step and tolerance of a finite-difference check.
#[derive(Copy, Clone, Debug)]
pub struct GradCheck {
    /// Central-difference step.
    pub eps: f64,
    /// Allowed `|analytic - numeric| <= abs + rel * max(|analytic|, |numeric|)`.
    pub rel: f64,
    /// See `rel`.
    pub abs: f64,
}

impl Default for GradCheck {
    fn default() -> Self {
        GradCheck {
            eps: 1e-6,
            rel: 1e-5,
            abs: 1e-8,
        }
    }
}

/// The worst disagreement found, and how many elements were checked.
#[derive(Clone, Debug)]
pub struct GradCheckReport {
    /// Elements whose gradient was compared.
    pub checked: usize,
    /// `(input name, flat index, analytic, numeric)` of the worst element, if any failed.
    pub worst_failure: Option<(String, usize, f64, f64)>,
    /// The largest `|analytic - numeric|` seen.
    pub max_abs_error: f64,
}

impl GradCheckReport {
    /// True when every element was within tolerance.
    pub fn passed(&self) -> bool {
        self.worst_failure.is_none()
    }
}

/// Compares `grad(loss, wrt)` with central differences of `loss` for every element of the
/// f64 inputs `wrt` (input tensors, as `grad` takes them; their data comes from `inputs`).
/// Build the graph in `DType::F64` so the differences are accurate.
///
/// ```
/// use gradflux::{check_gradients, DType, GradCheck, Graph, TensorData};
/// let g = Graph::new();
/// let x = g.input("x", [3], DType::F64)?;
/// let loss = g.sum_all(g.mul(g.exp(x)?, x)?)?;
/// let data = TensorData::new([3], vec![0.1f64, -0.5, 1.2])?;
/// let report = check_gradients(&g, loss, &[("x", &data)], &[x], GradCheck::default())?;
/// assert!(report.passed(), "{report:?}");
/// # Ok::<(), gradflux::Error>(())
/// ```
pub fn check_gradients(
    graph: &Graph,
    loss: Tensor,
    inputs: &[(&str, &TensorData)],
    wrt: &[Tensor],
    opts: GradCheck,
) -> Result<GradCheckReport> {
    let wrt_tensors = wrt.to_vec();
    let names: Vec<String> = wrt
        .iter()
        .map(|&t| graph.input_name(t))
        .collect::<Result<_>>()?;
    for (name, &t) in names.iter().zip(&wrt_tensors) {
        let d = graph.dtype(t)?;
        if d != DType::F64 {
            return Err(Error::DType {
                op: "check_gradients",
                expected: format!("input `{name}` in f64, so differences are accurate"),
                got: d,
            });
        }
    }
    let grads = graph.grad(loss, &wrt_tensors)?;
    let analytic = Device::Cpu.compile(graph, &grads)?.run(inputs)?;
    let mut loss_exe = Device::Cpu.compile(graph, &[loss])?;

    let mut report = GradCheckReport {
        checked: 0,
        worst_failure: None,
        max_abs_error: 0.0,
    };
    let mut worst_excess = 0.0;
    for (k, name) in names.iter().enumerate() {
        let base = inputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| (*d).clone())
            .ok_or_else(|| Error::MissingInput {
                name: name.to_string(),
                shape: graph.shape(wrt_tensors[k]).unwrap_or_default(),
                dtype: DType::F64,
            })?;
        let values = base.values::<f64>()?.to_vec();
        let grad = analytic[k].values::<f64>()?;
        for i in 0..values.len() {
            let mut at = |delta: f64| -> Result<f64> {
                let mut v = values.clone();
                v[i] += delta;
                let moved = TensorData::from_storage(base.shape().clone(), Storage::F64(v))?;
                let swapped: Vec<(&str, &TensorData)> = inputs
                    .iter()
                    .map(|(n, d)| if n == name { (*n, &moved) } else { (*n, *d) })
                    .collect();
                run_scalar(&mut *loss_exe, &swapped)
            };
            let numeric = (at(opts.eps)? - at(-opts.eps)?) / (2.0 * opts.eps);
            let err = (grad[i] - numeric).abs();
            let allowed = opts.abs + opts.rel * grad[i].abs().max(numeric.abs());
            report.checked += 1;
            report.max_abs_error = report.max_abs_error.max(err);
            // NaN counts as the worst possible disagreement.
            let excess = if err.is_nan() {
                f64::INFINITY
            } else {
                err - allowed
            };
            if excess > 0.0 && excess >= worst_excess {
                worst_excess = excess;
                report.worst_failure = Some((name.to_string(), i, grad[i], numeric));
            }
        }
    }
    Ok(report)
}

fn run_scalar(exe: &mut dyn Executable, inputs: &[(&str, &TensorData)]) -> Result<f64> {
    Ok(exe.run(inputs)?[0].to_f64_vec()[0])
}
