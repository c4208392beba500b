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
//! Matrices are lists of rows.

use super::{empirical, gaussian, lowrank_gmm, two_point, GaussianMixture};
use crate::error::{Error, Result};
use crate::linalg::Mat;
use serde::{Deserialize, Serialize};

/// A target as written in JSON (see the module documentation for the format).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TargetSpec {
    /// `N(mean, covariance)`.
    Gaussian {
        /// Mean vector.
        mean: Vec<f64>,
        /// Covariance, list of rows.
        covariance: Vec<Vec<f64>>,
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
    /// Builds and validates the target.
    pub fn build(&self) -> Result<GaussianMixture> {
        match self {
            TargetSpec::Gaussian { mean, covariance } => {
                gaussian::gaussian(mean, &matrix_from_rows("covariance", covariance)?)
            }
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
}
