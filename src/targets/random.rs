//! Random Gaussian mixtures: the one generator that the theorems' default cases, the benches and
//! the tests (through their proptest strategies) share.

use super::GaussianMixture;
use crate::error::Result;
use crate::linalg::Mat;
use crate::rng::Rng;

/// The mixture with weights `raw/Σraw`, the given means and covariances `F_k F_kᵀ` (each `F_k`
/// d×r_k, r_k = 0 for a point mass): the assembly of every random mixture, whoever drew the
/// numbers (Philox in [`random_gmm`], proptest in the tests' strategies).
pub fn gmm_from_draws(
    raw_weights: &[f64],
    means: &[Vec<f64>],
    factors: &[Mat],
) -> Result<GaussianMixture> {
    let total: f64 = raw_weights.iter().sum();
    let weights: Vec<f64> = raw_weights.iter().map(|w| w / total).collect();
    let covariances: Vec<Mat> = factors.iter().map(|f| f * f.transpose()).collect();
    GaussianMixture::new(&weights, means, &covariances)
}

/// A random GMM from a Philox stream: weights ∝ (0.2 + u), means uniform in [−3, 3]ᵈ,
/// covariance `F Fᵀ` with F d×r of entries 0.7·N(0, 1), r cycling through full (d), singular
/// (d/2) and point mass (0) over the components.
pub fn random_gmm(rng: &mut Rng, d: usize, k: usize) -> Result<GaussianMixture> {
    let raw: Vec<f64> = (0..k).map(|_| 0.2 + rng.uniform()).collect();
    let means: Vec<Vec<f64>> = (0..k)
        .map(|_| (0..d).map(|_| 6.0 * rng.uniform() - 3.0).collect())
        .collect();
    let factors: Vec<Mat> = (0..k)
        .map(|c| {
            let r = match c % 3 {
                0 => d,
                1 => d / 2,
                _ => 0,
            };
            Mat::from_fn(d, r, |_, _| rng.normal() * 0.7)
        })
        .collect();
    gmm_from_draws(&raw, &means, &factors)
}
