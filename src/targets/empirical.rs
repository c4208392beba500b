//! The empirical law `(1/N) Σ_i δ_{x_i}` of a finite point set: a mixture of point masses.
//! Its Bayes denoiser is the softmax-weighted average of the points (book eq.3.3.3).

use super::GaussianMixture;
use crate::error::{Error, Result};
use crate::linalg::SpectralFactor;

/// The uniform law on `points` (each of the same length d ≥ 1; at least one point).
pub fn empirical(points: &[Vec<f64>]) -> Result<GaussianMixture> {
    if points.is_empty() {
        return Err(Error::InvalidArgument {
            what: "points".into(),
            reason: "an empirical target needs at least one point, got 0".into(),
        });
    }
    let n = points.len();
    let d = points[0].len();
    if let Some((i, p)) = points.iter().enumerate().find(|(_, p)| p.len() != d) {
        return Err(Error::DimensionMismatch {
            what: format!("length of point {i} (every point must have the length of point 0)")
                .into(),
            expected: d,
            got: p.len(),
        });
    }
    if let Some(i) = points.iter().position(|p| p.iter().any(|v| !v.is_finite())) {
        return Err(Error::InvalidArgument {
            what: format!("point {i}").into(),
            reason: format!("must be finite, got {:?}", points[i]),
        });
    }
    let weights = vec![1.0 / n as f64; n];
    let factors = (0..n)
        .map(|_| SpectralFactor {
            basis: crate::linalg::Mat::zeros(d, 0),
            eigenvalues: vec![],
        })
        .collect();
    GaussianMixture::from_factors(&weights, points, factors)
}
