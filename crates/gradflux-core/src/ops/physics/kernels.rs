//! What the physics lowerings share: launches of one shader file whose entry points all
//! bind [`SLOTS`] buffers then the system's `info` words (read-only placeholders filling
//! the slots an entry point does not use, so every pipeline fits WebGPU's default of 8
//! storage buffers per stage), and the scratch slots of one plan.

use crate::kernel::launch::{Bind, Launch, Workgroups};
use crate::kernel::shaders::{specialise, ShaderFile};
use crate::kernel::KernelSource;
use crate::DType;

/// Threads per workgroup of the physics kernels (their `WG`).
pub const WG: u64 = 64;
/// Buffers every entry point binds before `info`.
pub const SLOTS: usize = 7;

/// Builds the launches of one plan.
pub struct Kernels {
    /// The kernels' file.
    pub file: &'static ShaderFile,
    /// Prefix of their labels (`mass_spring`, `mpm`).
    pub label: &'static str,
    /// The system's `info` words (word 0, the mode, is set per launch).
    pub info: Vec<u32>,
    /// A read-only value no launch writes, bound where an entry point needs no buffer.
    pub placeholder: Bind,
    /// Every scratch slot of the plan with its size.
    pub scratch: Vec<(usize, u64)>,
}

impl Kernels {
    /// Entry point `entry` in `mode` on `binds` (`true`: the binding is written), over
    /// `workgroups`.
    pub fn launch(
        &self,
        entry: &str,
        mode: u32,
        binds: &[(Bind, bool)],
        workgroups: Workgroups,
    ) -> Launch {
        self.launch_from(self.file, entry, mode, binds, workgroups)
    }

    /// [`launch`](Self::launch) with one thread per item of `n`.
    pub fn launch_n(&self, entry: &str, mode: u32, binds: &[(Bind, bool)], n: usize) -> Launch {
        self.launch(entry, mode, binds, threads(n))
    }

    /// [`launch`](Self::launch) of an entry point in another file with the same layout.
    pub fn launch_from(
        &self,
        file: &ShaderFile,
        entry: &str,
        mode: u32,
        binds: &[(Bind, bool)],
        workgroups: Workgroups,
    ) -> Launch {
        let mut all: Vec<Bind> = binds.iter().map(|b| b.0).collect();
        let mut read_only: Vec<bool> = binds.iter().map(|b| !b.1).collect();
        all.resize(SLOTS, self.placeholder);
        read_only.resize(SLOTS + 1, true);
        let mut info = self.info.clone();
        info[0] = mode;
        Launch {
            kernel: KernelSource {
                label: format!("{} {entry}", self.label),
                source: specialise(file, DType::F32, DType::F32, None),
                entry_point: entry.into(),
                constants: vec![],
                read_only,
            },
            binds: all,
            scratch: self.scratch.clone(),
            info,
            workgroups,
        }
    }
}

/// A binding read.
pub fn read(b: Bind) -> (Bind, bool) {
    (b, false)
}

/// A binding written.
pub fn write(b: Bind) -> (Bind, bool) {
    (b, true)
}

/// Workgroups for one thread per item of `n`.
pub fn threads(n: usize) -> Workgroups {
    Workgroups::Linear((n as u64).div_ceil(WG))
}

/// Bytes of `k` floats or words (at least one).
pub fn words(k: usize) -> u64 {
    (k.max(1) * 4) as u64
}
