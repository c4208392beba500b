//! Gaussians: the KL divergence in closed form against the quadrature of the denoisers' MSE gap.

use super::{integrate_half_line, Integral};
use crate::error::{ensure_finite, ensure_len, Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::theorems::{Check, Controlled};

/// A Gaussian N(μ, Σ) with Σ symmetric positive definite.
#[derive(Debug, Clone)]
pub struct Gaussian {
    /// μ.
    pub mean: Vec<f64>,
    /// Σ.
    pub covariance: Mat,
}

impl Gaussian {
    /// Validates dimensions, finiteness, symmetry and positive definiteness (KL is infinite
    /// between a singular and a non-singular Gaussian, so both must be definite).
    pub fn new(mean: Vec<f64>, covariance: Mat) -> Result<Self> {
        let d = mean.len();
        ensure_finite("mean", &mean)?;
        ensure_len("covariance rows", &vec![0.0; covariance.nrows()], d)?;
        ensure_len("covariance columns", &vec![0.0; covariance.ncols()], d)?;
        linalg::ensure_finite_mat("covariance", &covariance)?;
        linalg::check_symmetric("covariance", &covariance)?;
        let (eig, _) = linalg::sym_eigen(&covariance)?;
        if eig.first().is_some_and(|&l| l <= 0.0) {
            return Err(Error::NotPsd {
                what: "covariance".into(),
                reason: format!(
                    "must be positive definite for a finite KL, smallest eigenvalue {}",
                    eig[0]
                ),
            });
        }
        Ok(Self { mean, covariance })
    }

    pub(super) fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Condition number `λ_max/λ_min` of Σ.
    pub fn condition_number(&self) -> f64 {
        let (eig, _) = linalg::sym_eigen(&self.covariance).unwrap_or((vec![1.0], Mat::zeros(1, 1)));
        eig[eig.len() - 1] / eig[0]
    }
}

/// `KL(N(μ_p, Σ_p) ‖ N(μ_q, Σ_q)) = ½[tr(Σ_q⁻¹Σ_p) − d + δᵀΣ_q⁻¹δ + log det Σ_q − log det Σ_p]`,
/// δ = μ_q − μ_p, by Cholesky solves and log-determinants.
pub fn gaussian_kl(p: &Gaussian, q: &Gaussian) -> Result<f64> {
    let d = p.dim();
    if q.dim() != d {
        return Err(Error::DimensionMismatch {
            what: "model dimension".into(),
            expected: d,
            got: q.dim(),
        });
    }
    let sol = linalg::spd_solve(&q.covariance, &p.covariance)?;
    let trace: f64 = (0..d).map(|i| sol[(i, i)]).sum();
    let delta: Vec<f64> = (0..d).map(|i| q.mean[i] - p.mean[i]).collect();
    let sd = linalg::spd_solve(&q.covariance, &linalg::col(&delta))?;
    let maha = linalg::dot(&delta, &linalg::col_to_vec(&sd));
    let logdet = linalg::spd_logdet(&q.covariance)? - linalg::spd_logdet(&p.covariance)?;
    Ok(0.5 * (trace - d as f64 + maha + logdet))
}

/// `½E_{y~N(μ_p, Σ_p + sI)}‖(Σ_q + sI)⁻¹(y − μ_q) − (Σ_p + sI)⁻¹(y − μ_p)‖²` — the MSE gap of the
/// two affine Bayes denoisers at s = σ², divided by 2s² (the integrand in s).
fn gaussian_gap_over_2s2(p: &Gaussian, q: &Gaussian, s: f64) -> Result<f64> {
    let d = p.dim();
    let shift = |m: &Mat| Mat::from_fn(d, d, |i, j| m[(i, j)] + if i == j { s } else { 0.0 });
    let (np, nq) = (shift(&p.covariance), shift(&q.covariance));
    let eye = Mat::identity(d, d);
    let rp = linalg::spd_solve(&np, &eye)?;
    let rq = linalg::spd_solve(&nq, &eye)?;
    let b = &rq - &rp;
    // E‖B y + c‖² with c = R_p μ_p − R_q μ_q, y ~ N(μ_p, Σ_p + sI)
    let c: Vec<f64> = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| rp[(i, j)] * p.mean[j] - rq[(i, j)] * q.mean[j])
                .sum()
        })
        .collect();
    let (value, _) = crate::denoisers::linear::expected_square_norm(&b, &c, &p.mean, &np);
    Ok(0.5 * value)
}

/// The right side for Gaussians p and q (q's Bayes denoiser at every σ):
/// `∫₀^∞ (MSE(f_q) − MSE(f_p)) σ⁻³ dσ = ∫₀^∞ E‖f_p − f_q‖²/(2s²) ds`.
pub fn gaussian_gap_integral(p: &Gaussian, q: &Gaussian) -> Result<Integral> {
    let (ep, _) = linalg::sym_eigen(&p.covariance)?;
    let scale = (ep[0] * ep[ep.len() - 1]).sqrt();
    integrate_half_line(scale, |s| gaussian_gap_over_2s2(p, q, s))
}

/// KL against the integral for Gaussians. Tolerance: 10× the quadrature's error estimate (the
/// difference of successive double-exponential levels: an estimate, not a bound — the factor 10
/// is calibrated, see [`GAUSSIAN_CLAIM`]) plus the f64 rounding of both sides (derived),
/// `64·d·κ·ε·(1 + |KL| + |∫|)` with κ the larger condition number of Σ_p + sI, Σ_q + sI
/// (bounded by that of Σ_p, Σ_q) — each evaluation is a handful of backward-stable Cholesky
/// solves whose relative error is below `c·d·κ·ε`. Planted: `KL(q‖p)` in place of `KL(p‖q)`
/// (the arguments swapped), against the same integral and tolerance.
///
/// [`GAUSSIAN_CLAIM`]: super::GAUSSIAN_CLAIM
pub fn gaussian_equality(p: &Gaussian, q: &Gaussian) -> Result<Controlled> {
    let kl = gaussian_kl(p, q)?;
    let swapped = gaussian_kl(q, p)?;
    let integral = gaussian_gap_integral(p, q)?;
    let d = p.dim() as f64;
    let kappa = p.condition_number().max(q.condition_number());
    let tolerance =
        10.0 * integral.error + 64.0 * d * kappa * EPS * (1.0 + kl.abs() + integral.value.abs());
    Ok(Controlled {
        check: Check {
            residual: (kl - integral.value).abs(),
            tolerance,
        },
        planted: Check {
            residual: (swapped - integral.value).abs(),
            tolerance,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Gaussian row's tolerance is the documented `10·(quadrature error) + 64·d·κ·ε·(1 +
    /// |KL| + |∫|)`, κ the larger condition number: p = N(0, diag(1, 4)), q = N((1, 0), I).
    #[test]
    fn gaussian_tolerance_is_the_documented_sum() {
        let p = Gaussian::new(
            vec![0.0, 0.0],
            Mat::from_fn(2, 2, |i, j| if i == j { [1.0, 4.0][i] } else { 0.0 }),
        )
        .unwrap();
        let q = Gaussian::new(vec![1.0, 0.0], Mat::identity(2, 2)).unwrap();
        let kl = gaussian_kl(&p, &q).unwrap();
        let integral = gaussian_gap_integral(&p, &q).unwrap();
        assert_eq!(p.condition_number().max(q.condition_number()), 4.0);
        let expected = 10.0 * integral.error
            + 64.0 * 2.0 * 4.0 * EPS * (1.0 + kl.abs() + integral.value.abs());
        let row = gaussian_equality(&p, &q).unwrap();
        assert!(
            (row.check.tolerance - expected).abs() <= 1e-12 * expected,
            "{} vs {expected}",
            row.check.tolerance
        );
    }
}
