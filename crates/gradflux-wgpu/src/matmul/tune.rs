//! The matmul autotuner: at the first use of a shape class on an adapter it times every
//! candidate configuration that fits and keeps the fastest, in memory and in a small text
//! file keyed by adapter, driver, kernel variant and shape class, so later processes start
//! with the choice already made.
//!
//! Tuning is on by default for hardware adapters and off for software ones (lavapipe),
//! where timing would cost more than it saves; `GRADFLUX_TUNE=on|off` or
//! [`WgpuDevice::set_tuning`](crate::WgpuDevice::set_tuning) overrides that. With tuning
//! off the choice is [`default_config`], a function of the shape alone.
//!
//! Where the adapter has matrix units ([`CoopCaps`]), the cooperative-matrix tilings that
//! apply to a problem join the candidates, and with tuning off the default cooperative
//! tiling is preferred. Each cooperative kernel (per dtype, layout and tiling) must first
//! reproduce the portable kernel's result exactly ([`plans_agree`]); one that does not is
//! never used on that device, and the reason is kept for
//! [`WgpuDevice::cooperative_matrix_failures`](crate::WgpuDevice::cooperative_matrix_failures).

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use gradflux_core::{Error, MatMulSpec, Result};
use wgpu::util::DeviceExt;

use super::config::{default_config, TileConfig, CANDIDATES};
use super::coop::{CoopCaps, CoopTile};
use super::verify::plans_agree;
use super::{info, Plan, Problem};
use crate::device::Context;
use crate::dispatch::split_workgroups;
use crate::pipelines::bind_buffers;
use crate::timing::time_dispatch;

/// Whether matmul configurations are timed on first use.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tuning {
    /// Always [`default_config`]: deterministic, no timing.
    Off,
    /// Time the candidates at the first use of each shape class; remember the winner.
    On,
    /// Always this configuration (for tests and per-configuration benchmarks); refused at
    /// compile time if the adapter cannot launch it.
    Fixed(TileConfig),
}

impl Tuning {
    /// `GRADFLUX_TUNE` if set (`on`/`off`, also `1`/`0`), else on for hardware adapters.
    pub fn from_env(device_type: wgpu::DeviceType) -> Result<Self> {
        match std::env::var("GRADFLUX_TUNE") {
            Ok(v) => match v.to_ascii_lowercase().as_str() {
                "on" | "1" | "true" => Ok(Tuning::On),
                "off" | "0" | "false" => Ok(Tuning::Off),
                other => Err(Error::Device(format!(
                    "GRADFLUX_TUNE=`{other}` is not understood; expected `on` or `off`"
                ))),
            },
            // Off in the browser, which cannot wait for timings.
            Err(_) => Ok(
                if device_type == wgpu::DeviceType::Cpu || cfg!(target_arch = "wasm32") {
                    Tuning::Off
                } else {
                    Tuning::On
                },
            ),
        }
    }
}

/// What the tuner has done on one device, for tests and reports.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TunerStats {
    /// Shape classes timed on this device.
    pub tuned: usize,
    /// Choices found in the cache file instead.
    pub from_file: usize,
    /// Cooperative-matrix kernels that passed their check against the portable kernel,
    /// and those that failed it (and are not used).
    pub coop_verified: usize,
    /// See `coop_verified`.
    pub coop_rejected: usize,
}

/// A cooperative kernel as far as its self-check goes: dtype, layout and tiling.
type CoopKey = (gradflux_core::DType, bool, bool, CoopTile);

struct State {
    tuning: Tuning,
    file: Option<PathBuf>,
    loaded: bool,
    choices: HashMap<String, Plan>,
    /// Keys read from the file and not used yet (each counts once in `stats.from_file`).
    unused_from_file: HashSet<String>,
    stats: TunerStats,
    /// The adapter's matrix units, when it has some and they are switched on.
    coop: Option<CoopCaps>,
    coop_on: bool,
    /// Self-check outcomes per cooperative kernel, and why the failed ones failed.
    coop_checked: HashMap<CoopKey, bool>,
    coop_failures: Vec<String>,
}

/// Per-device tuner state (one per [`Context`]).
pub(crate) struct Tuner {
    state: Mutex<State>,
    device_key: String,
}

/// `GRADFLUX_CACHE_DIR`, else `$XDG_CACHE_HOME/gradflux`, else `~/.cache/gradflux`.
pub fn default_cache_file() -> Option<PathBuf> {
    let dir = std::env::var_os("GRADFLUX_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("gradflux")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/gradflux")))?;
    Some(dir.join("matmul-tuning-v2.tsv"))
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

impl Tuner {
    pub fn new(info: &wgpu::AdapterInfo, tuning: Tuning, coop: Option<CoopCaps>) -> Self {
        Tuner {
            state: Mutex::new(State {
                tuning,
                file: default_cache_file(),
                loaded: false,
                choices: HashMap::new(),
                unused_from_file: HashSet::new(),
                stats: TunerStats::default(),
                coop_on: coop.is_some(),
                coop,
                coop_checked: HashMap::new(),
                coop_failures: Vec::new(),
            }),
            device_key: clean(&format!(
                "{}|{:?}|{}|{}|{:04x}:{:04x}",
                info.name, info.backend, info.driver, info.driver_info, info.vendor, info.device
            )),
        }
    }

    pub fn set_tuning(&self, tuning: Tuning) {
        self.state.lock().expect("tuner").tuning = tuning;
    }

    pub fn tuning(&self) -> Tuning {
        self.state.lock().expect("tuner").tuning
    }

    /// Uses `file` for the on-disk cache (`None`: memory only) and forgets choices made so
    /// far, so the next use of each class reads the new file or tunes again.
    pub fn set_cache_file(&self, file: Option<PathBuf>) {
        let mut s = self.state.lock().expect("tuner");
        s.file = file;
        s.loaded = false;
        s.choices.clear();
        s.unused_from_file.clear();
    }

    pub fn stats(&self) -> TunerStats {
        self.state.lock().expect("tuner").stats
    }

    /// The matrix units in use: `None` when the adapter has none or they are switched off.
    pub fn coop(&self) -> Option<CoopCaps> {
        let s = self.state.lock().expect("tuner");
        s.coop.clone().filter(|_| s.coop_on)
    }

    /// Switches the cooperative-matrix path on or off (it stays off on adapters without
    /// matrix units). Choices made so far are forgotten.
    pub fn set_coop(&self, on: bool) {
        let mut s = self.state.lock().expect("tuner");
        s.coop_on = on;
        s.loaded = false;
        s.choices.clear();
        s.unused_from_file.clear();
    }

    pub fn coop_failures(&self) -> Vec<String> {
        self.state.lock().expect("tuner").coop_failures.clone()
    }

    /// The cache key: `coop` marks problems the cooperative kernel applies to, which
    /// share a shape class with problems it does not.
    fn key(&self, p: &Problem, coop: bool) -> String {
        let (va, vb, vc) = p.vec_flags();
        let bit = |b: bool| if b { '1' } else { '0' };
        format!(
            "{}|{}|t{}{}|v{}{}{}|c{}|{}",
            self.device_key,
            p.dtype,
            bit(p.transpose_a),
            bit(p.transpose_b),
            bit(va),
            bit(vb),
            bit(vc),
            bit(coop),
            p.class()
        )
    }

    /// How `p` runs: remembered, read from the cache file, timed now, or the default when
    /// tuning is off.
    pub fn choose(&self, ctx: &Context, p: &Problem) -> Result<Plan> {
        let limits = &ctx.summary.limits;
        let mut s = self.state.lock().expect("tuner");
        match s.tuning {
            Tuning::Off => {
                let coop = s.coop.as_ref().filter(|_| s.coop_on);
                if let Some(t) = coop.and_then(|c| c.default_tiling(p)) {
                    if coop_usable(&mut s, ctx, p, &t) {
                        return Ok(Plan::Coop(t));
                    }
                }
                return Ok(Plan::Tiled(default_config(p.m, p.n, limits)));
            }
            Tuning::Fixed(c) if c.fits(limits) => return Ok(Plan::Tiled(c)),
            Tuning::Fixed(c) => {
                return Err(Error::Unsupported {
                    backend: ctx.summary.describe(),
                    what: format!(
                        "matmul tile configuration {c}: {} invocations and {} bytes of \
                         workgroup memory exceed this adapter's limits ({} and {})",
                        c.invocations(),
                        c.workgroup_bytes(),
                        limits.max_compute_invocations_per_workgroup,
                        limits.max_compute_workgroup_storage_size
                    ),
                })
            }
            Tuning::On => {}
        }
        if !s.loaded {
            s.loaded = true;
            if let Some(text) = s
                .file
                .as_ref()
                .and_then(|f| std::fs::read_to_string(f).ok())
            {
                for line in text.lines().filter(|l| !l.starts_with('#')) {
                    let mut parts = line.split('\t');
                    if let (Some(k), Some(c)) = (parts.next(), parts.next()) {
                        if let Some(c) = Plan::parse(c).filter(|c| c.fits(limits)) {
                            s.choices.insert(k.to_string(), c);
                            s.unused_from_file.insert(k.to_string());
                        }
                    }
                }
            }
        }
        let tilings: Vec<CoopTile> = match (&s.coop, s.coop_on) {
            (Some(caps), true) => caps
                .tilings(p)
                .into_iter()
                .filter(|t| t.fits(limits))
                .collect(),
            _ => Vec::new(),
        };
        let key = self.key(p, !tilings.is_empty());
        if let Some(&c) = s.choices.get(&key) {
            // A remembered cooperative tiling still has to apply here and pass its check.
            let usable = match c {
                Plan::Tiled(_) => true,
                Plan::Coop(t) => tilings.contains(&t) && coop_usable(&mut s, ctx, p, &t),
            };
            if usable {
                if s.unused_from_file.remove(&key) {
                    s.stats.from_file += 1;
                }
                return Ok(c);
            }
        }
        let mut candidates: Vec<Plan> = CANDIDATES
            .iter()
            .filter(|c| c.fits(limits))
            .map(|&c| Plan::Tiled(c))
            .collect();
        for t in tilings {
            if coop_usable(&mut s, ctx, p, &t) {
                candidates.push(Plan::Coop(t));
            }
        }
        let (best, secs) = tune(ctx, p, &candidates)?;
        s.stats.tuned += 1;
        s.choices.insert(key.clone(), best);
        if let Some(file) = &s.file {
            // The cache is an optimisation: failing to write it is not an error.
            let _ = append(file, &key, &best, secs);
        }
        Ok(best)
    }
}

/// Whether the cooperative kernel for `p`'s dtype and layout with tiling `t` passed its
/// self-check on this device (running the check the first time).
fn coop_usable(s: &mut State, ctx: &Context, p: &Problem, t: &CoopTile) -> bool {
    let key = (p.dtype, p.transpose_a, p.transpose_b, *t);
    if let Some(&ok) = s.coop_checked.get(&key) {
        return ok;
    }
    let (bm, bn, step) = (t.bm() as usize, t.bn() as usize, t.size as usize);
    let reference = Plan::Tiled(default_config(bm + step, bn + step, &ctx.summary.limits));
    let outcome = plans_agree(ctx, p, (bm, bn, step), &reference, &Plan::Coop(*t));
    let ok = outcome.is_ok();
    if let Err(e) = outcome {
        s.coop_failures.push(format!(
            "{} {}{}: {e}",
            p.dtype,
            if p.transpose_a { "t" } else { "n" },
            if p.transpose_b { "t" } else { "n" }
        ));
        s.stats.coop_rejected += 1;
    } else {
        s.stats.coop_verified += 1;
    }
    s.coop_checked.insert(key, ok);
    ok
}

fn append(file: &PathBuf, key: &str, c: &Plan, secs: f64) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let new = !file.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    if new {
        writeln!(f, "# gradflux matmul tuning cache: key, plan (tm x tn / wg_x x wg_y / bk, or coop size / rm x rn / sg subgroup), microseconds")?;
    }
    writeln!(f, "{key}\t{c}\t{:.1}", secs * 1e6)
}

/// Times every candidate on a single batch entry of `p` with zeroed operands and returns
/// the fastest with its time per run.
fn tune(ctx: &Context, p: &Problem, candidates: &[Plan]) -> Result<(Plan, f64)> {
    let device = &ctx.device;
    let one = Problem { batches: 1, ..*p };
    let elem = p.dtype.size_bytes() as u64;
    let buffer = |label: &str, elems: usize| {
        device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (elems.max(4) as u64 * elem).div_ceil(16) * 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    };
    let (a, b, c) = (
        buffer("tune a", p.m * p.k),
        buffer("tune b", p.k * p.n),
        buffer("tune c", p.m * p.n),
    );
    // Enough repetitions for about 2 GFLOP per measurement, at most 20.
    let reps = (2e9 / one.flops().max(1.0)).clamp(1.0, 20.0) as u32;
    let no_batch = gradflux_core::Shape(vec![]);
    let mut best: Option<(Plan, f64)> = None;
    for plan in candidates {
        // Spread over two dimensions like every other launch, so small-tile candidates
        // stay in the running on large problems.
        let max = ctx.summary.limits.max_compute_workgroups_per_dimension;
        let Ok(wg) = split_workgroups(plan.workgroups(&one), max, "matmul") else {
            continue;
        };
        let scope = crate::block::push(device, wgpu::ErrorFilter::Validation);
        let timed = (|| -> Result<f64> {
            let kernel = plan.kernel(&one, &MatMulSpec::default());
            let pipeline = ctx.pipelines.get(device, &kernel)?;
            let words = info(&one, plan.tiles(&one), &no_batch, [&[], &[], &[]], [0, 0]);
            let info_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tune info"),
                contents: bytemuck::cast_slice(&words),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let bind_group =
                bind_buffers(device, "tune", &pipeline.layout, &[&a, &b, &c, &info_buf]);
            let (secs, _) = time_dispatch(ctx, &pipeline.pipeline, &bind_group, wg, reps)?;
            Ok(secs)
        })();
        let failed = scope.pop();
        if let (Ok(secs), None) = (timed, failed) {
            if best.is_none_or(|(_, b)| secs < b) {
                best = Some((*plan, secs));
            }
        }
    }
    best.ok_or_else(|| {
        Error::Device(format!(
            "matmul tuning: no candidate configuration ran for {}x{}x{} ({})",
            p.m, p.n, p.k, p.dtype
        ))
    })
}
