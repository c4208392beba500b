//! The Gaussian target `N(μ, Σ)`, Σ symmetric PSD and possibly singular (a one-component mixture).

use super::GaussianMixture;
use crate::error::{ensure_finite, Error, Result};
use crate::linalg::Mat;

/// `N(mean, covariance)`; validates dimensions, finiteness and PSD-ness (singular allowed).
///
/// Its closed forms are the Wiener filter: `E[x|y] = μ + Σ(Σ+σ²I)⁻¹(y−μ)`,
/// `Cov[x|y] = σ²Σ(Σ+σ²I)⁻¹`, `∇log p_σ(y) = −(Σ+σ²I)⁻¹(y−μ)`.
pub fn gaussian(mean: &[f64], covariance: &Mat) -> Result<GaussianMixture> {
    ensure_finite("Gaussian mean", mean)?;
    if covariance.nrows() != mean.len() || covariance.ncols() != mean.len() {
        return Err(Error::DimensionMismatch {
            what: "Gaussian covariance (rows and columns)".into(),
            expected: mean.len(),
            got: if covariance.nrows() != mean.len() {
                covariance.nrows()
            } else {
                covariance.ncols()
            },
        });
    }
    GaussianMixture::new(&[1.0], &[mean.to_vec()], std::slice::from_ref(covariance))
}
