//! Rank-K linear denoisers `f(y) = μ + A B (y − μ)`, A (d×K), B (K×d): the MSE-optimal one in
//! closed form (Levine–Weiss Thm 4, App. A.1), the Eckart–Young construction it is derived by,
//! and the MSE of any affine map under a law with given first two moments.
//!
//! For `y = x + σg` with `Cov x = Σ = Σᵢ λᵢ uᵢuᵢᵀ` (λ₁ ≥ … ≥ λ_d), the minimiser of
//! `E‖x − L(y − μ) − μ‖²` over rank(L) ≤ K is `L* = Σ_{i≤K} λᵢ/(λᵢ + σ²) uᵢuᵢᵀ` with
//! `MSE = Σ_{i>K} λᵢ + Σ_{i≤K} λᵢσ²/(λᵢ + σ²)`. When `λ_K = λ_{K+1}` the minimiser is not
//! unique (any orthonormal basis of the tied eigenspace gives the same MSE); when `K ≥ rank Σ`
//! it is the full optimal affine denoiser.

pub use super::linear::affine_mse;
use super::linear::{shrink_apply, shrinkage_matrix};
use super::{check_input, Denoiser};
use crate::error::{ensure_finite, ensure_sigma, Error, Result};
use crate::linalg::{self, sym_eigen, Mat, SpectralFactor};
use crate::stats::finite_difference::Derivative;

/// The MSE-optimal rank-K denoiser `μ + Σ_{i≤K} λᵢ/(λᵢ + σ²) uᵢuᵢᵀ(y − μ)`, stored as the top-K
/// eigenpairs of Σ (eigenvalues in descending order, zeros kept when K exceeds the rank).
#[derive(Debug, Clone)]
pub struct RankK {
    mean: Vec<f64>,
    /// Top-K eigenvectors (d×K) and eigenvalues (descending).
    top: SpectralFactor,
}

/// Validates μ, Σ (d×d symmetric PSD) and 1 ≤ K ≤ d; returns all eigenpairs of Σ in descending
/// order with eigenvalues below the PSD rounding floor set to zero.
fn descending_eigen(mean: &[f64], covariance: &Mat, k: usize) -> Result<(Vec<f64>, Mat)> {
    ensure_finite("mean", mean)?;
    let d = mean.len();
    if covariance.nrows() != d || covariance.ncols() != d {
        return Err(Error::DimensionMismatch {
            what: "covariance (rows and columns, one per mean entry)".into(),
            expected: d,
            got: covariance.nrows(),
        });
    }
    if k == 0 || k > d {
        return Err(Error::InvalidArgument {
            what: "rank K".into(),
            reason: format!("must satisfy 1 ≤ K ≤ d = {d}, got {k}"),
        });
    }
    // Validates symmetry and PSD-ness (with the crate's rounding floor).
    let factor = SpectralFactor::from_covariance("covariance", covariance)?;
    let (values, vectors) = sym_eigen(covariance)?;
    let floor =
        factor.eigenvalues.iter().cloned().fold(0.0, f64::max) * 8.0 * d as f64 * linalg::EPS;
    let order: Vec<usize> = (0..d).rev().collect();
    let vals = order
        .iter()
        .map(|&i| if values[i] > floor { values[i] } else { 0.0 })
        .collect();
    let vecs = Mat::from_fn(d, d, |i, j| vectors[(i, order[j])]);
    Ok((vals, vecs))
}

impl RankK {
    /// The optimal rank-K denoiser of a law with mean μ and covariance Σ. Errors: K = 0, K > d,
    /// mismatched sizes, non-finite μ, Σ not symmetric PSD.
    pub fn optimal(mean: &[f64], covariance: &Mat, k: usize) -> Result<Self> {
        let (vals, vecs) = descending_eigen(mean, covariance, k)?;
        let d = mean.len();
        Ok(Self {
            mean: mean.to_vec(),
            top: SpectralFactor {
                basis: Mat::from_fn(d, k, |i, j| vecs[(i, j)]),
                eigenvalues: vals[..k].to_vec(),
            },
        })
    }

    /// K.
    pub fn rank(&self) -> usize {
        self.top.rank()
    }

    /// μ.
    pub fn mean(&self) -> &[f64] {
        &self.mean
    }

    /// The kept eigenpairs `(u_i, λ_i)`, i ≤ K, λ descending.
    pub fn top(&self) -> &SpectralFactor {
        &self.top
    }

    /// `L*(σ) = Σ_{i≤K} λᵢ/(λᵢ + σ²) uᵢuᵢᵀ` (d×d, rank ≤ K).
    pub fn weight(&self, sigma: f64) -> Result<Mat> {
        ensure_sigma(sigma)?;
        Ok(shrinkage_matrix(&self.top, sigma))
    }

    /// `b(σ) = μ − L*(σ)μ`, so that `f(y) = L* y + b`.
    pub fn bias(&self, sigma: f64) -> Result<Vec<f64>> {
        let w = self.weight(sigma)?;
        Ok((0..self.mean.len())
            .map(|i| {
                self.mean[i]
                    - (0..self.mean.len())
                        .map(|j| w[(i, j)] * self.mean[j])
                        .sum::<f64>()
            })
            .collect())
    }
}

impl Denoiser for RankK {
    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        Ok(shrink_apply(&self.top, &self.mean, y, sigma, self.rank()))
    }

    /// `∇f = L*(σ)` from the stored factor (error: its rounding, `4(K+1)ε`).
    fn jacobian(&self, y: &[f64], sigma: f64) -> Result<Derivative<Mat>> {
        check_input(self.dim(), y, sigma)?;
        let d = self.dim();
        let bound = 4.0 * (self.rank() + 1) as f64 * linalg::EPS;
        Ok(Derivative {
            value: shrinkage_matrix(&self.top, sigma),
            error: Mat::from_fn(d, d, |_, _| bound),
        })
    }
}

/// Levine–Weiss App. A.1, eq.(3)–(7): with `Σ̃ = Σ + σ²I` and `M = Σ Σ̃^{-1/2}`, the best
/// rank-K `L` is `M_K Σ̃^{-1/2}` where `M_K` is the truncated SVD of M (Eckart–Young–Mirsky).
/// Computed with faer's SVD of M (not the eigen-decomposition of Σ), so it is a route
/// independent of [`RankK::weight`]. `Σ̃^{-1/2}` comes from the eigen-decomposition of Σ̃.
pub(crate) fn eckart_young_weight(covariance: &Mat, sigma: f64, k: usize) -> Result<Mat> {
    ensure_sigma(sigma)?;
    let d = covariance.nrows();
    descending_eigen(&vec![0.0; d], covariance, k)?;
    let tilde = Mat::from_fn(d, d, |i, j| {
        covariance[(i, j)] + if i == j { sigma * sigma } else { 0.0 }
    });
    reduced_rank_regression(covariance, &tilde, k)
}

/// Reduced-rank regression: the rank-K minimiser of `tr(W C_yy Wᵀ) − 2 tr(W C_xyᵀ)` (the MSE of
/// `x ≈ W y` up to a constant) is `W_K = [C_xy C_yy^{-1/2}]_K C_yy^{-1/2}`, `[·]_K` the truncated
/// SVD (Eckart–Young–Mirsky after whitening y). `C_yy` must be symmetric positive definite.
pub(crate) fn reduced_rank_regression(cross: &Mat, auto: &Mat, k: usize) -> Result<Mat> {
    let d = auto.nrows();
    let (vals, vecs) = sym_eigen(auto)?;
    if vals.first().is_some_and(|&v| v <= 0.0) {
        return Err(Error::NotPsd {
            what: "C_yy".into(),
            reason: format!("must be positive definite, smallest eigenvalue {}", vals[0]),
        });
    }
    let inv_sqrt = Mat::from_fn(d, d, |i, j| {
        (0..d)
            .map(|l| vecs[(i, l)] * vecs[(j, l)] / vals[l].sqrt())
            .sum()
    });
    let m = cross * &inv_sqrt;
    let svd = m
        .svd()
        .map_err(|e| Error::Numerical(format!("SVD of C_xy C_yy^(-1/2): {e:?}")))?;
    let (u, s, v) = (svd.U(), svd.S().column_vector(), svd.V());
    let k = k.min(s.nrows());
    let mk = Mat::from_fn(m.nrows(), m.ncols(), |i, j| {
        (0..k).map(|l| u[(i, l)] * s[l] * v[(j, l)]).sum()
    });
    Ok(&mk * &inv_sqrt)
}

/// The optimal rank-K MSE from the spectrum (App. A.1): `Σ_{i>K} λᵢ + Σ_{i≤K} λᵢσ²/(λᵢ + σ²)`
/// for eigenvalues in descending order.
pub fn optimal_rank_k_mse(descending_eigenvalues: &[f64], sigma: f64, k: usize) -> f64 {
    let s2 = sigma * sigma;
    descending_eigenvalues
        .iter()
        .enumerate()
        .map(|(i, &l)| if i < k { l * s2 / (l + s2) } else { l })
        .sum()
}

/// Eigenvalues of Σ in descending order (the PSD rounding floor mapped to zero), after the same
/// validation as [`RankK::optimal`] with K = 1.
pub fn descending_eigenvalues(covariance: &Mat) -> Result<Vec<f64>> {
    let d = covariance.nrows();
    Ok(descending_eigen(&vec![0.0; d], covariance, 1)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// App. A.1's optimal rank-K MSE against the MSE of the optimal rank-K map itself, computed
    /// from the joint law (`linear::affine_mse`, a different route): Σ = diag(4, 1, 0.25),
    /// σ = 1, K = 1 gives 4/5 + 1 + 0.25 = 2.05, and K = 2 gives 4/5 + 1/2 + 0.25.
    #[test]
    fn optimal_rank_k_mse_is_the_mse_of_the_optimal_map() {
        let cov = Mat::from_fn(3, 3, |i, j| if i == j { [4.0, 1.0, 0.25][i] } else { 0.0 });
        let mean = [0.5, -1.0, 2.0];
        for (k, by_hand) in [(1, 2.05), (2, 0.8 + 0.5 + 0.25)] {
            let closed = optimal_rank_k_mse(&[4.0, 1.0, 0.25], 1.0, k);
            assert!((closed - by_hand).abs() < 1e-15, "K = {k}: {closed}");
            let map = RankK::optimal(&mean, &cov, k).unwrap();
            let (w, b) = (map.weight(1.0).unwrap(), map.bias(1.0).unwrap());
            let mse = super::super::linear::affine_mse(&mean, &cov, &w, &b, 1.0).unwrap();
            assert!((mse - closed).abs() < 1e-13, "K = {k}: {mse} vs {closed}");
        }
    }
}
