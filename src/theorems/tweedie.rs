//! `tweedie` — Tweedie's formula (book ch.3 Thm 3.2, eq.3.2.23; VP form eq.3.2.86 / Exercise 3.4;
//! Kadkhodaie et al. eq.3; Sugolov Prop.3):
//!
//! `E[x | y] = y + σ² ∇log p_σ(y)` for `y = x + σg`, `g ~ N(0, I)`, and for the variance-preserving
//! process `x_t = α_t x + σ_t g`: `E[x | x_t] = (x_t + σ_t² ∇log p_t(x_t)) / α_t`.
//!
//! Routes compared: the posterior mean from Bayes' rule ([`ClosedForm::posterior_mean`]) against
//! the score from analytic differentiation of `log p_σ` ([`ClosedForm::score`]) and from central
//! differences of `log p_σ`; the two-point closed form `tanh(y/σ²)` (book eq.3.2.36); a non-mixture
//! target (uniform) with the posterior mean by quadrature; and a GPU Monte Carlo estimate of
//! `E[x|y]` by importance sampling.

use super::{default_points, default_targets, Check, Verdict, CPU_BACKEND};
use crate::error::{Error, Result};
use crate::gpu::{monte_carlo, Gpu};
use crate::linalg::{self, max_abs, max_abs_diff, Mat, EPS};
use crate::rng::{PhiloxStream, Rng};
use crate::stats::{finite_difference, two_sided_z};
use crate::targets::{two_point, uniform::Uniform1d, ClosedForm, GaussianMixture, Target};

/// The theorem id.
pub const THEOREM: &str = "tweedie";

/// Bound on the f64 rounding error of either closed-form route of a mixture at `(y, σ)`:
/// `32 (d+2) ε κ (1 + Q) S √d`, where κ = max_k (λ_max,k + σ²)/σ² bounds the condition number
/// of every solve, `Q = Σ_k ρ_k δ_kᵀC_k⁻¹δ_k` scales the error of the log-evidences that feed the
/// responsibilities, `S = max(‖y‖_∞, target scale)` the size of the vectors involved, and
/// `32 (d+2) √d` counts the length of the dot products and the O(1) sequential steps
/// (backward-stable Cholesky / spectral products: Higham, *Accuracy and Stability*, §8, §10).
pub fn rounding_bound(target: &GaussianMixture, y: &[f64], sigma: f64) -> Result<f64> {
    let d = target.dim() as f64;
    let kappa = target.noisy_condition_number(sigma);
    let q = target.weighted_mahalanobis(y, sigma)?;
    let s = max_abs(y).max(target.scale());
    Ok(32.0 * (d + 2.0) * EPS * kappa * (1.0 + q) * s * d.sqrt())
}

/// `E[x|y]` (Bayes) against `y + σ²∇log p_σ(y)` (analytic score); tolerance [`rounding_bound`].
pub fn bayes_vs_analytic_score(target: &GaussianMixture, y: &[f64], sigma: f64) -> Result<Check> {
    let bayes = target.posterior_mean(y, sigma)?;
    let score = target.score(y, sigma)?;
    let tweedie: Vec<f64> = y
        .iter()
        .zip(&score)
        .map(|(a, s)| a + sigma * sigma * s)
        .collect();
    Ok(Check {
        residual: max_abs_diff(&bayes, &tweedie),
        tolerance: rounding_bound(target, y, sigma)?,
    })
}

/// Central-difference step for `log p_σ`: `h = σ·ε^{1/3}·4`, balancing the `h²` truncation against
/// the `ε/h` rounding on the length scale σ of the noisy density.
pub fn finite_difference_step(sigma: f64) -> f64 {
    4.0 * sigma * EPS.cbrt()
}

/// `E[x|y]` (Bayes) against `y + σ²·(central differences of log p_σ)(y)`; tolerance
/// `σ²·(finite-difference error bound) + rounding_bound`, the finite-difference bound being
/// Richardson's estimate plus the rounding of `log p_σ` (bounded like [`rounding_bound`], with
/// `|log p_σ| + Q` in place of S).
pub fn bayes_vs_finite_difference_score(
    target: &GaussianMixture,
    y: &[f64],
    sigma: f64,
) -> Result<Check> {
    let bayes = target.posterior_mean(y, sigma)?;
    let d = target.dim() as f64;
    let kappa = target.noisy_condition_number(sigma);
    let q = target.weighted_mahalanobis(y, sigma)?;
    let logp = target.log_density(y, sigma)?;
    let f_error = 32.0 * (d + 2.0) * EPS * kappa * (logp.abs() + 1.0 + q);
    let grad = finite_difference::gradient(
        |x| target.log_density(x, sigma),
        y,
        finite_difference_step(sigma),
        f_error,
    )?;
    let tweedie: Vec<f64> = y
        .iter()
        .zip(&grad.value)
        .map(|(a, s)| a + sigma * sigma * s)
        .collect();
    Ok(Check {
        residual: max_abs_diff(&bayes, &tweedie),
        tolerance: sigma * sigma * max_abs(&grad.error) + rounding_bound(target, y, sigma)?,
    })
}

/// VP form at time `t ∈ (0, 1)` with the book's schedule `α_t = √(1 − t²)`, `σ_t = t`:
/// `(x_t + σ_t²∇log p_t(x_t))/α_t`, with `p_t` the density of `α_t x + σ_t g` (the mixture
/// scaled by α_t, then noised), against `E[x | x_t] = E[x | y = x_t/α_t]` at noise `σ_t/α_t`
/// (Bayes). Tolerance: the two rounding bounds, divided by α_t.
pub fn vp_form(target: &GaussianMixture, x_t: &[f64], t: f64) -> Result<Check> {
    if !(t > 0.0 && t < 1.0) {
        return Err(Error::InvalidArgument {
            what: "t".into(),
            reason: format!("the VP time must lie in (0, 1), got {t}"),
        });
    }
    let alpha = (1.0 - t * t).sqrt();
    let p_t = target.scaled(alpha)?;
    let score = p_t.score(x_t, t)?;
    let lhs: Vec<f64> = x_t
        .iter()
        .zip(&score)
        .map(|(x, s)| (x + t * t * s) / alpha)
        .collect();
    let y: Vec<f64> = x_t.iter().map(|x| x / alpha).collect();
    let rhs = target.posterior_mean(&y, t / alpha)?;
    Ok(Check {
        residual: max_abs_diff(&lhs, &rhs),
        tolerance: (rounding_bound(&p_t, x_t, t)? + rounding_bound(target, &y, t / alpha)?) / alpha,
    })
}

/// Book Example 3.4: for x uniform on {−1, +1}, `tanh(y/σ²)` against both the Bayes posterior
/// mean and `y + σ²∇log p_σ(y)` of the mixture engine. Tolerance: `rounding_bound + 4ε`
/// (tanh is correctly rounded to a few ulp of a value ≤ 1).
pub fn two_point_tanh(y: f64, sigma: f64) -> Result<Check> {
    let target = two_point::two_point();
    let tanh = two_point::posterior_mean_tanh(y, sigma)?;
    let bayes = target.posterior_mean(&[y], sigma)?[0];
    let score = target.score(&[y], sigma)?[0];
    let tweedie = y + sigma * sigma * score;
    Ok(Check {
        residual: (tanh - bayes).abs().max((tanh - tweedie).abs()),
        tolerance: rounding_bound(&target, &[y], sigma)? + 4.0 * EPS,
    })
}

/// Uniform[−a, a] (not a mixture): `E[x|y]` by quadrature of Bayes' rule against
/// `y + σ²∇log p_σ(y)` from the closed-form CDF density. Tolerance: the quadrature's propagated
/// error estimate plus the rounding of the score, `σ²·8ε(φ_max/σ + |s|)/mass + 4ε|y|` (each
/// tail mass and φ accurate to 4ε relative — libm's erfc is within about one ulp — so the
/// difference of two φ's and the mass carry 8ε absolute, amplified by `1/mass`).
///
/// The CDF form underflows far in the tails, so `y` must lie within 6σ of `[−a, a]`
/// (then the mass is at least Φ(−6) ≈ 10⁻⁹); a `y` outside is refused with an error.
pub fn uniform_quadrature(half_width: f64, y: f64, sigma: f64) -> Result<Check> {
    let u = Uniform1d::new(half_width)?;
    if y.is_nan() || y.abs() > half_width + 6.0 * sigma {
        return Err(Error::InvalidArgument {
            what: "y".into(),
            reason: format!(
                "must lie within 6σ = {} of [−{half_width}, {half_width}], got {y}",
                6.0 * sigma
            ),
        });
    }
    let q = u.posterior_mean_quadrature(y, sigma)?;
    let score = u.score(y, sigma)?;
    let mass = u.density(y, sigma)? * 2.0 * half_width;
    let tweedie = y + sigma * sigma * score;
    Ok(Check {
        residual: (q.value - tweedie).abs(),
        tolerance: q.error
            + sigma * sigma * 8.0 * EPS * (0.4 / sigma + score.abs()) / mass
            + 4.0 * EPS * y.abs(),
    })
}

/// The false-failure probability of the GPU Monte Carlo check, for the whole family of queries
/// and coordinates together (Bonferroni: each coordinate is tested at `ALPHA/(Q·d)`).
pub const MONTE_CARLO_ALPHA: f64 = 1e-6;

/// GPU importance-sampling estimate of `E[x|y]` against the Bayes closed form, for every row of
/// `queries`. Residual: `max_i (|x̂_i − m_i| − b)/SE_i`, the excess over the f32 accumulation
/// bound `b = 4γ_m·X` (`m = G/64 + 64` sequential f32 additions per sum — G samples per
/// workgroup, the groups being merged in f64 — and X bounding |x|)
/// in units of the delta-method standard error; tolerance `z(α/(Q·d))`. A query whose effective
/// sample size is below 1000 is an error: the normal approximation would not be justified there.
pub fn gpu_monte_carlo(
    gpu: &Gpu,
    target: &GaussianMixture,
    queries: &Mat,
    sigma: f64,
    n_samples: u32,
    stream: PhiloxStream,
) -> Result<Vec<Check>> {
    let est = monte_carlo::mc_posterior_mean(gpu, target, queries, sigma, n_samples, stream)?;
    let d = target.dim();
    let z = two_sided_z(MONTE_CARLO_ALPHA / (queries.nrows() * d) as f64);
    let m = f64::from(monte_carlo::SAMPLES_PER_GROUP) / 64.0 + 64.0;
    let u32f = crate::gpu::gmm::F32_UNIT_ROUNDOFF;
    let x_bound = target.scale() * (1.0 + 5.8 * (d as f64).sqrt());
    let b = 4.0 * (m * u32f / (1.0 - m * u32f)) * x_bound;
    est.iter()
        .enumerate()
        .map(|(q, e)| {
            if e.effective_sample_size < 1000.0 {
                return Err(Error::InvalidArgument {
                    what: format!("query {q}"),
                    reason: format!(
                        "effective sample size {:.0} < 1000: raise n_samples or sigma",
                        e.effective_sample_size
                    ),
                });
            }
            let y = linalg::row(queries, q);
            let truth = target.posterior_mean(&y, sigma)?;
            let residual = (0..d)
                .map(|i| ((e.mean[i] - truth[i]).abs() - b).max(0.0) / e.std_error[i])
                .fold(0.0, f64::max);
            Ok(Check {
                residual,
                tolerance: z,
            })
        })
        .collect()
}

/// Noise levels of the default cases, from 10⁻² to 10.
pub const DEFAULT_SIGMAS: [f64; 4] = [0.01, 0.1, 1.0, 10.0];

fn over_default_cases(
    mut check: impl FnMut(&GaussianMixture, &[f64], f64) -> Result<Check>,
) -> Result<Vec<Check>> {
    let mut rng = Rng::new(0x007e_ed1e, 1);
    let mut out = Vec::new();
    for target in default_targets(2024)? {
        for &sigma in &DEFAULT_SIGMAS {
            for y in default_points(&mut rng, &target, sigma) {
                out.push(check(&target, &y, sigma)?);
            }
        }
    }
    Ok(out)
}

/// The default checks of `verify`.
pub fn default_verdicts(gpu: Result<&Gpu>) -> Vec<Verdict> {
    let mut out = vec![
        Verdict::uncontrolled(
            THEOREM,
            "E[x|y] (Bayes) = y + σ²∇log p_σ(y) (analytic score), random GMMs",
            CPU_BACKEND,
            || over_default_cases(bayes_vs_analytic_score),
        ),
        Verdict::uncontrolled(
            THEOREM,
            "E[x|y] (Bayes) = y + σ²∇log p_σ(y) (central differences of log p_σ)",
            CPU_BACKEND,
            || over_default_cases(bayes_vs_finite_difference_score),
        ),
        Verdict::uncontrolled(
            THEOREM,
            "VP form E[x|x_t] = (x_t + σ_t²∇log p_t(x_t))/α_t, α_t = √(1−t²)",
            CPU_BACKEND,
            || {
                let mut rng = Rng::new(0x007e_ed1e, 2);
                let mut out = Vec::new();
                for target in default_targets(2025)? {
                    for &t in &[0.1, 0.5, 0.9] {
                        for x in default_points(&mut rng, &target, t) {
                            out.push(vp_form(&target, &x, t)?);
                        }
                    }
                }
                Ok(out)
            },
        ),
        Verdict::uncontrolled(
            THEOREM,
            "two-point ±1: E[x|y] = tanh(y/σ²) (book eq.3.2.36)",
            CPU_BACKEND,
            || {
                let mut out = Vec::new();
                for &sigma in &[0.1, 0.5, 1.0, 2.0] {
                    for i in 0..=40 {
                        out.push(two_point_tanh(-4.0 + 0.2 * f64::from(i), sigma)?);
                    }
                }
                Ok(out)
            },
        ),
        Verdict::uncontrolled(
            THEOREM,
            "uniform[−1,1] (non-mixture): quadrature E[x|y] = y + σ²∇log p_σ(y)",
            CPU_BACKEND,
            || {
                let mut out = Vec::new();
                for &sigma in &[0.05, 0.2, 1.0, 2.0] {
                    let reach = 1.0 + 6.0 * sigma;
                    for i in 0..=24 {
                        let y = reach * (f64::from(i) / 12.0 - 1.0);
                        out.push(uniform_quadrature(1.0, y, sigma)?);
                    }
                }
                Ok(out)
            },
        ),
    ];
    let backend = super::backend_label(&gpu);
    out.push(Verdict::uncontrolled(
        THEOREM,
        "GPU Monte Carlo E[x|y] within z·SE of Bayes (family-wise α = 1e-6)",
        &backend,
        || {
            let gpu = gpu?;
            let mut rng = Rng::new(0x007e_ed1e, 3);
            let mut out = Vec::new();
            // d ∈ {1, 2}: prior-proposal importance sampling keeps an effective sample size
            // above 1000 there at σ = 1 (it decays like (σ²/(σ² + Var))^{d/2}).
            for target in default_targets(2026)?.into_iter().take(6) {
                let sigma = 1.0;
                let x = target.sample(&mut rng, 8);
                let noise = Mat::from_fn(8, target.dim(), |_, _| sigma * rng.normal());
                let queries = &x + &noise;
                out.extend(gpu_monte_carlo(
                    gpu,
                    &target,
                    &queries,
                    sigma,
                    1 << 18,
                    PhiloxStream::new(99, out.len() as u32),
                )?);
            }
            Ok(out)
        },
    ));
    out
}
