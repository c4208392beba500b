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
//!
//! Every check returns a [`Controlled`]: the check of the claim and the same check run on a
//! planted wrong variant of it (σ for σ², a wrong power of α_t, ...), which it must reject.

use super::{
    default_points, default_targets, targets_at, Check, Claim, Controlled, Depth, FalseFailure,
    ToleranceKind, Verdict, CPU_BACKEND,
};
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

/// `y + c·s`: Tweedie's estimate from a score `s` with the coefficient `c` (σ² in the claim;
/// the planted variants put σ there).
fn tweedie_estimate(y: &[f64], score: &[f64], coefficient: f64) -> Vec<f64> {
    y.iter()
        .zip(score)
        .map(|(a, s)| a + coefficient * s)
        .collect()
}

/// Row: Bayes against the analytic score.
pub const ANALYTIC_SCORE: Claim = Claim {
    theorem: THEOREM,
    statement: "E[x|y] (Bayes) = y + σ²∇log p_σ(y) (analytic score), random GMMs",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "tweedie::rounding_bound: 32(d+2)εκ(1+Q)S√d, backward-stable solves \
                      (Higham §8, §10)",
    planted_variant: "σ for σ²: E[x|y] = y + σ∇log p_σ(y)",
    false_failure: FalseFailure::None,
};

/// `E[x|y]` (Bayes) against `y + σ²∇log p_σ(y)` (analytic score); tolerance [`rounding_bound`].
/// Planted: `y + σ∇log p_σ(y)` against the same Bayes mean and tolerance.
pub fn bayes_vs_analytic_score(
    target: &GaussianMixture,
    y: &[f64],
    sigma: f64,
) -> Result<Controlled> {
    let bayes = target.posterior_mean(y, sigma)?;
    let score = target.score(y, sigma)?;
    let tolerance = rounding_bound(target, y, sigma)?;
    let check = |coefficient: f64| Check {
        residual: max_abs_diff(&bayes, &tweedie_estimate(y, &score, coefficient)),
        tolerance,
    };
    Ok(Controlled {
        check: check(sigma * sigma),
        planted: check(sigma),
    })
}

/// Central-difference step for `log p_σ`: `h = σ·ε^{1/3}·4`, balancing the `h²` truncation against
/// the `ε/h` rounding on the length scale σ of the noisy density.
pub fn finite_difference_step(sigma: f64) -> f64 {
    4.0 * sigma * EPS.cbrt()
}

/// Row: Bayes against central differences of `log p_σ`.
pub const FINITE_DIFFERENCE_SCORE: Claim = Claim {
    theorem: THEOREM,
    statement: "E[x|y] (Bayes) = y + σ²∇log p_σ(y) (central differences of log p_σ)",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "stats::finite_difference: 2·|D(2h)−D(h)|/3 + 2δf/h; proved only when the \
                      O(h⁴) remainder M₅h⁴/18 ≤ |D(2h)−D(h)|/3 + δf/2h (no bound on the 5th \
                      derivative of log p_σ is derived); calibrated on the tweedie proptests \
                      (d 1–16, σ 1e-2–10) and the sin·exp unit test; + tweedie::rounding_bound",
    planted_variant: "σ for σ²: E[x|y] = y + σ·(central differences of log p_σ)",
    false_failure: FalseFailure::None,
};

/// `E[x|y]` (Bayes) against `y + σ²·(central differences of log p_σ)(y)`; tolerance
/// `σ²·(finite-difference error bound) + rounding_bound`, the finite-difference bound being
/// Richardson's estimate plus the rounding of `log p_σ` (bounded like [`rounding_bound`], with
/// `|log p_σ| + Q` in place of S). Planted: `y + σ·(differences)` with the same tolerance.
pub fn bayes_vs_finite_difference_score(
    target: &GaussianMixture,
    y: &[f64],
    sigma: f64,
) -> Result<Controlled> {
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
    let tolerance = sigma * sigma * max_abs(&grad.error) + rounding_bound(target, y, sigma)?;
    let check = |coefficient: f64| Check {
        residual: max_abs_diff(&bayes, &tweedie_estimate(y, &grad.value, coefficient)),
        tolerance,
    };
    Ok(Controlled {
        check: check(sigma * sigma),
        planted: check(sigma),
    })
}

/// Row: the variance-preserving form.
pub const VP_FORM: Claim = Claim {
    theorem: THEOREM,
    statement: "VP form E[x|x_t] = (x_t + σ_t²∇log p_t(x_t))/α_t, α_t = √(1−t²)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "tweedie::rounding_bound of both mixtures (p_t at x_t, p at x_t/α_t), / α_t",
    planted_variant: "α_t² for α_t: E[x|x_t] = (x_t + σ_t²∇log p_t(x_t))/α_t²",
    false_failure: FalseFailure::None,
};

/// VP form at time `t ∈ (0, 1)` with the book's schedule `α_t = √(1 − t²)`, `σ_t = t`:
/// `(x_t + σ_t²∇log p_t(x_t))/α_t`, with `p_t` the density of `α_t x + σ_t g` (the mixture
/// scaled by α_t, then noised), against `E[x | x_t] = E[x | y = x_t/α_t]` at noise `σ_t/α_t`
/// (Bayes). Tolerance: the two rounding bounds, divided by α_t. Planted: division by α_t²
/// instead of α_t, same tolerance.
pub fn vp_form(target: &GaussianMixture, x_t: &[f64], t: f64) -> Result<Controlled> {
    if !(t > 0.0 && t < 1.0) {
        return Err(Error::InvalidArgument {
            what: "t".into(),
            reason: format!("the VP time must lie in (0, 1), got {t}"),
        });
    }
    let alpha = (1.0 - t * t).sqrt();
    let p_t = target.scaled(alpha)?;
    let score = p_t.score(x_t, t)?;
    let numerator = tweedie_estimate(x_t, &score, t * t);
    let y: Vec<f64> = x_t.iter().map(|x| x / alpha).collect();
    let rhs = target.posterior_mean(&y, t / alpha)?;
    let tolerance =
        (rounding_bound(&p_t, x_t, t)? + rounding_bound(target, &y, t / alpha)?) / alpha;
    let check = |divisor: f64| Check {
        residual: numerator
            .iter()
            .zip(&rhs)
            .map(|(n, r)| (n / divisor - r).abs())
            .fold(0.0, f64::max),
        tolerance,
    };
    Ok(Controlled {
        check: check(alpha),
        planted: check(alpha * alpha),
    })
}

/// Row: the two-point law's closed form.
pub const TWO_POINT_TANH: Claim = Claim {
    theorem: THEOREM,
    statement: "two-point ±1: E[x|y] = tanh(y/σ²) (book eq.3.2.36)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "tweedie::rounding_bound + 4ε (tanh within a few ulp of a value ≤ 1)",
    planted_variant: "σ for σ²: tanh(y/σ)",
    false_failure: FalseFailure::None,
};

/// Book Example 3.4: for x uniform on {−1, +1}, `tanh(y/σ²)` against both the Bayes posterior
/// mean and `y + σ²∇log p_σ(y)` of the mixture engine. Tolerance: `rounding_bound + 4ε`
/// (tanh is correctly rounded to a few ulp of a value ≤ 1). Planted: `tanh(y/σ)` against the
/// same two routes and tolerance.
pub fn two_point_tanh(y: f64, sigma: f64) -> Result<Controlled> {
    let target = two_point::two_point();
    let tanh = two_point::posterior_mean_tanh(y, sigma)?;
    let planted_tanh = (y / sigma).tanh();
    let bayes = target.posterior_mean(&[y], sigma)?[0];
    let score = target.score(&[y], sigma)?[0];
    let tweedie = y + sigma * sigma * score;
    let tolerance = rounding_bound(&target, &[y], sigma)? + 4.0 * EPS;
    let check = |closed_form: f64| Check {
        residual: (closed_form - bayes)
            .abs()
            .max((closed_form - tweedie).abs()),
        tolerance,
    };
    Ok(Controlled {
        check: check(tanh),
        planted: check(planted_tanh),
    })
}

/// Row: the uniform law (not a mixture).
pub const UNIFORM_QUADRATURE: Claim = Claim {
    theorem: THEOREM,
    statement: "uniform[−1,1] (non-mixture): quadrature E[x|y] = y + σ²∇log p_σ(y)",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "the double-exponential rule's own error estimate (the difference of \
                      successive refinement levels: an estimate, not a proved bound, trusted \
                      on the analytic integrand split at its bump) + the derived rounding of \
                      the erfc score 8εσ²(φ_max/σ + |s|)/mass + 4ε|y|",
    planted_variant: "σ for σ²: y + σ∇log p_σ(y)",
    false_failure: FalseFailure::None,
};

/// Uniform[−a, a] (not a mixture): `E[x|y]` by quadrature of Bayes' rule against
/// `y + σ²∇log p_σ(y)` from the closed-form CDF density. Tolerance: the quadrature's propagated
/// error estimate plus the rounding of the score, `σ²·8ε(φ_max/σ + |s|)/mass + 4ε|y|` (each
/// tail mass and φ accurate to 4ε relative — libm's erfc is within about one ulp — so the
/// difference of two φ's and the mass carry 8ε absolute, amplified by `1/mass`).
///
/// The CDF form underflows far in the tails, so `y` must lie within 6σ of `[−a, a]`
/// (then the mass is at least Φ(−6) ≈ 10⁻⁹); a `y` outside is refused with an error.
/// Planted: `y + σ∇log p_σ(y)`, same tolerance.
pub fn uniform_quadrature(half_width: f64, y: f64, sigma: f64) -> Result<Controlled> {
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
    let tolerance = q.error
        + sigma * sigma * 8.0 * EPS * (0.4 / sigma + score.abs()) / mass
        + 4.0 * EPS * y.abs();
    let check = |coefficient: f64| Check {
        residual: (q.value - (y + coefficient * score)).abs(),
        tolerance,
    };
    Ok(Controlled {
        check: check(sigma * sigma),
        planted: check(sigma),
    })
}

/// The false-failure probability of the GPU Monte Carlo check, for the whole family of queries
/// and coordinates together (Bonferroni: each coordinate is tested at `ALPHA/(Q·d)`).
pub const MONTE_CARLO_ALPHA: f64 = 1e-6;

/// Row: GPU importance sampling against Bayes.
pub const GPU_MONTE_CARLO: Claim = Claim {
    theorem: THEOREM,
    statement: "GPU Monte Carlo E[x|y] within z·SE of Bayes, σ ∈ {1, 2} (α = 1e-6 per target and σ)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "z(α/(Q·d)) two-sided normal quantile (statrs), Bonferroni over queries × \
                      coordinates, α = 1e-6 per (target, σ), fixed Philox streams; residual net of the f32 \
                      accumulation bound 4γ_m·X",
    planted_variant: "prior weights w_k for the responsibilities ρ_k(y) in the Bayes mean \
                      Σ_k ρ_k m_k(y) (the evidence term forgotten)",
    // α per (target, σ) group of 8 queries: α/8 per query on the union bound.
    false_failure: FalseFailure::PerCase(MONTE_CARLO_ALPHA / 8.0),
};

/// The planted wrong posterior mean of the GPU row: `Σ_k w_k m_k(y)`, the per-component Wiener
/// means `m_k = μ_k + G_k(y − μ_k)` ([`GaussianMixture::noisy_components`]) mixed with the prior
/// weights instead of the responsibilities — what Bayes' rule gives when the evidence
/// `N(y; μ_k, Σ_k + σ²I)` is left out.
pub fn prior_weighted_wiener_mean(
    target: &GaussianMixture,
    y: &[f64],
    sigma: f64,
) -> Result<Vec<f64>> {
    let d = target.dim();
    let mut out = vec![0.0; d];
    for (c, noisy) in target
        .components()
        .iter()
        .zip(target.noisy_components(sigma)?)
    {
        let delta: Vec<f64> = y.iter().zip(&c.mean).map(|(a, b)| a - b).collect();
        for (i, o) in out.iter_mut().enumerate() {
            let shift: f64 = (0..d).map(|j| noisy.gain[(i, j)] * delta[j]).sum();
            *o += c.weight * (c.mean[i] + shift);
        }
    }
    Ok(out)
}

/// GPU importance-sampling estimate of `E[x|y]` against the Bayes closed form, for every row of
/// `queries`. Residual: `max_i (|x̂_i − m_i| − b)/SE_i`, the excess over the f32 accumulation
/// bound `b = 4γ_m·X` (`m = G/64 + 64` sequential f32 additions per sum — G samples per
/// workgroup, the groups being merged in f64 — and X bounding |x|)
/// in units of the delta-method standard error; tolerance `z(α/(Q·d))`. A query whose effective
/// sample size is below 1000 is an error: the normal approximation would not be justified there.
/// Planted: the same z-test against [`prior_weighted_wiener_mean`] in place of the Bayes mean.
pub fn gpu_monte_carlo(
    gpu: &Gpu,
    target: &GaussianMixture,
    queries: &Mat,
    sigma: f64,
    n_samples: u32,
    stream: PhiloxStream,
) -> Result<Vec<Controlled>> {
    let est = monte_carlo::mc_posterior_mean(gpu, target, queries, sigma, n_samples, stream)?;
    let d = target.dim();
    let z = two_sided_z(MONTE_CARLO_ALPHA / (queries.nrows() * d) as f64);
    let m = f64::from(monte_carlo::SAMPLES_PER_GROUP) / 64.0 + 64.0;
    let u32f = crate::numerics::F32_UNIT_ROUNDOFF;
    let x_bound = target.scale() * (1.0 + 5.8 * (d as f64).sqrt());
    let b = 4.0 * (m * u32f / (1.0 - m * u32f)) * x_bound;
    est.iter()
        .enumerate()
        .map(|(q, e)| {
            if e.effective_sample_size < 1000.0 {
                return Err(Error::InvalidArgument {
                    what: format!("query {q}").into(),
                    reason: format!(
                        "effective sample size {:.0} < 1000: raise n_samples or sigma",
                        e.effective_sample_size
                    ),
                });
            }
            let y = linalg::row(queries, q);
            let z_test = |truth: &[f64]| Check {
                residual: (0..d)
                    .map(|i| ((e.mean[i] - truth[i]).abs() - b).max(0.0) / e.std_error[i])
                    .fold(0.0, f64::max),
                tolerance: z,
            };
            Ok(Controlled {
                check: z_test(&target.posterior_mean(&y, sigma)?),
                planted: z_test(&prior_weighted_wiener_mean(target, &y, sigma)?),
            })
        })
        .collect()
}

/// Noise levels of the default cases, from 10⁻² to 10.
pub const DEFAULT_SIGMAS: [f64; 4] = [0.01, 0.1, 1.0, 10.0];

/// `check` over the default cases: the targets of [`targets_at`] (seed 2024) at every
/// [`DEFAULT_SIGMAS`] level and the [`default_points`] of each (near and far from every mode).
fn over_default_cases(
    depth: Depth,
    mut check: impl FnMut(&GaussianMixture, &[f64], f64) -> Result<Controlled>,
) -> Result<Vec<Controlled>> {
    let mut rng = Rng::new(0x007e_ed1e, 1);
    let mut out = Vec::new();
    for target in targets_at(depth, 2024)? {
        for &sigma in &DEFAULT_SIGMAS {
            for y in default_points(&mut rng, &target, sigma) {
                out.push(check(&target, &y, sigma)?);
            }
        }
    }
    Ok(out)
}

/// The [`ANALYTIC_SCORE`] row's cases: [`bayes_vs_analytic_score`] over the default cases.
pub fn analytic_score_cases(depth: Depth) -> Result<Vec<Controlled>> {
    over_default_cases(depth, bayes_vs_analytic_score)
}

/// The [`FINITE_DIFFERENCE_SCORE`] row's cases: [`bayes_vs_finite_difference_score`] over the
/// default cases.
pub fn finite_difference_score_cases(depth: Depth) -> Result<Vec<Controlled>> {
    over_default_cases(depth, bayes_vs_finite_difference_score)
}

/// The [`VP_FORM`] row's cases: [`vp_form`] on the targets of [`targets_at`] (seed 2025) at
/// t ∈ {0.1, 0.5, 0.9}, near and far points.
pub fn vp_form_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let mut rng = Rng::new(0x007e_ed1e, 2);
    let mut out = Vec::new();
    for target in targets_at(depth, 2025)? {
        for &t in &[0.1, 0.5, 0.9] {
            for x in default_points(&mut rng, &target, t) {
                out.push(vp_form(&target, &x, t)?);
            }
        }
    }
    Ok(out)
}

/// Intervals of a grid at a depth whose default has `n`: n/4 at quick, n, 4n at thorough.
fn grid_intervals(depth: Depth, n: u32) -> u32 {
    match depth {
        Depth::Quick => n / 4,
        Depth::Default => n,
        Depth::Thorough => 4 * n,
    }
}

/// The [`TWO_POINT_TANH`] row's cases: y ∈ {−4, −3.8, …, 4} at σ ∈ {0.1, 0.5, 1, 2} (the step
/// 0.8 at quick, 0.05 at thorough).
pub fn two_point_tanh_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let intervals = grid_intervals(depth, 40);
    let step = 8.0 / f64::from(intervals);
    let mut out = Vec::new();
    for &sigma in &[0.1, 0.5, 1.0, 2.0] {
        for i in 0..=intervals {
            out.push(two_point_tanh(-4.0 + step * f64::from(i), sigma)?);
        }
    }
    Ok(out)
}

/// The [`UNIFORM_QUADRATURE`] row's cases: uniform[−1, 1], σ ∈ {0.05, 0.2, 1, 2}, 25 points
/// spanning 6σ beyond the support on either side (7 at quick, 97 at thorough).
pub(crate) fn uniform_quadrature_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let intervals = grid_intervals(depth, 24);
    let mut out = Vec::new();
    for &sigma in &[0.05, 0.2, 1.0, 2.0] {
        let reach = 1.0 + 6.0 * sigma;
        for i in 0..=intervals {
            let y = reach * (2.0 * f64::from(i) / f64::from(intervals) - 1.0);
            out.push(uniform_quadrature(1.0, y, sigma)?);
        }
    }
    Ok(out)
}

/// The [`GPU_MONTE_CARLO`] row's cases: the first six default targets (seed 2026; d ∈ {1, 2},
/// where prior-proposal importance sampling keeps an effective sample size above 1000 at
/// σ ≥ 1 — it decays like (σ²/(σ² + Var))^{d/2}) at σ ∈ {1, 2} (σ ≠ 1 so that a σ-for-σ² fault
/// in the closed form shows), 8 noisy draws each as queries, 2¹⁸ samples. At quick: the second
/// and fifth of those targets (K = 3: with K = 1 the planted prior weights are the posterior's),
/// 2¹⁶ samples; at thorough: six targets of each of four seeds, 2²⁰ samples.
pub(crate) fn gpu_monte_carlo_cases(gpu: &Gpu, depth: Depth) -> Result<Vec<Controlled>> {
    let mut rng = Rng::new(0x007e_ed1e, 3);
    let n_samples = depth.samples(1 << 18) as u32;
    let mut targets = Vec::new();
    for seed in depth.seeds(2026) {
        let skip = usize::from(depth == Depth::Quick);
        targets.extend(depth.thin(3, default_targets(seed)?.into_iter().take(6).skip(skip)));
    }
    let mut out = Vec::new();
    for target in targets {
        for sigma in [1.0, 2.0] {
            let x = target.sample(&mut rng, 8);
            let noise = Mat::from_fn(8, target.dim(), |_, _| sigma * rng.normal());
            let queries = &x + &noise;
            out.extend(gpu_monte_carlo(
                gpu,
                &target,
                &queries,
                sigma,
                n_samples,
                PhiloxStream::new(99, out.len() as u32),
            )?);
        }
    }
    Ok(out)
}

/// The checks of `verify` at a depth.
pub(crate) fn default_verdicts(gpu: Result<&Gpu>, depth: Depth) -> Vec<Verdict> {
    let backend = super::backend_label(&gpu);
    vec![
        Verdict::collect(&ANALYTIC_SCORE, CPU_BACKEND, depth, || {
            analytic_score_cases(depth)
        }),
        Verdict::collect(&FINITE_DIFFERENCE_SCORE, CPU_BACKEND, depth, || {
            finite_difference_score_cases(depth)
        }),
        Verdict::collect(&VP_FORM, CPU_BACKEND, depth, || vp_form_cases(depth)),
        Verdict::collect(&TWO_POINT_TANH, CPU_BACKEND, depth, || {
            two_point_tanh_cases(depth)
        }),
        Verdict::collect(&UNIFORM_QUADRATURE, CPU_BACKEND, depth, || {
            uniform_quadrature_cases(depth)
        }),
        Verdict::collect(&GPU_MONTE_CARLO, &backend, depth, || {
            gpu_monte_carlo_cases(gpu?, depth)
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VP row's tolerance is the documented one: the rounding bounds of the scaled mixture at
    /// σ_t and of the mixture at σ_t/α_t, divided by α_t.
    #[test]
    fn vp_tolerance_is_the_two_rounding_bounds_over_alpha() {
        let target = crate::targets::random_gmm(&mut Rng::new(3, 1), 2, 2).unwrap();
        let (x_t, t) = ([0.4, -1.1], 0.6f64);
        let alpha = (1.0 - t * t).sqrt();
        let y: Vec<f64> = x_t.iter().map(|x| x / alpha).collect();
        let expected = (rounding_bound(&target.scaled(alpha).unwrap(), &x_t, t).unwrap()
            + rounding_bound(&target, &y, t / alpha).unwrap())
            / alpha;
        let row = vp_form(&target, &x_t, t).unwrap();
        assert!((row.check.tolerance - expected).abs() <= 1e-15 * expected);
        assert_eq!(row.planted.tolerance, row.check.tolerance);
    }

    /// The uniform row's tolerance is the documented one: the quadrature's error estimate, the
    /// score term's rounding `8εσ²(0.4/σ + |∇log p|)/P(mass)` with the mass `2a·p_σ(y)`, and
    /// `4ε|y|`.
    #[test]
    fn uniform_tolerance_is_the_documented_sum() {
        let (a, y, sigma) = (1.5, 0.7, 0.3);
        let u = Uniform1d::new(a).unwrap();
        let q = u.posterior_mean_quadrature(y, sigma).unwrap();
        let score = u.score(y, sigma).unwrap();
        let mass = 2.0 * a * u.density(y, sigma).unwrap();
        let expected = q.error
            + sigma * sigma * 8.0 * EPS * (0.4 / sigma + score.abs()) / mass
            + 4.0 * EPS * y.abs();
        let row = uniform_quadrature(a, y, sigma).unwrap();
        assert!((row.check.tolerance - expected).abs() <= 1e-15 * expected);
    }

    /// The planted GPU mean by hand: weights 0.3 and 0.7, N(−1, 1) and a point mass at 2, σ = 1,
    /// y = 0.4: `0.3·(−1 + ½(0.4 + 1)) + 0.7·2 = 1.31`.
    #[test]
    fn prior_weighted_wiener_mean_by_hand() {
        let target = GaussianMixture::new(
            &[0.3, 0.7],
            &[vec![-1.0], vec![2.0]],
            &[Mat::from_fn(1, 1, |_, _| 1.0), Mat::zeros(1, 1)],
        )
        .unwrap();
        let m = prior_weighted_wiener_mean(&target, &[0.4], 1.0).unwrap();
        assert!((m[0] - 1.31).abs() < 1e-14, "{m:?}");
    }
}
