//! One error type for the whole library, grouped by category, with a [`Result`] alias.
//!
//! Every message names the offending value, so a researcher scripting the crate from Python
//! sees *which* input was wrong, not just that something was.

use std::borrow::Cow;
use thiserror::Error;

/// Everything the library can refuse or fail at. Nothing in the crate panics on user input:
/// bad input becomes one of these variants.
/// Names are `Cow<'static, str>`: a static name costs nothing, a composed one ("component 3")
/// is owned. I/O and JSON failures keep the underlying error as their `source()`.
#[derive(Debug, Error)]
pub enum Error {
    // ---- input validation -------------------------------------------------------------------
    /// Two inputs that must agree in size do not, e.g. a point of length 3 given to a 2-D target.
    #[error("dimension mismatch in {what}: expected {expected}, got {got}")]
    DimensionMismatch {
        /// Which input had the wrong size.
        what: Cow<'static, str>,
        /// The size that was required.
        expected: usize,
        /// The size that was given.
        got: usize,
    },
    /// A noise level σ that is zero, negative, NaN or infinite. Every formula here needs σ > 0.
    #[error("noise level sigma must be finite and > 0, got {0}")]
    InvalidSigma(f64),
    /// A noise level whose square is not a normal f64 (`σ² < f64::MIN_POSITIVE` underflows,
    /// `σ² = ∞` overflows): every closed form divides by or adds σ², so no answer would be right.
    #[error(
        "noise level sigma = {0:e} is outside the range where sigma² is a normal f64: \
         need {min:e} ≤ sigma ≤ {max:e}",
        min = SIGMA_RANGE.0,
        max = SIGMA_RANGE.1
    )]
    SigmaOutOfRange(f64),
    /// A run folder another process is writing (it holds `<folder>/.lock`).
    #[error(
        "run folder {} is in use by another run (it holds {}/.lock); wait for it to finish \
         or choose another --out",
        path.display(),
        path.display()
    )]
    FolderInUse {
        /// The folder.
        path: std::path::PathBuf,
    },
    /// A run whose estimated memory exceeds the limit (the machine's memory or `--max-memory`).
    #[error(
        "{what} needs at least {needed_gib:.1} GiB of memory, above the limit of {limit_gib:.1} \
         GiB; shrink the run, or raise the limit with --max-memory <GiB> if the machine has it"
    )]
    TooLarge {
        /// What needs the memory (the run and its sizes).
        what: Cow<'static, str>,
        /// The estimate (a lower bound) in GiB; ∞ when it overflows.
        needed_gib: f64,
        /// The limit in GiB.
        limit_gib: f64,
    },
    /// A NaN or ±∞ inside an input vector or matrix.
    #[error("non-finite value {value} in {what} at index {index}")]
    NonFinite {
        /// Which input held it.
        what: Cow<'static, str>,
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
        what: Cow<'static, str>,
        /// The asymmetry or the negative eigenvalue found.
        reason: String,
    },
    /// Any other argument outside its documented range (a count of zero, an empty set, ...).
    #[error("invalid argument {what}: {reason}")]
    InvalidArgument {
        /// The argument's name.
        what: Cow<'static, str>,
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
        /// The operating system's (or the decoder's) message.
        reason: String,
        /// The operating system's error, when there is one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// A JSON file did not have the documented format.
    #[error("bad JSON in {path}: {reason}")]
    Json {
        /// The path (or `<stdout>`).
        path: String,
        /// What serde_json reported.
        reason: String,
        /// serde_json's error.
        #[source]
        source: Option<serde_json::Error>,
    },
}

/// A copy for every caller of a cached result (the shared GPU context's error). The copy of an
/// I/O error's source has the same kind and message (`std::io::Error` is not `Clone`); a JSON
/// error's source is dropped from the copy (its message stays in `reason`).
impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Self::DimensionMismatch {
                what,
                expected,
                got,
            } => Self::DimensionMismatch {
                what: what.clone(),
                expected: *expected,
                got: *got,
            },
            Self::InvalidSigma(sigma) => Self::InvalidSigma(*sigma),
            Self::SigmaOutOfRange(sigma) => Self::SigmaOutOfRange(*sigma),
            Self::FolderInUse { path } => Self::FolderInUse { path: path.clone() },
            Self::TooLarge {
                what,
                needed_gib,
                limit_gib,
            } => Self::TooLarge {
                what: what.clone(),
                needed_gib: *needed_gib,
                limit_gib: *limit_gib,
            },
            Self::NonFinite { what, index, value } => Self::NonFinite {
                what: what.clone(),
                index: *index,
                value: *value,
            },
            Self::InvalidWeights { reason } => Self::InvalidWeights {
                reason: reason.clone(),
            },
            Self::NotPsd { what, reason } => Self::NotPsd {
                what: what.clone(),
                reason: reason.clone(),
            },
            Self::InvalidArgument { what, reason } => Self::InvalidArgument {
                what: what.clone(),
                reason: reason.clone(),
            },
            Self::Numerical(m) => Self::Numerical(m.clone()),
            Self::NoAdapter { backend } => Self::NoAdapter {
                backend: backend.clone(),
            },
            Self::Gpu(m) => Self::Gpu(m.clone()),
            Self::GpuLimit(m) => Self::GpuLimit(m.clone()),
            Self::Io {
                path,
                reason,
                source,
            } => Self::Io {
                path: path.clone(),
                reason: reason.clone(),
                source: source
                    .as_ref()
                    .map(|e| std::io::Error::new(e.kind(), e.to_string())),
            },
            Self::Json { path, reason, .. } => Self::Json {
                path: path.clone(),
                reason: reason.clone(),
                source: None,
            },
        }
    }
}

impl Error {
    /// An I/O failure on `path`, keeping the operating system's error as the source.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            reason: source.to_string(),
            source: Some(source),
        }
    }

    /// A file at `path` that could not be used (a corrupt image, a malformed `.npy`, an
    /// encoder's failure) for `reason`, with no operating-system error behind it.
    pub fn file(path: impl AsRef<std::path::Path>, reason: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            reason: reason.to_string(),
            source: None,
        }
    }

    /// JSON at `path` (or `<stdout>`) that serde_json refused, keeping its error as the source.
    pub fn json(path: impl AsRef<std::path::Path>, source: serde_json::Error) -> Self {
        Self::Json {
            path: path.as_ref().display().to_string(),
            reason: source.to_string(),
            source: Some(source),
        }
    }
}

/// `Result` with the crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns an error naming the first non-finite entry of `values`, if any.
pub(crate) fn ensure_finite(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NonFinite {
            what: what.to_string().into(),
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}

/// Returns an error unless `values.len() == expected`.
pub(crate) fn ensure_len(what: &str, values: &[f64], expected: usize) -> Result<()> {
    if values.len() == expected {
        Ok(())
    } else {
        Err(Error::DimensionMismatch {
            what: what.to_string().into(),
            expected,
            got: values.len(),
        })
    }
}

/// Returns an error naming `what` unless `value` is finite and strictly positive (a decay
/// exponent, a regularity α, a signal scale).
pub(crate) fn ensure_positive_finite(what: &str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            what: what.to_string().into(),
            reason: format!("must be finite and > 0, got {value}"),
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

/// The σ range `[√MIN_POSITIVE, √MAX] ≈ [1.5e-154, 1.3e154]` over which σ² is a normal f64.
pub const SIGMA_RANGE: (f64, f64) = (1.491_668_146_240_041_3e-154, 1.340_780_792_994_259_6e154);

/// [`ensure_sigma`], and σ² a normal f64 (inside [`SIGMA_RANGE`]): the check of every closed
/// form of a target, which computes with σ² directly.
pub(crate) fn ensure_sigma_squared(sigma: f64) -> Result<()> {
    ensure_sigma(sigma)?;
    if (SIGMA_RANGE.0..=SIGMA_RANGE.1).contains(&sigma) {
        Ok(())
    } else {
        Err(Error::SigmaOutOfRange(sigma))
    }
}

#[cfg(test)]
mod source_tests {
    use super::Error;
    use std::error::Error as _;

    /// An I/O failure keeps the operating system's error as its source (kind intact) and names
    /// the path; a JSON failure keeps serde_json's; a file problem without an OS error has none.
    #[test]
    fn io_and_json_errors_keep_their_source() {
        let missing = std::fs::read("/no/such/file").unwrap_err();
        let e = Error::io("/no/such/file", missing);
        assert!(e.to_string().contains("/no/such/file"));
        let source = e.source().expect("an io source");
        let io = source
            .downcast_ref::<std::io::Error>()
            .expect("an io::Error");
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        let bad = serde_json::from_str::<f64>("{").unwrap_err();
        let e = Error::json("x.json", bad);
        assert!(e.source().unwrap().is::<serde_json::Error>());
        assert!(Error::file("img.png", "cannot decode").source().is_none());
        let missing = std::fs::read("/no/such/file").unwrap_err();
        let copy = Error::io("/no/such/file", missing).clone();
        let kind = copy
            .source()
            .unwrap()
            .downcast_ref::<std::io::Error>()
            .unwrap()
            .kind();
        assert_eq!(kind, std::io::ErrorKind::NotFound);
    }
}
