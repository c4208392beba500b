//! Data distributions with closed forms for the noisy density `p_σ = p * N(0, σ²I)`.
//!
//! Every target here is a Gaussian mixture with possibly singular components
//! ([`GaussianMixture`]); the constructors in [`gaussian`], [`gmm`], [`lowrank_gmm`],
//! [`empirical`] and [`two_point`] build the special cases, and [`random`] draws random mixtures. Non-mixture targets used as
//! independent checks (the uniform law, by quadrature) live in [`uniform`]. Image data sets
//! (generated `C^α` and disk images, a CelebA folder, a `.npy` file) are samples without a
//! closed form and live in [`images`].

pub mod empirical;
pub mod gaussian;
pub mod gmm;
pub mod images;
pub mod lowrank_gmm;
pub mod random;
pub mod spec;
pub mod two_point;
pub mod uniform;

pub use gmm::{Component, GaussianMixture, NoisyComponent};
pub use random::{gmm_from_draws, random_gmm};
pub use spec::TargetSpec;

use crate::error::Result;
use crate::linalg::Mat;
use crate::rng::Rng;

/// A data distribution `p` on `Rᵈ` that can be sampled and has known first two moments.
pub trait Target: Send + Sync {
    /// The dimension d.
    fn dim(&self) -> usize;
    /// `n` independent draws, one per row (n×d), read sequentially from `rng`.
    fn sample(&self, rng: &mut Rng, n: usize) -> Mat;
    /// `E[x]`.
    fn mean(&self) -> Vec<f64>;
    /// `Cov[x] = E[(x − E x)(x − E x)ᵀ]` (d×d).
    fn covariance(&self) -> Mat;
}

/// Exact quantities of the noisy density `p_σ(y) = ∫ p(x) N(y; x, σ²I) dx`.
///
/// Two families, computed by independent code paths so that a theorem check that compares
/// them proves something:
/// * the *density* family — [`log_density`](ClosedForm::log_density), its gradient
///   [`score`](ClosedForm::score) `∇log p_σ` and Hessian [`score_hessian`](ClosedForm::score_hessian)
///   `∇²log p_σ`, by analytic differentiation of `log p_σ`;
/// * the *posterior* family — [`posterior_mean`](ClosedForm::posterior_mean) `E[x|y]` and
///   [`posterior_covariance`](ClosedForm::posterior_covariance) `Cov[x|y]`, from Bayes' rule
///   `p(x|y) ∝ p(x) N(y; x, σ²I)`, never from the score.
pub trait ClosedForm: Target {
    /// `log p_σ(y)`.
    fn log_density(&self, y: &[f64], sigma: f64) -> Result<f64>;
    /// `∇_y log p_σ(y)` (length d).
    fn score(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>>;
    /// `∇²_y log p_σ(y)` (d×d, symmetric).
    fn score_hessian(&self, y: &[f64], sigma: f64) -> Result<Mat>;
    /// `E[x | y]` for `y = x + σg`, `g ~ N(0, I)`.
    fn posterior_mean(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>>;
    /// `Cov[x | y]` (d×d, symmetric PSD).
    fn posterior_covariance(&self, y: &[f64], sigma: f64) -> Result<Mat>;
    /// `E[x | y]` at every row y of `ys` (n×d): by default [`ClosedForm::posterior_mean`] row
    /// by row in parallel; a target with a batched posterior route overrides it (the same
    /// route, its σ-dependent factors formed once for all rows).
    fn posterior_mean_rows(&self, ys: &Mat, sigma: f64) -> Result<Mat> {
        use rayon::prelude::*;
        let rows: Vec<Vec<f64>> = (0..ys.nrows())
            .into_par_iter()
            .map(|i| self.posterior_mean(&crate::linalg::row(ys, i), sigma))
            .collect::<Result<_>>()?;
        Ok(Mat::from_fn(ys.nrows(), ys.ncols(), |i, j| rows[i][j]))
    }
}
