//! `miyasawa_covariance` — the second-order Miyasawa relation (Sugolov Prop.3; Kadkhodaie et al.
//! App. C.1, eq.8–9):
//!
//! `Cov[x | y] = σ²(I + σ²∇²log p_σ(y))`, hence the Jacobian of the Bayes denoiser
//! `∇f*(y) = Cov[x|y]/σ²` is symmetric PSD, and `MSE(f*) = E tr Cov[x|y] = σ² E tr∇f*(y)`.
//!
//! Routes compared: the posterior covariance from Bayes' rule (law of total covariance over the
//! Wiener posteriors) against the analytic Hessian of `log p_σ`; the Jacobian of the Bayes
//! posterior mean by central differences against the posterior covariance; and the Monte Carlo
//! squared error of `f*` on samples `(x, y)` against `σ² tr∇f*` from the analytic Hessian.

use super::tweedie::rounding_bound;
use super::{default_points, default_targets, Check, Verdict, CPU_BACKEND};
use crate::error::Result;
use crate::gpu::Gpu;
use crate::linalg::{self, max_abs_diff_mat, sym_eigen, Mat, EPS};
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

/// `Cov[x|y]` (Bayes) against `σ²(I + σ²∇²log p_σ(y))` (analytic Hessian), max entry difference.
pub fn covariance_vs_hessian(target: &GaussianMixture, y: &[f64], sigma: f64) -> Result<Check> {
    let cov = target.posterior_covariance(y, sigma)?;
    let h = target.score_hessian(y, sigma)?;
    let d = target.dim();
    let s2 = sigma * sigma;
    let miyasawa = Mat::from_fn(d, d, |i, j| {
        s2 * (if i == j { 1.0 } else { 0.0 } + s2 * h[(i, j)])
    });
    Ok(Check {
        residual: max_abs_diff_mat(&cov, &miyasawa),
        tolerance: second_order_rounding_bound(target, y, sigma)?,
    })
}

/// The Jacobian `J` of the Bayes posterior mean by central differences (step
/// [`super::tweedie::finite_difference_step`], error bound from Richardson's estimate plus
/// rounding): returns the worst of three residuals, each against its own bound —
/// asymmetry `|J − Jᵀ|` against `err + errᵀ`, negativity `max(0, −λ_min(sym J))` against
/// `‖err‖_F`, and `|J − Cov[x|y]/σ²|` against `err + bound/σ²`. Residual and tolerance are
/// reported as the pair with the largest ratio.
pub fn jacobian_symmetric_psd_equals_covariance(
    target: &GaussianMixture,
    y: &[f64],
    sigma: f64,
) -> Result<Check> {
    let d = target.dim();
    let mean_error = rounding_bound(target, y, sigma)?;
    let jac = finite_difference::jacobian(
        |x| target.posterior_mean(x, sigma),
        y,
        super::tweedie::finite_difference_step(sigma),
        mean_error,
    )?;
    let (j, err) = (&jac.value, &jac.error);
    let cov = target.posterior_covariance(y, sigma)?;
    let cov_bound = second_order_rounding_bound(target, y, sigma)? / (sigma * sigma);
    let mut checks = Vec::new();
    for a in 0..d {
        for b in 0..d {
            checks.push(Check {
                residual: (j[(a, b)] - j[(b, a)]).abs(),
                tolerance: err[(a, b)] + err[(b, a)],
            });
            checks.push(Check {
                residual: (j[(a, b)] - cov[(a, b)] / (sigma * sigma)).abs(),
                tolerance: err[(a, b)] + cov_bound,
            });
        }
    }
    let sym = Mat::from_fn(d, d, |a, b| 0.5 * (j[(a, b)] + j[(b, a)]));
    let (eig, _) = sym_eigen(&sym)?;
    let frob = (0..d)
        .flat_map(|a| (0..d).map(move |b| (a, b)))
        .map(|(a, b)| err[(a, b)].powi(2))
        .sum::<f64>()
        .sqrt();
    checks.push(Check {
        residual: (-eig[0]).max(0.0),
        tolerance: frob + 8.0 * d as f64 * EPS * linalg::max_abs(&eig),
    });
    Ok(checks
        .into_iter()
        .max_by(|a, b| a.ratio().total_cmp(&b.ratio()))
        .expect("d ≥ 1 gives at least one check"))
}

/// False-failure probability of the Monte Carlo MSE identity.
pub const MSE_ALPHA: f64 = 1e-6;

/// `MSE(f*) = E‖x − f*(y)‖² = σ² E tr∇f*(y)` by Monte Carlo over `n` pairs `(x, y = x + σg)`
/// drawn from `rng`: the paired differences `D_i = ‖x_i − f*(y_i)‖² − σ²tr∇f*(y_i)` (with
/// `tr∇f* = d + σ² tr∇²log p_σ` from the analytic Hessian, the density route) have mean zero;
/// residual `|mean D|`, tolerance `z(α)·SE` with `α = 1e-6`. Also returns the MSE estimate.
pub fn mse_equals_sigma2_trace_jacobian(
    target: &GaussianMixture,
    sigma: f64,
    n: usize,
    rng: &mut Rng,
) -> Result<(Check, f64)> {
    let d = target.dim();
    let x = target.sample(rng, n);
    let mut diffs = Vec::with_capacity(n);
    let mut sq_errors = Vec::with_capacity(n);
    for i in 0..n {
        let xi = linalg::row(&x, i);
        let y: Vec<f64> = xi.iter().map(|v| v + sigma * rng.normal()).collect();
        let f = target.posterior_mean(&y, sigma)?;
        let sq: f64 = xi.iter().zip(&f).map(|(a, b)| (a - b).powi(2)).sum();
        let h = target.score_hessian(&y, sigma)?;
        let trace = d as f64 + sigma * sigma * (0..d).map(|k| h[(k, k)]).sum::<f64>();
        diffs.push(sq - sigma * sigma * trace);
        sq_errors.push(sq);
    }
    let (mean, se) = mean_and_std_error(&diffs);
    let mse = sq_errors.iter().sum::<f64>() / n as f64;
    Ok((
        Check {
            residual: mean.abs(),
            tolerance: two_sided_z(MSE_ALPHA) * se,
        },
        mse,
    ))
}

/// The default checks of `verify`.
pub fn default_verdicts(_gpu: Result<&Gpu>) -> Vec<Verdict> {
    let over_cases = |seed: u64,
                      check: fn(&GaussianMixture, &[f64], f64) -> Result<Check>|
     -> Result<Vec<Check>> {
        let mut rng = Rng::new(0x003a_5a3a, seed as u32);
        let mut out = Vec::new();
        for target in default_targets(seed)? {
            for &sigma in &super::tweedie::DEFAULT_SIGMAS {
                for y in default_points(&mut rng, &target, sigma) {
                    out.push(check(&target, &y, sigma)?);
                }
            }
        }
        Ok(out)
    };
    vec![
        Verdict::uncontrolled(
            THEOREM,
            "Cov[x|y] (Bayes) = σ²(I + σ²∇²log p_σ(y)) (analytic Hessian)",
            CPU_BACKEND,
            || over_cases(11, covariance_vs_hessian),
        ),
        Verdict::uncontrolled(
            THEOREM,
            "∇f*(y) (central differences) is symmetric PSD and = Cov[x|y]/σ²",
            CPU_BACKEND,
            || over_cases(12, jacobian_symmetric_psd_equals_covariance),
        ),
        Verdict::uncontrolled(
            THEOREM,
            "MSE(f*) = σ² E tr∇f*(y), Monte Carlo, α = 1e-6",
            CPU_BACKEND,
            || {
                let mut rng = Rng::new(0x003a_5a3a, 13);
                let mut out = Vec::new();
                for target in default_targets(13)? {
                    for &sigma in &[0.1, 1.0] {
                        out.push(
                            mse_equals_sigma2_trace_jacobian(&target, sigma, 2000, &mut rng)?.0,
                        );
                    }
                }
                Ok(out)
            },
        ),
    ]
}
