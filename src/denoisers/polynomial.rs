//! Polynomial denoisers `f(y) = A h(y/s) + b` over the monomials `h` of total degree 1..=d
//! (graded lexicographic, [`crate::stats::moments::monomials`]), with a fixed scale s (the RMS
//! of y) that keeps the moment matrices well conditioned.
//!
//! The MSE-optimal one (Levine–Weiss App. A.2) solves the normal equations
//! `G c_i = r_i` with `G = E[h̃ h̃ᵀ]`, `r_i = E[x_i h̃]`, `h̃ = (1, h(y/s))` — equivalently
//! `A = Σ_xh Σ_h⁻¹`, `b = μ_x − A μ_h` — so it depends on the target only through the moments of
//! (x, y) up to total order 2d, i.e. (σ being fixed) on the moments of x up to order 2d.

use super::{check_input, Denoiser};
use crate::error::{Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::stats::moments::{features, joint_moment, monomials, MultiIndex};
use crate::targets::{GaussianMixture, Target};

/// A fitted polynomial map with the condition number of the system it came from.
#[derive(Debug, Clone)]
pub struct PolynomialFit {
    /// The monomials of `h`, in order.
    pub basis: Vec<MultiIndex>,
    /// The scale s: features are monomials of y/s.
    pub scale: f64,
    /// `[b | A]`: row i holds the intercept then the coefficients of output i (n × (1 + M)).
    pub coefficients: Mat,
    /// `κ(G)` of the (scaled) normal-equation matrix.
    pub condition: f64,
}

impl PolynomialFit {
    /// `h̃(y) = (1, h(y/s))`.
    pub(crate) fn augmented_features(&self, y: &[f64]) -> Vec<f64> {
        let u: Vec<f64> = y.iter().map(|v| v / self.scale).collect();
        std::iter::once(1.0)
            .chain(features(&u, &self.basis))
            .collect()
    }

    /// `f(y) = [b | A] h̃(y)`.
    pub fn apply(&self, y: &[f64]) -> Vec<f64> {
        let h = self.augmented_features(y);
        (0..self.coefficients.nrows())
            .map(|i| (0..h.len()).map(|j| self.coefficients[(i, j)] * h[j]).sum())
            .collect()
    }

    /// `∇f(y)`: `∂f_i/∂y_k = Σ_α A_iα α_k u^{α−e_k}/s`, u = y/s.
    pub fn jacobian(&self, y: &[f64]) -> Mat {
        let n = y.len();
        let u: Vec<f64> = y.iter().map(|v| v / self.scale).collect();
        Mat::from_fn(self.coefficients.nrows(), n, |i, k| {
            self.basis
                .iter()
                .enumerate()
                .filter(|(_, a)| a[k] > 0)
                .map(|(m, a)| {
                    let mut d = a.clone();
                    d[k] -= 1;
                    self.coefficients[(i, m + 1)]
                        * a[k] as f64
                        * crate::stats::moments::monomial_value(&u, &d)
                        / self.scale
                })
                .sum()
        })
    }

    /// `‖[b | A]‖_F`.
    pub fn norm(&self) -> f64 {
        self.coefficients.norm_l2()
    }
}

/// Solves `G Cᵀ = Rᵀ` for the coefficients, refusing a feature moment matrix whose condition
/// number is beyond f64 (`λ_min ≤ 8mε·λ_max`, where rounding alone can make it indefinite and
/// Cholesky fail): the error names the eigenvalues and both causes — a degree too high for this
/// law's scale (e.g. degree 16, or a mean of 1000 at degree 3: the monomials' moments span more
/// than 1/ε), or a law with fewer than m support points.
fn solve_normal_equations(g: &Mat, r: &Mat) -> Result<(Mat, f64)> {
    let (eig, _) = linalg::sym_eigen(g)?;
    let m = eig.len();
    let (lambda_min, lambda_max) = (eig[0], eig[m - 1]);
    let ill_conditioned = || Error::InvalidArgument {
        what: "polynomial degree".into(),
        reason: format!(
            "the {m}×{m} feature moment matrix is numerically singular (eigenvalues from \
             {lambda_min:e} to {lambda_max:e}, condition number beyond 1/(8mε) = {:e}): the \
             degree is too high for this law's scale in f64, or the law has fewer than {m} \
             support points; lower the degree",
            1.0 / (8.0 * m as f64 * f64::EPSILON)
        ),
    };
    if lambda_min <= 8.0 * m as f64 * f64::EPSILON * lambda_max {
        return Err(ill_conditioned());
    }
    let condition = lambda_max / lambda_min;
    // G Cᵀ = Rᵀ, C = [b | A] row per output
    let ct = linalg::spd_solve(g, &r.transpose().to_owned()).map_err(|_| ill_conditioned())?;
    Ok((ct.transpose().to_owned(), condition))
}

/// The RMS scale `s = √(E‖y‖²/n)` of y = x + σg.
fn rms_scale(target: &GaussianMixture, sigma: f64) -> f64 {
    let n = target.dim() as f64;
    let mean = target.mean();
    let cov = target.covariance();
    let second: f64 = (0..target.dim())
        .map(|i| cov[(i, i)] + mean[i] * mean[i] + sigma * sigma)
        .sum();
    (second / n).sqrt()
}

/// The MSE-optimal polynomial denoiser of degree `degree` for `target` at noise σ, from the
/// exact moments of (x, y) (Stein's recursion on their joint mixture).
pub fn optimal_polynomial(
    target: &GaussianMixture,
    sigma: f64,
    degree: usize,
) -> Result<PolynomialFit> {
    crate::error::ensure_sigma(sigma)?;
    if degree == 0 {
        return Err(Error::InvalidArgument {
            what: "degree".into(),
            reason: "must be at least 1, got 0".into(),
        });
    }
    let n = target.dim();
    let basis = monomials(n, degree);
    let scale = rms_scale(target, sigma);
    let zero = vec![0; n];
    let aug: Vec<MultiIndex> = std::iter::once(zero.clone())
        .chain(basis.iter().cloned())
        .collect();
    let m = aug.len();
    let mut indices = Vec::with_capacity(m * m + n * m);
    for a in &aug {
        for b in &aug {
            let sum: MultiIndex = a.iter().zip(b).map(|(p, q)| p + q).collect();
            indices.push((zero.clone(), sum));
        }
    }
    for i in 0..n {
        let mut ei = zero.clone();
        ei[i] = 1;
        for a in &aug {
            indices.push((ei.clone(), a.clone()));
        }
    }
    let values = joint_moment(target, sigma, &indices)?;
    let degree_of = |a: &MultiIndex| a.iter().sum::<usize>() as i32;
    let g = Mat::from_fn(m, m, |i, j| {
        values[i * m + j] / scale.powi(degree_of(&aug[i]) + degree_of(&aug[j]))
    });
    let r = Mat::from_fn(n, m, |i, j| {
        values[m * m + i * m + j] / scale.powi(degree_of(&aug[j]))
    });
    let (coefficients, condition) = solve_normal_equations(&g, &r)?;
    Ok(PolynomialFit {
        basis,
        scale,
        coefficients,
        condition,
    })
}

/// The least-squares polynomial fit `min Σ_k ‖x_k − [b | A] h̃(y_k)‖²` from sample pairs (rows),
/// with the scale s given (use the optimal fit's to compare coefficients).
pub fn fit_polynomial(xs: &Mat, ys: &Mat, degree: usize, scale: f64) -> Result<PolynomialFit> {
    if xs.nrows() != ys.nrows() || xs.ncols() != ys.ncols() {
        return Err(Error::DimensionMismatch {
            what: "sample pairs (rows)".into(),
            expected: ys.nrows(),
            got: xs.nrows(),
        });
    }
    crate::error::ensure_positive_finite("feature scale", scale)?;
    linalg::ensure_finite_mat("clean samples", xs)?;
    linalg::ensure_finite_mat("noisy samples", ys)?;
    let n = ys.ncols();
    let basis = monomials(n, degree);
    let proto = PolynomialFit {
        basis: basis.clone(),
        scale,
        coefficients: Mat::zeros(n, basis.len() + 1),
        condition: f64::NAN,
    };
    let m = basis.len() + 1;
    let mut g = Mat::zeros(m, m);
    let mut r = Mat::zeros(n, m);
    let count = ys.nrows() as f64;
    for k in 0..ys.nrows() {
        let h = proto.augmented_features(&linalg::row(ys, k));
        for a in 0..m {
            for b in 0..m {
                g[(a, b)] += h[a] * h[b] / count;
            }
            for i in 0..n {
                r[(i, a)] += xs[(k, i)] * h[a] / count;
            }
        }
    }
    let (coefficients, condition) = solve_normal_equations(&g, &r)?;
    Ok(PolynomialFit {
        basis,
        scale,
        coefficients,
        condition,
    })
}

/// The rounding bound of a fit's coefficients from its normal equations:
/// `‖Δc‖ ≤ 8(M + 1)·κ(G)·ε·‖c‖` (backward-stable Cholesky solve, Higham Thm 10.4, with the
/// moments themselves accurate to a few ulps of their magnitudes).
pub fn rounding_bound(fit: &PolynomialFit) -> f64 {
    8.0 * (fit.basis.len() + 1) as f64 * fit.condition * EPS * fit.norm()
}

/// The MSE-optimal degree-d polynomial denoiser of a target, as a σ-dependent [`Denoiser`]: the
/// fit is recomputed from the moments at each σ (once per batch).
#[derive(Debug, Clone)]
pub struct OptimalPolynomial {
    target: GaussianMixture,
    degree: usize,
}

impl OptimalPolynomial {
    /// The degree-`degree` optimal polynomial denoiser of `target`.
    pub fn new(target: GaussianMixture, degree: usize) -> Result<Self> {
        if degree == 0 {
            return Err(Error::InvalidArgument {
                what: "degree".into(),
                reason: "must be at least 1, got 0".into(),
            });
        }
        Ok(Self { target, degree })
    }
}

impl Denoiser for OptimalPolynomial {
    fn dim(&self) -> usize {
        self.target.dim()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        Ok(optimal_polynomial(&self.target, sigma, self.degree)?.apply(y))
    }

    fn denoise_batch(&self, ys: &Mat, sigma: f64) -> Result<Mat> {
        crate::error::ensure_sigma(sigma)?;
        if ys.ncols() != self.dim() {
            return Err(Error::DimensionMismatch {
                what: "y (columns)".into(),
                expected: self.dim(),
                got: ys.ncols(),
            });
        }
        linalg::ensure_finite_mat("y", ys)?;
        let fit = optimal_polynomial(&self.target, sigma, self.degree)?;
        let rows: Vec<Vec<f64>> = (0..ys.nrows())
            .map(|i| fit.apply(&linalg::row(ys, i)))
            .collect();
        Ok(Mat::from_fn(ys.nrows(), self.dim(), |i, j| rows[i][j]))
    }
}

#[cfg(test)]
mod tests {
    use super::{optimal_polynomial, rounding_bound};
    use crate::linalg::EPS;
    use crate::targets::GaussianMixture;

    /// The coefficients' rounding bound `8(M+1)·κ(G)·ε·‖c‖` is of the documented order: at
    /// least one ulp of ‖c‖ per coefficient and a condition number (κ ≥ 1), and at most
    /// 10³·(M+1)·κ·ε·‖c‖ — a dropped or inverted factor (ε or κ moved to the denominator)
    /// leaves that band by many orders of magnitude.
    #[test]
    fn rounding_bound_has_the_documented_order() {
        let target = GaussianMixture::new(
            &[0.4, 0.6],
            &[vec![-1.0], vec![2.0]],
            &[
                crate::linalg::Mat::from_fn(1, 1, |_, _| 0.3),
                crate::linalg::Mat::from_fn(1, 1, |_, _| 0.5),
            ],
        )
        .unwrap();
        let fit = optimal_polynomial(&target, 0.7, 3).unwrap();
        let (m, kappa, norm) = (fit.basis.len() as f64, fit.condition, fit.norm());
        let bound = rounding_bound(&fit);
        assert!(kappa >= 1.0 && norm > 0.0);
        assert!(bound >= (m + 1.0) * kappa * EPS * norm, "{bound:e}");
        assert!(bound <= 1e3 * (m + 1.0) * kappa * EPS * norm, "{bound:e}");
    }
}
