//! The matmul autotuner: at the first use of a shape class on an adapter it times every
//! candidate configuration that fits and keeps the fastest, in memory and in a small text
//! file keyed by adapter, driver, kernel variant and shape class, so later processes start
//! with the choice already made.
//!
//! Tuning is on by default for hardware adapters and off for software ones (lavapipe),
//! where timing would cost more than it saves; `GRADFLUX_TUNE=on|off` or
//! [`WgpuDevice::set_tuning`](crate::WgpuDevice::set_tuning) overrides that. With tuning
//! off the choice is [`default_config`], a function of the shape alone.

use std::collections::{HashMap, HashSet};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Mutex;

use gradflux_core::{Error, MatMulSpec, Result};
use wgpu::util::DeviceExt;

use super::config::{default_config, TileConfig, CANDIDATES};
use super::{info, kernel, Problem};
use crate::device::Context;
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
            Err(_) => Ok(if device_type == wgpu::DeviceType::Cpu {
                Tuning::Off
            } else {
                Tuning::On
            }),
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
}

struct State {
    tuning: Tuning,
    file: Option<PathBuf>,
    loaded: bool,
    choices: HashMap<String, TileConfig>,
    /// Keys read from the file and not used yet (each counts once in `stats.from_file`).
    unused_from_file: HashSet<String>,
    stats: TunerStats,
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
    Some(dir.join("matmul-tuning-v1.tsv"))
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

impl Tuner {
    pub fn new(info: &wgpu::AdapterInfo, tuning: Tuning) -> Self {
        Tuner {
            state: Mutex::new(State {
                tuning,
                file: default_cache_file(),
                loaded: false,
                choices: HashMap::new(),
                unused_from_file: HashSet::new(),
                stats: TunerStats::default(),
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

    fn key(&self, p: &Problem) -> String {
        let (va, vb, vc) = p.vec_flags();
        let bit = |b: bool| if b { '1' } else { '0' };
        format!(
            "{}|{}|t{}{}|v{}{}{}|{}",
            self.device_key,
            p.dtype,
            bit(p.transpose_a),
            bit(p.transpose_b),
            bit(va),
            bit(vb),
            bit(vc),
            p.class()
        )
    }

    /// The configuration for `p`: remembered, read from the cache file, timed now, or the
    /// default when tuning is off.
    pub fn choose(&self, ctx: &Context, p: &Problem) -> Result<TileConfig> {
        let limits = &ctx.summary.limits;
        let mut s = self.state.lock().expect("tuner");
        match s.tuning {
            Tuning::Off => return Ok(default_config(p.m, p.n, limits)),
            Tuning::Fixed(c) if c.fits(limits) => return Ok(c),
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
                        if let Some(c) = TileConfig::parse(c).filter(|c| c.fits(limits)) {
                            s.choices.insert(k.to_string(), c);
                            s.unused_from_file.insert(k.to_string());
                        }
                    }
                }
            }
        }
        let key = self.key(p);
        if let Some(&c) = s.choices.get(&key) {
            if s.unused_from_file.remove(&key) {
                s.stats.from_file += 1;
            }
            return Ok(c);
        }
        let (best, secs) = tune(ctx, p)?;
        s.stats.tuned += 1;
        s.choices.insert(key.clone(), best);
        if let Some(file) = &s.file {
            // The cache is an optimisation: failing to write it is not an error.
            let _ = append(file, &key, &best, secs);
        }
        Ok(best)
    }
}

fn append(file: &PathBuf, key: &str, c: &TileConfig, secs: f64) -> std::io::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let new = !file.exists();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    if new {
        writeln!(f, "# gradflux matmul tuning cache: key, tile config (tm x tn / wg_x x wg_y / bk), microseconds")?;
    }
    writeln!(f, "{key}\t{c}\t{:.1}", secs * 1e6)
}

/// Times every fitting candidate on a single batch entry of `p` with zeroed operands and
/// returns the fastest with its time per run.
fn tune(ctx: &Context, p: &Problem) -> Result<(TileConfig, f64)> {
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
    let mut best: Option<(TileConfig, f64)> = None;
    for config in CANDIDATES.iter().filter(|c| c.fits(&ctx.summary.limits)) {
        let wg = one.workgroups(config);
        if wg > ctx.summary.limits.max_compute_workgroups_per_dimension as u64 {
            continue;
        }
        let variant = one.variant(config, &MatMulSpec::default());
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let timed = (|| -> Result<f64> {
            let pipeline = ctx.pipelines.get(device, &kernel(&variant, config))?;
            let words = info(&one, one.tiles(config), &no_batch, [&[], &[], &[]], [0, 0]);
            let info_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("tune info"),
                contents: bytemuck::cast_slice(&words),
                usage: wgpu::BufferUsages::STORAGE,
            });
            let entries: Vec<wgpu::BindGroupEntry> = [&a, &b, &c, &info_buf]
                .iter()
                .enumerate()
                .map(|(i, buf)| wgpu::BindGroupEntry {
                    binding: i as u32,
                    resource: buf.as_entire_binding(),
                })
                .collect();
            let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("tune"),
                layout: &pipeline.layout,
                entries: &entries,
            });
            let (secs, _) = time_dispatch(
                ctx,
                &pipeline.pipeline,
                &bind_group,
                [wg as u32, 1, 1],
                reps,
            )?;
            Ok(secs)
        })();
        let failed = pollster::block_on(scope.pop());
        if let (Ok(secs), None) = (timed, failed) {
            if best.is_none_or(|(_, b)| secs < b) {
                best = Some((*config, secs));
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
