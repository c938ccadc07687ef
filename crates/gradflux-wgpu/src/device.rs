//! Getting a device, kept apart from running work so tests and apps can pass their own.

use std::sync::{Arc, Mutex};

use gradflux_core::{Error, Result};

use crate::matmul::tune::{Tuner, TunerStats, Tuning};
use crate::matmul::CoopCaps;
use crate::pipelines::PipelineCache;

/// Loop iterations llvmpipe runs per shader invocation before it stops the invocation
/// (Mesa's `LP_MAX_TGSI_LOOP_ITERATIONS`; measured: two loops of 60 000 iterations in one
/// invocation run 60 000 and 5 534).
pub use gradflux_core::kernel::LLVMPIPE_LOOP_LIMIT;

/// The loop budget per shader invocation on adapters without a known hard limit: long
/// serial loops are the slow shape on any GPU and meet driver watchdogs, so walks past it
/// are split too (at sizes where a split costs nothing noticeable).
pub const DEFAULT_LOOP_BUDGET: u64 = 1 << 20;

/// The smallest loop budget gradflux plans launches for: the fixed-size kernels (a
/// reduction chunk is 1 024 elements per thread) fit it.
pub const MIN_LOOP_LIMIT: u64 = 4_096;

/// What an adapter is and can do, for listings and for choosing one.
#[derive(Clone, Debug)]
pub struct AdapterSummary {
    /// The adapter as wgpu describes it (name, backend, device type, driver).
    pub info: wgpu::AdapterInfo,
    /// The optional features the device was opened with.
    pub features: wgpu::Features,
    /// The limits the device was opened with (the adapter's own, not the defaults).
    pub limits: wgpu::Limits,
}

impl AdapterSummary {
    /// Higher is preferred: discrete > integrated > virtual > software (cpu) > other.
    pub fn rank(&self) -> u32 {
        match self.info.device_type {
            wgpu::DeviceType::DiscreteGpu => 4,
            wgpu::DeviceType::IntegratedGpu => 3,
            wgpu::DeviceType::VirtualGpu => 2,
            wgpu::DeviceType::Cpu => 1,
            wgpu::DeviceType::Other => 0,
        }
    }

    /// The most loop iterations one shader invocation may run in total, where the driver
    /// stops an invocation past a limit without an error: Mesa's llvmpipe (lavapipe) stops
    /// it after 65 535. Launches are split to stay within it, and what cannot be split is
    /// refused naming the limit. `None` where no such limit is known.
    pub fn loop_limit(&self) -> Option<u64> {
        let llvmpipe = |s: &str| s.to_lowercase().contains("llvmpipe");
        (llvmpipe(&self.info.name) || llvmpipe(&self.info.driver)).then_some(LLVMPIPE_LOOP_LIMIT)
    }

    /// One line: name, API and kind.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {:?})",
            self.info.name, self.info.backend, self.info.device_type
        )
    }
}

/// Features gradflux turns on when an adapter has them; kernels pick fast paths from them
/// and keep portable paths for adapters without.
pub fn wanted_features() -> wgpu::Features {
    wgpu::Features::SHADER_F16
        | wgpu::Features::SUBGROUP
        | wgpu::Features::SHADER_FLOAT32_ATOMIC
        | wgpu::Features::TIMESTAMP_QUERY
}

/// The least a device must allow for every built-in kernel to run: wgpu's default limits
/// (WebGPU's) for compute — eight storage buffers per stage, workgroups of 256
/// invocations with 16 KiB of workgroup memory, 65 535 workgroups per dimension. Apps that
/// open their own device for gradflux ([`WgpuDevice::from_wgpu`]) request at least these.
pub fn required_limits() -> wgpu::Limits {
    wgpu::Limits::default()
}

/// The limits of `have` below [`required_limits`], as `name: has X, needs Y`.
fn missing_limits(have: &wgpu::Limits) -> Vec<String> {
    let need = required_limits();
    let checks: [(&str, u64, u64); 7] = [
        (
            "max_storage_buffers_per_shader_stage",
            have.max_storage_buffers_per_shader_stage.into(),
            need.max_storage_buffers_per_shader_stage.into(),
        ),
        (
            "max_compute_workgroup_size_x",
            have.max_compute_workgroup_size_x.into(),
            need.max_compute_workgroup_size_x.into(),
        ),
        (
            "max_compute_invocations_per_workgroup",
            have.max_compute_invocations_per_workgroup.into(),
            need.max_compute_invocations_per_workgroup.into(),
        ),
        (
            "max_compute_workgroup_storage_size",
            have.max_compute_workgroup_storage_size.into(),
            need.max_compute_workgroup_storage_size.into(),
        ),
        (
            "max_compute_workgroups_per_dimension",
            have.max_compute_workgroups_per_dimension.into(),
            need.max_compute_workgroups_per_dimension.into(),
        ),
        (
            "max_bind_groups",
            have.max_bind_groups.into(),
            need.max_bind_groups.into(),
        ),
        (
            "max_storage_buffer_binding_size",
            have.max_storage_buffer_binding_size,
            need.max_storage_buffer_binding_size,
        ),
    ];
    checks
        .iter()
        .filter(|(_, has, needs)| has < needs)
        .map(|(name, has, needs)| format!("{name}: has {has}, needs {needs}"))
        .collect()
}

/// `GRADFLUX_COOPERATIVE_MATRIX` (`on`/`off`, also `1`/`0`); on when unset.
fn coop_from_env() -> Result<bool> {
    match std::env::var("GRADFLUX_COOPERATIVE_MATRIX") {
        Err(_) => Ok(true),
        Ok(v) => match v.to_ascii_lowercase().as_str() {
            "on" | "1" | "true" => Ok(true),
            "off" | "0" | "false" => Ok(false),
            other => Err(Error::Device(format!(
                "GRADFLUX_COOPERATIVE_MATRIX=`{other}` is not understood; expected `on` or `off`"
            ))),
        },
    }
}

/// Shared state of one wgpu device: queue, limits, pipeline cache, and what went wrong.
pub(crate) struct Context {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub summary: AdapterSummary,
    pub pipelines: PipelineCache,
    /// Matmul tile configurations chosen on this device.
    pub tuner: Tuner,
    /// Set by the device-lost callback; every later call returns `DeviceLost`.
    pub lost: Arc<Mutex<Option<String>>>,
    /// Errors raised outside any error scope (they would otherwise panic).
    pub uncaptured: Arc<Mutex<Vec<String>>>,
    /// Loop iterations one invocation may run (see [`AdapterSummary::loop_limit`]); set
    /// with [`WgpuDevice::set_loop_limit`].
    pub loop_limit: Mutex<Option<u64>>,
    /// Whether the adapter lets dispatches read their workgroup counts from a buffer
    /// (every WebGPU, Vulkan, Metal and DX12 adapter; not every GL one).
    pub indirect_capable: bool,
    /// Whether graphs compiled now gate their loops with indirect dispatch.
    pub indirect: std::sync::atomic::AtomicBool,
}

impl Context {
    /// The loop budget launches are planned for.
    pub fn loop_limit(&self) -> Option<u64> {
        *self.loop_limit.lock().expect("loop limit")
    }

    /// `Err(DeviceLost)` once the device is gone, or the oldest error raised outside a scope.
    pub fn check_health(&self) -> Result<()> {
        if let Some(reason) = self.lost.lock().expect("lost flag").clone() {
            return Err(Error::DeviceLost(reason));
        }
        let mut errs = self.uncaptured.lock().expect("error list");
        if !errs.is_empty() {
            let all = errs.join("; ");
            errs.clear();
            return Err(Error::Device(all));
        }
        Ok(())
    }
}

/// A wgpu adapter opened for compute. Cheap to clone (shared).
#[derive(Clone)]
pub struct WgpuDevice {
    pub(crate) ctx: Arc<Context>,
}

impl std::fmt::Debug for WgpuDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WgpuDevice({})", self.ctx.summary.describe())
    }
}

/// The graphics APIs probed unless another is asked for: Vulkan, Metal, DX12 and the
/// browser's WebGPU. GL is probed only when asked for ([`WgpuDevice::by_backend`],
/// `GRADFLUX_DEVICE=gl`, wgpu's own `WGPU_BACKEND`) or when nothing else is there: on a
/// headless machine its one adapter is a software rasteriser, and probing it opens EGL
/// for nothing.
pub const PROBED_BACKENDS: wgpu::Backends = wgpu::Backends::PRIMARY;

/// An instance over `backends` (wgpu's `WGPU_BACKEND`, when set, decides instead).
fn instance(backends: wgpu::Backends) -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
    if std::env::var_os("WGPU_BACKEND").is_none() {
        desc.backends = backends;
    }
    wgpu::Instance::new(desc)
}

impl WgpuDevice {
    /// Every adapter wgpu can see on every graphics API, GL included, best first.
    pub fn adapters() -> Vec<AdapterSummary> {
        let mut list: Vec<AdapterSummary> = Self::raw_adapters(wgpu::Backends::all())
            .iter()
            .map(|a| AdapterSummary {
                info: a.get_info(),
                features: a.features(),
                limits: a.limits(),
            })
            .collect();
        list.sort_by_key(|s| std::cmp::Reverse(s.rank()));
        list
    }

    fn raw_adapters(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
        pollster::block_on(Self::raw_adapters_async(backends))
    }

    async fn raw_adapters_async(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
        let inst = instance(backends);
        let mut adapters = inst.enumerate_adapters(backends).await;
        adapters.sort_by_key(|a| {
            let s = AdapterSummary {
                info: a.get_info(),
                features: wgpu::Features::empty(),
                limits: wgpu::Limits::default(),
            };
            std::cmp::Reverse(s.rank())
        });
        adapters
    }

    /// The best adapter: discrete > integrated > virtual > software, on the
    /// [`PROBED_BACKENDS`] (GL only when they have none).
    pub fn best() -> Result<Self> {
        crate::block::may_block("WgpuDevice::best")?;
        pollster::block_on(Self::best_async())
    }

    /// [`best`](Self::best) without blocking (for async apps and the browser).
    pub async fn best_async() -> Result<Self> {
        Self::choose_probing(|_| true, "any adapter").await
    }

    /// The best hardware adapter (discrete, integrated or virtual; never a software
    /// rasteriser) on the [`PROBED_BACKENDS`]: what `Device::auto` runs on before it falls
    /// back to the CPU backend, which is faster than a software adapter.
    pub fn best_hardware() -> Result<Self> {
        crate::block::may_block("WgpuDevice::best_hardware")?;
        pollster::block_on(Self::best_hardware_async())
    }

    /// [`best_hardware`](Self::best_hardware) without blocking.
    pub async fn best_hardware_async() -> Result<Self> {
        Self::choose(
            |s| s.rank() >= 2,
            "a hardware adapter (software ones are used only when named)",
            PROBED_BACKENDS,
        )
        .await
    }

    /// The best adapter whose name contains `needle` (case-insensitive), on the
    /// [`PROBED_BACKENDS`] (GL too when none of them matches).
    pub fn by_name(needle: &str) -> Result<Self> {
        crate::block::may_block("WgpuDevice::by_name")?;
        pollster::block_on(Self::by_name_async(needle))
    }

    /// [`by_name`](Self::by_name) without blocking.
    pub async fn by_name_async(needle: &str) -> Result<Self> {
        let n = needle.to_lowercase();
        Self::choose_probing(
            |s| s.info.name.to_lowercase().contains(&n),
            &format!("an adapter named like `{needle}`"),
        )
        .await
    }

    /// The best adapter on one graphics API (GL included).
    pub fn by_backend(backend: wgpu::Backend) -> Result<Self> {
        crate::block::may_block("WgpuDevice::by_backend")?;
        pollster::block_on(Self::choose(
            |s| s.info.backend == backend,
            &format!("an adapter on {backend}"),
            wgpu::Backends::from(backend),
        ))
    }

    /// [`choose`](Self::choose) on the probed backends, then on every backend when
    /// nothing there matched.
    async fn choose_probing(pred: impl Fn(&AdapterSummary) -> bool, what: &str) -> Result<Self> {
        match Self::choose(&pred, what, PROBED_BACKENDS).await {
            Ok(d) => Ok(d),
            Err(_) => Self::choose(&pred, what, wgpu::Backends::all()).await,
        }
    }

    async fn choose(
        pred: impl Fn(&AdapterSummary) -> bool,
        what: &str,
        backends: wgpu::Backends,
    ) -> Result<Self> {
        let adapters = Self::raw_adapters_async(backends).await;
        let seen: Vec<String> = adapters
            .iter()
            .map(|a| {
                let i = a.get_info();
                format!("{} ({})", i.name, i.backend)
            })
            .collect();
        let adapter = adapters
            .into_iter()
            .find(|a| {
                pred(&AdapterSummary {
                    info: a.get_info(),
                    features: a.features(),
                    limits: a.limits(),
                })
            })
            .ok_or_else(|| {
                Error::NoAdapter(format!(
                    "wanted {what}; found {}",
                    if seen.is_empty() {
                        "none (is a Vulkan, Metal, DX12 or GL driver installed?)".to_string()
                    } else {
                        seen.join(", ")
                    }
                ))
            })?;
        Self::from_adapter_async(adapter).await
    }

    /// Opens an adapter with its real limits (not wgpu's conservative defaults) and the
    /// optional features it has.
    pub fn from_adapter(adapter: wgpu::Adapter) -> Result<Self> {
        crate::block::may_block("WgpuDevice::from_adapter")?;
        pollster::block_on(Self::from_adapter_async(adapter))
    }

    /// [`from_adapter`](Self::from_adapter) without blocking.
    pub async fn from_adapter_async(adapter: wgpu::Adapter) -> Result<Self> {
        let summary = AdapterSummary {
            info: adapter.get_info(),
            features: adapter.features(),
            limits: adapter.limits(),
        };
        let indirect = adapter
            .get_downlevel_capabilities()
            .flags
            .contains(wgpu::DownlevelFlags::INDIRECT_EXECUTION);
        let coop_feature = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        let coop = if summary.features.contains(coop_feature) && coop_from_env()? {
            CoopCaps::of(
                &adapter.cooperative_matrix_properties(),
                summary.info.subgroup_max_size,
            )
        } else {
            None
        };
        let (extra, experimental) = match coop {
            // SAFETY: wgpu marks experimental features unsafe because its validation of
            // them is incomplete. gradflux uses this one only in the cooperative matmul
            // kernel, which loads tiles only where the launcher has checked they lie in
            // bounds, and each of whose variants must match the portable kernel on this
            // device before it is used (matmul::verify).
            Some(_) => (coop_feature, unsafe {
                wgpu::ExperimentalFeatures::enabled()
            }),
            None => (
                wgpu::Features::empty(),
                wgpu::ExperimentalFeatures::disabled(),
            ),
        };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("gradflux"),
                required_features: (summary.features & wanted_features()) | extra,
                required_limits: summary.limits.clone(),
                experimental_features: experimental,
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            })
            .await
            .map_err(|e| Error::Device(format!("request_device on {}: {e}", summary.info.name)))?;
        let tuner = Tuner::new(
            &summary.info,
            Tuning::from_env(summary.info.device_type)?,
            coop,
        );
        let device = Self::assemble(summary, device, queue, tuner, indirect);
        // gradflux owns this device, so it takes the device-lost and uncaptured-error
        // callbacks: later calls report them as errors instead of panicking.
        let ctx = &device.ctx;
        let lost = ctx.lost.clone();
        ctx.device.set_device_lost_callback(move |reason, msg| {
            *lost.lock().expect("lost flag") = Some(format!("{reason:?}: {msg}"));
        });
        let sink = ctx.uncaptured.clone();
        ctx.device
            .on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                sink.lock().expect("error list").push(e.to_string());
            }));
        Ok(device)
    }

    /// Runs gradflux on a device an app already opened (a renderer's, a game engine's), so
    /// that graphs read and write the app's buffers with no host round trip
    /// ([`WgpuExecutable::run_on_buffers`](crate::WgpuExecutable::run_on_buffers)). The
    /// device must have at least the limits of [`required_limits`]; an error lists every
    /// one it lacks, with what it has. gradflux uses the optional features the app
    /// enabled (see [`wanted_features`]) and works without them.
    ///
    /// The app keeps its own device-lost and uncaptured-error callbacks: gradflux installs
    /// none on a device it does not own (its work runs inside error scopes). Indirect
    /// dispatch is assumed on Vulkan, Metal, DX12 and WebGPU and off on GL.
    pub fn from_wgpu(device: wgpu::Device, queue: wgpu::Queue) -> Result<Self> {
        let info = device.adapter_info();
        let limits = device.limits();
        let missing = missing_limits(&limits);
        if !missing.is_empty() {
            return Err(Error::Device(format!(
                "the app's device ({}, {}) lacks limits gradflux needs: {}; request at least                  `gradflux_wgpu::required_limits()` (wgpu's defaults) when opening it",
                info.name,
                info.backend,
                missing.join(", ")
            )));
        }
        let summary = AdapterSummary {
            features: device.features(),
            limits,
            info,
        };
        let indirect = summary.info.backend != wgpu::Backend::Gl;
        let tuner = Tuner::new(
            &summary.info,
            Tuning::from_env(summary.info.device_type)?,
            None,
        );
        Ok(Self::assemble(summary, device, queue, tuner, indirect))
    }

    fn assemble(
        summary: AdapterSummary,
        device: wgpu::Device,
        queue: wgpu::Queue,
        tuner: Tuner,
        indirect: bool,
    ) -> Self {
        let loop_limit = Some(summary.loop_limit().unwrap_or(DEFAULT_LOOP_BUDGET));
        WgpuDevice {
            ctx: Arc::new(Context {
                device,
                queue,
                summary,
                pipelines: PipelineCache::default(),
                tuner,
                lost: Arc::new(Mutex::new(None)),
                uncaptured: Arc::new(Mutex::new(Vec::new())),
                loop_limit: Mutex::new(loop_limit),
                indirect_capable: indirect,
                indirect: indirect.into(),
            }),
        }
    }

    /// The wgpu device and queue graphs run on (an app may record its own work on them).
    pub fn wgpu(&self) -> (&wgpu::Device, &wgpu::Queue) {
        (&self.ctx.device, &self.ctx.queue)
    }

    /// Name, API, kind, features and limits of the opened adapter.
    pub fn summary(&self) -> &AdapterSummary {
        &self.ctx.summary
    }

    /// The loop iterations one shader invocation may run, which launches are split to stay
    /// within and past which a kernel is refused: the adapter's hard limit where known
    /// ([`AdapterSummary::loop_limit`]), else [`DEFAULT_LOOP_BUDGET`].
    pub fn loop_limit(&self) -> Option<u64> {
        self.ctx.loop_limit()
    }

    /// Whether graphs compiled now skip the finished steps of gated loops on the device (an
    /// implicit Sinkhorn solve that converged dispatches nothing more), which needs
    /// indirect dispatch. True wherever the adapter has it.
    pub fn indirect_dispatch(&self) -> bool {
        self.ctx.indirect.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns the gating of loops by indirect dispatch off (or back on) for graphs compiled
    /// afterwards: every step of such a loop then dispatches, which gives the same results
    /// (a finished step changes nothing) at the cost of the skipped work. Turning it on
    /// where the adapter lacks indirect dispatch is an error.
    pub fn set_indirect_dispatch(&self, on: bool) -> gradflux_core::Result<()> {
        if on && !self.ctx.indirect_capable {
            return Err(gradflux_core::Error::Unsupported {
                backend: self.summary().describe(),
                what: "indirect dispatch (the adapter lacks DownlevelFlags::INDIRECT_EXECUTION)"
                    .into(),
            });
        }
        self.ctx
            .indirect
            .store(on, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Plans graphs compiled afterwards for a loop budget of `limit` iterations per
    /// invocation (at least 4 096; `None`: no budget, every walk in one invocation): for a
    /// driver with a hard limit gradflux does not recognise, or to exercise the split
    /// launches on any adapter.
    pub fn set_loop_limit(&self, limit: Option<u64>) -> gradflux_core::Result<()> {
        if let Some(l) = limit.filter(|&l| l < MIN_LOOP_LIMIT) {
            return Err(gradflux_core::Error::InvalidValue {
                op: "set_loop_limit",
                detail: format!(
                    "a loop limit of {l} is below the smallest planned for, {MIN_LOOP_LIMIT}"
                ),
            });
        }
        *self.ctx.loop_limit.lock().expect("loop limit") = limit;
        Ok(())
    }

    /// Number of distinct compute pipelines created on this device so far.
    pub fn pipeline_count(&self) -> usize {
        self.ctx.pipelines.len()
    }

    /// Turns matmul autotuning on or off for this device (the default comes from
    /// `GRADFLUX_TUNE`, else on for hardware adapters and off for software ones). Affects
    /// graphs compiled afterwards.
    pub fn set_tuning(&self, tuning: Tuning) {
        self.ctx.tuner.set_tuning(tuning);
    }

    /// Whether matmul autotuning is on.
    pub fn tuning(&self) -> Tuning {
        self.ctx.tuner.tuning()
    }

    /// Where tuning choices are kept between processes (`None`: in memory only). The
    /// default is `GRADFLUX_CACHE_DIR`, `$XDG_CACHE_HOME/gradflux` or `~/.cache/gradflux`,
    /// file `matmul-tuning-v2.tsv`. Choices already made in memory are forgotten.
    pub fn set_tune_cache(&self, file: Option<std::path::PathBuf>) {
        self.ctx.tuner.set_cache_file(file);
    }

    /// How many shape classes were timed, and how many choices came from the cache file.
    pub fn tuner_stats(&self) -> TunerStats {
        self.ctx.tuner.stats()
    }

    /// The adapter's matrix units as the cooperative-matrix matmul uses them: tile sizes
    /// for f16 and f32 storage (products accumulated in f32). `None` when the adapter
    /// exposes no cooperative-matrix configuration that serves (Vulkan's
    /// `VK_KHR_cooperative_matrix`, Metal's simdgroup matrices), when
    /// `GRADFLUX_COOPERATIVE_MATRIX=off`, or after `set_cooperative_matrix(false)`.
    pub fn cooperative_matrix(&self) -> Option<CoopCaps> {
        self.ctx.tuner.coop()
    }

    /// Lets the tuner choose the cooperative-matrix kernel where it applies (the default
    /// where the adapter has matrix units), or keeps every matmul on the portable kernel.
    /// Affects graphs compiled afterwards; choices made so far are forgotten.
    pub fn set_cooperative_matrix(&self, on: bool) {
        self.ctx.tuner.set_coop(on);
    }

    /// Why cooperative-matrix kernels were refused on this device: each must reproduce
    /// the portable kernel's result exactly before its first use, and one that does not
    /// is never chosen.
    pub fn cooperative_matrix_failures(&self) -> Vec<String> {
        self.ctx.tuner.coop_failures()
    }

    /// Destroys the underlying device; later calls return [`Error::DeviceLost`]. Useful to
    /// test recovery paths.
    pub fn destroy(&self) {
        self.ctx.device.destroy();
        let mut lost = self.ctx.lost.lock().expect("lost flag");
        if lost.is_none() {
            *lost = Some("destroyed by WgpuDevice::destroy".into());
        }
    }
}
