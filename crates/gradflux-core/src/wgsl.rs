//! Offline WGSL checking with naga, so a shader error surfaces with its line and column
//! when a graph is built, not as a driver message at dispatch time.

use crate::{Error, Result};

/// Parses and validates WGSL; on failure returns [`Error::Shader`] naming `source_name`
/// and the 1-based line and column of the first problem.
pub fn validate_wgsl(source_name: &str, source: &str) -> Result<naga::Module> {
    let module = naga::front::wgsl::parse_str(source).map_err(|e| {
        let loc = e.location(source);
        Error::Shader {
            source_name: source_name.to_string(),
            line: loc.map_or(0, |l| l.line_number),
            column: loc.map_or(0, |l| l.line_position),
            message: e.message().to_string(),
        }
    })?;
    naga::valid::Validator::new(
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
    Ok(module)
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
