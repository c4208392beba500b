//! Non-linear denoisers built from coordinatewise operations: soft thresholding (weakly
//! differentiable) and polynomial maps in coordinatewise powers.

use super::{check_input, Denoiser};
use crate::error::{ensure_finite, ensure_len, Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::stats::finite_difference::Derivative;

/// Soft thresholding `f(y)_i = sign(y_i)·max(|y_i| − τ, 0)` with a fixed level τ ≥ 0.
///
/// `f` is Lipschitz, hence weakly differentiable, with `∂f_i/∂y_j = δ_ij·1{|y_i| > τ}` almost
/// everywhere — the form SURE needs (Stein's lemma holds for weakly differentiable f).
#[derive(Debug, Clone, Copy)]
pub struct SoftThreshold {
    dim: usize,
    threshold: f64,
}

impl SoftThreshold {
    /// Validates `τ ≥ 0` finite.
    pub fn new(dim: usize, threshold: f64) -> Result<Self> {
        if !(threshold.is_finite() && threshold >= 0.0) {
            return Err(Error::InvalidArgument {
                what: "soft threshold".into(),
                reason: format!("must be finite and ≥ 0, got {threshold}"),
            });
        }
        Ok(Self { dim, threshold })
    }

    /// τ.
    pub fn threshold(&self) -> f64 {
        self.threshold
    }
}

impl Denoiser for SoftThreshold {
    fn dim(&self) -> usize {
        self.dim
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim, y, sigma)?;
        Ok(y.iter()
            .map(|&v| v.signum() * (v.abs() - self.threshold).max(0.0))
            .collect())
    }

    /// `diag(1{|y_i| > τ})`, exact.
    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        check_input(self.dim, y, sigma)?;
        let mut value = Mat::zeros(self.dim, self.dim);
        for (i, &v) in y.iter().enumerate() {
            if v.abs() > self.threshold {
                value[(i, i)] = 1.0;
            }
        }
        Ok(Derivative {
            value,
            error: Mat::zeros(self.dim, self.dim),
        })
    }
}

/// A polynomial map in coordinatewise powers, `f(y) = b + Σ_{p=1}^{P} W_p y^{∘p}`, with
/// `y^{∘p}` the elementwise p-th power and each `W_p` a d×d matrix. Jacobian
/// `∇f(y) = Σ_p p·W_p diag(y^{∘(p−1)})`.
#[derive(Debug, Clone)]
pub struct PowerMap {
    bias: Vec<f64>,
    weights: Vec<Mat>,
}

impl PowerMap {
    /// Validates that every `W_p` is d×d and finite, with d = `bias.len()`, and P ≥ 1.
    pub fn new(bias: Vec<f64>, weights: Vec<Mat>) -> Result<Self> {
        let d = bias.len();
        ensure_finite("power map bias", &bias)?;
        if weights.is_empty() {
            return Err(Error::InvalidArgument {
                what: "power map".into(),
                reason: "needs at least one power (W_1)".into(),
            });
        }
        for (p, w) in weights.iter().enumerate() {
            let what = format!("power map W_{}", p + 1);
            if w.nrows() != d || w.ncols() != d {
                return Err(Error::DimensionMismatch {
                    what: what.into(),
                    expected: d,
                    got: if w.nrows() != d { w.nrows() } else { w.ncols() },
                });
            }
            linalg::ensure_finite_mat(&what, w)?;
        }
        Ok(Self { bias, weights })
    }

    /// b.
    pub fn bias(&self) -> &[f64] {
        &self.bias
    }

    /// `[W_1, …, W_P]`.
    pub fn weights(&self) -> &[Mat] {
        &self.weights
    }
}

impl Denoiser for PowerMap {
    fn dim(&self) -> usize {
        self.bias.len()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        ensure_len("y", y, self.dim())?;
        let d = self.dim();
        let mut out = self.bias.clone();
        for (p, w) in self.weights.iter().enumerate() {
            let powers: Vec<f64> = y.iter().map(|v| v.powi(p as i32 + 1)).collect();
            for (i, o) in out.iter_mut().enumerate() {
                *o += (0..d).map(|j| w[(i, j)] * powers[j]).sum::<f64>();
            }
        }
        Ok(out)
    }

    /// `Σ_p p·W_p diag(y^{∘(p−1)})`; each entry is a sum of P products, rounded with relative
    /// error at most `(P + 2)·ε` of the sum of absolute terms (Higham, Lemma 3.1 with γ_n ≈ nε).
    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        check_input(self.dim(), y, sigma)?;
        let d = self.dim();
        let mut value = Mat::zeros(d, d);
        let mut magnitude = Mat::zeros(d, d);
        for (p, w) in self.weights.iter().enumerate() {
            for j in 0..d {
                let slope = (p + 1) as f64 * y[j].powi(p as i32);
                for i in 0..d {
                    value[(i, j)] += w[(i, j)] * slope;
                    magnitude[(i, j)] += (w[(i, j)] * slope).abs();
                }
            }
        }
        let factor = (self.weights.len() + 2) as f64 * EPS;
        Ok(Derivative {
            value,
            error: Mat::from_fn(d, d, |i, j| factor * magnitude[(i, j)]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Denoiser, PowerMap};
    use crate::linalg::{Mat, EPS};

    /// The power map's Jacobian and its bound written out for d = 2, P = 2:
    /// `J_ij = W1_ij + 2·W2_ij·y_j`, `|error_ij| = 4ε(|W1_ij| + |2·W2_ij·y_j|)`.
    #[test]
    fn power_map_jacobian_and_bound_written_out() {
        let w1 = Mat::from_fn(2, 2, |i, j| [[0.5, -1.0], [2.0, 0.25]][i][j]);
        let w2 = Mat::from_fn(2, 2, |i, j| [[-0.75, 1.5], [0.125, -2.0]][i][j]);
        let map = PowerMap::new(vec![0.1, -0.2], vec![w1.clone(), w2.clone()]).unwrap();
        let y = [1.5, -3.0];
        let jac = map.jacobian(&y, 1.0).unwrap();
        for i in 0..2 {
            for j in 0..2 {
                let slope = 2.0 * w2[(i, j)] * y[j];
                assert!((jac.value[(i, j)] - (w1[(i, j)] + slope)).abs() <= 1e-15);
                let bound = 4.0 * EPS * (w1[(i, j)].abs() + slope.abs());
                assert!((jac.error[(i, j)] - bound).abs() <= 1e-12 * bound);
            }
        }
    }
}
