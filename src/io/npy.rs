//! NumPy `.npy` files (format versions 1–3, via the `npyz` crate): float arrays written for
//! Python and read back as images or matrices.
//!
//! Written arrays are little-endian (`<f4` or `<f8`), C order (last index fastest), with the
//! given shape, so `numpy.load(path)` returns exactly the array meant. [`read`] accepts `f4` and
//! `f8` in C order (either byte order, converted by `npyz`); Fortran order, any other dtype, a
//! data section shorter than the shape says, or a file that is not `.npy` at all is an error
//! naming the file.

use crate::error::{Error, Result};
use crate::linalg::Mat;
use npyz::{DType, NpyFile, NpyHeader, Order, TypeChar, WriteOptions, WriterBuilder};
use std::io::BufWriter;
use std::path::Path;

/// An array read from a `.npy` file, converted to f64: element `(i₀, …, i_{k−1})` is
/// `data[((i₀·s₁ + i₁)·s₂ + …)·s_{k−1} + i_{k−1}]` for shape `(s₀, …, s_{k−1})` (C order).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The shape `(s₀, …, s_{k−1})`; empty for a 0-d array (one element).
    pub shape: Vec<usize>,
    /// The `s₀ ⋯ s_{k−1}` values in C order.
    pub data: Vec<f64>,
}

/// A format error naming `path`.
fn format_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::InvalidArgument {
        what: format!("npy file {}", path.display()).into(),
        reason: reason.to_string(),
    }
}

/// Writes `data` (C order) as a `.npy` array of `shape` with `T`'s little-endian dtype.
fn write<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[usize], data: &[T]) -> Result<()> {
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &s| acc.checked_mul(s))
        .ok_or_else(|| format_error(path, format!("shape {shape:?} overflows usize")))?;
    if expected != data.len() {
        return Err(Error::DimensionMismatch {
            what: format!("npy data for shape {shape:?} written to {}", path.display()).into(),
            expected,
            got: data.len(),
        });
    }
    let file = std::fs::File::create(path).map_err(|e| Error::file(path, e))?;
    let shape: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
    let mut writer = WriteOptions::new()
        .default_dtype()
        .shape(&shape)
        .writer(BufWriter::new(file))
        .begin_nd()
        .map_err(|e| Error::file(path, e))?;
    writer
        .extend(data.iter().copied())
        .map_err(|e| Error::file(path, e))?;
    writer.finish().map_err(|e| Error::file(path, e))
}

/// Writes `data` as a little-endian f32 (`<f4`) C-order array of `shape`; `data.len()` must be
/// the product of `shape`.
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> Result<()> {
    write(path, shape, data)
}

/// Writes `data` as a little-endian f64 (`<f8`) C-order array of `shape`; `data.len()` must be
/// the product of `shape`.
pub fn write_f64(path: &Path, shape: &[usize], data: &[f64]) -> Result<()> {
    write(path, shape, data)
}

/// Writes a matrix as an f64 array of shape `(rows, cols)`, row `i` of the matrix = row `i` of
/// the array (one sample per row, as everywhere in the crate).
pub fn write_mat(path: &Path, matrix: &Mat) -> Result<()> {
    write_mat_as(path, matrix, |v| v)
}

/// Writes a matrix as a little-endian f32 array of shape `(rows, cols)` (each entry rounded to
/// the nearest f32, as a GPU upload rounds it), rows as in [`write_mat`].
pub(crate) fn write_mat_f32(path: &Path, matrix: &Mat) -> Result<()> {
    write_mat_as(path, matrix, |v| v as f32)
}

/// A matrix in C order with each entry converted by `convert`.
fn write_mat_as<T: npyz::AutoSerialize + Copy>(
    path: &Path,
    matrix: &Mat,
    convert: impl Fn(f64) -> T,
) -> Result<()> {
    let data: Vec<T> = (0..matrix.nrows())
        .flat_map(|i| (0..matrix.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| convert(matrix[(i, j)]))
        .collect();
    write(path, &[matrix.nrows(), matrix.ncols()], &data)
}

/// The header's `'shape': (…)` text when its element count overflows u64 (npyz multiplies the
/// shape unchecked and would panic or wrap), read from the raw header; `None` when it fits or
/// cannot be read (npyz then reports the header itself).
fn overflowing_shape(bytes: &[u8]) -> Option<String> {
    let header = String::from_utf8_lossy(&bytes[..bytes.len().min(65_536)]);
    let start = header.find("'shape'")?;
    let open = start + header[start..].find('(')?;
    let close = open + header[open..].find(')')?;
    let tuple = &header[open..=close];
    let mut count: u64 = 1;
    for part in tuple[1..tuple.len() - 1].split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let extent = part.trim_end_matches('L').parse::<u64>().ok()?;
        match count.checked_mul(extent) {
            Some(c) => count = c,
            None => return Some(tuple.to_string()),
        }
    }
    None
}

/// Reads a C-order `f4` or `f8` `.npy` file into f64.
pub fn read(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, e))?;
    if let Some(shape) = overflowing_shape(&bytes) {
        return Err(format_error(
            path,
            format!("shape {shape} has more elements than fit in 64 bits"),
        ));
    }
    let mut rest: &[u8] = &bytes;
    let header = NpyHeader::from_reader(&mut rest)
        .map_err(|e| format_error(path, format!("not a valid .npy header: {e}")))?;
    if header.order() == Order::Fortran {
        return Err(format_error(
            path,
            "Fortran order (fortran_order: True) is not supported; save a C-contiguous array",
        ));
    }
    let dtype = header.dtype();
    let item_bytes = match &dtype {
        DType::Plain(t) if t.type_char() == TypeChar::Float && matches!(t.size_field(), 4 | 8) => {
            t.size_field()
        }
        other => {
            return Err(format_error(
                path,
                format!(
                    "dtype {} is not supported; need float32 or float64",
                    other.descr()
                ),
            ))
        }
    };
    let count = header.len();
    let needed = count.saturating_mul(item_bytes);
    if (rest.len() as u64) < needed {
        return Err(format_error(
            path,
            format!(
                "truncated: shape {:?} needs {count} values ({needed} bytes), the data section \
                 holds {} bytes",
                header.shape(),
                rest.len()
            ),
        ));
    }
    let shape = header
        .shape()
        .iter()
        .map(|&s| usize::try_from(s))
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| format_error(path, format!("shape {:?} overflows usize", header.shape())))?;
    let file = NpyFile::with_header(header, rest);
    let data: Vec<f64> = if item_bytes == 4 {
        let values: Vec<f32> = file.into_vec().map_err(|e| format_error(path, e))?;
        values.into_iter().map(f64::from).collect()
    } else {
        file.into_vec().map_err(|e| format_error(path, e))?
    };
    Ok(NpyArray { shape, data })
}
