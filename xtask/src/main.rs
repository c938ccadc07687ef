//! `cargo xtask <command>`: the project's scripted workflows, in plain std Rust so they
//! build in seconds and need nothing beyond a Rust toolchain.
//!
//! - `test`             the whole test command CI runs (Vulkan driver, fmt, clippy, tests,
//!   packaging, rust-version)
//! - `validate-shaders` parse and validate every WGSL kernel with naga (no GPU needed)
//! - `bench [FILTER] [--quick] [--peers] [--save NAME]` run the criterion benches (and
//!   the peer scripts) and write bench-report/report.{json,md} (and a copy under
//!   benches/results/ to commit)
//! - `package`          the published crates build from their `.crate` files alone
//! - `msrv`             the declared `rust-version` builds the workspace
//! - `adapters`         list the wgpu adapters this machine has
//! - `ensure-vulkan`    step one of `test` alone: install Mesa's lavapipe if no driver

mod json;
mod release;
mod report;
mod vulkan;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  test                 the whole test suite, as CI runs it: make sure a Vulkan driver is
                       installed (lavapipe via apt-get when none is), then cargo fmt --check,
                       cargo clippy -D warnings, cargo test --all-targets, cargo test --doc,
                       cargo package (each published crate builds from its .crate
                       alone) and a build with the declared rust-version
  validate-shaders     parse and validate every .wgsl under shaders/ with naga
                       (runs `cargo test -p gradflux-wgpu shaders`)
  bench [FILTER] [--quick] [--peers] [--save NAME] [-- <criterion args>]
                       run the criterion benches whose id contains FILTER (e.g. `matmul`)
                       and write bench-report/report.json and bench-report/report.md;
                       --quick measures briefly (about a second each); --peers first runs
                       the matching scripts in benches/peers/ (PyTorch where installed) so
                       the report gives ratios from the same session; --save also copies
                       the report to benches/results/NAME.{md,json}, to be committed
  package              cargo package the published crates; each is built from its .crate
                       against the other packaged crates, never the workspace sources
  msrv                 build the workspace with the toolchain `rust-version` names
                       (installed through rustup; offline, check the dependencies' claims)
  adapters             list the wgpu adapters (GPUs, software drivers) this machine has
  ensure-vulkan        only the first step of `test`: install lavapipe if no Vulkan driver
  help                 this text
";

/// A failed step: what to print before exiting non-zero.
#[derive(Debug)]
pub struct Failure(pub String);

pub type Res<T = ()> = Result<T, Failure>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match cmd {
        "test" => no_args(cmd, rest).and_then(|_| test()),
        "validate-shaders" => no_args(cmd, rest).and_then(|_| validate_shaders()),
        "bench" => bench(rest),
        "adapters" => no_args(cmd, rest).and_then(|_| adapters()),
        "package" => no_args(cmd, rest).and_then(|_| release::package()),
        "msrv" => no_args(cmd, rest).and_then(|_| release::msrv()),
        "ensure-vulkan" => no_args(cmd, rest).and_then(|_| vulkan::ensure_driver()),
        "help" | "-h" | "--help" => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("xtask: unknown command `{other}`\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(msg)) => {
            eprintln!("xtask: {msg}");
            ExitCode::FAILURE
        }
    }
}

fn no_args(cmd: &str, rest: &[String]) -> Res {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Failure(format!(
            "`{cmd}` takes no arguments (got {})",
            rest.join(" ")
        )))
    }
}

/// The workspace root: the nearest ancestor of the working directory whose `Cargo.toml`
/// declares a workspace with an `xtask` member. Found at run time, not from the path
/// this binary was built at, so an xtask binary left in a shared target directory by
/// another clone still works on the clone it was run from. Falls back to the build-time
/// path when run from outside any checkout.
pub fn root() -> PathBuf {
    let is_root = |dir: &Path| {
        dir.join("xtask").join("Cargo.toml").is_file()
            && std::fs::read_to_string(dir.join("Cargo.toml"))
                .map(|toml| toml.contains("[workspace]"))
                .unwrap_or(false)
    };
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(found) = cwd.ancestors().find(|dir| is_root(dir)) {
            return found.to_path_buf();
        }
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo that ran us (so `cargo +nightly xtask` stays on nightly), else `cargo`.
fn cargo() -> Command {
    let bin = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut c = Command::new(bin);
    c.current_dir(root());
    c
}

/// True when running under CI (`CI=true` or `CI=1`): missing drivers are then errors.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| {
            let v = v.trim().to_ascii_lowercase();
            !v.is_empty() && v != "false" && v != "0"
        })
        .unwrap_or(false)
}

/// Runs a command with inherited stdio (output streams as it comes) and the inherited
/// environment; an error names the command and its exit status.
pub fn run(mut cmd: Command) -> Res {
    let shown = show(&cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .map_err(|e| Failure(format!("could not start `{shown}`: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure(format!("`{shown}` failed ({status})")))
    }
}

pub fn show(cmd: &Command) -> String {
    let mut parts = vec![cmd.get_program().to_string_lossy().into_owned()];
    parts.extend(cmd.get_args().map(|a| a.to_string_lossy().into_owned()));
    // Show `cargo` rather than the full path of the toolchain's binary.
    if let Some(first) = parts.first_mut() {
        if Path::new(first.as_str())
            .file_stem()
            .is_some_and(|s| s == "cargo")
        {
            *first = "cargo".into();
        }
    }
    parts.join(" ")
}

/// Steps of a multi-step command, timed, stopping at the first failure.
struct Steps {
    done: Vec<(String, Duration, bool)>,
}

impl Steps {
    fn new() -> Self {
        Steps { done: Vec::new() }
    }

    fn step(&mut self, name: &str, f: impl FnOnce() -> Res) -> Res {
        println!("\n==> xtask: {name}");
        let t = Instant::now();
        let r = f();
        self.done.push((name.to_string(), t.elapsed(), r.is_ok()));
        r.map_err(|Failure(msg)| Failure(format!("step `{name}` failed: {msg}")))
    }

    fn summary(&self) {
        println!("\n==> xtask: step times");
        let width = self.done.iter().map(|(n, ..)| n.len()).max().unwrap_or(0);
        let mut total = Duration::ZERO;
        for (name, d, ok) in &self.done {
            total += *d;
            let mark = if *ok { "ok    " } else { "FAILED" };
            println!("  {mark} {name:width$}  {:>8.1} s", d.as_secs_f64());
        }
        println!(
            "         {:width$}  {:>8.1} s",
            "total",
            total.as_secs_f64()
        );
    }
}

fn test() -> Res {
    let mut steps = Steps::new();
    let result = (|| {
        steps.step("vulkan driver", vulkan::ensure_driver)?;
        steps.step("cargo fmt --check", || {
            let mut c = cargo();
            c.args(["fmt", "--all", "--", "--check"]);
            run(c)
        })?;
        steps.step("cargo clippy", || {
            let mut c = cargo();
            c.args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ]);
            run(c)
        })?;
        // The facade without its wgpu backend: the CPU backend alone, as
        // `default-features = false` gives an app.
        steps.step("cpu-only build", || {
            let mut c = cargo();
            c.args([
                "clippy",
                "-p",
                "gradflux",
                "--no-default-features",
                "--lib",
                "--",
                "-D",
                "warnings",
            ]);
            run(c)
        })?;
        // The facade for the browser: wasm32 with the webgpu backend, and with the CPU
        // backend alone (installing the target through rustup if it is missing).
        steps.step("wasm32 build", || {
            let mut add = std::process::Command::new("rustup");
            add.args(["target", "add", "wasm32-unknown-unknown"]);
            run(add)?;
            for features in [&["--features", "webgpu"][..], &[][..]] {
                let mut c = cargo();
                c.args([
                    "clippy",
                    "-p",
                    "gradflux",
                    "--lib",
                    "--target",
                    "wasm32-unknown-unknown",
                    "--no-default-features",
                ]);
                c.args(features);
                c.args(["--", "-D", "warnings"]);
                run(c)?;
            }
            Ok(())
        })?;
        // --all-targets runs lib, bin, test, example and bench targets; the criterion benches
        // run each benchmark once in test mode. Doc tests need their own invocation. Every
        // feature is on, so the weight formats' tests run too.
        steps.step("cargo test --all-targets", || {
            let mut c = cargo();
            c.args(["test", "--workspace", "--all-targets", "--all-features"]);
            run(c)
        })?;
        steps.step("cargo test --doc", || {
            let mut c = cargo();
            c.args(["test", "--workspace", "--doc", "--all-features"]);
            run(c)
        })?;
        steps.step(
            "cargo package (packaged crates build alone)",
            release::package,
        )?;
        steps.step("rust-version builds", release::msrv)
    })();
    steps.summary();
    match &result {
        Ok(()) => println!("\nxtask test: all steps passed"),
        Err(Failure(msg)) => eprintln!("\nxtask test: FAILED: {msg}"),
    }
    result.map_err(|_| Failure("test failed".into()))
}

fn validate_shaders() -> Res {
    let dir = root().join("shaders");
    let mut files = Vec::new();
    report::walk(&dir, &mut |p| {
        if p.extension().is_some_and(|e| e == "wgsl") {
            files.push(p.to_path_buf());
        }
    });
    files.sort();
    println!("{} WGSL files under shaders/:", files.len());
    for f in &files {
        println!("  {}", f.strip_prefix(root()).unwrap_or(f).display());
    }
    // The naga validation tests live in gradflux-wgpu, next to the shader registry, so the
    // list of embedded kernels and the list validated are the same list.
    let mut c = cargo();
    c.args(["test", "-p", "gradflux-wgpu", "shaders"]);
    run(c)
}

fn bench(args: &[String]) -> Res {
    let mut quick = false;
    let mut peers = false;
    let mut save: Option<String> = None;
    let mut filter: Option<String> = None;
    let mut passthrough: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--peers" => peers = true,
            "--save" => match it.next() {
                Some(name) if !name.starts_with('-') && !name.contains('/') => {
                    save = Some(name.clone())
                }
                _ => return Err(Failure("bench: --save takes a file name (no `/`)".into())),
            },
            "--" => passthrough.extend(it.by_ref().cloned()),
            other if other.starts_with('-') => {
                return Err(Failure(format!("bench: unknown argument `{other}`")))
            }
            other if filter.is_none() => filter = Some(other.to_string()),
            other => return Err(Failure(format!("bench: a second filter `{other}`"))),
        }
    }
    let target = report::target_dir();
    let meta = target.join("criterion").join(report::META_FILE);
    // Stale metadata from an earlier run would name devices that are no longer there.
    let _ = std::fs::remove_file(&meta);
    let started = SystemTime::now();

    if peers {
        run_peers(filter.as_deref())?;
    }
    let mut c = cargo();
    c.args(["bench", "-p", "gradflux", "--bench", "gradflux", "--"]);
    if let Some(f) = &filter {
        c.arg(f);
    }
    if quick {
        c.args([
            "--warm-up-time",
            "0.5",
            "--measurement-time",
            "1",
            "--sample-size",
            "10",
        ]);
    }
    c.args(&passthrough);
    c.env(report::META_ENV, &meta);
    let t = Instant::now();
    run(c)?;
    println!("\nxtask: benches took {:.1} s", t.elapsed().as_secs_f64());

    let out_dir = root().join("bench-report");
    report::write(&target.join("criterion"), started, quick, &out_dir)
        .map_err(|e| Failure(format!("writing the bench report: {e}")))?;
    if let Some(name) = save {
        // Kept with the sources: a run on a lent GPU is committed from here.
        let results = root().join("benches").join("results");
        std::fs::create_dir_all(&results).map_err(|e| Failure(format!("{e}")))?;
        for ext in ["md", "json"] {
            let to = results.join(format!("{name}.{ext}"));
            std::fs::copy(out_dir.join(format!("report.{ext}")), &to)
                .map_err(|e| Failure(format!("saving {}: {e}", to.display())))?;
            println!("xtask: saved {}", to.display());
        }
    }
    Ok(())
}

/// Runs every `benches/peers/*.py` whose name matches the filter, writing TSVs under
/// bench-report/peers/ for the report. A script that cannot find its tool says so and
/// writes nothing; a missing Python is reported, not fatal.
fn run_peers(filter: Option<&str>) -> Res {
    let dir = root().join("benches").join("peers");
    let out = root().join("bench-report").join("peers");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Failure(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "py"))
        .filter(|p| {
            let stem = p.file_stem().map(|s| s.to_string_lossy().to_string());
            filter.is_none_or(|f| stem.is_some_and(|s| s.contains(f)))
        })
        .collect();
    scripts.sort();
    for script in scripts {
        let stem = script
            .file_stem()
            .expect("file")
            .to_string_lossy()
            .to_string();
        let mut c = Command::new("python3");
        c.arg(&script)
            .arg("--out")
            .arg(out.join(format!("{stem}.tsv")));
        println!("xtask: peer script {}", script.display());
        match c.status() {
            Ok(s) if s.success() => {}
            Ok(s) => println!("xtask: {} exited with {s}; no peer figures", stem),
            Err(e) => println!("xtask: cannot run python3 ({e}); no peer figures"),
        }
    }
    Ok(())
}

fn adapters() -> Res {
    let mut c = cargo();
    c.args(["run", "--quiet", "-p", "gradflux", "--example", "adapters"]);
    run(c)
}
