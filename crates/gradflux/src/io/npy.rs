//! NumPy's `.npy` files: one array, a small text header, then the raw data. Arrays of the
//! dtypes gradflux has (`<f2`, `<f4`, `<f8`, `<i4`, `<u4`) in C order are read and written;
//! the files written are the bytes `numpy.save` writes for the same array (format 1.0, or
//! 2.0 for a header past 64 KiB, the header padded to 64 bytes).
//!
//! ```no_run
//! # fn demo() -> gradflux::Result<()> {
//! let x = gradflux::TensorData::new([2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
//! gradflux::io::npy::write("x.npy", &x)?;            // np.load("x.npy") reads it
//! assert_eq!(gradflux::io::npy::read("x.npy")?, x);
//! # Ok(()) }
//! ```

use std::path::Path;

use gradflux_core::{DType, Error, Result, Shape, Storage, TensorData};

const MAGIC: &[u8] = b"\x93NUMPY";
/// numpy pads its headers so the data starts on a multiple of this.
const ALIGN: usize = 64;
/// numpy leaves room for a header rewritten in place with a longer first axis.
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

fn format_error(source: &str, detail: impl Into<String>) -> Error {
    Error::Format {
        format: "npy",
        source_name: source.to_string(),
        detail: detail.into(),
    }
}

fn descr(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "<f2",
        DType::F32 => "<f4",
        DType::F64 => "<f8",
        DType::I32 => "<i4",
        DType::U32 => "<u4",
    }
}

/// The dtype of a header's `descr`, or what to do instead.
fn dtype_of(descr: &str, source: &str) -> Result<DType> {
    Ok(match descr {
        "<f2" => DType::F16,
        "<f4" => DType::F32,
        "<f8" => DType::F64,
        "<i4" => DType::I32,
        "<u4" => DType::U32,
        other if other.starts_with('>') => {
            return Err(format_error(
                source,
                format!(
                    "big-endian data (`{other}`); save it little-endian \
                     (`a.astype(a.dtype.newbyteorder('<'))`)"
                ),
            ))
        }
        other => {
            return Err(format_error(
                source,
                format!(
                    "dtype `{other}` has no gradflux type; expected one of <f2, <f4, <f8, <i4, \
                     <u4 (cast it in numpy first, e.g. `a.astype(np.int32)`)"
                ),
            ))
        }
    })
}

/// The header's text, as `numpy.lib.format` writes it (keys sorted, a trailing `, `, and
/// room for a longer first axis).
fn header_text(t: &TensorData) -> String {
    let dims = t.shape().dims();
    let shape = match dims {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        _ => {
            let parts: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
            format!("({})", parts.join(", "))
        }
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        descr(t.dtype())
    );
    if let Some(first) = dims.first() {
        let digits = first.to_string().len();
        header.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(digits)));
    }
    header
}

/// The `.npy` bytes of `t`, the same bytes `numpy.save` writes for the same array.
pub fn to_bytes(t: &TensorData) -> Vec<u8> {
    let header = header_text(t);
    // Format 1.0 counts the header (padded, with its newline) in a u16; 2.0 in a u32. The
    // padding makes the data start on a multiple of 64, and is never empty (numpy's rule).
    let padded = |prefix: usize| {
        let used = prefix + header.len() + 1;
        let pad = ALIGN - used % ALIGN;
        (pad, header.len() + pad + 1)
    };
    let (version, (pad, header_len)) = match padded(MAGIC.len() + 4) {
        (pad, len) if len < 65_536 => (1u8, (pad, len)),
        _ => (2u8, padded(MAGIC.len() + 6)),
    };
    let used = MAGIC.len() + 2 + if version == 1 { 2 } else { 4 } + header_len;
    let data = t.storage().as_bytes();
    let mut out = Vec::with_capacity(used + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    out.extend(std::iter::repeat_n(b' ', pad));
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

/// The value of `key` in a header dict, as its literal text.
fn field<'a>(header: &'a str, key: &str, source: &str) -> Result<&'a str> {
    let quoted = [format!("'{key}'"), format!("\"{key}\"")];
    let at = quoted
        .iter()
        .find_map(|q| header.find(q.as_str()).map(|i| i + q.len()))
        .ok_or_else(|| format_error(source, format!("the header has no `{key}`: {header}")))?;
    let rest = header[at..].trim_start();
    let rest = rest
        .strip_prefix(':')
        .ok_or_else(|| format_error(source, format!("`{key}` has no value: {header}")))?
        .trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else if let Some(q) = rest.chars().next().filter(|c| *c == '\'' || *c == '"') {
        rest[1..].find(q).map(|i| i + 2)
    } else {
        rest.find([',', '}'])
    };
    let end = end.ok_or_else(|| format_error(source, format!("`{key}` is cut off: {header}")))?;
    Ok(rest[..end].trim())
}

fn parse_shape(text: &str, source: &str) -> Result<Vec<usize>> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format_error(source, format!("the shape `{text}` is not a tuple")))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<usize>()
                .map_err(|_| format_error(source, format!("the shape `{text}` has `{p}`")))
        })
        .collect()
}

/// Reads `.npy` bytes; `source` names them in errors.
pub fn from_bytes_named(bytes: &[u8], source: &str) -> Result<TensorData> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(format_error(
            source,
            "not an .npy file (no \\x93NUMPY magic)",
        ));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => {
            return Err(format_error(
                source,
                format!(
                    "format version {v}.{} is not one of 1.0, 2.0, 3.0",
                    bytes[7]
                ),
            ))
        }
    };
    let header = bytes
        .get(start..start + len)
        .ok_or_else(|| format_error(source, "the header runs past the end of the file"))?;
    let header =
        std::str::from_utf8(header).map_err(|_| format_error(source, "the header is not text"))?;
    let dtype = dtype_of(
        field(header, "descr", source)?.trim_matches(['\'', '"']),
        source,
    )?;
    match field(header, "fortran_order", source)? {
        "False" => {}
        "True" => {
            return Err(format_error(
                source,
                "the array is in Fortran (column-major) order; save `np.ascontiguousarray(a)`",
            ))
        }
        other => {
            return Err(format_error(
                source,
                format!("fortran_order is `{other}`, expected True or False"),
            ))
        }
    }
    let dims = parse_shape(field(header, "shape", source)?, source)?;
    let shape = Shape::new(dims);
    let data = &bytes[start + len..];
    let want = shape.numel() * dtype.size_bytes();
    if data.len() != want {
        return Err(format_error(
            source,
            format!(
                "{dtype} {shape} needs {want} bytes of data, the file has {}",
                data.len()
            ),
        ));
    }
    TensorData::from_storage(shape, Storage::from_bytes(dtype, data))
}

/// Reads `.npy` bytes.
pub fn from_bytes(bytes: &[u8]) -> Result<TensorData> {
    from_bytes_named(bytes, "bytes")
}

/// Reads an `.npy` file.
pub fn read(path: impl AsRef<Path>) -> Result<TensorData> {
    let path = path.as_ref();
    let bytes = super::read_file(path)?;
    from_bytes_named(&bytes, &path.display().to_string())
}

/// Writes `t` as an `.npy` file.
pub fn write(path: impl AsRef<Path>, t: &TensorData) -> Result<()> {
    super::write_file(path.as_ref(), &to_bytes(t))
}
