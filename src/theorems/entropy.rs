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
//! 4. [`entropy_difference_mc`] against [`immse_integral`]: mixtures: `h(x_{t₂}) − h(x_{t₁})` by
//!    paired Monte Carlo of `−E log p_t` (the density family) against `∫(d/t − mmse/t³)dt` by
//!    Gauss–Legendre in `ln t`, mmse by Monte Carlo of `tr Cov[x|y]` (Bayes' rule), z·SE plus a
//!    calibrated quadrature allowance; and the difference > 0. Planted: `mmse/t²`.
//! 5. [`log_slope_mc`] against [`denoised_entropy_grid`]: Thm 3.3 for 1-D mixtures,
//!    `E log m'(Y)` (posterior variance) against the entropy of the density of `m(Y)` (m inverted
//!    by bisection, m' by differences) minus that of Y, on grids; the value is < 0. Planted: the
//!    step's weights swapped.

use super::{Check, Claim, Controlled, Depth, FalseFailure, ToleranceKind, Verdict, CPU_BACKEND};
use crate::denoisers::linear::{affine_mse_with_magnitude, OptimalAffine};
use crate::error::{ensure_sigma_squared, Error, Result};
use crate::gpu::Gpu;
use crate::linalg::{self, Mat};
use crate::numerics::gamma_f64;
use crate::rng::Rng;
use crate::stats::gauss_quadrature::gauss_legendre;
use crate::stats::{mean_and_std_error, two_sided_z};
use crate::targets::{random_gmm, ClosedForm, GaussianMixture, Target};

/// The theorem id.
pub const THEOREM: &str = "entropy";

/// Two noise levels `lo < hi`, each with σ² a normal f64 (`InvalidSigma` / `SigmaOutOfRange`
/// naming it), else `InvalidArgument` naming the pair, whose names are `names`.
fn ensure_noise_levels(names: (&str, &str), lo: f64, hi: f64) -> Result<()> {
    ensure_sigma_squared(lo)?;
    ensure_sigma_squared(hi)?;
    if lo >= hi {
        let (a, b) = names;
        return Err(Error::InvalidArgument {
            what: format!("noise levels ({a}, {b})").into(),
            reason: format!("need {a} < {b}, got ({lo}, {hi})"),
        });
    }
    Ok(())
}

/// At least two Monte Carlo draws (for a standard error), else `InvalidArgument` naming n.
fn ensure_draws(n: usize) -> Result<()> {
    if n < 2 {
        return Err(Error::InvalidArgument {
            what: "Monte Carlo draws".into(),
            reason: format!("need at least 2 for a standard error, got {n}"),
        });
    }
    Ok(())
}

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
    ensure_noise_levels(("t1", "t2"), t1, t2)?;
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
    ensure_draws(n)?;
    let d = target.dim();
    let mut rng = Rng::new(seed, 0);
    let xs = target.sample(&mut rng, n);
    let posterior = target.posterior_at(t)?;
    let (mut diff, mut planted, mut rate) = (vec![], vec![], vec![]);
    for i in 0..n {
        let g = rng.normals(d);
        let y: Vec<f64> = (0..d).map(|j| xs[(i, j)] + t * g[j]).collect();
        let score = target.score(&y, t)?;
        let fisher = t * linalg::dot(&score, &score);
        let cov = posterior.covariance(&y)?;
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
    ensure_noise_levels(("s", "t"), s, t)?;
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

/// Route 4, side A: `h(x_{t₂}) − h(x_{t₁}) = E[log p_{t₁}(y₁) − log p_{t₂}(y₂)]` by Monte Carlo
/// with common random numbers `y₁ = x + t₁g`, `y₂ = x + t₂g` (the same `x ~ p`, `g ~ N(0, I)`
/// in both, so the noise terms largely cancel in the paired difference), `log p_t` the density
/// family's (`log_density_batch`). `n` draws from `Rng::new(seed, 0)`; returns (mean, SE).
pub fn entropy_difference_mc(
    target: &GaussianMixture,
    t1: f64,
    t2: f64,
    n: usize,
    seed: u64,
) -> Result<(f64, f64)> {
    ensure_noise_levels(("t1", "t2"), t1, t2)?;
    ensure_draws(n)?;
    let d = target.dim();
    let mut rng = Rng::new(seed, 0);
    let xs = target.sample(&mut rng, n);
    let gs = Mat::from_fn(n, d, |_, _| rng.normal());
    let noisy = |t: f64| Mat::from_fn(n, d, |i, j| xs[(i, j)] + t * gs[(i, j)]);
    let l1 = target.log_density_batch(&noisy(t1), t1)?;
    let l2 = target.log_density_batch(&noisy(t2), t2)?;
    let diff: Vec<f64> = l1.iter().zip(&l2).map(|(a, b)| a - b).collect();
    Ok(mean_and_std_error(&diff))
}

/// Route 4, side B: the integrated I-MMSE rate, `∫_{t₁}^{t₂}(d/t − mmse(t)/t³)dt`, written in
/// `u = ln t` as `∫_{ln t₁}^{ln t₂}(d − mmse(eᵘ)/e^{2u})du` (a bounded integrand in [0, d]:
/// `0 ≤ mmse(t) < d·t²`, where the t-form has a `1/t` singularity for point masses), by the
/// `nodes`-point Gauss–Legendre rule in u; `mmse(t) = E tr Cov[x|y]` at each node by Monte
/// Carlo over `draws` draws `y = x + t·g`, `Cov[x|y]` from Bayes' rule (the posterior family).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImmseIntegral {
    /// Mean and SE of `∫(d/t − mmse/t³)dt`.
    pub value: (f64, f64),
    /// Mean and SE of the planted `∫(d/t − mmse/t²)dt`.
    pub planted: (f64, f64),
}

/// Route 4, side B ([`ImmseIntegral`]). With `common = false` (the verify row) node j reads its
/// own stream `Rng::new(seed, j + 1)`: the nodes' estimates are independent of each other and
/// of side A (stream 0), and `SE² = Σ_j w_j² SE_j²/t_j⁴`. With `common = true` every node reads
/// stream 1 — the same `(x, g)` at every t, so the estimate is a smooth function of the node
/// positions: what the quadrature allowance is calibrated on (its SE is then not valid).
pub fn immse_integral(
    target: &GaussianMixture,
    (t1, t2): (f64, f64),
    nodes: usize,
    draws: usize,
    seed: u64,
    common: bool,
) -> Result<ImmseIntegral> {
    ensure_noise_levels(("t1", "t2"), t1, t2)?;
    ensure_draws(draws)?;
    let d = target.dim();
    let rule = gauss_legendre(t1.ln(), t2.ln(), nodes)?;
    let (mut value, mut var, mut planted, mut planted_var) = (0.0, 0.0, 0.0, 0.0);
    for (j, &(u, w)) in rule.iter().enumerate() {
        let t = u.exp();
        let mut rng = Rng::new(seed, if common { 1 } else { j as u32 + 1 });
        let xs = target.sample(&mut rng, draws);
        let posterior = target.posterior_at(t)?;
        let mut traces = Vec::with_capacity(draws);
        for i in 0..draws {
            let g = rng.normals(d);
            let y: Vec<f64> = (0..d).map(|k| xs[(i, k)] + t * g[k]).collect();
            let cov = posterior.covariance(&y)?;
            traces.push((0..d).map(|k| cov[(k, k)]).sum::<f64>());
        }
        let (mmse, se) = mean_and_std_error(&traces);
        // dt = t·du: (d/t − mmse/t³)·t = d − mmse/t², the planted (d/t − mmse/t²)·t = d − mmse/t
        value += w * immse_rate(d, mmse, t, 1.0, 3) * t;
        var += (w * se / (t * t)).powi(2);
        planted += w * immse_rate(d, mmse, t, 1.0, 2) * t;
        planted_var += (w * se / t).powi(2);
    }
    Ok(ImmseIntegral {
        value: (value, var.sqrt()),
        planted: (planted, planted_var.sqrt()),
    })
}

/// Gauss–Legendre nodes (in ln t) of route 4's I-MMSE integral.
pub const IMMSE_NODES: usize = 8;

/// Route 4's allowance for the Gauss–Legendre error of the t-integral, **calibrated**: on
/// held-out mixtures (seeds other than the row's, d ∈ {1, 2, 4}, the row's t-pairs), with the
/// same 2000 draws at every node, the [`IMMSE_NODES`]-node rule differs from the 4×-node rule
/// by at most 3.3·10⁻⁴ (d = 4, t ∈ [0.2, 0.8];
/// `tests/entropy.rs::immse_quadrature_allowance_is_calibrated` recomputes it); the allowance
/// is 10× that, rounded up. Conservative: with shared draws each draw's `tr Cov[x|x + tg]`
/// switches sharply in t where its responsibilities do, a rougher integrand than `mmse(t)`.
pub const IMMSE_QUADRATURE_ALLOWANCE: f64 = 4e-3;

/// The controlled check of route 4 at `z`: `|A − B| ≤ z·√(SE_A² + SE_B²) +`
/// [`IMMSE_QUADRATURE_ALLOWANCE`], provided `A > z·SE_A` (Thm 3.1: the entropy increases;
/// otherwise the case fails with residual `z·SE_A − A` against tolerance 0); planted: B with
/// `mmse/t²` for `mmse/t³` at the same z.
pub fn mixture_de_bruijn_check(a: (f64, f64), b: &ImmseIntegral, z: f64) -> Controlled {
    let tolerance = |se_b: f64| z * (a.1 * a.1 + se_b * se_b).sqrt() + IMMSE_QUADRATURE_ALLOWANCE;
    let check = Check {
        residual: (a.0 - b.value.0).abs(),
        tolerance: tolerance(b.value.1),
    };
    let positive = Check {
        residual: (z * a.1 - a.0).max(0.0),
        tolerance: 0.0,
    };
    Controlled {
        check: if positive.passed() { check } else { positive },
        planted: Check {
            residual: (a.0 - b.planted.0).abs(),
            tolerance: tolerance(b.planted.1),
        },
    }
}

/// Route 5, side (a): `h(m(Y)) − h(Y) = E log m'(Y)` for a 1-D mixture, `Y = x + t·g`, where
/// `m(y) = E[x_s | x_t = y] = (s/t)y + (1 − s/t)E[x|y]` (eq. 3.2.41) has
/// `m'(y) = s/t + (1 − s/t)Var[x|y]/t² > 0` (the second-order Tweedie relation), Var from
/// Bayes' rule (`posterior_covariance`); Monte Carlo over `n` draws from `Rng::new(seed, 0)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogSlopeMc {
    /// Mean and SE of `log m'(Y)`.
    pub value: (f64, f64),
    /// Mean and SE of the planted `log((1 − s/t) + (s/t)Var/t²)` (the step's weights swapped).
    pub planted: (f64, f64),
}

/// The dimension of route 5's target must be 1 (`DimensionMismatch` otherwise).
fn ensure_one_dimensional(target: &GaussianMixture) -> Result<()> {
    if target.dim() != 1 {
        return Err(Error::DimensionMismatch {
            what: "Thm 3.3 for mixtures: target dimension".into(),
            expected: 1,
            got: target.dim(),
        });
    }
    Ok(())
}

/// Route 5, side (a) ([`LogSlopeMc`]).
pub fn log_slope_mc(
    target: &GaussianMixture,
    s: f64,
    t: f64,
    n: usize,
    seed: u64,
) -> Result<LogSlopeMc> {
    ensure_noise_levels(("s", "t"), s, t)?;
    ensure_one_dimensional(target)?;
    ensure_draws(n)?;
    let r = s / t;
    let mut rng = Rng::new(seed, 0);
    let xs = target.sample(&mut rng, n);
    let posterior = target.posterior_at(t)?;
    let (mut value, mut planted) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let y = xs[(i, 0)] + t * rng.normal();
        let v = posterior.covariance(&[y])?[(0, 0)] / (t * t);
        value.push((r + (1.0 - r) * v).ln());
        planted.push((1.0 - r + r * v).ln());
    }
    Ok(LogSlopeMc {
        value: mean_and_std_error(&value),
        planted: mean_and_std_error(&planted),
    })
}

/// Noisy standard deviations beyond the outermost component that route 5's grids reach: the
/// mass outside is below `2Φ(−12) ≈ 4·10⁻³³`.
const GRID_REACH: f64 = 12.0;

/// Trapezoid rule `−Σ_i h·c_i·f_i log f_i` (end weights ½) of `−∫ f log f` on a uniform grid of
/// spacing `h`, from `ln f_i` (a zero density contributes 0).
fn trapezoid_entropy(log_f: &[f64], h: f64) -> f64 {
    let last = log_f.len() - 1;
    -h * log_f
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let c = if i == 0 || i == last { 0.5 } else { 1.0 };
            if l == f64::NEG_INFINITY {
                0.0
            } else {
                c * l.exp() * l
            }
        })
        .sum::<f64>()
}

/// Route 5, side (b): `h(m(Y)) − h(Y)` from the density of `Z = m(Y)` itself. On a uniform grid
/// of `points` values z over `[m(lo), m(hi)]` (lo, hi: 12 noisy standard deviations beyond the
/// outermost components), `y = m⁻¹(z)` by bisection (m is increasing; brackets from m on a
/// y-grid, bisected to the last bit, 60 halvings), `m'(y)` by central differences of m with step
/// `step` (not the variance formula), and `q(z) = p_t(y)/m'(y)` with `p_t` the density
/// family's; `h(Z) = −∫q log q dz` and `h(Y) = −∫p_t log p_t dy` by the trapezoid rule on
/// uniform grids of `points` values (exponentially accurate for smooth, rapidly decaying
/// integrands). m itself is `(s/t)y + (1 − s/t)E[x|y]` (`posterior_mean_batch`).
pub fn denoised_entropy_grid(
    target: &GaussianMixture,
    s: f64,
    t: f64,
    points: usize,
    step: f64,
) -> Result<f64> {
    ensure_noise_levels(("s", "t"), s, t)?;
    ensure_one_dimensional(target)?;
    crate::error::ensure_positive_finite("central-difference step", step)?;
    if points < 3 {
        return Err(Error::InvalidArgument {
            what: "grid points".into(),
            reason: format!("need at least 3, got {points}"),
        });
    }
    let r = s / t;
    let m = |ys: &[f64]| -> Result<Vec<f64>> {
        let col = Mat::from_fn(ys.len(), 1, |i, _| ys[i]);
        let post = target.posterior_mean_batch(&col, t)?;
        Ok(ys
            .iter()
            .enumerate()
            .map(|(i, y)| r * y + (1.0 - r) * post[(i, 0)])
            .collect())
    };
    let log_p = |ys: &[f64]| -> Result<Vec<f64>> {
        target.log_density_batch(&Mat::from_fn(ys.len(), 1, |i, _| ys[i]), t)
    };
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for c in target.components() {
        let sd = (c.factor.covariance()[(0, 0)] + t * t).sqrt();
        lo = lo.min(c.mean[0] - GRID_REACH * sd);
        hi = hi.max(c.mean[0] + GRID_REACH * sd);
    }
    let grid = |a: f64, b: f64| -> (Vec<f64>, f64) {
        let h = (b - a) / (points - 1) as f64;
        ((0..points).map(|i| a + h * i as f64).collect(), h)
    };
    let (ys, hy) = grid(lo, hi);
    let h_y = trapezoid_entropy(&log_p(&ys)?, hy);
    let my = m(&ys)?;
    if my.windows(2).any(|w| w[1] <= w[0]) {
        return Err(Error::Numerical(format!(
            "E[x_s|x_t = y] not increasing on the grid (s = {s}, t = {t})"
        )));
    }
    let (zs, hz) = grid(my[0], my[points - 1]);
    // brackets [ys[k], ys[k+1]] with my[k] ≤ z ≤ my[k+1]
    let mut a = Vec::with_capacity(points);
    let mut b = Vec::with_capacity(points);
    for &z in &zs {
        let k = my.partition_point(|&v| v <= z).clamp(1, points - 1);
        a.push(ys[k - 1]);
        b.push(ys[k]);
    }
    for _ in 0..60 {
        let mid: Vec<f64> = a.iter().zip(&b).map(|(x, y)| 0.5 * (x + y)).collect();
        let m_mid = m(&mid)?;
        for i in 0..points {
            if m_mid[i] <= zs[i] {
                a[i] = mid[i];
            } else {
                b[i] = mid[i];
            }
        }
    }
    let y_star: Vec<f64> = a.iter().zip(&b).map(|(x, y)| 0.5 * (x + y)).collect();
    let up = m(&y_star.iter().map(|y| y + step).collect::<Vec<_>>())?;
    let down = m(&y_star.iter().map(|y| y - step).collect::<Vec<_>>())?;
    let log_q: Vec<f64> = log_p(&y_star)?
        .iter()
        .zip(up.iter().zip(&down))
        .map(|(lp, (u, v))| lp - ((u - v) / (2.0 * step)).ln())
        .collect();
    Ok(trapezoid_entropy(&log_q, hz) - h_y)
}

/// Grid points of route 5's side (b).
pub const GRID_POINTS: usize = 1024;

/// Central-difference step of route 5's side (b), relative to s.
pub const GRID_STEP: f64 = 1e-4;

/// Route 5's allowance for side (b)'s grid and difference errors, **calibrated**: on held-out
/// 1-D mixtures (seeds other than the row's, the row's (s, t) pairs), side (b) at
/// [`GRID_POINTS`] and step [`GRID_STEP`]·s differs from side (b) at 4× the points and a 4×
/// smaller step by at most 1.5·10⁻¹¹ (`tests/entropy.rs::grid_allowance_is_calibrated`
/// recomputes it); the allowance is 10× that, rounded up.
pub const GRID_ALLOWANCE: f64 = 2e-10;

/// Route 5 at one (s, t): side (a) by [`log_slope_mc`] (`draws`, `seed`), side (b) by
/// [`denoised_entropy_grid`]; the check `|a − b| ≤ z·SE_a +` [`GRID_ALLOWANCE`], provided
/// `b < −tolerance` (Thm 3.3; otherwise the case fails with an infinite residual); planted:
/// the swapped step in side (a). Returns the check and side (b)'s value.
pub fn mixture_denoised_entropy(
    target: &GaussianMixture,
    (s, t): (f64, f64),
    draws: usize,
    z: f64,
    seed: u64,
) -> Result<(Controlled, f64)> {
    let a = log_slope_mc(target, s, t, draws, seed)?;
    let b = denoised_entropy_grid(target, s, t, GRID_POINTS, GRID_STEP * s)?;
    let tolerance = z * a.value.1 + GRID_ALLOWANCE;
    let mut check = Check {
        residual: (a.value.0 - b).abs(),
        tolerance,
    };
    if b >= -tolerance {
        check.residual = f64::INFINITY;
    }
    Ok((
        Controlled {
            check,
            planted: Check {
                residual: (a.planted.0 - b).abs(),
                tolerance: z * a.planted.1 + GRID_ALLOWANCE,
            },
        },
        b,
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

/// False-failure probability of the mixture de Bruijn row (whole row, Bonferroni over cases).
pub const MIXTURE_DE_BRUIJN_ALPHA: f64 = 1e-6;

/// Row: route 4.
pub const DE_BRUIJN_MIXTURE: Claim = Claim {
    theorem: THEOREM,
    statement: "GMMs (d = 1, 2, 4): h(x_t2) − h(x_t1) (Monte Carlo of −E log p_t, paired draws) = \
                ∫ (d/t − mmse(t)/t³) dt (Gauss–Legendre in ln t, mmse = E tr Cov[x|x_t] by \
                Bayes' rule, independent draws) > 0 (Thm 3.1)",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "entropy::mixture_de_bruijn_check: z·√(SE_A² + SE_B²), z for α = 1e-6 over \
                      the row's cases (Bonferroni, derived), + a quadrature allowance calibrated \
                      on held-out mixtures (10× the largest 8- vs 32-node difference)",
    planted_variant: "mmse/t² for mmse/t³ in the integrated rate",
    false_failure: FalseFailure::PerRow(MIXTURE_DE_BRUIJN_ALPHA),
};

/// False-failure probability of the mixture Thm 3.3 row (whole row, Bonferroni over cases).
pub const MIXTURE_DENOISED_ALPHA: f64 = 1e-6;

/// Row: route 5.
pub const DENOISED_ENTROPY_MIXTURE: Claim = Claim {
    theorem: THEOREM,
    statement: "1-D GMMs: h(E[x_s|x_t]) − h(x_t) = E log m'(x_t) (Monte Carlo, m' = s/t + \
                (1−s/t)Var[x|x_t]/t² by Bayes' rule) = −∫q log q + ∫p_t log p_t (grid: the \
                density q of m(x_t), m inverted by bisection, m' by differences) < 0 for s < t \
                (Thm 3.3, eq. 3.2.48)",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "entropy::mixture_denoised_entropy: z·SE of the Monte Carlo side, z for \
                      α = 1e-6 over the row's cases (Bonferroni, derived), + a grid allowance \
                      calibrated on held-out mixtures (10× the largest difference to 4× points \
                      and a 4× smaller step)",
    planted_variant: "the step's weights swapped: m' = (1−s/t) + (s/t)Var/t²",
    false_failure: FalseFailure::PerRow(MIXTURE_DENOISED_ALPHA),
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

/// The mixtures of route 4: one random GMM with K = 3 ([`random_gmm`], full, singular and
/// point-mass components) per d ∈ {1, 2, 4} per seed of `depth.seeds` (d ∈ {1, 4} at quick).
pub fn de_bruijn_mixtures(depth: Depth) -> Result<Vec<GaussianMixture>> {
    let mut out = vec![];
    for seed in depth.seeds(ROW_SEED) {
        let mut rng = Rng::new(seed, 3);
        for d in depth.thin(2, [1usize, 2, 4]) {
            out.push(random_gmm(&mut rng, d, 3)?);
        }
    }
    Ok(out)
}

/// The noise-level pairs of route 4 (neither straddles t = 1, where the planted `mmse/t²`
/// equals `mmse/t³`).
pub const MIXTURE_PAIRS: [(f64, f64); 2] = [(0.2, 0.8), (1.0, 4.0)];

/// Draws of route 4: side A's paired draws and side B's draws per node (¼ at quick, 4× at
/// thorough).
pub fn mixture_de_bruijn_draws(depth: Depth) -> (usize, usize) {
    (depth.samples(4000), depth.samples(250))
}

/// The [`DE_BRUIJN_MIXTURE`] row's cases: each mixture × each pair (6 by default), z for
/// α = 10⁻⁶ split over the cases; case k reads seed `ROW_SEED + 0x100 + k`.
pub fn mixture_de_bruijn_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let targets = de_bruijn_mixtures(depth)?;
    let z = two_sided_z(MIXTURE_DE_BRUIJN_ALPHA / (targets.len() * MIXTURE_PAIRS.len()) as f64);
    let (na, nb) = mixture_de_bruijn_draws(depth);
    let mut out = vec![];
    for (k, target) in targets.iter().enumerate() {
        for (j, &(t1, t2)) in MIXTURE_PAIRS.iter().enumerate() {
            let seed = ROW_SEED + 0x100 + (MIXTURE_PAIRS.len() * k + j) as u64;
            let a = entropy_difference_mc(target, t1, t2, na, seed)?;
            let b = immse_integral(target, (t1, t2), IMMSE_NODES, nb, seed, false)?;
            out.push(mixture_de_bruijn_check(a, &b, z));
        }
    }
    Ok(out)
}

/// The 1-D mixtures of route 5: [`random_gmm`] with K ∈ {2, 3, 5} per seed of `depth.seeds`
/// (K ∈ {2, 5} at quick); in 1-D the components are full (variance) or point masses.
pub fn denoising_mixtures(depth: Depth) -> Result<Vec<GaussianMixture>> {
    let mut out = vec![];
    for seed in depth.seeds(ROW_SEED) {
        let mut rng = Rng::new(seed, 2);
        for k in depth.thin(2, [2usize, 3, 5]) {
            out.push(random_gmm(&mut rng, 1, k)?);
        }
    }
    Ok(out)
}

/// The (s, t) pairs of route 5 (s/t ≠ ½, where the planted swap is the identity).
pub const DENOISING_PAIRS: [(f64, f64); 2] = [(0.2, 1.0), (0.5, 2.0)];

/// Draws of route 5's Monte Carlo side (¼ at quick, 4× at thorough).
pub fn mixture_denoised_draws(depth: Depth) -> usize {
    depth.samples(1000)
}

/// The [`DENOISED_ENTROPY_MIXTURE`] row's cases: each 1-D mixture × each pair (6 by default),
/// z for α = 10⁻⁶ split over the cases; case k reads seed `ROW_SEED + 0x200 + k`.
pub fn mixture_denoised_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let targets = denoising_mixtures(depth)?;
    let z = two_sided_z(MIXTURE_DENOISED_ALPHA / (targets.len() * DENOISING_PAIRS.len()) as f64);
    let mut out = vec![];
    for (k, target) in targets.iter().enumerate() {
        for (j, &pair) in DENOISING_PAIRS.iter().enumerate() {
            let seed = ROW_SEED + 0x200 + (DENOISING_PAIRS.len() * k + j) as u64;
            let draws = mixture_denoised_draws(depth);
            out.push(mixture_denoised_entropy(target, pair, draws, z, seed)?.0);
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
        Verdict::collect(&DE_BRUIJN_MIXTURE, CPU_BACKEND, depth, || {
            mixture_de_bruijn_cases(depth)
        }),
        Verdict::collect(&DENOISED_ENTROPY_MIXTURE, CPU_BACKEND, depth, || {
            mixture_denoised_cases(depth)
        }),
    ]
}
