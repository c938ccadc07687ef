//! Making sure a Vulkan driver exists before the GPU tests run.
//!
//! On a machine without a GPU, Mesa's lavapipe (software Vulkan, in `mesa-vulkan-drivers`)
//! gives wgpu a real adapter, so the wgpu parity suite runs everywhere. The Vulkan loader
//! finds drivers through ICD manifests (JSON files) in a few well-known folders.

use std::path::Path;
use std::process::Command;

use crate::{in_ci, run, Failure, Res};

/// Where the Vulkan loader looks for installed client drivers (ICDs) on Linux.
const ICD_DIRS: [&str; 3] = [
    "/usr/share/vulkan/icd.d",
    "/etc/vulkan/icd.d",
    "/usr/local/share/vulkan/icd.d",
];

const PACKAGES: [&str; 2] = ["mesa-vulkan-drivers", "libvulkan1"];

/// ICD manifests found in the standard folders (plus `VK_ICD_FILENAMES` /
/// `VK_DRIVER_FILES` when set, which override the search).
pub fn installed_icds() -> Vec<String> {
    let mut found = Vec::new();
    for var in ["VK_DRIVER_FILES", "VK_ICD_FILENAMES"] {
        if let Ok(v) = std::env::var(var) {
            found.extend(
                v.split(':')
                    .filter(|p| !p.is_empty() && Path::new(p).exists())
                    .map(str::to_string),
            );
        }
    }
    for dir in ICD_DIRS {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") {
                    found.push(p.display().to_string());
                }
            }
        }
    }
    found.sort();
    found
}

/// Step (a) of `cargo xtask test`: if no Vulkan driver is installed and this is a Linux
/// machine with apt-get, install Mesa's drivers (lavapipe). A failed install is an error
/// under CI (the GPU suite must really run there) and a warning elsewhere.
pub fn ensure_driver() -> Res {
    let icds = installed_icds();
    if !icds.is_empty() {
        println!("Vulkan drivers found:");
        for i in &icds {
            println!("  {i}");
        }
        return Ok(());
    }
    if !cfg!(target_os = "linux") {
        println!(
            "no Vulkan ICD manifest in the Linux folders; on {} wgpu uses the platform's own \
             API (Metal, DX12), nothing to install",
            std::env::consts::OS
        );
        return Ok(());
    }
    println!("no Vulkan driver found in {}", ICD_DIRS.join(", "));
    match install() {
        Ok(()) => {
            let icds = installed_icds();
            if icds.is_empty() {
                soft_fail(format!(
                    "installed {} but still no ICD manifest in {}",
                    PACKAGES.join(" "),
                    ICD_DIRS.join(", ")
                ))
            } else {
                println!("Vulkan drivers now installed:");
                for i in &icds {
                    println!("  {i}");
                }
                Ok(())
            }
        }
        Err(Failure(msg)) => soft_fail(msg),
    }
}

fn soft_fail(msg: String) -> Res {
    let hint = format!(
        "{msg}\n  install a Vulkan driver by hand, e.g. `sudo apt-get install -y \
         --no-install-recommends {}` (Mesa's lavapipe runs Vulkan on the CPU)",
        PACKAGES.join(" ")
    );
    if in_ci() {
        Err(Failure(format!(
            "{hint}\n  CI=true: the wgpu tests must run on a real adapter, so this is an error"
        )))
    } else {
        eprintln!(
            "warning: {hint}\n  continuing: wgpu tests will fall back or skip without an adapter"
        );
        Ok(())
    }
}

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(bin).is_file()))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|s| s.trim() == "0")
}

fn install() -> Res {
    if !on_path("apt-get") {
        return Err(Failure(
            "no Vulkan driver and no apt-get to install one with".into(),
        ));
    }
    let sudo = if is_root() {
        false
    } else if on_path("sudo") {
        true
    } else {
        return Err(Failure(
            "no Vulkan driver, and not root and no sudo, so apt-get cannot install one".into(),
        ));
    };
    let apt = |args: &[&str]| {
        let mut c = if sudo {
            let mut c = Command::new("sudo");
            // -n: never prompt for a password (fail instead); keep the apt settings below.
            c.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
            c
        } else {
            Command::new("apt-get")
        };
        c.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        c
    };
    println!("installing Mesa's Vulkan drivers (lavapipe) with apt-get");
    run(apt(&["update"]))?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(PACKAGES);
    run(apt(&args)).map_err(|Failure(m)| Failure(format!("installing the driver: {m}")))
}
