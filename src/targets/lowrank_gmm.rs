//! Low-rank Gaussian mixtures `Σ_k w_k N(μ_k, F_k F_kᵀ)` with tall factors `F_k` (d×r_k):
//! the "union of subspaces" model of low-dimensional data (book ch.3, §3.2).

use super::GaussianMixture;
use crate::error::{Error, Result};
use crate::linalg::{Mat, SpectralFactor};

/// A mixture whose k-th covariance is `F_k F_kᵀ`, `F_k` of shape d×r_k with r_k ≤ d.
pub fn lowrank_gmm(
    weights: &[f64],
    means: &[Vec<f64>],
    factors: &[Mat],
) -> Result<GaussianMixture> {
    if factors.len() != means.len() {
        return Err(Error::DimensionMismatch {
            what: "number of low-rank factors (one per mean)".into(),
            expected: means.len(),
            got: factors.len(),
        });
    }
    let mut spectral = Vec::with_capacity(factors.len());
    for (k, f) in factors.iter().enumerate() {
        let d = means[k].len();
        if f.nrows() != d {
            return Err(Error::DimensionMismatch {
                what: format!("rows of low-rank factor {k}").into(),
                expected: d,
                got: f.nrows(),
            });
        }
        spectral.push(SpectralFactor::from_low_rank(
            &format!("low-rank factor {k}"),
            f,
        )?);
    }
    GaussianMixture::from_factors(weights, means, spectral)
}
