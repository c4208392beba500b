//! One error type for the whole library, grouped by category, with a [`Result`] alias.
//!
//! Every message names the offending value, so a researcher scripting the crate from Python
//! sees *which* input was wrong, not just that something was.

use thiserror::Error;

/// Everything the library can refuse or fail at. Nothing in the crate panics on user input:
/// bad input becomes one of these variants.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Error {
    // ---- input validation -------------------------------------------------------------------
    /// Two inputs that must agree in size do not, e.g. a point of length 3 given to a 2-D target.
    #[error("dimension mismatch in {what}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// Which input had the wrong size.
        what: String,
        /// The size that was required.
        expected: usize,
        /// The size that was given.
        got: usize,
    },
    /// A noise level σ that is zero, negative, NaN or infinite. Every formula here needs σ > 0.
    #[error("noise level sigma must be finite and > 0, got {0}")]
    InvalidSigma(f64),
    /// A NaN or ±∞ inside an input vector or matrix.
    #[error("non-finite value {value} in {what} at index {index}")]
    NonFinite {
        /// Which input held it.
        what: String,
        /// Flat index of the first non-finite entry.
        index: usize,
        /// The entry itself (NaN or ±inf).
        value: f64,
    },
    /// Mixture weights that are negative or do not sum to one (within `1e-9`).
    #[error("invalid mixture weights: {reason}")]
    InvalidWeights {
        /// What is wrong, with the offending value.
        reason: String,
    },
    /// A covariance matrix that is not symmetric positive semi-definite.
    #[error("covariance {what} is not symmetric PSD: {reason}")]
    NotPsd {
        /// Which covariance (e.g. "component 2").
        what: String,
        /// The asymmetry or the negative eigenvalue found.
        reason: String,
    },
    /// Any other argument outside its documented range (a count of zero, an empty set, ...).
    #[error("invalid argument {what}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        what: String,
        /// Why it was refused, with its value.
        reason: String,
    },
    /// A numerical routine (eigen-decomposition, Cholesky) failed on an input it accepted.
    #[error("numerical failure in {0}")]
    Numerical(String),

    // ---- GPU ---------------------------------------------------------------------------------
    /// wgpu found no adapter at all.
    #[error(
        "no wgpu adapter found (WGPU_BACKEND={backend}). Install a GPU driver, or a software one: \
         `apt-get install -y mesa-vulkan-drivers` (Vulkan lavapipe) or Mesa GL/EGL \
         (`apt-get install -y libegl1 libgl1-mesa-dri`, then WGPU_BACKEND=gl)"
    )]
    NoAdapter {
        /// The value of WGPU_BACKEND seen, or "unset".
        backend: String,
    },
    /// The device could not be created, a shader failed to compile, a dispatch was invalid,
    /// or a readback failed.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// A problem too large for one binding that the kernel cannot tile.
    #[error("GPU limit exceeded: {0}")]
    GpuLimit(String),

    // ---- I/O ---------------------------------------------------------------------------------
    /// A file could not be read or written; the message names the path.
    #[error("I/O error on {path}: {reason}")]
    Io {
        /// The path involved.
        path: String,
        /// The operating system's message.
        reason: String,
    },
    /// A JSON file did not have the documented format.
    #[error("bad JSON in {path}: {reason}")]
    Json {
        /// The path (or `<stdin>`).
        path: String,
        /// What serde_json reported.
        reason: String,
    },
}

/// `Result` with the crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns an error naming the first non-finite entry of `values`, if any.
pub fn ensure_finite(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            what: what.to_string(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Returns an error unless `values.len() == expected`.
pub fn ensure_len(what: &str, values: &[f64], expected: usize) -> Result<()> {
    if values.len() == expected {
        Ok(())
    } else {
        Err(Error::DimensionMismatch {
            what: what.to_string(),
            expected,
            got: values.len(),
        })
    }
}

/// Returns an error unless σ is finite and strictly positive.
pub fn ensure_sigma(sigma: f64) -> Result<()> {
    if sigma.is_finite() && sigma > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidSigma(sigma))
    }
}
