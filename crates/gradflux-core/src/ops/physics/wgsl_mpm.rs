//! The WGSL lowering of an MLS-MPM rollout (not built yet: the CPU backend runs it).

use crate::kernel::{LowerCx, Lowering};
use crate::{Error, Result};

use super::{Mpm, RolloutOptions};

fn not_yet() -> Error {
    Error::Unsupported {
        backend: "wgpu".into(),
        what: "mpm_rollout on wgpu is not built yet; run it on the CPU backend".into(),
    }
}

/// The forward's loop plan.
pub fn forward(_: &Mpm, _: &RolloutOptions, _: &LowerCx<'_>) -> Result<Lowering> {
    Err(not_yet())
}

/// The backward's loop plan.
pub fn backward(_: &Mpm, _: &RolloutOptions, _: &LowerCx<'_>) -> Result<Lowering> {
    Err(not_yet())
}
