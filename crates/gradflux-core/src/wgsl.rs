//! Offline WGSL checking with naga, so a shader error surfaces with its line and column
//! when a graph is built, not as a driver message at dispatch time.

use crate::{Error, Result};

/// Parses and validates WGSL; on failure returns [`Error::Shader`] naming `source_name`
/// and the 1-based line and column of the first problem.
pub fn validate_wgsl(source_name: &str, source: &str) -> Result<naga::Module> {
    Ok(validate_with_info(source_name, source)?.0)
}

/// [`validate_wgsl`], also returning what validation learnt about each function (which
/// globals an entry point reads and writes).
pub(crate) fn validate_with_info(
    source_name: &str,
    source: &str,
) -> Result<(naga::Module, naga::valid::ModuleInfo)> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        let loc = e.location(source);
        Error::Shader {
            source_name: source_name.to_string(),
            line: loc.map_or(0, |l| l.line_number),
            column: loc.map_or(0, |l| l.line_position),
            message: e.message().to_string(),
        }
    })?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| {
        let loc = e.location(source);
        Error::Shader {
            source_name: source_name.to_string(),
            line: loc.map_or(0, |l| l.line_number),
            column: loc.map_or(0, |l| l.line_position),
            message: full_message(&e),
        }
    })?;
    Ok((module, info))
}

/// A resource binding of a compute entry point, as the kernel declares and uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BindingUse {
    pub group: u32,
    pub binding: u32,
    pub name: String,
    /// `Some(writable)` for a storage buffer, `None` for anything else (uniform, texture).
    pub storage_writable: Option<bool>,
    /// Whether the entry point (or a function it calls) writes it.
    pub written: bool,
}

/// What an entry point needs from its launch: its bindings, the bytes of `var<workgroup>`
/// memory it uses and its workgroup size.
#[derive(Clone, Debug)]
pub(crate) struct EntryInterface {
    pub bindings: Vec<BindingUse>,
    pub workgroup_bytes: u64,
    pub workgroup_size: [u32; 3],
}

/// The interface of entry point `index` of a validated module.
pub(crate) fn entry_interface(
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    index: usize,
) -> EntryInterface {
    let uses = info.get_entry_point(index);
    let mut bindings = Vec::new();
    let mut workgroup_bytes = 0u64;
    for (handle, var) in module.global_variables.iter() {
        let used = uses[handle];
        if used.is_empty() {
            continue;
        }
        if var.space == naga::AddressSpace::WorkGroup {
            workgroup_bytes += module.types[var.ty].inner.size(module.to_ctx()) as u64;
        }
        if let Some(rb) = &var.binding {
            let storage_writable = match var.space {
                naga::AddressSpace::Storage { access } => {
                    Some(access.contains(naga::StorageAccess::STORE))
                }
                _ => None,
            };
            bindings.push(BindingUse {
                group: rb.group,
                binding: rb.binding,
                name: var.name.clone().unwrap_or_default(),
                storage_writable,
                written: used.contains(naga::valid::GlobalUse::WRITE),
            });
        }
    }
    EntryInterface {
        bindings,
        workgroup_bytes,
        workgroup_size: module.entry_points[index].workgroup_size,
    }
}

/// The error and its chain of causes on one line.
fn full_message(e: &dyn std::error::Error) -> String {
    let mut msg = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cur = c.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_has_position() {
        let src = "@compute @workgroup_size(1)\nfn main() {\n  let x = ;\n}\n";
        match validate_wgsl("bad.wgsl", src).unwrap_err() {
            Error::Shader { line, column, .. } => {
                assert_eq!(line, 3);
                assert!(column > 1);
            }
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn validation_error_has_position() {
        let src = "@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = 1u;\n}\n";
        match validate_wgsl("bad.wgsl", src).unwrap_err() {
            Error::Shader { line, .. } => assert_eq!(line, 3),
            e => panic!("unexpected {e}"),
        }
    }
}
