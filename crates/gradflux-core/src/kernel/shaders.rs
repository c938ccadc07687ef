//! Every WGSL file gradflux ships, registered in one place next to the pipeline cache, and
//! the text substitutions that specialise a file for a dtype and an op.
//!
//! Shared helpers live once under `shaders/lib/` and are pulled in by a line
//! `// #import lib/<file>.wgsl`, which [`compose`] replaces with the file (each file once,
//! imports of imports included); a composed file is valid WGSL (its f32 version), so it
//! validates offline. A helper that uses its importer's bindings says so on a
//! `// #requires` line and validates inside its importers (`lib/broadcast.wgsl` reads the
//! importer's `info`). A specialisation composes the file, then rewrites the
//! `alias T = ...;` / `alias R = ...;` lines (input and output element types) and the line
//! marked `// @op` (the op's expression).

use crate::DType;

/// A WGSL file under `shaders/`, embedded at compile time.
#[derive(Copy, Clone, Debug)]
pub struct ShaderFile {
    /// Path relative to `shaders/`.
    pub path: &'static str,
    /// The file's text as shipped, before [`compose`] expands its imports.
    pub source: &'static str,
}

/// `shader!(NAME, "family/file.wgsl")` declares the constant `NAME` holding that file.
/// The crate's `shaders` entry links to the repository's top-level `shaders/` (the one
/// source of truth), and `cargo package` copies it in, so the packaged crate carries its
/// kernels.
macro_rules! shader {
    ($name:ident, $path:literal) => {
        #[doc = concat!("`shaders/", $path, "`, embedded at compile time.")]
        pub const $name: $crate::kernel::shaders::ShaderFile =
            $crate::kernel::shaders::ShaderFile {
                path: $path,
                source: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $path)),
            };
    };
}
pub(crate) use shader;

shader!(LIB_FLOAT, "lib/float.wgsl");
shader!(LIB_ONLINE_LSE, "lib/online_lse.wgsl");
shader!(LIB_WORKGROUP, "lib/workgroup.wgsl");
shader!(LIB_BROADCAST, "lib/broadcast.wgsl");
shader!(LIB_POINT_TILE, "lib/point_tile.wgsl");
shader!(LIB_ROLLOUT, "lib/rollout.wgsl");
shader!(LIB_MPM, "lib/mpm.wgsl");
shader!(LIB_MPM2, "lib/mpm2.wgsl");
shader!(LIB_MPM_STEPS, "lib/mpm_steps.wgsl");
shader!(LOOP_GATE, "loop/gate.wgsl");

/// Every shipped shader file: [`BUILTIN`], then each registered family's.
pub fn all() -> Vec<ShaderFile> {
    let families = crate::ops::FAMILIES.iter().flat_map(|f| f.shaders);
    BUILTIN.iter().chain(families).copied().collect()
}

/// The helpers under `shaders/lib/` that kernels import, and the loop runner's own kernel
/// under `shaders/loop/` (each family declares its own kernels).
pub const BUILTIN: &[ShaderFile] = &[
    LIB_FLOAT,
    LIB_ONLINE_LSE,
    LIB_WORKGROUP,
    LIB_BROADCAST,
    LIB_POINT_TILE,
    LIB_ROLLOUT,
    LIB_MPM,
    LIB_MPM2,
    LIB_MPM_STEPS,
    LOOP_GATE,
];

/// The line prefix that imports a helper file.
const IMPORT: &str = "// #import ";

/// `file` with its imports expanded from the registered files.
pub fn compose(file: &ShaderFile) -> Result<String, String> {
    let all = all();
    compose_source(file.path, file.source, &|path| {
        all.iter().find(|f| f.path == path).map(|f| f.source)
    })
}

/// [`compose`] over any set of files: `find` gives a path's source. Each file is included
/// once, where it is first imported; a missing file or an import cycle is an error naming
/// the chain of imports.
pub fn compose_source(
    path: &str,
    source: &str,
    find: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<String, String> {
    fn expand(
        path: &str,
        source: &str,
        find: &dyn Fn(&str) -> Option<&'static str>,
        chain: &mut Vec<String>,
        done: &mut Vec<String>,
        out: &mut String,
    ) -> Result<(), String> {
        chain.push(path.to_string());
        for line in source.lines() {
            let Some(target) = line.trim_start().strip_prefix(IMPORT) else {
                out.push_str(line);
                out.push('\n');
                continue;
            };
            let target = target.trim();
            if chain.iter().any(|p| p == target) {
                return Err(format!(
                    "WGSL import cycle: {} -> {target}",
                    chain.join(" -> ")
                ));
            }
            if done.iter().any(|p| p == target) {
                continue;
            }
            let Some(text) = find(target) else {
                return Err(format!(
                    "WGSL import of a missing file `{target}` in {}",
                    chain.join(" -> ")
                ));
            };
            out.push_str(&format!("// ---- {target} ----\n"));
            expand(target, text, find, chain, done, out)?;
            done.push(target.to_string());
        }
        chain.pop();
        Ok(())
    }
    let mut out = String::with_capacity(source.len() * 2);
    expand(
        path,
        source,
        find,
        &mut Vec::new(),
        &mut Vec::new(),
        &mut out,
    )?;
    Ok(out)
}

/// [`compose`] for a file shipped with the crate, whose imports a test checks.
pub fn composed(file: &ShaderFile) -> String {
    compose(file).unwrap_or_else(|e| panic!("shipped shader {}: {e}", file.path))
}

/// Specialises a file: element types `t` (inputs) and `r` (output), and optionally the
/// expression on the `@op` line. An f16 type adds the `enable f16;` directive.
pub fn specialise(file: &ShaderFile, t: DType, r: DType, op_expr: Option<&str>) -> String {
    let source = composed(file);
    let mut out = String::with_capacity(source.len() + 64);
    if t == DType::F16 || r == DType::F16 {
        out.push_str("enable f16;\n");
    }
    for line in source.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("alias T = ") {
            out.push_str(&format!("alias T = {};", t.wgsl_name()));
        } else if trimmed.starts_with("alias R = ") {
            out.push_str(&format!("alias R = {};", r.wgsl_name()));
        } else if let (Some(expr), true) = (op_expr, line.contains("// @op")) {
            out.push_str(&format!("    return {expr};"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_distinct_path_and_source() {
        let all = all();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a.path, b.path);
                assert_ne!(a.source, b.source, "{} and {} share source", a.path, b.path);
            }
        }
    }

    #[test]
    fn imports_expand_once_and_missing_files_and_cycles_are_errors() {
        let files = |path: &str| -> Option<&'static str> {
            match path {
                "lib/a.wgsl" => Some("fn a() {}\n"),
                "lib/b.wgsl" => Some("// #import lib/a.wgsl\nfn b() { a(); }\n"),
                "lib/loop1.wgsl" => Some("// #import lib/loop2.wgsl\n"),
                "lib/loop2.wgsl" => Some("// #import lib/loop1.wgsl\n"),
                _ => None,
            }
        };
        let s = compose_source(
            "k.wgsl",
            "// #import lib/a.wgsl\n// #import lib/b.wgsl\nfn main() {}\n",
            &files,
        )
        .unwrap();
        assert_eq!(s.matches("fn a()").count(), 1, "{s}");
        assert!(s.find("fn a()") < s.find("fn b()") && s.contains("fn main()"));
        let e = compose_source("k.wgsl", "// #import lib/nope.wgsl\n", &files).unwrap_err();
        assert!(e.contains("missing file `lib/nope.wgsl` in k.wgsl"), "{e}");
        let e = compose_source("k.wgsl", "// #import lib/loop1.wgsl\n", &files).unwrap_err();
        assert!(
            e.contains("cycle: k.wgsl -> lib/loop1.wgsl -> lib/loop2.wgsl -> lib/loop1.wgsl"),
            "{e}"
        );
    }

    #[test]
    fn every_shipped_file_composes() {
        for f in &all() {
            compose(f).unwrap_or_else(|e| panic!("{}: {e}", f.path));
        }
    }

    #[test]
    fn specialise_rewrites_types_and_op() {
        let s = specialise(
            &crate::ops::elementwise::BINARY,
            DType::I32,
            DType::U32,
            Some("select(0u, 1u, x < y)"),
        );
        assert!(s.contains("alias T = i32;"));
        assert!(s.contains("alias R = u32;"));
        assert!(s.contains("return select(0u, 1u, x < y);"));
        assert!(!s.contains("// @op"));
    }
}
