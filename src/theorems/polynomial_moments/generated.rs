//! What the polynomial denoiser generates: the log-density fit (the counterexample and its control), least squares against the optimum, the Jacobian’s asymmetry.

use super::*;

/// How far the log-density of DDIM's generated law (1-D) is from a polynomial.
#[derive(Debug, Clone, PartialEq)]
pub struct LogDensityFit {
    /// The denoiser's degree d.
    pub degree: usize,
    /// `(fit degree D, max residual of the least-squares degree-D fit of log p_gen, its
    /// rounding floor)`. The floor: log p_gen is a sum of L logarithms of step slopes, each
    /// product rounded (relative ε per step, so `4Lε` absolute in the log), and the least-squares
    /// fit adds `8(D + 1)κ(Vᵀ V)ε·max|log p|` (Vandermonde of the standardised points).
    pub residuals: Vec<(usize, f64, f64)>,
    /// Range of log p_gen over the points (the residuals' natural scale).
    pub range: f64,
}

/// The generated law of 1-D DDIM is the push-forward of N(0, 1) (scaled) by the monotone flow
/// map T, so `log p_gen(T(z)) = log φ(z) − log |T'(z)|` exactly, T' by the chain rule through
/// the steps (`dx_{ℓ−1}/dx_ℓ = k_ℓ + a_ℓ f'(x_ℓ/α_ℓ)/α_ℓ`). On 201 points z ∈ [−2.5, 2.5]
/// (the generated law's bulk), fits log p_gen by least-squares polynomials in x of each degree in
/// `fit_degrees` (Legendre-free: x is standardised first) and reports the max residuals.
pub fn generated_log_density(
    target: &GaussianMixture,
    degree: usize,
    schedule: &Schedule,
    fit_degrees: &[usize],
) -> Result<LogDensityFit> {
    if target.dim() != 1 {
        return Err(Error::DimensionMismatch {
            what: "log-density target dimension".into(),
            expected: 1,
            got: target.dim(),
        });
    }
    let zs: Vec<f64> = (0..=200).map(|i| -2.5 + 0.025 * f64::from(i)).collect();
    let mut x: Vec<f64> = zs.iter().map(|z| schedule.initial_scale() * z).collect();
    let mut slope = vec![schedule.initial_scale(); zs.len()];
    for l in (1..=schedule.steps()).rev() {
        let alpha = schedule.alpha(l);
        let fit = optimal_polynomial(target, schedule.denoiser_noise(l), degree)?;
        let (k, a, _) = step_coefficients(schedule, l, false);
        for (xi, si) in x.iter_mut().zip(slope.iter_mut()) {
            let y = [*xi / alpha];
            let f = fit.apply(&y)[0];
            let fprime = fit.jacobian(&y)[(0, 0)];
            *si *= k + a * fprime / alpha;
            *xi = k * *xi + a * f;
        }
    }
    if slope.iter().any(|s| *s <= 0.0) {
        return Err(Error::Numerical(
            "the DDIM flow map is not monotone here: the generated density has no closed form"
                .into(),
        ));
    }
    let logp: Vec<f64> = zs
        .iter()
        .zip(&slope)
        .map(|(z, s)| -0.5 * z * z - 0.5 * std::f64::consts::TAU.ln() - s.ln())
        .collect();
    let mean = x.iter().sum::<f64>() / x.len() as f64;
    let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    let u: Vec<f64> = x.iter().map(|v| (v - mean) / sd).collect();
    let mut residuals = Vec::new();
    for &fd in fit_degrees {
        let design = Mat::from_fn(u.len(), fd + 1, |i, j| u[i].powi(j as i32));
        let gram = design.transpose() * &design;
        let rhs = design.transpose() * linalg::col(&logp);
        let coef = linalg::spd_solve(&gram, &rhs)?;
        let (ge, _) = linalg::sym_eigen(&gram)?;
        let scale = logp.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let floor =
            (4.0 * schedule.steps() as f64 + 8.0 * (fd + 1) as f64 * ge[fd] / ge[0] * scale) * EPS;
        let fitted = &design * &coef;
        let worst = (0..u.len())
            .map(|i| (fitted[(i, 0)] - logp[i]).abs())
            .fold(0.0, f64::max);
        residuals.push((fd, worst, floor));
    }
    let (lo, hi) = logp
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    Ok(LogDensityFit {
        degree,
        residuals,
        range: hi - lo,
    })
}

/// The least-squares fit from `n` sample pairs converges to the moment solution: on 11 grid
/// points, each `f_LS(y) − f*(y)` against its sandwich standard error
/// `SE² = h̃ᵀĜ⁻¹(Σ_k e_k² h̃_k h̃_kᵀ/n)Ĝ⁻¹h̃/n` (Ĝ the sample feature moments, e_k the fit's
/// residuals; White 1980). Residual: the largest `|f_LS − f*|/SE`; tolerance `z(α/(11·d))`
/// (two-sided, Bonferroni over points and outputs).
pub fn least_squares_matches_optimal(
    target: &GaussianMixture,
    degree: usize,
    sigma: f64,
    n: usize,
    seed: u64,
    alpha: f64,
) -> Result<Check> {
    use crate::denoisers::polynomial::fit_polynomial;
    let opt = optimal_polynomial(target, sigma, degree)?;
    let (xs, ys) = crate::theorems::linear_gaussian::noisy_pairs(target, sigma, n, seed);
    let ls = fit_polynomial(&xs, &ys, degree, opt.scale)?;
    let m = opt.basis.len() + 1;
    let d = target.dim();
    let mut g = Mat::zeros(m, m);
    let mut meat: Vec<Mat> = (0..d).map(|_| Mat::zeros(m, m)).collect();
    for k in 0..n {
        let y = linalg::row(&ys, k);
        let h = ls.augmented_features(&y);
        let f = ls.apply(&y);
        for a in 0..m {
            for b in 0..m {
                g[(a, b)] += h[a] * h[b] / n as f64;
                for (i, mi) in meat.iter_mut().enumerate() {
                    mi[(a, b)] += (xs[(k, i)] - f[i]).powi(2) * h[a] * h[b] / n as f64;
                }
            }
        }
    }
    let ginv = linalg::spd_solve(&g, &Mat::identity(m, m))?;
    let z = crate::stats::two_sided_z(alpha / (11 * d) as f64);
    let mean = target.mean();
    let sd = (target.covariance()[(0, 0)] + sigma * sigma).sqrt();
    let mut worst: f64 = 0.0;
    for p in 0..=10 {
        let y: Vec<f64> = (0..d)
            .map(|i| mean[i] + sd * (f64::from(p) / 5.0 - 1.0) * 1.5)
            .collect();
        let h = linalg::col(&ls.augmented_features(&y));
        let (fl, fo) = (ls.apply(&y), opt.apply(&y));
        for (i, mi) in meat.iter().enumerate() {
            let v = h.transpose() * &ginv * mi * &ginv * &h;
            let se = (v[(0, 0)] / n as f64).sqrt();
            worst = worst.max((fl[i] - fo[i]).abs() / se);
        }
    }
    Ok(Check {
        residual: worst,
        tolerance: z,
    })
}

/// `|∂f₁/∂y₂ − ∂f₂/∂y₁|` of a 2-D fit at y, and its rounding bound
/// `rounding_bound(fit)·(‖∂h̃/∂y₁‖ + ‖∂h̃/∂y₂‖)` (each partial derivative is a coefficient row
/// dotted with a feature-derivative vector). A score `(f(y) − y)/σ²` with asymmetric Jacobian is
/// not a gradient field: it is the score of no density at all.
pub fn jacobian_asymmetry(fit: &PolynomialFit, y: &[f64]) -> Result<Check> {
    if y.len() != 2 {
        return Err(Error::DimensionMismatch {
            what: "asymmetry point".into(),
            expected: 2,
            got: y.len(),
        });
    }
    let j = fit.jacobian(y);
    let u: Vec<f64> = y.iter().map(|v| v / fit.scale).collect();
    let grad_norm = |k: usize| {
        fit.basis
            .iter()
            .filter(|a| a[k] > 0)
            .map(|a| {
                let mut d = a.clone();
                d[k] -= 1;
                (a[k] as f64 * crate::stats::moments::monomial_value(&u, &d) / fit.scale).powi(2)
            })
            .sum::<f64>()
            .sqrt()
    };
    Ok(Check {
        residual: (j[(0, 1)] - j[(1, 0)]).abs(),
        tolerance: rounding_bound(fit) * (grad_norm(0) + grad_norm(1)),
    })
}
