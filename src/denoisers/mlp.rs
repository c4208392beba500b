//! A one-hidden-layer tanh network `f(y) = W₂ tanh(W₁ y + b₁) + b₂` with its exact Jacobian.

use super::{check_input, Denoiser};
use crate::error::{ensure_finite, ensure_len, Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::rng::Rng;
use crate::stats::finite_difference::Derivative;

/// `f(y) = W₂ tanh(W₁ y + b₁) + b₂` with W₁ (h×d), b₁ ∈ ℝʰ, W₂ (d×h), b₂ ∈ ℝᵈ; σ-independent.
/// Jacobian `∇f(y) = W₂ diag(1 − tanh²(W₁ y + b₁)) W₁`.
#[derive(Debug, Clone)]
pub struct Mlp {
    w1: Mat,
    b1: Vec<f64>,
    w2: Mat,
    b2: Vec<f64>,
}

impl Mlp {
    /// Validates shapes (W₁ h×d, b₁ h, W₂ d×h, b₂ d) and finiteness.
    pub fn new(w1: Mat, b1: Vec<f64>, w2: Mat, b2: Vec<f64>) -> Result<Self> {
        let (h, d) = (w1.nrows(), w1.ncols());
        ensure_len("MLP b1", &b1, h)?;
        ensure_len("MLP b2", &b2, d)?;
        if w2.nrows() != d || w2.ncols() != h {
            return Err(Error::InvalidArgument {
                what: "MLP W2".into(),
                reason: format!("must be {d}×{h}, got {}×{}", w2.nrows(), w2.ncols()),
            });
        }
        linalg::ensure_finite_mat("MLP W1", &w1)?;
        linalg::ensure_finite_mat("MLP W2", &w2)?;
        ensure_finite("MLP b1", &b1)?;
        ensure_finite("MLP b2", &b2)?;
        Ok(Self { w1, b1, w2, b2 })
    }

    /// Random weights: entries of W₁ ~ N(0, 1/d), W₂ ~ N(0, 1/h), biases ~ N(0, 0.1²)
    /// (the usual fan-in scaling, so pre-activations are O(1)).
    pub fn random(rng: &mut Rng, dim: usize, hidden: usize) -> Result<Self> {
        let s1 = 1.0 / (dim.max(1) as f64).sqrt();
        let s2 = 1.0 / (hidden.max(1) as f64).sqrt();
        let w1 = Mat::from_fn(hidden, dim, |_, _| s1 * rng.normal());
        let b1 = (0..hidden).map(|_| 0.1 * rng.normal()).collect();
        let w2 = Mat::from_fn(dim, hidden, |_, _| s2 * rng.normal());
        let b2 = (0..dim).map(|_| 0.1 * rng.normal()).collect();
        Self::new(w1, b1, w2, b2)
    }

    /// Hidden width h.
    pub fn hidden(&self) -> usize {
        self.b1.len()
    }

    /// `(W₁, b₁, W₂, b₂)`.
    pub fn parameters(&self) -> (&Mat, &[f64], &Mat, &[f64]) {
        (&self.w1, &self.b1, &self.w2, &self.b2)
    }

    /// The hidden activations `tanh(W₁ y + b₁)`.
    fn hidden_activations(&self, y: &[f64]) -> Vec<f64> {
        (0..self.hidden())
            .map(|k| {
                let a: f64 = self.b1[k] + (0..y.len()).map(|j| self.w1[(k, j)] * y[j]).sum::<f64>();
                a.tanh()
            })
            .collect()
    }
}

impl Denoiser for Mlp {
    fn dim(&self) -> usize {
        self.b2.len()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        let t = self.hidden_activations(y);
        Ok((0..self.dim())
            .map(|i| self.b2[i] + (0..t.len()).map(|k| self.w2[(i, k)] * t[k]).sum::<f64>())
            .collect())
    }

    /// `W₂ diag(1 − t²) W₁`; the pre-activations carry relative rounding `(d+1)ε` of their
    /// absolute sums, which moves `1 − t²` by at most `2·|a|·(d+1)ε` (|d(1−t²)/da| ≤ 0.77 < 1,
    /// times |a| for the relative error) plus `4ε` for tanh and the square; the bound reported
    /// is `(h + 2)ε·Σ_k |W₂||s_k||W₁| + Σ_k |W₂| δs_k |W₁|` with those `δs_k`.
    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        check_input(self.dim(), y, sigma)?;
        let (d, h) = (self.dim(), self.hidden());
        let mut slope = Vec::with_capacity(h);
        let mut slope_error = Vec::with_capacity(h);
        for k in 0..h {
            let mut a = self.b1[k];
            let mut magnitude = self.b1[k].abs();
            for (j, yj) in y.iter().enumerate() {
                a += self.w1[(k, j)] * yj;
                magnitude += (self.w1[(k, j)] * yj).abs();
            }
            let t = a.tanh();
            slope.push(1.0 - t * t);
            slope_error.push(2.0 * (d + 1) as f64 * EPS * magnitude + 4.0 * EPS);
        }
        let mut value = Mat::zeros(d, d);
        let mut error = Mat::zeros(d, d);
        let gamma = (h + 2) as f64 * EPS;
        for i in 0..d {
            for j in 0..d {
                let (mut v, mut m, mut e) = (0.0, 0.0, 0.0);
                for k in 0..h {
                    let term = self.w2[(i, k)] * self.w1[(k, j)];
                    v += term * slope[k];
                    m += (term * slope[k]).abs();
                    e += term.abs() * slope_error[k];
                }
                value[(i, j)] = v;
                error[(i, j)] = gamma * m + e;
            }
        }
        Ok(Derivative { value, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Jacobian and its bound by hand for d = h = 1: W₁ = 2, b₁ = 0.5, W₂ = 3 at y = 0.25
    /// give a = 1, s = 1 − tanh²1, value 6s; the pre-activation's absolute sum is 1, so
    /// δs = 2·2ε·1 + 4ε = 8ε and the bound is 3ε·6s + 6·8ε.
    #[test]
    fn jacobian_and_its_bound_by_hand() {
        let one = |v: f64| Mat::from_fn(1, 1, |_, _| v);
        let mlp = Mlp::new(one(2.0), vec![0.5], one(3.0), vec![-1.0]).unwrap();
        let j = mlp.jacobian(&[0.25], 1.0).unwrap();
        let s = 1.0 - 1f64.tanh().powi(2);
        assert!((j.value[(0, 0)] - 6.0 * s).abs() < 1e-15);
        let bound = 18.0 * EPS * s + 48.0 * EPS;
        assert!(
            (j.error[(0, 0)] - bound).abs() <= 1e-12 * bound,
            "{:?}",
            j.error
        );
    }
}
