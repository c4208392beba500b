//! `miyasawa_covariance` — the second-order Miyasawa relation (Sugolov Prop.3; Kadkhodaie et al.
//! App. C.1, eq.8–9):
//!
//! `Cov[x | y] = σ²(I + σ²∇²log p_σ(y))`, hence the Jacobian of the Bayes denoiser
//! `∇f*(y) = Cov[x|y]/σ²` is symmetric PSD, and `MSE(f*) = E tr Cov[x|y] = σ² E tr∇f*(y)`.
//!
//! Routes compared: the posterior covariance from Bayes' rule (law of total covariance over the
//! Wiener posteriors, Woodbury/Cholesky: [`ClosedForm::posterior_covariance`]) against the
//! analytic Hessian of `log p_σ` (density route); the Jacobian of the Bayes posterior mean by
//! central differences against a posterior covariance built here from the dense spectral
//! matrices of [`GaussianMixture::noisy_components`] (so that the mean and the covariance it is
//! compared with do not share the posterior route's code); and the Monte Carlo squared error of
//! `f*` on samples `(x, y)` against `σ² tr∇f*` from the analytic Hessian.
//!
//! Every check returns a [`Controlled`]: the check of the claim and the same check run on a
//! planted wrong variant (σ² for σ⁴, σ for σ²), which it must reject.

use super::tweedie::rounding_bound;
use super::{
    default_points, targets_at, Check, Claim, Controlled, Depth, FalseFailure, ToleranceKind,
    Verdict, CPU_BACKEND,
};
use crate::error::{ensure_finite, ensure_len, Result};
use crate::gpu::Gpu;
use crate::linalg::{self, dot, max_abs_diff_mat, softmax, sym_eigen, Mat, EPS};
use crate::rng::Rng;
use crate::stats::{finite_difference, mean_and_std_error, two_sided_z};
use crate::targets::{ClosedForm, GaussianMixture, Target};

/// The theorem id.
pub const THEOREM: &str = "miyasawa_covariance";

/// Rounding bound for a d×d second-order quantity: the first-order bound
/// [`rounding_bound`] times `κ·S` (each entry is a product of two first-order quantities and one
/// more solve), floored at `σ²`-relative precision.
pub fn second_order_rounding_bound(target: &GaussianMixture, y: &[f64], sigma: f64) -> Result<f64> {
    let s = linalg::max_abs(y).max(target.scale());
    let kappa = target.noisy_condition_number(sigma);
    Ok(rounding_bound(target, y, sigma)? * (s + sigma * sigma * kappa + 1.0))
}

/// Row: Bayes covariance against the analytic Hessian.
pub const COVARIANCE_HESSIAN: Claim = Claim {
    theorem: THEOREM,
    statement: "Cov[x|y] (Bayes) = σ²(I + σ²∇²log p_σ(y)) (analytic Hessian)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "miyasawa_covariance::second_order_rounding_bound: \
                      tweedie::rounding_bound × (S + σ²κ + 1)",
    planted_variant: "σ² for σ⁴ on the Hessian: Cov[x|y] = σ²I + σ²∇²log p_σ(y)",
    false_failure: FalseFailure::None,
};

/// `Cov[x|y]` (Bayes) against `σ²(I + σ²∇²log p_σ(y))` (analytic Hessian), max entry difference;
/// tolerance [`second_order_rounding_bound`]. Planted: `σ²(I + ∇²log p_σ)`, same tolerance.
pub fn covariance_vs_hessian(
    target: &GaussianMixture,
    y: &[f64],
    sigma: f64,
) -> Result<Controlled> {
    let cov = target.posterior_covariance(y, sigma)?;
    let h = target.score_hessian(y, sigma)?;
    let d = target.dim();
    let s2 = sigma * sigma;
    let tolerance = second_order_rounding_bound(target, y, sigma)?;
    let check = |hessian_coefficient: f64| {
        let miyasawa = Mat::from_fn(d, d, |i, j| {
            s2 * if i == j { 1.0 } else { 0.0 } + hessian_coefficient * h[(i, j)]
        });
        Check {
            residual: max_abs_diff_mat(&cov, &miyasawa),
            tolerance,
        }
    };
    Ok(Controlled {
        check: check(s2 * s2),
        planted: check(s2),
    })
}

/// `Cov[x|y]` by a route independent of [`ClosedForm::posterior_covariance`]: from the dense
/// spectral matrices of [`GaussianMixture::noisy_components`] (precision `C_k⁻¹`, gain
/// `G_k = Σ_k C_k⁻¹`, log normaliser), the responsibilities
/// `ρ = softmax(log norm_k − ½δ_kᵀC_k⁻¹δ_k)`, the component posteriors `m_k = μ_k + G_kδ_k` and
/// `P_k = Σ_k − Σ_kC_k⁻¹Σ_k = σ²G_k`, and the law of total covariance
/// `Σ_k ρ_k(P_k + (m_k − m)(m_k − m)ᵀ)`. It shares only the eigen-decomposition of the
/// covariances with the posterior route (Woodbury on the capacitance, Cholesky-solved).
pub fn spectral_posterior_covariance(
    target: &GaussianMixture,
    y: &[f64],
    sigma: f64,
) -> Result<Mat> {
    let d = target.dim();
    ensure_len("query point y", y, d)?;
    ensure_finite("query point y", y)?;
    let noisy = target.noisy_components(sigma)?;
    let mut logits = Vec::with_capacity(noisy.len());
    let mut means = Vec::with_capacity(noisy.len());
    for (c, n) in target.components().iter().zip(&noisy) {
        let delta: Vec<f64> = y.iter().zip(&c.mean).map(|(a, b)| a - b).collect();
        let precise: Vec<f64> = (0..d)
            .map(|i| (0..d).map(|j| n.precision[(i, j)] * delta[j]).sum())
            .collect();
        logits.push(n.log_norm - 0.5 * dot(&delta, &precise));
        means.push(
            (0..d)
                .map(|i| c.mean[i] + (0..d).map(|j| n.gain[(i, j)] * delta[j]).sum::<f64>())
                .collect::<Vec<f64>>(),
        );
    }
    let resp = softmax(&logits);
    let mean: Vec<f64> = (0..d)
        .map(|i| resp.iter().zip(&means).map(|(r, m)| r * m[i]).sum())
        .collect();
    let s2 = sigma * sigma;
    Ok(Mat::from_fn(d, d, |i, j| {
        resp.iter()
            .zip(&means)
            .zip(&noisy)
            .map(|((r, m), n)| r * (s2 * n.gain[(i, j)] + (m[i] - mean[i]) * (m[j] - mean[j])))
            .sum()
    }))
}

/// Row: the denoiser's Jacobian.
pub const JACOBIAN_COVARIANCE: Claim = Claim {
    theorem: THEOREM,
    statement: "∇f*(y) (central differences) is symmetric PSD and = Cov[x|y]/σ² (spectral route)",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "stats::finite_difference: 2·|D(2h)−D(h)|/3 + 2δf/h per entry; proved only \
                      when the O(h⁴) remainder M₅h⁴/18 ≤ |D(2h)−D(h)|/3 + δf/2h (no bound on \
                      the 5th derivative of f* is derived); calibrated on the miyasawa \
                      proptests (d 1–8, σ 1e-2–10); + second_order_rounding_bound/σ²",
    planted_variant: "σ for σ²: ∇f*(y) = Cov[x|y]/σ",
    false_failure: FalseFailure::None,
};

/// PSD check of a Jacobian `J` known to within `err` (elementwise): residual `max(−λ_min, 0)` of
/// its symmetric part `(J + Jᵀ)/2`, tolerance `‖err‖_F + 8dε·max|λ|` (Weyl: the error moves every
/// eigenvalue by at most its Frobenius norm; the eigensolver adds its backward error).
fn psd_check(j: &Mat, err: &Mat) -> Result<Check> {
    let d = j.nrows();
    let sym = Mat::from_fn(d, d, |a, b| 0.5 * (j[(a, b)] + j[(b, a)]));
    let (eig, _) = sym_eigen(&sym)?;
    let frob = (0..d)
        .flat_map(|a| (0..d).map(move |b| (a, b)))
        .map(|(a, b)| err[(a, b)].powi(2))
        .sum::<f64>()
        .sqrt();
    Ok(Check {
        residual: (-eig[0]).max(0.0),
        tolerance: frob + 8.0 * d as f64 * EPS * linalg::max_abs(&eig),
    })
}

/// The Jacobian `J` of the Bayes posterior mean by central differences (step
/// [`super::tweedie::finite_difference_step`], error bound from Richardson's estimate plus
/// rounding): returns the worst of three residuals, each against its own bound —
/// asymmetry `|J − Jᵀ|` against `err + errᵀ`, negativity `max(0, −λ_min(sym J))` against
/// `‖err‖_F`, and `|J − Cov[x|y]/σ²|` against `err + bound/σ²`, with `Cov[x|y]` from
/// [`spectral_posterior_covariance`] (not from the posterior route that computes `f*`).
/// Residual and tolerance are reported as the pair with the largest ratio. Planted: the same
/// three residuals with `Cov[x|y]/σ` in place of `Cov[x|y]/σ²`.
pub fn jacobian_symmetric_psd_equals_covariance(
    target: &GaussianMixture,
    y: &[f64],
    sigma: f64,
) -> Result<Controlled> {
    let d = target.dim();
    let mean_error = rounding_bound(target, y, sigma)?;
    let jac = finite_difference::jacobian(
        |x| target.posterior_mean(x, sigma),
        y,
        super::tweedie::finite_difference_step(sigma),
        mean_error,
    )?;
    let (j, err) = (&jac.value, &jac.error);
    let cov = spectral_posterior_covariance(target, y, sigma)?;
    let cov_bound =
        scaled_by_inverse_variance(second_order_rounding_bound(target, y, sigma)?, sigma);
    let mut shape_checks = Vec::new();
    let (mut covariance_checks, mut planted_checks) = (Vec::new(), Vec::new());
    for a in 0..d {
        for b in 0..d {
            shape_checks.push(Check {
                residual: (j[(a, b)] - j[(b, a)]).abs(),
                tolerance: err[(a, b)] + err[(b, a)],
            });
            covariance_checks.push(Check {
                residual: (j[(a, b)] - cov[(a, b)] / (sigma * sigma)).abs(),
                tolerance: err[(a, b)] + cov_bound,
            });
            planted_checks.push(Check {
                residual: (j[(a, b)] - cov[(a, b)] / sigma).abs(),
                tolerance: err[(a, b)] + cov_bound,
            });
        }
    }
    shape_checks.push(psd_check(j, err)?);
    let worst = |extra: Vec<Check>| {
        shape_checks
            .iter()
            .copied()
            .chain(extra)
            .max_by(|a, b| a.ratio().total_cmp(&b.ratio()))
            .expect("d ≥ 1 gives at least one check")
    };
    Ok(Controlled {
        check: worst(covariance_checks),
        planted: worst(planted_checks),
    })
}

/// `e/σ²`: the error bound of `Cov[x|y]/σ²` when `Cov[x|y]` is known to within `e` (the
/// division's own rounding is a relative ε, inside the bound's slack).
fn scaled_by_inverse_variance(covariance_error: f64, sigma: f64) -> f64 {
    covariance_error / (sigma * sigma)
}

/// False-failure probability of the Monte Carlo MSE identity.
pub const MSE_ALPHA: f64 = 1e-6;

/// Row: the MSE identity.
pub const MSE_TRACE: Claim = Claim {
    theorem: THEOREM,
    statement: "MSE(f*) = σ² E tr∇f*(y), Monte Carlo, α = 1e-6",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "z(α)·SE two-sided normal quantile (statrs) of the paired differences, \
                      α = 1e-6 per (target, σ), fixed Philox seeds",
    planted_variant: "σ for σ² in front of the trace: MSE(f*) = σ E tr∇f*(y)",
    false_failure: FalseFailure::PerCase(MSE_ALPHA),
};

/// The outcome of [`mse_equals_sigma2_trace_jacobian`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MseTrace {
    /// The z-test of the claim and of its planted variant.
    pub controlled: Controlled,
    /// The Monte Carlo estimate of `MSE(f*)`.
    pub mse: f64,
}

/// `MSE(f*) = E‖x − f*(y)‖² = σ² E tr∇f*(y)` by Monte Carlo over `n` pairs `(x, y = x + σg)`
/// drawn from `rng` (`f*` at all n points by the batched posterior route,
/// [`GaussianMixture::posterior_mean_batch`]): the paired differences `D_i = ‖x_i − f*(y_i)‖² − σ²tr∇f*(y_i)` (with
/// `tr∇f* = d + σ² tr∇²log p_σ` from the analytic Hessian, the density route) have mean zero;
/// residual `|mean D|`, tolerance `z(α)·SE` with `α = 1e-6`. Also returns the MSE estimate.
/// Planted: the same z-test of `D' = ‖x − f*(y)‖² − σ tr∇f*(y)` (its own SE).
pub fn mse_equals_sigma2_trace_jacobian(
    target: &GaussianMixture,
    sigma: f64,
    n: usize,
    rng: &mut Rng,
) -> Result<MseTrace> {
    let d = target.dim();
    let x = target.sample(rng, n);
    let mut diffs = Vec::with_capacity(n);
    let mut planted_diffs = Vec::with_capacity(n);
    let mut sq_errors = Vec::with_capacity(n);
    // y_i = x_i + σg_i row by row (the rng's order), then f*(y_i) for all rows at once by the
    // batched posterior route
    let mut ys = Mat::zeros(n, d);
    for i in 0..n {
        for j in 0..d {
            ys[(i, j)] = x[(i, j)] + sigma * rng.normal();
        }
    }
    let means = target.posterior_mean_batch(&ys, sigma)?;
    for i in 0..n {
        let xi = linalg::row(&x, i);
        let y = linalg::row(&ys, i);
        let f = linalg::row(&means, i);
        let sq: f64 = xi.iter().zip(&f).map(|(a, b)| (a - b).powi(2)).sum();
        let h = target.score_hessian(&y, sigma)?;
        let trace = d as f64 + sigma * sigma * (0..d).map(|k| h[(k, k)]).sum::<f64>();
        diffs.push(sq - sigma * sigma * trace);
        planted_diffs.push(sq - sigma * trace);
        sq_errors.push(sq);
    }
    let z_test = |v: &[f64]| {
        let (mean, se) = mean_and_std_error(v);
        Check {
            residual: mean.abs(),
            tolerance: two_sided_z(MSE_ALPHA) * se,
        }
    };
    Ok(MseTrace {
        controlled: Controlled {
            check: z_test(&diffs),
            planted: z_test(&planted_diffs),
        },
        mse: sq_errors.iter().sum::<f64>() / n as f64,
    })
}

/// `check` over the targets of [`targets_at`] (seed `seed`) at every
/// [`super::tweedie::DEFAULT_SIGMAS`] level and the [`default_points`] of each.
fn over_default_cases(
    depth: Depth,
    seed: u64,
    check: fn(&GaussianMixture, &[f64], f64) -> Result<Controlled>,
) -> Result<Vec<Controlled>> {
    let mut rng = Rng::new(0x003a_5a3a, seed as u32);
    let mut out = Vec::new();
    for target in targets_at(depth, seed)? {
        for &sigma in &super::tweedie::DEFAULT_SIGMAS {
            for y in default_points(&mut rng, &target, sigma) {
                out.push(check(&target, &y, sigma)?);
            }
        }
    }
    Ok(out)
}

/// The [`COVARIANCE_HESSIAN`] row's cases: [`covariance_vs_hessian`] over the default cases.
pub fn covariance_hessian_cases(depth: Depth) -> Result<Vec<Controlled>> {
    over_default_cases(depth, 11, covariance_vs_hessian)
}

/// The [`JACOBIAN_COVARIANCE`] row's cases: [`jacobian_symmetric_psd_equals_covariance`] over
/// the default cases.
pub fn jacobian_covariance_cases(depth: Depth) -> Result<Vec<Controlled>> {
    over_default_cases(depth, 12, jacobian_symmetric_psd_equals_covariance)
}

/// The [`MSE_TRACE`] row's cases: 2000 pairs per target of [`targets_at`] (seed 13) at
/// σ ∈ {0.1, 1}; 8000 pairs at thorough (2000 still at quick, where the CLT behind z·SE wants
/// them).
pub(crate) fn mse_trace_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let pairs = depth.samples(2000).max(2000);
    let mut rng = Rng::new(0x003a_5a3a, 13);
    let mut out = Vec::new();
    for target in targets_at(depth, 13)? {
        for &sigma in &[0.1, 1.0] {
            out.push(mse_equals_sigma2_trace_jacobian(&target, sigma, pairs, &mut rng)?.controlled);
        }
    }
    Ok(out)
}

/// The checks of `verify` at a depth.
pub(crate) fn default_verdicts(_gpu: Result<&Gpu>, depth: Depth) -> Vec<Verdict> {
    vec![
        Verdict::collect(&COVARIANCE_HESSIAN, CPU_BACKEND, depth, || {
            covariance_hessian_cases(depth)
        }),
        Verdict::collect(&JACOBIAN_COVARIANCE, CPU_BACKEND, depth, || {
            jacobian_covariance_cases(depth)
        }),
        Verdict::collect(&MSE_TRACE, CPU_BACKEND, depth, || mse_trace_cases(depth)),
    ]
}

#[cfg(test)]
mod tests {
    use super::{psd_check, scaled_by_inverse_variance};
    use crate::linalg::Mat;

    /// `e/σ²` by hand: 3/0.5² = 12 and 3/4² = 0.1875 (exact in binary).
    #[test]
    fn scaled_by_inverse_variance_by_hand() {
        assert_eq!(scaled_by_inverse_variance(3.0, 0.5), 12.0);
        assert_eq!(scaled_by_inverse_variance(3.0, 4.0), 0.1875);
    }

    /// The PSD check reads the symmetric part's smallest eigenvalue: `[[2, 1], [1, 2]]` passes,
    /// `[[0, 1], [1, 0]]` (eigenvalues ±1) and `[[1, 3], [−1, −2]]` (symmetric part
    /// `[[1, 1], [1, −2]]`, λ_min = (−1 − √13)/2) fail by exactly −λ_min.
    #[test]
    fn psd_check_reads_the_symmetric_part() {
        let m = |v: [[f64; 2]; 2]| Mat::from_fn(2, 2, |a, b| v[a][b]);
        let exact = Mat::zeros(2, 2);
        let ok = psd_check(&m([[2.0, 1.0], [1.0, 2.0]]), &exact).unwrap();
        assert!(ok.passed() && ok.residual == 0.0);
        let swap = psd_check(&m([[0.0, 1.0], [1.0, 0.0]]), &exact).unwrap();
        assert!((swap.residual - 1.0).abs() < 1e-14 && !swap.passed());
        let skew = psd_check(&m([[1.0, 3.0], [-1.0, -2.0]]), &exact).unwrap();
        let lambda_min = (-1.0 - 13f64.sqrt()) / 2.0;
        assert!((skew.residual + lambda_min).abs() < 1e-14, "{skew:?}");
    }
}
