//! The two steps of `test` that keep gradflux installable from crates.io: the workspace
//! packages and its packaged crates build on their own, and the declared `rust-version`
//! really builds.

use std::process::Command;

use crate::json::Json;
use crate::{cargo, root, run, show, Failure, Res};

/// The crates published to crates.io, dependencies first.
const PUBLISHED: [&str; 4] = ["gradflux-core", "gradflux-cpu", "gradflux-wgpu", "gradflux"];

/// `cargo package` for every published crate. Cargo's verification unpacks each `.crate`
/// and builds it against the other packaged crates (a temporary local registry), never
/// against the workspace sources, so a kernel read from outside a crate or a path
/// dependency without a version fails here rather than on a user's machine.
pub fn package() -> Res {
    forget_earlier_packages()?;
    let target = root().join("target/package-check");
    forget_earlier_builds(&target)?;
    let mut c = cargo();
    c.args(["package", "--locked", "--allow-dirty"])
        .env("CARGO_TARGET_DIR", &target);
    for name in PUBLISHED {
        c.args(["-p", name]);
    }
    run(c)?;
    for name in PUBLISHED {
        let file = target
            .join("package")
            .join(format!("{name}-{}.crate", workspace_field("version")?));
        if !file.is_file() {
            return Err(Failure(format!(
                "`cargo package` left no {}",
                file.display()
            )));
        }
    }
    Ok(())
}

/// Cargo unpacks the `.crate` files it verifies against into `$CARGO_HOME/registry` and
/// never refreshes an unpacked version it has seen: without this, a second packaging of
/// the same version would build against the sources of the first.
fn forget_earlier_packages() -> Res {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(registry) = home.map(|h| h.join("registry")) else {
        return Ok(());
    };
    let version = workspace_field("version")?;
    for (kind, suffix) in [("src", ""), ("cache", ".crate")] {
        let Ok(dirs) = std::fs::read_dir(registry.join(kind)) else {
            continue;
        };
        for dir in dirs.flatten() {
            for name in PUBLISHED {
                let stale = dir.path().join(format!("{name}-{version}{suffix}"));
                let removed = if stale.is_dir() {
                    std::fs::remove_dir_all(&stale)
                } else if stale.is_file() {
                    std::fs::remove_file(&stale)
                } else {
                    continue;
                };
                removed
                    .map_err(|e| Failure(format!("could not remove {}: {e}", stale.display())))?;
            }
        }
    }
    Ok(())
}

/// Cargo takes a registry crate of a given version to be immutable, so it would reuse what
/// it built from an earlier `.crate` of the same version: the verification builds get a
/// target directory of their own, from which gradflux's own artifacts are removed.
fn forget_earlier_builds(target: &std::path::Path) -> Res {
    for dir in ["debug/.fingerprint", "debug/deps", "debug/build"] {
        let Ok(entries) = std::fs::read_dir(target.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("gradflux") || name.starts_with("libgradflux")) {
                continue;
            }
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(|e| Failure(format!("could not remove {}: {e}", path.display())))?;
        }
    }
    Ok(())
}

/// Builds the workspace with the toolchain named by `rust-version`, installing it through
/// rustup (minimal profile) when it is missing. Where rustup cannot fetch it (no route to
/// static.rust-lang.org), the step says so and proves what it can offline: no locked
/// dependency declares a newer `rust-version` (clippy's `incompatible_msrv` lint, part of
/// the clippy step, already refuses standard-library items newer than it).
pub fn msrv() -> Res {
    let version = workspace_field("rust-version")?;
    let toolchain = full_version(&version);
    if !toolchain_installed(&toolchain) {
        let mut install = Command::new("rustup");
        install.args(["toolchain", "install", &toolchain, "--profile", "minimal"]);
        if let Err(Failure(why)) = run(install) {
            println!(
                "xtask: MSRV toolchain {toolchain} unavailable ({why}); checking the \
                 dependencies' declared rust-version instead of building with it"
            );
            return dependencies_within(&version);
        }
    }
    let mut c = Command::new("rustup");
    c.current_dir(root())
        .args(["run", &toolchain, "cargo", "check", "--workspace"])
        .args(["--all-targets", "--locked"])
        .env("CARGO_TARGET_DIR", root().join("target/msrv"));
    run(c)
}

/// `1.90` → `1.90.0`: rustup names patch releases.
fn full_version(v: &str) -> String {
    if v.split('.').count() == 2 {
        format!("{v}.0")
    } else {
        v.to_string()
    }
}

fn toolchain_installed(toolchain: &str) -> bool {
    Command::new("rustup")
        .args(["run", toolchain, "rustc", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Fails naming every locked package whose `rust-version` is newer than `ours`.
fn dependencies_within(ours: &str) -> Res {
    let mut c = cargo();
    c.args(["metadata", "--format-version", "1", "--locked"]);
    let shown = show(&c);
    let out = c
        .output()
        .map_err(|e| Failure(format!("could not start `{shown}`: {e}")))?;
    if !out.status.success() {
        return Err(Failure(format!("`{shown}` failed ({})", out.status)));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let meta = Json::parse(&text).map_err(|e| Failure(format!("`{shown}`: {e}")))?;
    let Some(Json::Arr(packages)) = meta.get("packages") else {
        return Err(Failure(format!("`{shown}` printed no package list")));
    };
    let limit = parse_version(ours)?;
    let mut newer = Vec::new();
    for p in packages {
        let (Some(name), Some(needs)) = (
            p.get("name").and_then(Json::str),
            p.get("rust_version").and_then(Json::str),
        ) else {
            continue;
        };
        if parse_version(needs)? > limit {
            newer.push(format!("{name} needs {needs}"));
        }
    }
    if newer.is_empty() {
        println!("xtask: every locked dependency builds with Rust {ours}");
        Ok(())
    } else {
        Err(Failure(format!(
            "rust-version = \"{ours}\" is false with this lockfile: {}",
            newer.join(", ")
        )))
    }
}

fn parse_version(v: &str) -> Res<[u32; 3]> {
    let mut parts = [0u32; 3];
    for (i, p) in v.split('.').enumerate() {
        let slot = parts
            .get_mut(i)
            .ok_or_else(|| Failure(format!("`{v}` is not a Rust version")))?;
        *slot = p
            .parse()
            .map_err(|_| Failure(format!("`{v}` is not a Rust version")))?;
    }
    Ok(parts)
}

/// A `key = "value"` of the root manifest's `[workspace.package]`.
fn workspace_field(key: &str) -> Res<String> {
    let path = root().join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure(format!("could not read {}: {e}", path.display())))?;
    let section = text
        .split("[workspace.package]")
        .nth(1)
        .map(|rest| rest.split("\n[").next().unwrap_or(rest))
        .ok_or_else(|| Failure(format!("{} has no [workspace.package]", path.display())))?;
    section
        .lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .ok_or_else(|| {
            Failure(format!(
                "{} sets no `{key}` in [workspace.package]",
                path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(parse_version("1.100").unwrap() > parse_version("1.90").unwrap());
        assert!(parse_version("1.90.1").unwrap() > parse_version("1.90").unwrap());
        assert!(parse_version("1.x").is_err());
        assert_eq!(full_version("1.90"), "1.90.0");
        assert_eq!(full_version("1.90.2"), "1.90.2");
    }

    #[test]
    fn the_workspace_declares_what_publishing_needs() {
        for key in ["version", "rust-version", "license", "repository"] {
            assert!(workspace_field(key).is_ok(), "{key}");
        }
    }
}
