//! The Bayes-optimal (MMSE) denoiser `f*(y; σ) = E[x | y]` of a closed-form target.

use super::{check_input, Denoiser};
use crate::error::Result;
use crate::linalg::Mat;
use crate::targets::ClosedForm;

/// `f*(y; σ) = E[x | y]`, `y = x + σg`, computed by Bayes' rule
/// ([`ClosedForm::posterior_mean`]); its Jacobian is the provided central-difference one, so
/// no check that uses it leans on Miyasawa's relation `∇f* = Cov[x|y]/σ²`.
#[derive(Debug, Clone)]
pub struct Bayes<T> {
    target: T,
}

impl<T: ClosedForm> Bayes<T> {
    /// The Bayes denoiser of `target`.
    pub fn new(target: T) -> Self {
        Self { target }
    }

    /// The target whose posterior mean this is.
    pub fn target(&self) -> &T {
        &self.target
    }
}

impl<T: ClosedForm> Denoiser for Bayes<T> {
    fn dim(&self) -> usize {
        self.target.dim()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        self.target.posterior_mean(y, sigma)
    }

    /// [`ClosedForm::posterior_mean_rows`]: for a mixture, its batched posterior route.
    fn denoise_batch(&self, ys: &Mat, sigma: f64) -> Result<Mat> {
        crate::error::ensure_sigma(sigma)?;
        if ys.ncols() != self.dim() {
            return Err(crate::error::Error::DimensionMismatch {
                what: "denoiser inputs (columns)".into(),
                expected: self.dim(),
                got: ys.ncols(),
            });
        }
        crate::linalg::ensure_finite_mat("denoiser inputs", ys)?;
        self.target.posterior_mean_rows(ys, sigma)
    }
}
