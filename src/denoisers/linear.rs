//! Affine denoisers `f(y) = W y + b` with a fixed (σ-independent) weight and bias.

use super::{check_input, Denoiser};
use crate::error::{ensure_finite, ensure_len, Error, Result};
use crate::linalg::{self, Mat};
use crate::stats::finite_difference::Derivative;

/// `f(y) = W y + b`, W (d×d, not necessarily symmetric), b ∈ ℝᵈ. Jacobian `∇f = W` exactly.
#[derive(Debug, Clone)]
pub struct Affine {
    weight: Mat,
    bias: Vec<f64>,
}

impl Affine {
    /// Validates that W is square and finite and `b` has matching length and is finite.
    pub fn new(weight: Mat, bias: Vec<f64>) -> Result<Self> {
        if weight.nrows() != weight.ncols() {
            return Err(Error::DimensionMismatch {
                what: "affine weight (columns)".into(),
                expected: weight.nrows(),
                got: weight.ncols(),
            });
        }
        linalg::ensure_finite_mat("affine weight", &weight)?;
        ensure_len("affine bias", &bias, weight.nrows())?;
        ensure_finite("affine bias", &bias)?;
        Ok(Self { weight, bias })
    }

    /// The bias-free map `f(y) = W y`.
    pub fn bias_free(weight: Mat) -> Result<Self> {
        let d = weight.nrows();
        Self::new(weight, vec![0.0; d])
    }

    /// W.
    pub fn weight(&self) -> &Mat {
        &self.weight
    }

    /// b.
    pub fn bias(&self) -> &[f64] {
        &self.bias
    }
}

impl Denoiser for Affine {
    fn dim(&self) -> usize {
        self.bias.len()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        let d = self.dim();
        Ok((0..d)
            .map(|i| self.bias[i] + (0..d).map(|j| self.weight[(i, j)] * y[j]).sum::<f64>())
            .collect())
    }

    /// `∇f = W`, exact (error 0: the stored weights are returned).
    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        check_input(self.dim(), y, sigma)?;
        let d = self.dim();
        Ok(Derivative {
            value: self.weight.clone(),
            error: Mat::zeros(d, d),
        })
    }
}
