//! JSON description of a target, the format of `diffusion-theorems eval --target T.json`:
//!
//! ```json
//! {"kind": "gmm", "weights": [0.5, 0.5], "means": [[0, 0], [2, 1]],
//!  "covariances": [[[1, 0], [0, 1]], [[0.5, 0.1], [0.1, 0.3]]]}
//! {"kind": "gaussian", "mean": [0, 0], "covariance": [[1, 0], [0, 0]]}
//! {"kind": "empirical", "points": [[0, 1], [1, 0], [2, 2]]}
//! {"kind": "lowrank_gmm", "weights": [1], "means": [[0, 0, 0]], "factors": [[[1], [0], [1]]]}
//! {"kind": "two_point"}
//! ```
//! Matrices are lists of rows. A Gaussian's mean and covariance may instead name `.npy` files
//! (shape (d,) and (d, d), float32 or float64), relative to the target file when read with
//! [`TargetSpec::read`]: `{"kind": "gaussian", "mean": "mean.npy", "covariance": "cov.npy"}` —
//! the form for image-scale d, where a JSON covariance would be gigabytes.

use super::gaussian::DenseGaussian;
use super::{empirical, gaussian, lowrank_gmm, two_point, GaussianMixture};
use crate::error::{Error, Result};
use crate::linalg::Mat;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// An array written inline in the JSON, or the path of a `.npy` file holding it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ArraySource<T> {
    /// A `.npy` file (relative paths are taken from the target file's folder by
    /// [`TargetSpec::read`]).
    File(PathBuf),
    /// The values themselves (a list, or a list of rows).
    Inline(T),
}

impl ArraySource<Vec<f64>> {
    /// The vector, reading its file when it names one (which must hold a 1-D array).
    fn vector(&self, what: &str) -> Result<Vec<f64>> {
        match self {
            ArraySource::Inline(v) => Ok(v.clone()),
            ArraySource::File(path) => {
                let array = crate::io::npy::read(path)?;
                if array.shape.len() != 1 {
                    return Err(Error::InvalidArgument {
                        what: format!("{what} {}", path.display()).into(),
                        reason: format!("need a 1-D array (d,), got shape {:?}", array.shape),
                    });
                }
                Ok(array.data)
            }
        }
    }
}

impl ArraySource<Vec<Vec<f64>>> {
    /// The matrix, reading its file when it names one (which must hold a 2-D array).
    fn matrix(&self, what: &str) -> Result<Mat> {
        self.matrix_or_transpose(what, false)
    }

    /// A covariance: as [`ArraySource::matrix`], except that a file is read as its transpose
    /// (its C-order data taken column by column, a sequential copy instead of a strided one) —
    /// the same matrix for the symmetric covariance the target's validation then insists on,
    /// and an asymmetric file is refused naming the same pair of entries either way.
    fn covariance(&self, what: &str) -> Result<Mat> {
        self.matrix_or_transpose(what, true)
    }

    /// The matrix, or with `transpose` (files only) its transpose.
    fn matrix_or_transpose(&self, what: &str, transpose: bool) -> Result<Mat> {
        match self {
            ArraySource::Inline(rows) => matrix_from_rows(what, rows),
            ArraySource::File(path) => {
                let array = crate::io::npy::read(path)?;
                let &[rows, cols] = array.shape.as_slice() else {
                    return Err(Error::InvalidArgument {
                        what: format!("{what} {}", path.display()).into(),
                        reason: format!("need a 2-D array, got shape {:?}", array.shape),
                    });
                };
                Ok(if transpose {
                    Mat::from_fn(cols, rows, |i, j| array.data[j * cols + i])
                } else {
                    Mat::from_fn(rows, cols, |i, j| array.data[i * cols + j])
                })
            }
        }
    }
}

impl<T> ArraySource<T> {
    /// The same source with a relative file path taken from `folder`.
    fn relative_to(self, folder: &Path) -> Self {
        match self {
            ArraySource::File(path) if path.is_relative() => ArraySource::File(folder.join(path)),
            other => other,
        }
    }
}

/// A target as written in JSON (see the module documentation for the format).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetSpec {
    /// `N(mean, covariance)`.
    Gaussian {
        /// Mean vector (inline, or a `.npy` file).
        mean: ArraySource<Vec<f64>>,
        /// Covariance, list of rows (inline, or a `.npy` file).
        covariance: ArraySource<Vec<Vec<f64>>>,
    },
    /// `Σ_k w_k N(μ_k, Σ_k)`.
    Gmm {
        /// Mixture weights (≥ 0, sum 1).
        weights: Vec<f64>,
        /// One mean per component.
        means: Vec<Vec<f64>>,
        /// One covariance (list of rows) per component.
        covariances: Vec<Vec<Vec<f64>>>,
    },
    /// `Σ_k w_k N(μ_k, F_k F_kᵀ)`.
    LowrankGmm {
        /// Mixture weights.
        weights: Vec<f64>,
        /// One mean per component.
        means: Vec<Vec<f64>>,
        /// One d×r factor (list of rows) per component.
        factors: Vec<Vec<Vec<f64>>>,
    },
    /// Uniform on a finite point set.
    Empirical {
        /// The points.
        points: Vec<Vec<f64>>,
    },
    /// Uniform on {−1, +1}.
    TwoPoint,
}

/// A matrix from a list of rows; all rows must have the same length.
pub(crate) fn matrix_from_rows(what: &str, rows: &[Vec<f64>]) -> Result<Mat> {
    let ncols = rows.first().map_or(0, Vec::len);
    if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != ncols) {
        return Err(Error::DimensionMismatch {
            what: format!("{what}: row {i}").into(),
            expected: ncols,
            got: r.len(),
        });
    }
    Ok(Mat::from_fn(rows.len(), ncols, |i, j| rows[i][j]))
}

impl TargetSpec {
    /// Reads a target file (JSON), taking the relative `.npy` paths in it from its folder.
    pub fn read(path: &Path) -> Result<Self> {
        let spec: TargetSpec = crate::io::read_json(path)?;
        let folder = path.parent().unwrap_or(Path::new(""));
        Ok(match spec {
            TargetSpec::Gaussian { mean, covariance } => TargetSpec::Gaussian {
                mean: mean.relative_to(folder),
                covariance: covariance.relative_to(folder),
            },
            other => other,
        })
    }

    /// Builds and validates the target.
    pub fn build(&self) -> Result<GaussianMixture> {
        match self {
            TargetSpec::Gaussian { mean, covariance } => gaussian::gaussian(
                &mean.vector("Gaussian mean")?,
                &covariance.matrix("covariance")?,
            ),
            TargetSpec::Gmm {
                weights,
                means,
                covariances,
            } => {
                let covs = covariances
                    .iter()
                    .enumerate()
                    .map(|(k, c)| matrix_from_rows(&format!("covariance {k}"), c))
                    .collect::<Result<Vec<_>>>()?;
                GaussianMixture::new(weights, means, &covs)
            }
            TargetSpec::LowrankGmm {
                weights,
                means,
                factors,
            } => {
                let fs = factors
                    .iter()
                    .enumerate()
                    .map(|(k, f)| matrix_from_rows(&format!("factor {k}"), f))
                    .collect::<Result<Vec<_>>>()?;
                lowrank_gmm::lowrank_gmm(weights, means, &fs)
            }
            TargetSpec::Empirical { points } => empirical::empirical(points),
            TargetSpec::TwoPoint => Ok(two_point::two_point()),
        }
    }

    /// For a `gaussian` target, the dense form whose closed forms go through one Cholesky
    /// factor per σ ([`DenseGaussian`]); `None` for the other kinds.
    pub fn dense_gaussian(&self) -> Option<Result<DenseGaussian>> {
        match self {
            TargetSpec::Gaussian { mean, covariance } => Some((|| {
                DenseGaussian::new(
                    mean.vector("Gaussian mean")?,
                    covariance.covariance("covariance")?,
                )
            })()),
            _ => None,
        }
    }
}
