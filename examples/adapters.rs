//! Lists every wgpu adapter this machine has, with the features and limits gradflux cares
//! about, and says which device `Device::auto()` would pick.
//!
//! ```text
//! cargo run --example adapters      # or: cargo xtask adapters
//! ```

use gradflux::wgpu::Features;
use gradflux::{Device, WgpuDevice, DEVICE_ENV};

/// Optional features kernels pick fast paths from (plus f64, which no kernel needs yet).
const FEATURES: [(&str, Features); 5] = [
    ("SHADER_F16", Features::SHADER_F16),
    ("SUBGROUP", Features::SUBGROUP),
    ("SHADER_FLOAT32_ATOMIC", Features::SHADER_FLOAT32_ATOMIC),
    ("TIMESTAMP_QUERY", Features::TIMESTAMP_QUERY),
    ("SHADER_F64", Features::SHADER_F64),
];

fn main() {
    let adapters = WgpuDevice::adapters();
    if adapters.is_empty() {
        println!("No wgpu adapter found (no Vulkan, Metal, DX12 or GL driver).");
        println!(
            "The CPU reference backend is still available: Device::auto() falls back to it, \
             or ask for it with Device::Cpu / {DEVICE_ENV}=cpu."
        );
        println!(
            "On Debian/Ubuntu, Mesa's software Vulkan driver gives a real adapter without a \
             GPU: apt-get install mesa-vulkan-drivers libvulkan1"
        );
    } else {
        println!("{} wgpu adapter(s), best first:", adapters.len());
    }

    for (i, a) in adapters.iter().enumerate() {
        let info = &a.info;
        println!();
        println!("[{i}] {}", info.name);
        println!("    API:          {}", info.backend);
        println!("    device type:  {:?}", info.device_type);
        println!(
            "    vendor/device: {:#06x} / {:#06x}",
            info.vendor, info.device
        );
        let driver = format!("{} {}", info.driver, info.driver_info);
        if !driver.trim().is_empty() {
            println!("    driver:       {}", driver.trim());
        }
        println!("    features:");
        for (name, f) in FEATURES {
            let has = if a.features.contains(f) { "yes" } else { "no" };
            println!("      {name:<24} {has}");
        }
        let l = &a.limits;
        println!("    limits:");
        let rows: [(&str, String); 7] = [
            (
                "max_storage_buffer_binding_size",
                bytes(l.max_storage_buffer_binding_size),
            ),
            ("max_buffer_size", bytes(l.max_buffer_size)),
            (
                "max_compute_workgroups_per_dimension",
                l.max_compute_workgroups_per_dimension.to_string(),
            ),
            (
                "max_compute_invocations_per_workgroup",
                l.max_compute_invocations_per_workgroup.to_string(),
            ),
            (
                "max_compute_workgroup_size (x, y, z)",
                format!(
                    "{}, {}, {}",
                    l.max_compute_workgroup_size_x,
                    l.max_compute_workgroup_size_y,
                    l.max_compute_workgroup_size_z
                ),
            ),
            (
                "max_compute_workgroup_storage_size",
                bytes(l.max_compute_workgroup_storage_size.into()),
            ),
            (
                "max_storage_buffers_per_shader_stage",
                l.max_storage_buffers_per_shader_stage.to_string(),
            ),
        ];
        for (name, value) in rows {
            println!("      {name:<38} {value}");
        }
    }

    println!();
    match std::env::var(DEVICE_ENV) {
        Ok(v) if !v.trim().is_empty() => println!("{DEVICE_ENV}={v} is set."),
        _ => println!("{DEVICE_ENV} is not set (it can name `cpu`, an API, or an adapter)."),
    }
    match Device::auto() {
        Ok(d) => println!("Device::auto() picks: {}", d.name()),
        Err(e) => println!("Device::auto() fails: {e}"),
    }
}

/// `134217728 (128 MiB)`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else if v.fract() == 0.0 {
        format!("{n} ({v} {})", UNITS[u])
    } else {
        format!("{n} ({v:.1} {})", UNITS[u])
    }
}
