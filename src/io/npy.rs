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
    let (shape, item_bytes) = checked_header(path, &header, rest.len() as u64)?;
    let file = NpyFile::with_header(header, rest);
    let data: Vec<f64> = if item_bytes == 4 {
        let values: Vec<f32> = file.into_vec().map_err(|e| format_error(path, e))?;
        values.into_iter().map(f64::from).collect()
    } else {
        file.into_vec().map_err(|e| format_error(path, e))?
    };
    Ok(NpyArray { shape, data })
}

/// Checks a parsed header against what the crate reads — C order, float32 or float64, a data
/// section of `available` bytes holding every value — and returns the shape and the item size.
fn checked_header(path: &Path, header: &NpyHeader, available: u64) -> Result<(Vec<usize>, u64)> {
    if header.order() == Order::Fortran {
        return Err(format_error(
            path,
            "Fortran order (fortran_order: True) is not supported; save a C-contiguous array",
        ));
    }
    let item_bytes = match &header.dtype() {
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
    if available < needed {
        return Err(format_error(
            path,
            format!(
                "truncated: shape {:?} needs {count} values ({needed} bytes), the data section \
                 holds {available} bytes",
                header.shape(),
            ),
        ));
    }
    let shape = header
        .shape()
        .iter()
        .map(|&s| usize::try_from(s))
        .collect::<std::result::Result<Vec<usize>, _>>()
        .map_err(|_| format_error(path, format!("shape {:?} overflows usize", header.shape())))?;
    Ok((shape, item_bytes))
}

/// The values of a file being streamed, in their stored width.
enum Values {
    F32(npyz::NpyReader<f32, std::io::BufReader<std::fs::File>>),
    F64(npyz::NpyReader<f64, std::io::BufReader<std::fs::File>>),
}

/// A 2-D `.npy` array (n, d) read a block of rows at a time ([`RowReader::next_rows`]), so a
/// large input is never held whole; the checks are those of [`read`], the truncation check
/// against the file's size before any row is read.
pub struct RowReader {
    path: std::path::PathBuf,
    rows: usize,
    cols: usize,
    done: usize,
    values: Values,
}

impl RowReader {
    /// Opens `path` and checks its header (2-D, C order, f4 or f8, not truncated).
    pub fn open(path: &Path) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::file(path, e))?;
        let size = file.metadata().map_err(|e| Error::file(path, e))?.len();
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        // the overflow check reads the raw header, at most 64 KiB of it
        let head = {
            use std::io::BufRead;
            reader
                .fill_buf()
                .map_err(|e| Error::file(path, e))?
                .to_vec()
        };
        if let Some(shape) = overflowing_shape(&head) {
            return Err(format_error(
                path,
                format!("shape {shape} has more elements than fit in 64 bits"),
            ));
        }
        let header = NpyHeader::from_reader(&mut reader)
            .map_err(|e| format_error(path, format!("not a valid .npy header: {e}")))?;
        let header_bytes = {
            use std::io::Seek;
            reader.stream_position().map_err(|e| Error::file(path, e))?
        };
        let (shape, item_bytes) = checked_header(path, &header, size.saturating_sub(header_bytes))?;
        let &[rows, cols] = shape.as_slice() else {
            return Err(format_error(
                path,
                format!("need a 2-D array (n, d), got shape {shape:?}"),
            ));
        };
        let file = NpyFile::with_header(header, reader);
        let values = if item_bytes == 4 {
            Values::F32(file.data::<f32>().map_err(|e| format_error(path, e))?)
        } else {
            Values::F64(file.data::<f64>().map_err(|e| format_error(path, e))?)
        };
        Ok(Self {
            path: path.to_path_buf(),
            rows,
            cols,
            done: 0,
            values,
        })
    }

    /// The array's shape (n, d).
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The next at most `max_rows` rows (row-major, as f64), or `None` after the last.
    pub fn next_rows(&mut self, max_rows: usize) -> Result<Option<Vec<f64>>> {
        let take = max_rows.max(1).min(self.rows - self.done);
        if take == 0 {
            return Ok(None);
        }
        let count = take * self.cols;
        let read: std::io::Result<Vec<f64>> = match &mut self.values {
            Values::F32(v) => v.by_ref().take(count).map(|x| x.map(f64::from)).collect(),
            Values::F64(v) => v.by_ref().take(count).collect(),
        };
        let block = read.map_err(|e| Error::file(&self.path, e))?;
        if block.len() != count {
            return Err(format_error(
                &self.path,
                format!("ended after row {} of {}", self.done, self.rows),
            ));
        }
        self.done += take;
        Ok(Some(block))
    }
}

/// An f64 `.npy` array of a known shape written a block at a time ([`RowWriter::write`]) to
/// `path.tmp` and renamed to `path` by [`RowWriter::finish`] once every value is in, so an
/// interrupted or failed run never leaves a truncated array under the final name (a writer
/// dropped unfinished removes its `.tmp`).
pub struct RowWriter {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    expected: usize,
    written: usize,
    /// `None` once finished.
    writer: Option<npyz::NpyWriter<f64, BufWriter<std::fs::File>>>,
}

impl Drop for RowWriter {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            // unfinished: the partial file is not an answer (best effort; nothing to report to)
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl RowWriter {
    /// Starts the file for an array of `shape`.
    pub fn create(path: &Path, shape: &[usize]) -> Result<Self> {
        let expected = shape
            .iter()
            .try_fold(1usize, |acc, &s| acc.checked_mul(s))
            .ok_or_else(|| format_error(path, format!("shape {shape:?} overflows usize")))?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = std::path::PathBuf::from(tmp);
        let file = std::fs::File::create(&tmp).map_err(|e| Error::file(&tmp, e))?;
        let dims: Vec<u64> = shape.iter().map(|&s| s as u64).collect();
        let writer = WriteOptions::new()
            .default_dtype()
            .shape(&dims)
            .writer(BufWriter::new(file))
            .begin_nd()
            .map_err(|e| Error::file(&tmp, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            tmp,
            expected,
            written: 0,
            writer: Some(writer),
        })
    }

    /// Appends values in C order.
    pub fn write(&mut self, values: &[f64]) -> Result<()> {
        if self.written + values.len() > self.expected {
            return Err(Error::DimensionMismatch {
                what: format!("values written to {}", self.path.display()).into(),
                expected: self.expected,
                got: self.written + values.len(),
            });
        }
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| format_error(&self.path, "written to after it was finished"))?;
        writer
            .extend(values.iter().copied())
            .map_err(|e| Error::file(&self.tmp, e))?;
        self.written += values.len();
        Ok(())
    }

    /// Checks every value was written, closes the file and renames it into place.
    pub fn finish(mut self) -> Result<()> {
        if self.written != self.expected {
            return Err(Error::DimensionMismatch {
                what: format!("values written to {}", self.path.display()).into(),
                expected: self.expected,
                got: self.written,
            });
        }
        let writer = self
            .writer
            .take()
            .ok_or_else(|| format_error(&self.path, "finished twice"))?;
        writer.finish().map_err(|e| Error::file(&self.tmp, e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::file(&self.path, e))
    }
}
