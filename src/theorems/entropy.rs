//! `entropy` — the differential entropy of `x_t = x + t·g` increases with t (book Thm 3.1,
//! eq. 3.2.2), and one denoising step lowers it (book Thm 3.3, eq. 3.2.48).
//!
//! The rate of increase is de Bruijn's identity in the I-MMSE form: with `J(x_t)` the Fisher
//! information of `p_t` and `mmse(t) = E‖x − E[x|x_t]‖²`,
//!
//! `d/dt h(x_t) = t·J(x_t) = d/t − mmse(t)/t³`.
//!
//! Derivation: de Bruijn `d/dτ h(x + √τ g) = ½J`, with `τ = t²`; and
//! `J = −E tr∇²log p_t = −E tr∇s_t`, where Tweedie's `s_t(y) = (E[x|y] − y)/t²` gives
//! `∇s_t = (∇f* − I)/t²` and the second-order relation `∇f* = Cov[x|y]/t²` gives
//! `E tr∇f* = mmse/t²`: `J = d/t² − mmse/t⁴`. Since `mmse(t) < d·t²` (the posterior mean beats
//! `f(y) = y`, whose error is `d·t²`, strictly unless x is a.s. constant given `x_t`, which it
//! is not for `t > 0`), `d/dt h > 0`: Thm 3.1.
//!
//! For a Gaussian `x ~ N(μ, Σ)`, `h(x_t) = (d/2)(1 + ln 2π) + ½ ln det(Σ + t²I)` (book eq. 3.2.5)
//! and `E[x_s | x_t] = μ + (Σ + stI)(Σ + t²I)⁻¹(x_t − μ)` (eq. 3.2.41 with the Wiener filter),
//! a linear map A, so `h(E[x_s|x_t]) − h(x_t) = ln det A = ln det(Σ + stI) − ln det(Σ + t²I)
//! < 0` for `s < t`: Thm 3.3.
//!
//! Routes (each verify row runs a planted wrong variant that it must reject):
//! 1. [`gaussian_de_bruijn`]: `h(t₂) − h(t₁)` from Cholesky log-determinants (eq. 3.2.5) against
//!    `∫_{t₁}^{t₂}(d/s − mmse(s)/s³)ds` with `mmse` the closed-form MSE of the crate's optimal
//!    affine (Wiener = Bayes for a Gaussian) denoiser (`affine_mse` of its eigen-built W),
//!    integrated by double-exponential quadrature. Planted: `d/(2s)` for `d/s`.
//! 2. [`fisher_case`]: mixtures: `E[t‖∇log p_t(x_t)‖²]` (the density family's score) against
//!    `d/t − E tr Cov[x|x_t]/t³` (the posterior family, Bayes' rule), paired Monte Carlo, z·SE;
//!    and `d/dt h > 0`. Planted: `mmse/t²` for `mmse/t³`.
//! 3. [`denoised_entropy`]: Thm 3.3 for Gaussians: `ln det(Σ + stI) − ln det(Σ + t²I)`
//!    (Cholesky) against `ln det((s/t)I + (1 − s/t)W(t))`, W the crate's optimal affine weight
//!    (the Jacobian of eq. 3.2.41's step), and the value is < 0. Planted: the weights of the
//!    step swapped, `(1 − s/t)I + (s/t)W`.

use super::{Check, Claim, Controlled, Depth, FalseFailure, ToleranceKind, Verdict, CPU_BACKEND};
use crate::denoisers::linear::{affine_mse_with_magnitude, OptimalAffine};
use crate::error::{ensure_sigma_squared, Error, Result};
use crate::gpu::Gpu;
use crate::linalg::{self, Mat};
use crate::numerics::gamma_f64;
use crate::rng::Rng;
use crate::stats::{mean_and_std_error, two_sided_z};
use crate::targets::{random_gmm, ClosedForm, GaussianMixture, Target};

/// The theorem id.
pub const THEOREM: &str = "entropy";

/// `h(x_t)` of `x_t = x + t·g`, `x ~ N(μ, Σ)`: `(d/2)(1 + ln 2π) + ½ ln det(Σ + t²I)` (book
/// eq. 3.2.5), the log-determinant by Cholesky.
pub fn gaussian_entropy(covariance: &Mat, t: f64) -> Result<f64> {
    ensure_sigma_squared(t)?;
    let d = covariance.nrows();
    linalg::check_symmetric("covariance", covariance)?;
    let a = Mat::from_fn(d, d, |i, j| {
        covariance[(i, j)] + if i == j { t * t } else { 0.0 }
    });
    Ok(0.5 * d as f64 * (1.0 + (2.0 * std::f64::consts::PI).ln()) + 0.5 * linalg::spd_logdet(&a)?)
}

/// `mmse(t) = E‖x − E[x|x_t]‖²` of a Gaussian by the closed-form MSE of its optimal affine
/// denoiser (which is its Bayes denoiser), with the magnitude of the formula's terms.
pub fn gaussian_mmse(mean: &[f64], covariance: &Mat, t: f64) -> Result<(f64, f64)> {
    let f = OptimalAffine::from_moments(mean, covariance)?.at(t)?;
    affine_mse_with_magnitude(mean, covariance, f.weight(), f.bias(), t)
}

/// The I-MMSE rate `d/dt h(x_t) = d/t − mmse(t)/t³` with `noise_factor` in place of 1 in the
/// first term and `power` in place of 3 (the planted variants pass ½ or 2).
fn immse_rate(d: usize, mmse: f64, t: f64, noise_factor: f64, power: i32) -> f64 {
    noise_factor * d as f64 / t - mmse / t.powi(power)
}

/// Route 1: `h(t₂) − h(t₁)` (Cholesky) against `∫_{t₁}^{t₂}(d/s − mmse(s)/s³)ds`
/// (double-exponential quadrature of the I-MMSE rate, mmse from [`gaussian_mmse`]). Tolerance
/// *calibrated* on the quadrature: 10× its error estimate (requested 10⁻¹²; an estimate, not a
/// bound) and the rounding of its weighted sum (`γ_{m+2}∫|rate|`, m evaluations), plus the roundings of the two log-determinants, `d²γ_{d+2}κ(Σ + t²I)` each
/// (Cholesky's backward error `|δA| ≤ γ_{d+1}|L||Lᵀ|` through `|δ ln det| ≤ d‖A⁻¹‖‖δA‖`), plus
/// `γ_{2d+8}` of the mmse magnitudes integrated. Planted: `d/(2s)` for `d/s`.
pub fn gaussian_de_bruijn(target: &GaussianMixture, t1: f64, t2: f64) -> Result<Controlled> {
    ensure_sigma_squared(t1)?;
    ensure_sigma_squared(t2)?;
    if t1 >= t2 {
        return Err(Error::InvalidArgument {
            what: "noise levels (t1, t2)".into(),
            reason: format!("need t1 < t2, got ({t1}, {t2})"),
        });
    }
    let (mean, cov) = (target.mean(), target.covariance());
    let d = mean.len();
    let closed = gaussian_entropy(&cov, t2)? - gaussian_entropy(&cov, t1)?;
    // λ_max ≤ tr Σ bounds the condition numbers κ(Σ + t²I) ≤ (tr Σ + t²)/t²
    let trace = (0..d).map(|i| cov[(i, i)]).sum::<f64>();
    let kappa = |t: f64| (trace + t * t) / (t * t);
    let integrate = |factor: f64, power: i32| -> Result<(f64, f64, f64)> {
        let failure = std::cell::RefCell::new(None);
        let magnitude = std::cell::Cell::new(0.0f64);
        let q = quadrature::double_exponential::integrate(
            |s| match gaussian_mmse(&mean, &cov, s) {
                Ok((m, mag)) => {
                    magnitude.set(magnitude.get().max(mag / s.powi(power)));
                    immse_rate(d, m, s, factor, power)
                }
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    0.0
                }
            },
            t1,
            t2,
            1e-12,
        );
        if let Some(e) = failure.into_inner() {
            return Err(e);
        }
        // the quadrature's own sum of `evaluations` weighted terms rounds by γ_evaluations times
        // ∫|rate| ≤ d·ln(t2/t1) + ∫mmse/s³ (the magnitude bound)
        let sum_rounding = gamma_f64(q.num_function_evaluations as usize + 2)
            * (d as f64 * (t2 / t1).ln() + magnitude.get() * (t2 - t1));
        Ok((
            q.integral,
            q.error_estimate + sum_rounding,
            magnitude.get() * (t2 - t1),
        ))
    };
    let (value, error, magnitude) = integrate(1.0, 3)?;
    let (planted, _, _) = integrate(0.5, 3)?;
    let tolerance = 10.0 * error
        + (d * d) as f64 * gamma_f64(d + 2) * (kappa(t1) + kappa(t2))
        + gamma_f64(2 * d + 8) * magnitude;
    Ok(Controlled {
        check: Check {
            residual: (closed - value).abs(),
            tolerance,
        },
        planted: Check {
            residual: (closed - planted).abs(),
            tolerance,
        },
    })
}

/// Route 2's Monte Carlo at one t: the per-sample de Bruijn side `t‖∇log p_t(y)‖²` minus the
/// I-MMSE side `d/t − tr Cov[x|y]/t³`, and the I-MMSE side alone, on `n` draws `y = x + t·g`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FisherMc {
    /// Mean and SE of `t‖s(y)‖² − (d/t − tr Cov[x|y]/t³)` (0 by de Bruijn + I-MMSE).
    pub difference: (f64, f64),
    /// Mean and SE of the same with `tr Cov/t²` for `tr Cov/t³` (the planted variant).
    pub planted: (f64, f64),
    /// Mean and SE of `t‖s(y)‖²`, the entropy rate `d/dt h(x_t)` (> 0 by Thm 3.1).
    pub rate: (f64, f64),
}

/// Route 2: `n` draws `y = x + t·g` from `target` (`Rng::new(seed, 0)`), paired.
pub fn fisher_case(target: &GaussianMixture, t: f64, n: usize, seed: u64) -> Result<FisherMc> {
    ensure_sigma_squared(t)?;
    if n < 2 {
        return Err(Error::InvalidArgument {
            what: "Monte Carlo draws".into(),
            reason: format!("need at least 2 for a standard error, got {n}"),
        });
    }
    let d = target.dim();
    let mut rng = Rng::new(seed, 0);
    let xs = target.sample(&mut rng, n);
    let (mut diff, mut planted, mut rate) = (vec![], vec![], vec![]);
    for i in 0..n {
        let g = rng.normals(d);
        let y: Vec<f64> = (0..d).map(|j| xs[(i, j)] + t * g[j]).collect();
        let score = target.score(&y, t)?;
        let fisher = t * linalg::dot(&score, &score);
        let cov = target.posterior_covariance(&y, t)?;
        let trace: f64 = (0..d).map(|j| cov[(j, j)]).sum();
        diff.push(fisher - immse_rate(d, trace, t, 1.0, 3));
        planted.push(fisher - immse_rate(d, trace, t, 1.0, 2));
        rate.push(fisher);
    }
    Ok(FisherMc {
        difference: mean_and_std_error(&diff),
        planted: mean_and_std_error(&planted),
        rate: mean_and_std_error(&rate),
    })
}

/// The controlled check of route 2 at `z`: `|mean difference| ≤ z·SE`, provided the rate is
/// positive by more than `z·SE_rate` (Thm 3.1; otherwise the case fails with residual
/// `z·SE_rate − rate` against tolerance 0); planted: the `mmse/t²` variant at the same z.
pub fn fisher_check(out: &FisherMc, z: f64) -> Controlled {
    let check = Check {
        residual: out.difference.0.abs(),
        tolerance: z * out.difference.1,
    };
    // Thm 3.1: the rate must exceed z·SE; a non-positive rate fails the case
    let positive = Check {
        residual: (z * out.rate.1 - out.rate.0).max(0.0),
        tolerance: 0.0,
    };
    Controlled {
        check: if positive.passed() { check } else { positive },
        planted: Check {
            residual: out.planted.0.abs(),
            tolerance: z * out.planted.1,
        },
    }
}

/// Route 3: Thm 3.3 for a Gaussian at `s < t`: `ln det(Σ + stI) − ln det(Σ + t²I)` (Cholesky)
/// against `ln det((s/t)I + (1 − s/t)W(t))`, W the optimal affine weight (eigen route).
/// Returns the check (with the value, which must be < 0, as a second condition: a
/// non-negative value fails the case), and the planted swapped step `(1 − s/t)I + (s/t)W`.
/// Tolerance (derived, first order): `d²γ_{d+2}(κ(Σ+stI) + κ(Σ+t²I) + κ(J))` for the three
/// Cholesky log-determinants, plus `d‖J⁻¹‖·64dε` for W's construction (eigensolver backward
/// error `64dελ_max`, W `1/t²`-Lipschitz in Σ, J within `(1 − s/t)` of it).
pub fn denoised_entropy(target: &GaussianMixture, s: f64, t: f64) -> Result<(Controlled, f64)> {
    ensure_sigma_squared(s)?;
    ensure_sigma_squared(t)?;
    if s >= t {
        return Err(Error::InvalidArgument {
            what: "noise levels (s, t)".into(),
            reason: format!("need s < t, got ({s}, {t})"),
        });
    }
    let (mean, cov) = (target.mean(), target.covariance());
    let d = mean.len();
    let shifted = |c: f64| Mat::from_fn(d, d, |i, j| cov[(i, j)] + if i == j { c } else { 0.0 });
    let closed = linalg::spd_logdet(&shifted(s * t))? - linalg::spd_logdet(&shifted(t * t))?;
    let w = OptimalAffine::from_moments(&mean, &cov)?.weight(t)?;
    let r = s / t;
    let step =
        |a: f64, b: f64| Mat::from_fn(d, d, |i, j| b * w[(i, j)] + if i == j { a } else { 0.0 });
    let via_step = linalg::spd_logdet(&step(r, 1.0 - r))?;
    let planted = linalg::spd_logdet(&step(1.0 - r, r))?;
    let trace = (0..d).map(|i| cov[(i, i)]).sum::<f64>();
    let kappa = |c: f64| (trace + c) / c;
    let kappa_j = 1.0 / r; // J's eigenvalues lie in (s/t, 1]
    let tolerance = (d * d) as f64 * gamma_f64(d + 2) * (kappa(s * t) + kappa(t * t) + kappa_j)
        + d as f64 * kappa_j * 64.0 * d as f64 * f64::EPSILON;
    let mut check = Check {
        residual: (closed - via_step).abs(),
        tolerance,
    };
    if via_step >= -tolerance {
        check.residual = f64::INFINITY;
    }
    Ok((
        Controlled {
            check,
            planted: Check {
                residual: (closed - planted).abs(),
                tolerance,
            },
        },
        closed,
    ))
}

/// Row: route 1.
pub const DE_BRUIJN_GAUSSIAN: Claim = Claim {
    theorem: THEOREM,
    statement: "Gaussian x (d = 1, 2, 4, 8): h(x_t2) − h(x_t1) (eq. 3.2.5, Cholesky) = \
                ∫ (d/t − mmse(t)/t³) dt (I-MMSE, mmse of the optimal affine denoiser)",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "entropy::gaussian_de_bruijn: 10× the double-exponential quadrature's error \
                      estimate (not a bound) + Cholesky log-det and affine_mse roundings",
    planted_variant: "d/(2t) for d/t in the I-MMSE rate",
    false_failure: FalseFailure::None,
};

/// False-failure probability of the Fisher row (whole row, Bonferroni over its cases).
pub const FISHER_ALPHA: f64 = 1e-6;

/// Row: route 2.
pub const FISHER_IMMSE: Claim = Claim {
    theorem: THEOREM,
    statement: "GMMs (d = 1…8): d/dt h(x_t) = t·E‖∇log p_t‖² (score) = d/t − E tr Cov[x|x_t]/t³ \
                (posterior) > 0 (Thm 3.1, eq. 3.2.2)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "entropy::fisher_check: paired z·SE, z for α = 1e-6 over the row's cases \
                      (Bonferroni); the rate > z·SE",
    planted_variant: "mmse/t² for mmse/t³",
    false_failure: FalseFailure::PerRow(FISHER_ALPHA),
};

/// Row: route 3.
pub const DENOISED_ENTROPY: Claim = Claim {
    theorem: THEOREM,
    statement: "Gaussian x: h(E[x_s|x_t]) − h(x_t) = ln det(Σ+stI) − ln det(Σ+t²I) = \
                ln det((s/t)I + (1−s/t)W(t)) < 0 for s < t (Thm 3.3, eq. 3.2.48)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "entropy::denoised_entropy: first-order Cholesky log-det bounds \
                      d²γ_{d+2}κ, + eigensolver backward error through W",
    planted_variant: "the step's weights swapped: (1−s/t)I + (s/t)W",
    false_failure: FalseFailure::None,
};

/// Seed of the rows' targets and draws.
const ROW_SEED: u64 = 0xE_7A0F;

/// The Gaussians of routes 1 and 3 at a depth: one random full-rank Gaussian per d ∈ {1, 2, 4, 8}
/// per seed of `depth.seeds` (every second d at quick).
pub fn gaussians(depth: Depth) -> Result<Vec<GaussianMixture>> {
    let mut out = vec![];
    for seed in depth.seeds(ROW_SEED) {
        let mut rng = Rng::new(seed, 1);
        for d in depth.thin(2, [1usize, 2, 4, 8]) {
            out.push(random_gmm(&mut rng, d, 1)?);
        }
    }
    Ok(out)
}

/// The noise-level pairs of routes 1 and 3.
const PAIRS: [(f64, f64); 3] = [(0.05, 0.5), (0.5, 2.0), (1.0, 10.0)];

/// The [`DE_BRUIJN_GAUSSIAN`] row's cases: each Gaussian × each pair (12 by default).
pub fn de_bruijn_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let mut out = vec![];
    for g in gaussians(depth)? {
        for (a, b) in PAIRS {
            out.push(gaussian_de_bruijn(&g, a, b)?);
        }
    }
    Ok(out)
}

/// The [`DENOISED_ENTROPY`] row's cases: each Gaussian × each pair as (s, t) (12 by default).
pub fn denoised_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let mut out = vec![];
    for g in gaussians(depth)? {
        for (s, t) in PAIRS {
            out.push(denoised_entropy(&g, s, t)?.0);
        }
    }
    Ok(out)
}

/// The t values of route 2.
const FISHER_TS: [f64; 2] = [0.5, 2.0];

/// Draws per case of route 2: 250 at quick, 1000 by default, 4000 at thorough.
pub fn fisher_draws(depth: Depth) -> usize {
    depth.samples(1000)
}

/// The [`FISHER_IMMSE`] row's cases: every third mixture of [`super::targets_at`]`(depth, seed)`
/// from the second on ((d, K) = (1, 3), (2, 3), (4, 3), (8, 3) by default; (2, 5) at quick; 16
/// at thorough) × t ∈ {0.5, 2},
/// z for α = 10⁻⁶ split over the cases.
pub fn fisher_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let targets: Vec<GaussianMixture> = super::targets_at(depth, ROW_SEED)?
        .into_iter()
        .skip(1)
        .step_by(3)
        .collect();
    let cases = targets.len() * FISHER_TS.len();
    let z = two_sided_z(FISHER_ALPHA / cases as f64);
    let mut out = vec![];
    for (k, target) in targets.iter().enumerate() {
        for (j, &t) in FISHER_TS.iter().enumerate() {
            let mc = fisher_case(
                target,
                t,
                fisher_draws(depth),
                ROW_SEED + (2 * k + j) as u64,
            )?;
            out.push(fisher_check(&mc, z));
        }
    }
    Ok(out)
}

/// The checks of `verify` at a depth.
pub(crate) fn default_verdicts(_gpu: Result<&Gpu>, depth: Depth) -> Vec<Verdict> {
    vec![
        Verdict::collect(&DE_BRUIJN_GAUSSIAN, CPU_BACKEND, depth, || {
            de_bruijn_cases(depth)
        }),
        Verdict::collect(&FISHER_IMMSE, CPU_BACKEND, depth, || fisher_cases(depth)),
        Verdict::collect(&DENOISED_ENTROPY, CPU_BACKEND, depth, || {
            denoised_cases(depth)
        }),
    ]
}
