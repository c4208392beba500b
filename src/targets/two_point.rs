//! The two-point law, uniform on `{−1, +1}` (book Example 3.4).

use super::{empirical::empirical, GaussianMixture};
use crate::error::{ensure_finite, ensure_sigma, Result};

/// The uniform law on `{−1, +1}` in one dimension, as an empirical target.
pub fn two_point() -> GaussianMixture {
    empirical(&[vec![-1.0], vec![1.0]]).expect("two fixed finite points form a valid target")
}

/// Book eq.3.2.36: `E[x | y] = tanh(y/σ²)` for the two-point law — a closed form derived by hand,
/// independent of the mixture engine.
pub(crate) fn posterior_mean_tanh(y: f64, sigma: f64) -> Result<f64> {
    ensure_sigma(sigma)?;
    ensure_finite("query point y", &[y])?;
    Ok((y / (sigma * sigma)).tanh())
}
