//! Denoisers `f(y; σ) ≈ E[x | y]` for `y = x + σg`: the [`Denoiser`] trait and the
//! architectures the theorems are stated for.
//!
//! * [`bayes`] — the exact posterior mean `f*(y) = E[x | y]` of a closed-form target;
//! * [`linear`] — affine maps `f(y) = W y + b` (σ-independent, exact Jacobian `W`), the
//!   MSE-optimal affine and bias-free denoisers and least-squares fits;
//! * [`local`] — the optimal linear denoiser restricted to each pixel's w×w window;
//! * [`rank_k`] — the MSE-optimal rank-K linear denoiser (Eckart–Young);
//! * [`elementwise`] — soft thresholding and polynomial maps;
//! * [`mlp`] — a one-hidden-layer tanh network with its exact Jacobian;
//! * [`bottleneck`] — encoder–decoder MLPs through an h-wide code (Levine–Weiss Thm 6).
//!
//! Every denoiser validates its input (dimension, finite values, `σ > 0`) and returns a typed
//! error naming the bad value.

pub mod bayes;
pub mod bottleneck;
pub mod divergence;
pub mod elementwise;
pub mod gd;
mod jvp_form;
pub mod linear;
pub mod local;
pub mod mlp;
pub mod polynomial;
pub mod random_feature;
pub mod rank_k;
pub mod training;

pub use bayes::Bayes;
pub use elementwise::{PowerMap, SoftThreshold};
pub use linear::{Affine, OptimalAffine};
pub use mlp::Mlp;
pub use rank_k::RankK;

use crate::error::{ensure_finite, ensure_len, ensure_sigma, Result};
use crate::linalg::{self, Mat, EPS};
use crate::stats::finite_difference::{self, Derivative};
use rayon::prelude::*;

/// A denoiser `f(·; σ): ℝᵈ → ℝᵈ`, possibly depending on the noise level σ.
///
/// The provided [`Denoiser::jacobian`] uses central differences with Richardson's error
/// estimate; architectures with a closed-form Jacobian override it (their error is then a
/// rounding bound).
pub trait Denoiser: Send + Sync {
    /// The dimension d of inputs and outputs.
    fn dim(&self) -> usize;

    /// `f(y; σ)`.
    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>>;

    /// `f` applied to every row of `ys` (n×d), in parallel.
    fn denoise_batch(&self, ys: &Mat, sigma: f64) -> Result<Mat> {
        let rows: Vec<Vec<f64>> = (0..ys.nrows())
            .into_par_iter()
            .map(|i| self.denoise(&linalg::row(ys, i), sigma))
            .collect::<Result<_>>()?;
        let mut out = Mat::zeros(ys.nrows(), self.dim());
        for (i, r) in rows.iter().enumerate() {
            for (j, v) in r.iter().enumerate() {
                out[(i, j)] = *v;
            }
        }
        Ok(out)
    }

    /// `∇f(y; σ)` (`J_ij = ∂f_i/∂y_j`) with an elementwise error bound.
    ///
    /// Default: central differences at `h = ε^{1/3}(‖y‖_∞ + σ)` (the step balancing the
    /// `h²f'''` truncation against the `δf/h` rounding for a function varying on the scale
    /// `‖y‖ + σ`), Richardson's estimate of the truncation error, and the rounding term for
    /// evaluations accurate to `δf = 64·d·ε·(1 + ‖f(y)‖_∞)` — an assumption about the
    /// implementation (a few ulps per accumulated term), stated here because a black-box `f`
    /// cannot prove it.
    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        check_input(self.dim(), y, sigma)?;
        let scale = linalg::max_abs(y) + sigma;
        let h = EPS.cbrt() * scale;
        let f0 = self.denoise(y, sigma)?;
        let f_error = 64.0 * self.dim() as f64 * EPS * (1.0 + linalg::max_abs(&f0));
        finite_difference::jacobian(|p| self.denoise(p, sigma), y, h, f_error)
    }

    /// The divergence `tr ∇f(y; σ) = Σ_i ∂f_i/∂y_i` from [`Denoiser::jacobian`], with the sum of
    /// the diagonal error bounds. Costs d Jacobian-vector products; for large d use the
    /// Hutchinson estimator ([`divergence`]).
    fn divergence(&self, y: &[f64], sigma: f64) -> Result<Derivative<f64>> {
        let j = self.jacobian(y, sigma)?;
        let n = j.value.nrows().min(j.value.ncols());
        Ok(Derivative {
            value: (0..n).map(|i| j.value[(i, i)]).sum(),
            error: (0..n).map(|i| j.error[(i, i)]).sum(),
        })
    }
}

/// Validates a denoiser input: `y` has length `dim`, is finite, and `σ > 0` is finite.
pub(crate) fn check_input(dim: usize, y: &[f64], sigma: f64) -> Result<()> {
    ensure_len("y", y, dim)?;
    ensure_finite("y", y)?;
    ensure_sigma(sigma)
}
