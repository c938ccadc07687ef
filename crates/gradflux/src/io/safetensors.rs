//! Named tensors in Hugging Face's `.safetensors` format (what candle, burn and PyTorch
//! users keep their weights in), and an executable's parameters loaded from or saved to
//! such a file by their `g.parameter` names, with every name, dtype and shape checked.
//!
//! ```no_run
//! # fn demo(exe: &mut dyn gradflux::Executable) -> gradflux::Result<()> {
//! use gradflux::io::safetensors;
//! let unused = safetensors::load_parameters(exe, "model.safetensors")?; // by name
//! assert!(unused.is_empty(), "the file also holds {unused:?}");
//! safetensors::save_parameters(exe, "trained.safetensors")?;
//! # Ok(()) }
//! ```

use std::path::Path;

use gradflux_core::{DType, Error, Executable, Result, Shape, Storage, TensorData};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

fn format_error(source: &str, detail: impl Into<String>) -> Error {
    Error::Format {
        format: "safetensors",
        source_name: source.to_string(),
        detail: detail.into(),
    }
}

fn to_dtype(d: Dtype, name: &str, source: &str) -> Result<DType> {
    Ok(match d {
        Dtype::F16 => DType::F16,
        Dtype::F32 => DType::F32,
        Dtype::F64 => DType::F64,
        Dtype::I32 => DType::I32,
        Dtype::U32 => DType::U32,
        other => {
            return Err(format_error(
                source,
                format!(
                    "tensor `{name}` is {other:?}, which gradflux has no type for; expected \
                     F16, F32, F64, I32 or U32 (convert it before saving)"
                ),
            ))
        }
    })
}

fn from_dtype(d: DType) -> Dtype {
    match d {
        DType::F16 => Dtype::F16,
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
        DType::I32 => Dtype::I32,
        DType::U32 => Dtype::U32,
    }
}

/// The tensors in safetensors bytes, by name (sorted); `source` names them in errors.
pub fn from_bytes_named(bytes: &[u8], source: &str) -> Result<Vec<(String, TensorData)>> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| format_error(source, e.to_string()))?;
    let mut out = Vec::new();
    for (name, view) in file.tensors() {
        let dtype = to_dtype(view.dtype(), &name, source)?;
        let shape = Shape::new(view.shape().to_vec());
        let data = TensorData::from_storage(shape, Storage::from_bytes(dtype, view.data()))?;
        out.push((name, data));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// The tensors in safetensors bytes, by name (sorted).
pub fn from_bytes(bytes: &[u8]) -> Result<Vec<(String, TensorData)>> {
    from_bytes_named(bytes, "bytes")
}

/// The tensors of a `.safetensors` file, by name (sorted).
pub fn read(path: impl AsRef<Path>) -> Result<Vec<(String, TensorData)>> {
    let path = path.as_ref();
    from_bytes_named(&super::read_file(path)?, &path.display().to_string())
}

/// `tensors` as safetensors bytes (names must be distinct).
pub fn to_bytes(tensors: &[(&str, &TensorData)]) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(name, t)| {
            let view = TensorView::new(
                from_dtype(t.dtype()),
                t.shape().dims().to_vec(),
                t.storage().as_bytes(),
            )
            .map_err(|e| format_error("output", format!("tensor `{name}`: {e}")))?;
            Ok((name.to_string(), view))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut names: Vec<&str> = tensors.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format_error(
            "output",
            format!("the name `{}` is given twice", w[0]),
        ));
    }
    safetensors::tensor::serialize(views, None).map_err(|e| format_error("output", e.to_string()))
}

/// Writes `tensors` as a `.safetensors` file.
pub fn write(path: impl AsRef<Path>, tensors: &[(&str, &TensorData)]) -> Result<()> {
    super::write_file(path.as_ref(), &to_bytes(tensors)?)
}

/// Sets every parameter of `exe` from the tensor of the same name in the file at `path`,
/// checking first that each is there with the parameter's dtype and shape (one error lists
/// every mismatch; nothing is set then). Returns the names of the file's other tensors
/// (a checkpoint may also hold optimizer state), sorted.
pub fn load_parameters(exe: &mut dyn Executable, path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let tensors = from_bytes_named(&super::read_file(path)?, &source)?;
    let mut problems = Vec::new();
    let mut chosen = Vec::new();
    for p in exe.planned_parameters() {
        match tensors.iter().find(|(n, _)| *n == p.name) {
            None => problems.push(format!(
                "parameter `{}` ({}) is not in the file",
                p.name, p.ty
            )),
            Some((_, t)) if t.dtype() != p.ty.dtype || t.shape() != &p.ty.shape => {
                problems.push(format!(
                    "parameter `{}` is {} in the graph, {} {} in the file",
                    p.name,
                    p.ty,
                    t.dtype(),
                    t.shape()
                ))
            }
            Some((_, t)) => chosen.push((p.name.clone(), t)),
        }
    }
    if !problems.is_empty() {
        let held: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format_error(
            &source,
            format!(
                "{} (the file holds: {})",
                problems.join("; "),
                held.join(", ")
            ),
        ));
    }
    for (name, t) in &chosen {
        exe.set_parameter(name, t)?;
    }
    Ok(tensors
        .iter()
        .filter(|(n, _)| !chosen.iter().any(|(c, _)| c == n))
        .map(|(n, _)| n.clone())
        .collect())
}

/// Writes every parameter of `exe`, by its name, as a `.safetensors` file (on a GPU: one
/// readback per parameter).
pub fn save_parameters(exe: &dyn Executable, path: impl AsRef<Path>) -> Result<()> {
    let values = exe
        .planned_parameters()
        .iter()
        .map(|p| Ok((p.name.clone(), exe.parameter(&p.name)?)))
        .collect::<Result<Vec<_>>>()?;
    let named: Vec<(&str, &TensorData)> = values.iter().map(|(n, t)| (n.as_str(), t)).collect();
    write(path, &named)
}
