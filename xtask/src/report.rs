//! Turning criterion's output into bench-report/report.json and bench-report/report.md.
//!
//! criterion writes `<target>/criterion/<group>/<function>/<value>/new/{benchmark,estimates}.json`
//! for every benchmark. Our benches name the function after the device it ran on (`cpu`,
//! `gpu`) and write a small metadata file (path given in [`META_ENV`]) that maps those tags
//! to device names and each group to the unit its throughput counts (FLOP, elem, dispatch).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::json::{self, Json};
use crate::root;

/// Environment variable naming the file the benches write their metadata to.
pub const META_ENV: &str = "GRADFLUX_BENCH_META";
/// File name of that metadata, inside `<target>/criterion/`.
pub const META_FILE: &str = "gradflux-bench-meta.tsv";

/// Cargo's target folder: `CARGO_TARGET_DIR` (relative to the workspace root) or `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root().join(d),
        _ => root().join("target"),
    }
}

/// Calls `f` for every file below `dir` (silently skipping what cannot be read).
pub fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&p, f),
            Ok(t) if t.is_file() => f(&p),
            _ => {}
        }
    }
}

/// What the benches told us about themselves.
#[derive(Default)]
struct Meta {
    /// Device tag (`cpu`, `gpu`) to a description of the device.
    devices: BTreeMap<String, String>,
    /// Group id to the unit one throughput element stands for.
    units: BTreeMap<String, String>,
    /// Device tag to the device's peak throughput in its unit per second, where known.
    peaks: BTreeMap<String, f64>,
    /// Peer measurements from `benches/peers/` scripts run in the same session.
    peers: Vec<Peer>,
}

/// One line of a peer script's TSV: `tool, dtype, shape, seconds, device`.
struct Peer {
    tool: String,
    dtype: String,
    shape: String,
    seconds: f64,
    device: String,
}

/// Reads every `*.tsv` under `dir` written since `since`.
fn read_peers(dir: &Path, since: SystemTime) -> Vec<Peer> {
    let mut peers = Vec::new();
    walk(dir, &mut |p| {
        let fresh = std::fs::metadata(p)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        if !fresh || p.extension().is_none_or(|e| e != "tsv") {
            return;
        }
        let Ok(text) = std::fs::read_to_string(p) else {
            return;
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if let [tool, dtype, shape, secs, device] = f[..] {
                if let Ok(seconds) = secs.parse() {
                    peers.push(Peer {
                        tool: tool.into(),
                        dtype: dtype.into(),
                        shape: shape.into(),
                        seconds,
                        device: device.into(),
                    });
                }
            }
        }
    });
    peers
}

fn read_meta(path: &Path) -> Meta {
    let mut meta = Meta::default();
    let Ok(text) = std::fs::read_to_string(path) else {
        return meta;
    };
    for line in text.lines() {
        let mut parts = line.splitn(3, '\t');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("device"), Some(tag), Some(name)) => {
                meta.devices.insert(tag.into(), name.into());
            }
            (Some("unit"), Some(group), Some(unit)) => {
                meta.units.insert(group.into(), unit.into());
            }
            (Some("peak"), Some(tag), Some(value)) => {
                if let Ok(v) = value.parse() {
                    meta.peaks.insert(tag.into(), v);
                }
            }
            _ => {}
        }
    }
    meta
}

struct Entry {
    id: String,
    group: String,
    function: String,
    value: String,
    device: String,
    mean_ns: f64,
    lower_ns: f64,
    upper_ns: f64,
    median_ns: f64,
    std_dev_ns: f64,
    /// Units of work per iteration, and what one unit is.
    throughput: Option<(f64, String)>,
}

impl Entry {
    fn per_second(&self) -> Option<f64> {
        self.throughput
            .as_ref()
            .map(|(n, _)| n / (self.mean_ns * 1e-9))
    }
}

fn read_entry(new_dir: &Path, meta: &Meta) -> Result<Entry, String> {
    let read = |name: &str| -> Result<Json, String> {
        let p = new_dir.join(name);
        let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        Json::parse(&text).map_err(|e| format!("{}: {e}", p.display()))
    };
    let b = read("benchmark.json")?;
    let e = read("estimates.json")?;
    let s = |k: &str| b.get(k).and_then(Json::str).unwrap_or("").to_string();
    let est = |stat: &str, field: &[&str]| {
        let mut path = vec![stat];
        path.extend_from_slice(field);
        e.at(&path).and_then(Json::num).unwrap_or(f64::NAN)
    };
    let group = s("group_id");
    let function = s("function_id");
    let unit_for = |default: &str| {
        meta.units
            .get(&group)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let throughput = match b.get("throughput") {
        Some(t) => {
            if let Some(n) = t.get("Elements").and_then(Json::num) {
                Some((n, unit_for("elem")))
            } else if let Some(n) = t
                .get("Bytes")
                .or_else(|| t.get("BytesDecimal"))
                .and_then(Json::num)
            {
                Some((n, "B".to_string()))
            } else {
                t.at(&["ElementsAndBytes", "elements"])
                    .and_then(Json::num)
                    .map(|n| (n, unit_for("elem")))
            }
        }
        None => None,
    };
    let device = meta
        .devices
        .get(&function)
        .cloned()
        .unwrap_or_else(|| function.clone());
    Ok(Entry {
        id: s("full_id"),
        group,
        value: s("value_str"),
        device,
        function,
        mean_ns: est("mean", &["point_estimate"]),
        lower_ns: est("mean", &["confidence_interval", "lower_bound"]),
        upper_ns: est("mean", &["confidence_interval", "upper_bound"]),
        median_ns: est("median", &["point_estimate"]),
        std_dev_ns: est("std_dev", &["point_estimate"]),
        throughput,
    })
}

/// Collects every benchmark criterion (re)measured since `since` and writes the report.
pub fn write(
    criterion: &Path,
    since: SystemTime,
    quick: bool,
    out_dir: &Path,
) -> Result<(), String> {
    let mut meta = read_meta(&criterion.join(META_FILE));
    // File times can be coarse; a little slack keeps results written in the first instant.
    let since = since - Duration::from_secs(2);
    meta.peers = read_peers(&out_dir.join("peers"), since);
    let mut dirs = Vec::new();
    walk(criterion, &mut |p| {
        if p.file_name().is_some_and(|n| n == "estimates.json") {
            let dir = p.parent().expect("file has a folder");
            let fresh = std::fs::metadata(p)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= since);
            if dir.file_name().is_some_and(|n| n == "new")
                && fresh
                && dir.join("benchmark.json").is_file()
            {
                dirs.push(dir.to_path_buf());
            }
        }
    });
    if dirs.is_empty() {
        return Err(format!(
            "no benchmark results from this run under {}",
            criterion.display()
        ));
    }
    let mut entries = dirs
        .iter()
        .map(|d| read_entry(d, &meta))
        .collect::<Result<Vec<_>, _>>()?;
    let num = |s: &str| s.parse::<f64>().unwrap_or(f64::INFINITY);
    // Group by family, then size, so the devices of one workload sit side by side.
    entries.sort_by(|a, b| {
        a.group
            .cmp(&b.group)
            .then(num(&a.value).total_cmp(&num(&b.value)))
            .then(a.value.cmp(&b.value))
            .then(a.function.cmp(&b.function))
    });

    std::fs::create_dir_all(out_dir).map_err(|e| format!("{}: {e}", out_dir.display()))?;
    let md = markdown(&entries, &meta, quick);
    let js = report_json(&entries, &meta, quick);
    let md_path = out_dir.join("report.md");
    let js_path = out_dir.join("report.json");
    std::fs::write(&md_path, &md).map_err(|e| format!("{}: {e}", md_path.display()))?;
    std::fs::write(&js_path, &js).map_err(|e| format!("{}: {e}", js_path.display()))?;
    println!("\n{md}");
    println!(
        "xtask: wrote {} and {} ({} benchmarks)",
        rel(&md_path),
        rel(&js_path),
        entries.len()
    );
    Ok(())
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `1.234 ms`, `56.7 µs`, ...
fn fmt_time(ns: f64) -> String {
    if !ns.is_finite() {
        return "n/a".into();
    }
    let (v, unit) = if ns >= 1e9 {
        (ns / 1e9, "s")
    } else if ns >= 1e6 {
        (ns / 1e6, "ms")
    } else if ns >= 1e3 {
        (ns / 1e3, "µs")
    } else {
        (ns, "ns")
    };
    format!("{} {unit}", sig4(v))
}

/// `12.3 GFLOP/s`, `845 Melem/s`, ...
fn fmt_rate(per_s: f64, unit: &str) -> String {
    if !per_s.is_finite() {
        return "n/a".into();
    }
    let (v, prefix) = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
        .into_iter()
        .find(|(scale, _)| per_s >= *scale)
        .map(|(scale, p)| (per_s / scale, p))
        .unwrap_or((per_s, ""));
    format!("{} {prefix}{unit}/s", sig4(v))
}

/// About four significant digits.
fn sig4(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 10.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn markdown(entries: &[Entry], meta: &Meta, quick: bool) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# gradflux benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `cargo xtask bench{}` at unix time {}, {} benchmarks. \
         Times are criterion's mean per iteration: on a wgpu adapter the kernel benches \
         (elementwise, matmul, top_k, moe) time device work with the inputs resident; \
         the dispatch and training benches, and the CPU backend, time whole runs \
         (upload, dispatch, device sync and readback).\n",
        if quick { " --quick" } else { "" },
        unix_now(),
        entries.len()
    );
    if !meta.devices.is_empty() {
        let _ = writeln!(md, "Devices:\n");
        for (tag, name) in &meta.devices {
            let _ = writeln!(md, "- `{tag}`: {name}");
        }
        if meta
            .devices
            .values()
            .any(|n| n.contains("llvmpipe") || n.contains(", Cpu)"))
        {
            let _ = writeln!(
                md,
                "\nA software adapter (e.g. llvmpipe) runs the WGSL kernels on the CPU: its \
                 numbers measure overheads and correctness paths, not GPU speed."
            );
        }
        md.push('\n');
    }
    let _ = writeln!(
        md,
        "| Benchmark | Device | Mean | 95% CI of mean | Std dev | Throughput |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|");
    for e in entries {
        let thr = match (&e.throughput, e.per_second()) {
            (Some((_, unit)), Some(r)) => fmt_rate(r, unit),
            _ => "—".into(),
        };
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} … {} | {} | {} |",
            e.id,
            e.device,
            fmt_time(e.mean_ns),
            fmt_time(e.lower_ns),
            fmt_time(e.upper_ns),
            fmt_time(e.std_dev_ns),
            thr
        );
    }
    matmul_section(&mut md, entries, meta);
    peer_section(&mut md, entries, meta);
    let dispatch: Vec<&Entry> = entries
        .iter()
        .filter(|e| matches!(&e.throughput, Some((_, u)) if u == "dispatch"))
        .collect();
    if !dispatch.is_empty() {
        let _ = writeln!(md, "\n## Dispatch overhead\n");
        let _ = writeln!(
            md,
            "One run of a graph of many tiny ops, divided by its op count: the host cost of \
             one op (encoding and submitting on wgpu, interpreting on the CPU backend).\n"
        );
        let _ = writeln!(
            md,
            "| Benchmark | Device | Ops per run | µs per op | Runs per second |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|");
        for e in dispatch {
            let n = e.throughput.as_ref().map(|(n, _)| *n).unwrap_or(f64::NAN);
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {:.3} | {:.1} |",
                e.id,
                e.device,
                n,
                e.mean_ns / 1e3 / n,
                1e9 / e.mean_ns
            );
        }
    }
    md
}

/// Matmul throughput per shape and path, with the fraction of the device's peak where the
/// device is known and the ratio to a peer measured in the same session.
fn matmul_section(md: &mut String, entries: &[Entry], meta: &Meta) {
    let rows: Vec<&Entry> = entries.iter().filter(|e| e.group == "matmul").collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Matmul\n");
    let _ = writeln!(
        md,
        "GFLOP/s from criterion's mean. On a wgpu adapter the time is the kernels' device \
         time (GPU timestamps where the adapter has them) with operands resident, the same \
         quantity the peer scripts measure; on the CPU backend it is a whole run.\n"
    );
    let _ = writeln!(
        md,
        "| Shape (m×k×n) | Path | GFLOP/s | % of peak | Peer | Peer GFLOP/s | Ratio |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---|---:|---:|");
    for e in rows {
        let Some(rate) = e.per_second() else { continue };
        // Paths are `{device}-{dtype}` with an optional `-coop`.
        let dtype = function_dtype(&e.function);
        let peak = meta
            .peaks
            .get(&e.function)
            .map(|p| format!("{:.1}%", 100.0 * rate / p))
            .unwrap_or_else(|| "—".into());
        let flop = e.throughput.as_ref().map(|(n, _)| *n).unwrap_or(f64::NAN);
        let peers: Vec<&Peer> = meta
            .peers
            .iter()
            .filter(|p| p.dtype == dtype && p.shape == e.value)
            .collect();
        let cells = if peers.is_empty() {
            vec![("—".to_string(), "—".to_string(), "—".to_string())]
        } else {
            peers
                .iter()
                .map(|p| {
                    let peer_rate = flop / p.seconds;
                    (
                        format!("{} on {}", p.tool, p.device),
                        format!("{:.1}", peer_rate / 1e9),
                        format!("{:.2}×", rate / peer_rate),
                    )
                })
                .collect()
        };
        for (peer, peer_rate, ratio) in cells {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {} | {} | {} | {} |",
                e.value,
                e.function,
                rate / 1e9,
                peak,
                peer,
                peer_rate,
                ratio
            );
        }
    }
}

/// The dtype part of a bench function id (`{device}-{dtype}[-path]`).
fn function_dtype(function: &str) -> &str {
    function
        .split('-')
        .find(|p| matches!(*p, "f32" | "f16"))
        .unwrap_or("")
}

/// Every benchmark outside matmul that a peer script timed on the same shape and dtype in
/// this session, as a speed-up: peer time over gradflux time (above 1: gradflux is faster).
fn peer_section(md: &mut String, entries: &[Entry], meta: &Meta) {
    let rows: Vec<(&Entry, &Peer)> = entries
        .iter()
        .filter(|e| e.group != "matmul")
        .flat_map(|e| {
            let dtype = function_dtype(&e.function);
            meta.peers
                .iter()
                .filter(move |p| p.dtype == dtype && p.shape == e.value)
                .map(move |p| (e, p))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(md, "\n## Against peers\n");
    let _ = writeln!(
        md,
        "The same shape timed by a `benches/peers/` script in this session. Speed-up is the \
         peer's time over gradflux's (above 1: gradflux is faster). Compare device time \
         with device time: on a wgpu adapter gradflux's figure is kernel time, as the \
         peers' CUDA-event figures are.\n"
    );
    let _ = writeln!(
        md,
        "| Benchmark | Path | gradflux | Peer | Peer time | Speed-up |"
    );
    let _ = writeln!(md, "|---|---|---:|---|---:|---:|");
    for (e, p) in rows {
        let _ = writeln!(
            md,
            "| `{}/{}` | {} | {} | {} on {} | {} | {:.2}× |",
            e.group,
            e.value,
            e.function,
            fmt_time(e.mean_ns),
            p.tool,
            p.device,
            fmt_time(p.seconds * 1e9),
            p.seconds * 1e9 / e.mean_ns
        );
    }
}

fn report_json(entries: &[Entry], meta: &Meta, quick: bool) -> String {
    let q = json::quote;
    let n = json::number;
    let mut s = String::new();
    let _ = writeln!(s, "{{");
    let _ = writeln!(s, "  \"generator\": \"cargo xtask bench\",");
    let _ = writeln!(s, "  \"generated_unix\": {},", unix_now());
    let _ = writeln!(s, "  \"quick\": {quick},");
    let devices: Vec<String> = meta
        .devices
        .iter()
        .map(|(k, v)| format!("{}: {}", q(k), q(v)))
        .collect();
    let _ = writeln!(s, "  \"devices\": {{{}}},", devices.join(", "));
    let _ = writeln!(s, "  \"benchmarks\": [");
    for (i, e) in entries.iter().enumerate() {
        let thr = match (&e.throughput, e.per_second()) {
            (Some((per_iter, unit)), Some(r)) => format!(
                "{{\"per_iteration\": {}, \"unit\": {}, \"per_second\": {}}}",
                n(*per_iter),
                q(unit),
                n(r)
            ),
            _ => "null".into(),
        };
        let _ = write!(
            s,
            "    {{\"id\": {}, \"group\": {}, \"device_tag\": {}, \"parameter\": {}, \
             \"device\": {}, \"mean_ns\": {}, \"mean_ci95_ns\": [{}, {}], \"median_ns\": {}, \
             \"std_dev_ns\": {}, \"throughput\": {}}}",
            q(&e.id),
            q(&e.group),
            q(&e.function),
            q(&e.value),
            q(&e.device),
            n(e.mean_ns),
            n(e.lower_ns),
            n(e.upper_ns),
            n(e.median_ns),
            n(e.std_dev_ns),
            thr
        );
        let _ = writeln!(s, "{}", if i + 1 < entries.len() { "," } else { "" });
    }
    let _ = writeln!(s, "  ]");
    let _ = writeln!(s, "}}");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_units() {
        assert_eq!(fmt_time(1234.0), "1.234 µs");
        assert_eq!(fmt_time(12_345_678.0), "12.35 ms");
        assert_eq!(fmt_rate(2.5e9, "FLOP"), "2.500 GFLOP/s");
        assert_eq!(fmt_rate(999.0, "elem"), "999.0 elem/s");
    }

    #[test]
    fn peers_on_the_same_shape_and_dtype_give_speed_ups() {
        let entry = |group: &str, function: &str, value: &str| Entry {
            id: format!("{group}/{function}/{value}"),
            group: group.into(),
            function: function.into(),
            value: value.into(),
            device: "gpu".into(),
            mean_ns: 10_000.0,
            lower_ns: 9_000.0,
            upper_ns: 11_000.0,
            median_ns: 10_000.0,
            std_dev_ns: 1.0,
            throughput: None,
        };
        let peer = |dtype: &str, shape: &str| Peer {
            tool: "torch".into(),
            dtype: dtype.into(),
            shape: shape.into(),
            seconds: 20e-6,
            device: "H200".into(),
        };
        let meta = Meta {
            peers: vec![peer("f32", "fused-T8192E256k8"), peer("f16", "1x2048k8")],
            ..Meta::default()
        };
        let entries = [
            entry("moe_routing", "gpu-f32", "fused-T8192E256k8"),
            entry("top_k", "gpu-f32", "1x2048k8"),
        ];
        let mut md = String::new();
        peer_section(&mut md, &entries, &meta);
        assert!(md.contains("| `moe_routing/fused-T8192E256k8` | gpu-f32 | 10.00 µs | torch on H200 | 20.00 µs | 2.00× |"), "{md}");
        // The top_k peer measured f16, not f32: no row.
        assert!(!md.contains("top_k/"), "{md}");
    }

    #[test]
    fn report_json_parses_back() {
        let e = Entry {
            id: "matmul/gpu/128".into(),
            group: "matmul".into(),
            function: "gpu".into(),
            value: "128".into(),
            device: "llvmpipe \"x\"".into(),
            mean_ns: 1e6,
            lower_ns: 0.9e6,
            upper_ns: 1.1e6,
            median_ns: 1e6,
            std_dev_ns: f64::NAN,
            throughput: Some((4194304.0, "FLOP".into())),
        };
        let text = report_json(&[e], &Meta::default(), true);
        let v = Json::parse(&text).unwrap();
        let b = match v.get("benchmarks") {
            Some(Json::Arr(a)) => a[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            b.at(&["throughput", "per_second"]).and_then(Json::num),
            Some(4194304.0 / 1e-3)
        );
        assert_eq!(b.get("std_dev_ns"), Some(&Json::Null));
    }
}
