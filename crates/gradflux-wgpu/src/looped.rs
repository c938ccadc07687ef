//! Running `Op::Sinkhorn`'s loop: the iterations are encoded on the host one after the
//! other, a check of the marginal error every `check_every` iterations is read back as one
//! scalar, and the loop stops at the tolerance or at the iteration limit. With no tolerance
//! there is no readback: the whole schedule is encoded at once.

use gradflux_core::{not_converged, Error, Result, SinkhornSpec};

use crate::readback::read_buffer;
use crate::recorder::{Recorder, Step};

/// One compiled `Op::Sinkhorn` node.
pub(crate) struct SinkhornLoop {
    pub prep: Vec<Step>,
    pub levels: Vec<[Step; 2]>,
    pub check: Vec<Step>,
    pub spec: SinkhornSpec,
    pub batch: usize,
    /// Scratch `[largest error]` and `[Σa, Σb, bad]` per problem.
    pub status: wgpu::Buffer,
    pub masses: wgpu::Buffer,
    /// Holds the iteration count written by the host, copied into `iterations_out`.
    pub iterations_src: wgpu::Buffer,
    pub iterations_out: wgpu::Buffer,
}

impl SinkhornLoop {
    fn level(&self, t: usize) -> &[Step; 2] {
        &self.levels[t.min(self.levels.len() - 1)]
    }

    /// Every dispatch of the full schedule (all `max_iterations`, then the check), as
    /// timing records it.
    pub fn schedule(&self) -> impl Iterator<Item = &Step> {
        let iterations = (0..self.spec.max_iterations).flat_map(|t| self.level(t).iter());
        self.prep.iter().chain(iterations).chain(&self.check)
    }

    /// Records the loop into `rec`, submitting and reading the error back at each check
    /// when there is a tolerance.
    pub fn run<'a>(&'a self, rec: &mut Recorder<'a>) -> Result<()> {
        let spec = &self.spec;
        for s in &self.prep {
            rec.dispatch(s);
        }
        let mut iterations = 0;
        let mut weights_checked = false;
        let mut last_error = None;
        for t in 0..spec.max_iterations {
            for s in self.level(t) {
                rec.dispatch(s);
            }
            iterations = t + 1;
            last_error = None;
            if spec.checks_after(t) {
                let error = self.measure(rec, &mut weights_checked)?;
                last_error = Some(error);
                if spec.tolerance.is_some_and(|tol| error <= tol) {
                    break;
                }
            }
        }
        if last_error.is_none() {
            last_error = match spec.tolerance {
                Some(_) => Some(self.measure(rec, &mut weights_checked)?),
                None => {
                    for s in &self.check {
                        rec.dispatch(s);
                    }
                    None
                }
            };
        }
        if let (Some(tolerance), Some(error)) = (spec.tolerance, last_error) {
            if error.is_nan() || error > tolerance {
                return Err(not_converged(iterations, error, tolerance));
            }
        }
        let queue = &rec.context().queue;
        // Written before the next submission, which is the one holding the copy.
        queue.write_buffer(&self.iterations_src, 0, &(iterations as u32).to_le_bytes());
        rec.copy(&self.iterations_src, &self.iterations_out, 4);
        Ok(())
    }

    /// Runs the check, submits, and reads the largest error back (checking the weights
    /// the first time).
    fn measure<'a>(&'a self, rec: &mut Recorder<'a>, weights_checked: &mut bool) -> Result<f64> {
        for s in &self.check {
            rec.dispatch(s);
        }
        rec.submit();
        let ctx = rec.context();
        let read = |buf: &wgpu::Buffer, bytes: u64| {
            let raw = read_buffer(
                &ctx.device,
                &ctx.queue,
                buf,
                bytes,
                "reading sinkhorn's error",
            )?;
            Ok::<Vec<f32>, Error>(bytemuck::pod_collect_to_vec(&raw))
        };
        if !*weights_checked {
            *weights_checked = true;
            let masses = read(&self.masses, (self.batch.max(1) * 12) as u64)?;
            for (p, m) in masses.chunks_exact(3).enumerate().take(self.batch) {
                check_problem(&self.spec, p, m)?;
            }
        }
        Ok(read(&self.status, 4)?[0] as f64)
    }
}

/// The weight check of problem `p` from its `[Σa, Σb, bad]`.
fn check_problem(spec: &SinkhornSpec, p: usize, m: &[f32]) -> Result<()> {
    let bad = m[2] as u32;
    for (bit, side) in [(1, "a"), (2, "b")] {
        if bad & bit != 0 {
            return Err(Error::InvalidValue {
                op: "sinkhorn",
                detail: format!(
                    "problem {p}: {side} holds a negative or non-finite weight; weights must be \
                     finite and non-negative"
                ),
            });
        }
    }
    spec.check_masses(p, m[0] as f64, m[1] as f64)
}
