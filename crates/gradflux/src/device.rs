//! Choosing where graphs run: the best wgpu adapter, a named one, or the CPU reference.

#[cfg(feature = "wgpu")]
use std::sync::Once;

use gradflux_core::{Backend, Executable, Graph, Result, Tensor};
use gradflux_cpu::CpuBackend;
#[cfg(feature = "wgpu")]
use gradflux_wgpu::WgpuDevice;

/// Environment variable that overrides [`Device::auto`]: `cpu`, a graphics API (`vulkan`,
/// `metal`, `dx12`, `gl`), or a substring of an adapter's name (e.g. `llvmpipe`, `nvidia`).
pub const DEVICE_ENV: &str = "GRADFLUX_DEVICE";

/// Where a graph is compiled and run.
#[derive(Clone, Debug)]
pub enum Device {
    /// The CPU reference backend: defines the right answer for every op.
    Cpu,
    /// A wgpu adapter (feature `wgpu`, on by default through the graphics API features).
    #[cfg(feature = "wgpu")]
    Wgpu(WgpuDevice),
}

#[cfg(feature = "wgpu")]
static FALLBACK_NOTICE: Once = Once::new();

impl Device {
    /// The best device available: `GRADFLUX_DEVICE` if set, else a hardware adapter
    /// (discrete, integrated, virtual), else the CPU backend, saying so once through the
    /// `log` crate (at `info`). A software adapter such as lavapipe runs only when asked
    /// for (`GRADFLUX_DEVICE=llvmpipe`, `Device::from_spec`): on the same CPU, gradflux's
    /// own CPU backend is several times faster. An override that matches nothing is an
    /// error, not a silent fallback.
    pub fn auto() -> Result<Device> {
        #[cfg(target_arch = "wasm32")]
        return Err(gradflux_core::Error::Unsupported {
            backend: "webgpu".into(),
            what: "Device::auto waits for the browser, which its main thread may not; use \
                   `Device::auto_async().await`"
                .into(),
        });
        #[cfg(not(target_arch = "wasm32"))]
        pollster::block_on(Device::auto_async())
    }

    /// [`auto`](Self::auto) without blocking, for async apps and the browser (where the
    /// main thread must not block).
    pub async fn auto_async() -> Result<Device> {
        if let Ok(want) = std::env::var(DEVICE_ENV) {
            if !want.trim().is_empty() {
                return Device::from_spec(want.trim());
            }
        }
        #[cfg(feature = "wgpu")]
        match WgpuDevice::best_hardware_async().await {
            Ok(d) => Ok(Device::Wgpu(d)),
            Err(e) => {
                FALLBACK_NOTICE.call_once(|| {
                    log::info!("gradflux: {e}; using the CPU backend");
                });
                Ok(Device::Cpu)
            }
        }
        #[cfg(not(feature = "wgpu"))]
        Ok(Device::Cpu)
    }

    /// The device named by `spec`: `cpu`, `gpu` (the best adapter, software ones
    /// included), a graphics API, or an adapter-name substring (`llvmpipe`).
    pub fn from_spec(spec: &str) -> Result<Device> {
        let lower = spec.to_lowercase();
        if lower == "cpu" {
            return Ok(Device::Cpu);
        }
        #[cfg(feature = "wgpu")]
        return wgpu_from_spec(spec, &lower);
        #[cfg(not(feature = "wgpu"))]
        Err(no_wgpu(spec))
    }

    /// The best wgpu adapter, or an error if there is none (no CPU fallback).
    pub fn gpu() -> Result<Device> {
        #[cfg(feature = "wgpu")]
        return Ok(Device::Wgpu(WgpuDevice::best()?));
        #[cfg(not(feature = "wgpu"))]
        Err(no_wgpu("gpu"))
    }

    /// Compiles `graph` for this device, keeping only what `outputs` need.
    pub fn compile(&self, graph: &Graph, outputs: &[Tensor]) -> Result<Box<dyn Executable>> {
        self.backend().compile(graph, outputs)
    }

    /// The backend behind this device.
    pub fn backend(&self) -> &dyn Backend {
        match self {
            Device::Cpu => &CpuBackend,
            #[cfg(feature = "wgpu")]
            Device::Wgpu(d) => d,
        }
    }

    /// A one-line description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    pub fn name(&self) -> String {
        self.backend().name()
    }

    /// True for the CPU reference backend.
    pub fn is_cpu(&self) -> bool {
        matches!(self, Device::Cpu)
    }

    /// The wgpu device, if this is one.
    #[cfg(feature = "wgpu")]
    pub fn as_wgpu(&self) -> Option<&WgpuDevice> {
        match self {
            Device::Wgpu(d) => Some(d),
            Device::Cpu => None,
        }
    }
}

/// The error for a wgpu device asked of a build without the `wgpu` feature.
#[cfg(not(feature = "wgpu"))]
fn no_wgpu(spec: &str) -> gradflux_core::Error {
    gradflux_core::Error::NoAdapter(format!(
        "`{spec}` names a wgpu device, but gradflux was built without its wgpu backend \
         (enable a feature such as `vulkan`, `metal`, `dx12`, `gles` or `webgpu`); `cpu` is \
         available"
    ))
}

/// A wgpu device by `spec` (lowercased: `lower`): `gpu` (the best adapter), a graphics
/// API, or an adapter-name substring.
#[cfg(feature = "wgpu")]
fn wgpu_from_spec(spec: &str, lower: &str) -> Result<Device> {
    let backend = match lower {
        "gpu" | "wgpu" | "best" => return Ok(Device::Wgpu(WgpuDevice::best()?)),
        "vulkan" | "vk" => Some(wgpu_backend::VULKAN),
        "metal" => Some(wgpu_backend::METAL),
        "dx12" | "d3d12" => Some(wgpu_backend::DX12),
        "gl" | "gles" | "opengl" => Some(wgpu_backend::GL),
        _ => None,
    };
    match backend {
        Some(b) => Ok(Device::Wgpu(WgpuDevice::by_backend(b)?)),
        None => Ok(Device::Wgpu(WgpuDevice::by_name(spec)?)),
    }
}

/// The graphics APIs, without making users depend on wgpu to name one.
#[cfg(feature = "wgpu")]
mod wgpu_backend {
    pub use gradflux_wgpu::wgpu::Backend;
    pub const VULKAN: Backend = Backend::Vulkan;
    pub const METAL: Backend = Backend::Metal;
    pub const DX12: Backend = Backend::Dx12;
    pub const GL: Backend = Backend::Gl;
}

#[cfg(feature = "wgpu")]
impl From<WgpuDevice> for Device {
    fn from(d: WgpuDevice) -> Self {
        Device::Wgpu(d)
    }
}
