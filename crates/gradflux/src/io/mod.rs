//! Weights and data in the files the Python ecosystem writes, each behind a feature:
//! `safetensors` ([`safetensors`]: named tensors, and an executable's parameters loaded or
//! saved by their `g.parameter` names) and `npy` ([`npy`]: NumPy's one-array files).
//! `ndarray` conversions are `From`/`TryFrom` impls on [`TensorData`](crate::TensorData)
//! (feature `ndarray`).

#[cfg(feature = "npy")]
pub mod npy;
#[cfg(feature = "safetensors")]
pub mod safetensors;

#[cfg(any(feature = "npy", feature = "safetensors"))]
fn read_file(path: &std::path::Path) -> crate::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| crate::Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

#[cfg(any(feature = "npy", feature = "safetensors"))]
fn write_file(path: &std::path::Path, bytes: &[u8]) -> crate::Result<()> {
    std::fs::write(path, bytes).map_err(|e| crate::Error::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}
