//! `kl_bound` — the denoising bound on the KL divergence (Sugolov Prop. 4; Kadkhodaie et al.
//! eq. 5, App. C.2):
//!
//! `D_KL(p‖p_θ) ≤ ∫₀^∞ (MSE(f_θ, σ²) − MSE(f*, σ²)) σ⁻³ dσ`,
//!
//! with equality when `f_θ` is the Bayes denoiser of a model q at every σ and `p_θ = q`.
//!
//! Why equality: with `p_s = p * N(0, sI)`, `q_s = q * N(0, sI)` (s = σ²) both solve the heat
//! equation, and `d/ds KL(p_s‖q_s) = −½ E_{p_s}‖∇log p_s − ∇log q_s‖²` (de Bruijn's identity for
//! relative entropy). Tweedie gives `∇log p_s − ∇log q_s = (f*(y) − f_θ(y))/s`, and Prop. 2 gives
//! `E‖f* − f_θ‖² = MSE(f_θ) − MSE(f*)`. Integrating s from 0 to ∞ (where the KL vanishes) and
//! substituting s = σ² (ds/(2s²) = σ⁻³dσ) turns the derivative into the right-hand side exactly.
//! Song et al.'s inequality adds only the prior term `KL(p_T‖π)` and the path-space slack of the
//! reverse SDE, both zero here.
//!
//! Routes: the left side in closed form (Gaussians: traces and log-determinants; a 1-D mixture
//! against a Gaussian: quadrature of `p log p` plus the Gaussian cross-entropy in closed form); the
//! right side by quadrature over σ of the denoisers' MSE gap. The gap is evaluated as
//! `E‖f*(y) − f_θ(y)‖²` with the factor σ⁴ taken out analytically — for affine Bayes denoisers
//! `f*(y) − f_θ(y) = σ²[(Σ_q + σ²I)⁻¹(y − μ_q) − (Σ_p + σ²I)⁻¹(y − μ_p)]` — because subtracting two
//! MSEs of order σ²d loses every digit of an O(σ⁴) gap as σ → 0.

use super::{noisy_expectation_1d, Check, Claim, Controlled, ToleranceKind, Verdict, CPU_BACKEND};
use crate::error::{ensure_finite, ensure_len, Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::rng::Rng;
use crate::targets::{ClosedForm, GaussianMixture, Target};

/// The theorem id.
pub const THEOREM: &str = "kl_bound";

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

    fn dim(&self) -> usize {
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

/// A quadrature result with its error estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Integral {
    /// The value.
    pub value: f64,
    /// The integrator's error estimate (summed over pieces).
    pub error: f64,
}

/// `∫₀^∞ h(s) ds` for a smooth h with `h(s) → const` as s → 0 and `h(s) = O(s⁻²)` as s → ∞, by
/// double-exponential quadrature after `s = c·t/(1 − t)`, t ∈ (0, 1), split at t = ½ (s = c).
fn integrate_half_line(scale: f64, h: impl Fn(f64) -> Result<f64>) -> Result<Integral> {
    let failure = std::cell::RefCell::new(None);
    let integrand = |t: f64| {
        if t <= 0.0 || t >= 1.0 {
            return 0.0;
        }
        let s = scale * t / (1.0 - t);
        match h(s) {
            Ok(v) => v * scale / ((1.0 - t) * (1.0 - t)),
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                f64::NAN
            }
        }
    };
    let (mut value, mut error) = (0.0, 0.0);
    for (a, b) in [(0.0, 0.5), (0.5, 1.0)] {
        let q = quadrature::double_exponential::integrate(integrand, a, b, 1e-14);
        value += q.integral;
        error += q.error_estimate;
    }
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    Ok(Integral { value, error })
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

fn normal_log_pdf(x: f64, mean: f64, var: f64) -> f64 {
    -0.5 * ((x - mean).powi(2) / var + (std::f64::consts::TAU * var).ln())
}

/// `KL(p‖N(m, v))` for a 1-D Gaussian mixture p with positive component variances:
/// `(weight, mean, variance)` of each component of a mixture, read as 1-D (the first mean
/// coordinate and the trace of the covariance; callers check that the dimension is 1).
fn weight_mean_variance(law: &GaussianMixture) -> Vec<(f64, f64, f64)> {
    law.components()
        .iter()
        .map(|c| {
            (
                c.weight,
                c.mean[0],
                c.factor.eigenvalues.iter().sum::<f64>(),
            )
        })
        .collect()
}

/// `∫ p log p` by quadrature of the mixture density written out directly (not through the
/// noisy-density code), plus the Gaussian cross-entropy in closed form,
/// `−∫ p log q = ½log(2πv) + (Var_p + (E_p − m)²)/(2v)`.
pub fn mixture_gaussian_kl(p: &GaussianMixture, m: f64, v: f64) -> Result<Integral> {
    let comps = weight_mean_variance(p);
    if p.dim() != 1
        || comps.iter().any(|c| c.2 <= 0.0)
        || v.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    {
        return Err(Error::InvalidArgument {
            what: "1-D KL".into(),
            reason: format!(
                "needs a 1-D mixture with positive variances and v > 0 (got d = {}, v = {v})",
                p.dim()
            ),
        });
    }
    let log_p = |x: f64| {
        let terms: Vec<f64> = comps
            .iter()
            .map(|&(w, mu, var)| w.ln() + normal_log_pdf(x, mu, var))
            .collect();
        linalg::log_sum_exp(&terms)
    };
    let mut cuts: Vec<f64> = Vec::new();
    for &(_, mu, var) in &comps {
        for k in [-40.0, -8.0, -2.0, 0.0, 2.0, 8.0, 40.0] {
            cuts.push(mu + k * var.sqrt());
        }
    }
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    let (mut neg_entropy, mut error) = (0.0, 0.0);
    for w in cuts.windows(2) {
        let q = quadrature::double_exponential::integrate(
            |x| {
                let lp = log_p(x);
                lp.exp() * lp
            },
            w[0],
            w[1],
            1e-14,
        );
        neg_entropy += q.integral;
        error += q.error_estimate;
    }
    let mean = p.mean()[0];
    let var = p.covariance()[(0, 0)];
    let cross = 0.5 * (std::f64::consts::TAU * v).ln() + (var + (mean - m).powi(2)) / (2.0 * v);
    Ok(Integral {
        value: neg_entropy + cross,
        error,
    })
}

/// How the nested quadrature of the score gap is evaluated: as the theorem says, or with one
/// planted error (the negative controls of the mixture rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapVariant {
    /// `½E_{p_s}(∇log p_s − ∇log q_s)²` at noise standard deviation σ = √s.
    Exact,
    /// σ for σ²: the scores evaluated with the variance s passed where the standard deviation σ
    /// is expected (noise variance s² instead of s).
    VarianceForStd,
    /// The ½ of de Bruijn's identity dropped: `E(∇log p_s − ∇log q_s)²` (σ⁻³dσ read as ds/s²).
    DroppedHalf,
}

/// `∫₀^∞ ½E_{p_s}(∇log p_s(y) − ∇log q_s(y))² ds` for a 1-D mixture p, by quadrature over y (the
/// score of p_s from the library's closed form, that of q_s from `q_score(y, σ)`) inside the
/// quadrature over s, with `variant` choosing the planted errors. The inner error estimate is
/// carried through the change of variables.
fn score_gap_integral(
    p: &GaussianMixture,
    scale: f64,
    variant: GapVariant,
    q_score: impl Fn(f64, f64) -> Result<f64>,
) -> Result<Integral> {
    let inner_error = std::cell::Cell::new(0.0f64);
    let outer = integrate_half_line(scale, |s| {
        let (noise, half) = match variant {
            GapVariant::Exact => (s.sqrt(), 0.5),
            GapVariant::VarianceForStd => (s, 0.5),
            GapVariant::DroppedHalf => (s.sqrt(), 1.0),
        };
        let (value, err) = noisy_expectation_1d(p, s.sqrt(), &[], |y| {
            let sp = p.score(&[y], noise).map(|g| g[0]).unwrap_or(f64::NAN);
            let sq = q_score(y, noise).unwrap_or(f64::NAN);
            half * (sp - sq).powi(2)
        })?;
        // the change of variables multiplies the inner error by ds/dt = (s + c)²/c
        inner_error.set(inner_error.get().max(err * (s + scale).powi(2) / scale));
        Ok(value)
    })?;
    Ok(Integral {
        value: outer.value,
        error: outer.error + inner_error.get(),
    })
}

/// The right side for a 1-D mixture p against q = N(m, v): at each s the gap
/// `E_{p_s}(f*(y) − f_q(y))²/(2s²) = ½E_{p_s}(∇log p_s(y) − ∇log q_s(y))²` (Tweedie: the
/// score of p_s from the analytic spectral route, that of q_s = N(m, v + s) in closed form),
/// by quadrature over y, inside the quadrature over s.
pub fn mixture_gap_integral(p: &GaussianMixture, m: f64, v: f64) -> Result<Integral> {
    gaussian_model_gap(p, m, v, GapVariant::Exact)
}

fn gaussian_model_gap(
    p: &GaussianMixture,
    m: f64,
    v: f64,
    variant: GapVariant,
) -> Result<Integral> {
    let var = p.covariance()[(0, 0)];
    score_gap_integral(p, var.max(v), variant, |y, sigma| {
        Ok(-(y - m) / (v + sigma * sigma))
    })
}

/// The tolerance of the 1-D mixture rows: 10× the summed quadrature error estimates (the
/// largest inner one, times the Jacobian of the change of variables, over the unit t-interval —
/// estimates, not bounds: the factor 10 is calibrated, see [`MIXTURE_GAUSSIAN_CLAIM`]) plus
/// `1e3·ε(1 + |KL| + |∫|)` for the f64 evaluation of the log-sum-exp densities and scores (each a
/// few dozen operations of relative error ε).
fn mixture_tolerance(kl: &Integral, integral: &Integral) -> f64 {
    10.0 * (kl.error + integral.error) + 1e3 * EPS * (1.0 + kl.value.abs() + integral.value.abs())
}

/// KL against the integral for a 1-D mixture p and q = N(m, v), tolerance
/// `mixture_tolerance`. Planted: [`GapVariant::VarianceForStd`] (σ for σ² in the scores).
pub fn mixture_equality(p: &GaussianMixture, m: f64, v: f64) -> Result<Controlled> {
    let kl = mixture_gaussian_kl(p, m, v)?;
    let integral = mixture_gap_integral(p, m, v)?;
    let planted = gaussian_model_gap(p, m, v, GapVariant::VarianceForStd)?;
    let tolerance = mixture_tolerance(&kl, &integral);
    Ok(Controlled {
        check: Check {
            residual: (kl.value - integral.value).abs(),
            tolerance,
        },
        planted: Check {
            residual: (kl.value - planted.value).abs(),
            tolerance,
        },
    })
}

/// `KL(p‖q)` for two 1-D Gaussian mixtures with positive component variances, by quadrature of
/// `p(log p − log q)` with both densities written out directly (log-sum-exp over components,
/// not through the noisy-density code), split at every component's mean ± {0, 2, 8, 40} sd.
pub fn mixture_kl(p: &GaussianMixture, q: &GaussianMixture) -> Result<Integral> {
    let parts = |law: &GaussianMixture| -> Result<Vec<(f64, f64, f64)>> {
        let comps = weight_mean_variance(law);
        if law.dim() != 1 || comps.iter().any(|c| c.2 <= 0.0) {
            return Err(Error::InvalidArgument {
                what: "1-D KL".into(),
                reason: format!(
                    "needs 1-D mixtures with positive variances (got d = {})",
                    law.dim()
                ),
            });
        }
        Ok(comps)
    };
    let (cp, cq) = (parts(p)?, parts(q)?);
    let log_density = |comps: &[(f64, f64, f64)], x: f64| {
        let terms: Vec<f64> = comps
            .iter()
            .map(|&(w, mu, var)| w.ln() + normal_log_pdf(x, mu, var))
            .collect();
        linalg::log_sum_exp(&terms)
    };
    let mut cuts: Vec<f64> = Vec::new();
    for &(_, mu, var) in cp.iter().chain(&cq) {
        for k in [-40.0, -8.0, -2.0, 0.0, 2.0, 8.0, 40.0] {
            cuts.push(mu + k * var.sqrt());
        }
    }
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    let (mut value, mut error) = (0.0, 0.0);
    for w in cuts.windows(2) {
        let piece = quadrature::double_exponential::integrate(
            |x| {
                let lp = log_density(&cp, x);
                lp.exp() * (lp - log_density(&cq, x))
            },
            w[0],
            w[1],
            1e-14,
        );
        value += piece.integral;
        error += piece.error_estimate;
    }
    Ok(Integral { value, error })
}

/// KL against the integral for two 1-D mixtures — q's Bayes denoiser is not affine, so this is
/// the equality beyond Gaussian models: `KL(p‖q)` by [`mixture_kl`] against
/// `∫₀^∞ ½E_{p_s}(∇log p_s − ∇log q_s)² ds` (both scores the library's closed-form mixture
/// scores), tolerance `mixture_tolerance`. Planted: [`GapVariant::DroppedHalf`].
pub fn mixture_pair_equality(p: &GaussianMixture, q: &GaussianMixture) -> Result<Controlled> {
    let kl = mixture_kl(p, q)?;
    let scale = p.covariance()[(0, 0)].max(q.covariance()[(0, 0)]);
    let gap = |variant| {
        score_gap_integral(p, scale, variant, |y, sigma| {
            q.score(&[y], sigma).map(|g| g[0])
        })
    };
    let integral = gap(GapVariant::Exact)?;
    let planted = gap(GapVariant::DroppedHalf)?;
    let tolerance = mixture_tolerance(&kl, &integral);
    Ok(Controlled {
        check: Check {
            residual: (kl.value - integral.value).abs(),
            tolerance,
        },
        planted: Check {
            residual: (kl.value - planted.value).abs(),
            tolerance,
        },
    })
}

/// The 1-D two-component model of the mixture-pair rows, `0.4·N(−1, 0.5) + 0.6·N(1.5, 0.8)`: a
/// non-Gaussian q whose Bayes denoiser is not affine.
pub fn two_component_model() -> Result<GaussianMixture> {
    GaussianMixture::new(
        &[0.4, 0.6],
        &[vec![-1.0], vec![1.5]],
        &[
            Mat::from_fn(1, 1, |_, _| 0.5),
            Mat::from_fn(1, 1, |_, _| 0.8),
        ],
    )
}

/// A linear denoiser family that is Bayes-optimal for no model: `f_θ(y; s) = μ_q + (G_q(s) +
/// κ(s)R)(y − μ_q)` with `G_q = Σ_q(Σ_q + sI)⁻¹`, R antisymmetric and `κ(s) = s/(1 + s)²`.
/// Its Jacobian `G_q + κR` is not symmetric, so `s_θ = (f_θ − y)/s = M(s)(y − μ_q)`,
/// `M(s) = −(Σ_q + sI)⁻¹ + R/(1 + s)²`, is not the gradient of any log-density.
#[derive(Debug, Clone)]
pub struct RotatedFamily {
    /// The model q whose Bayes denoiser is perturbed.
    pub model: Gaussian,
    /// The antisymmetric perturbation R.
    pub rotation: Mat,
}

impl RotatedFamily {
    /// M(s).
    fn drift(&self, s: f64) -> Result<Mat> {
        let d = self.model.dim();
        let shifted = Mat::from_fn(d, d, |i, j| {
            self.model.covariance[(i, j)] + if i == j { s } else { 0.0 }
        });
        let inv = linalg::spd_solve(&shifted, &Mat::identity(d, d))?;
        let k = 1.0 / (1.0 + s).powi(2);
        Ok(Mat::from_fn(d, d, |i, j| {
            -inv[(i, j)] + k * self.rotation[(i, j)]
        }))
    }
}

/// The generated law of the family: the reverse-time SDE of the variance-exploding process
/// (s = t, `dx = −s_θ(x, t)dt + dw̄` run from t = T to 0) is linear, so started from p_T =
/// N(μ_p, Σ_p + T·I) it stays Gaussian with `dm/dt = −M(t)(m − μ_q)` and
/// `dC/dt = −(M C + C Mᵀ + I)`. Integrated by RK4 in `u = log(t + c)` with `n` steps; the
/// returned error is Richardson's `|y_n − y_{2n}|/15` (max over entries).
pub fn reverse_sde_law(
    family: &RotatedFamily,
    p: &Gaussian,
    horizon: f64,
    steps: usize,
) -> Result<(Gaussian, f64)> {
    moment_ode_law(family, p, horizon, steps, 1.0)
}

/// [`reverse_sde_law`] with the diffusion term of the covariance equation scaled by
/// `diffusion` (1 for the reverse SDE; ½ is the planted error of [`ODE_CLAIM`]).
fn moment_ode_law(
    family: &RotatedFamily,
    p: &Gaussian,
    horizon: f64,
    steps: usize,
    diffusion: f64,
) -> Result<(Gaussian, f64)> {
    // the time offset c of u = log(t + c): the scale of q's covariance, where M(t) turns over
    let (eq, _) = linalg::sym_eigen(&family.model.covariance)?;
    let c = (eq[0] * eq[eq.len() - 1]).sqrt();
    let run = |n: usize| -> Result<(Vec<f64>, Mat)> {
        let d = p.dim();
        let (u0, u1) = ((horizon + c).ln(), c.ln());
        let h = (u1 - u0) / n as f64;
        let mut m = p.mean.clone();
        let mut cov = Mat::from_fn(d, d, |i, j| {
            p.covariance[(i, j)] + if i == j { horizon } else { 0.0 }
        });
        let mu_q = &family.model.mean;
        let deriv = |u: f64, m: &[f64], cov: &Mat| -> Result<(Vec<f64>, Mat)> {
            let t = (u.exp() - c).max(0.0);
            let a = family.drift(t)?;
            let jac = t + c; // dt/du
            let dm: Vec<f64> = (0..d)
                .map(|i| -jac * (0..d).map(|j| a[(i, j)] * (m[j] - mu_q[j])).sum::<f64>())
                .collect();
            let ac = &a * cov;
            let dc = Mat::from_fn(d, d, |i, j| {
                -jac * (ac[(i, j)] + ac[(j, i)] + if i == j { diffusion } else { 0.0 })
            });
            Ok((dm, dc))
        };
        for k in 0..n {
            let u = u0 + h * k as f64;
            let (k1m, k1c) = deriv(u, &m, &cov)?;
            let step = |m: &[f64], cov: &Mat, dm: &[f64], dc: &Mat, f: f64| {
                (
                    (0..d).map(|i| m[i] + f * h * dm[i]).collect::<Vec<_>>(),
                    Mat::from_fn(d, d, |i, j| cov[(i, j)] + f * h * dc[(i, j)]),
                )
            };
            let (m2, c2) = step(&m, &cov, &k1m, &k1c, 0.5);
            let (k2m, k2c) = deriv(u + 0.5 * h, &m2, &c2)?;
            let (m3, c3) = step(&m, &cov, &k2m, &k2c, 0.5);
            let (k3m, k3c) = deriv(u + 0.5 * h, &m3, &c3)?;
            let (m4, c4) = step(&m, &cov, &k3m, &k3c, 1.0);
            let (k4m, k4c) = deriv(u + h, &m4, &c4)?;
            for i in 0..d {
                m[i] += h / 6.0 * (k1m[i] + 2.0 * k2m[i] + 2.0 * k3m[i] + k4m[i]);
                for j in 0..d {
                    cov[(i, j)] += h / 6.0
                        * (k1c[(i, j)] + 2.0 * k2c[(i, j)] + 2.0 * k3c[(i, j)] + k4c[(i, j)]);
                }
            }
        }
        Ok((m, cov))
    };
    let (m1, c1) = run(steps)?;
    let (m2, c2) = run(2 * steps)?;
    let error = linalg::max_abs_diff(&m1, &m2).max(linalg::max_abs_diff_mat(&c1, &c2)) / 15.0;
    let sym = Mat::from_fn(c2.nrows(), c2.ncols(), |i, j| {
        0.5 * (c2[(i, j)] + c2[(j, i)])
    });
    Ok((Gaussian::new(m2, sym)?, error))
}

/// The right side of the bound for the family, `½∫₀^T E_{p_s}‖s_θ(y) − ∇log p_s(y)‖² ds`, with
/// `∇log p_s(y) = −(Σ_p + sI)⁻¹(y − μ_p)`: the integrand is `½E‖B y + c‖²`,
/// `B = M(s) + (Σ_p + sI)⁻¹`, `c = −M(s)μ_q − (Σ_p + sI)⁻¹μ_p`.
pub fn rotated_family_bound(family: &RotatedFamily, p: &Gaussian) -> Result<Integral> {
    let d = p.dim();
    let (ep, _) = linalg::sym_eigen(&p.covariance)?;
    integrate_half_line((ep[0] * ep[d - 1]).sqrt(), |s| {
        let noisy = Mat::from_fn(d, d, |i, j| {
            p.covariance[(i, j)] + if i == j { s } else { 0.0 }
        });
        let rp = linalg::spd_solve(&noisy, &Mat::identity(d, d))?;
        let a = family.drift(s)?;
        let b = &a + &rp;
        let c: Vec<f64> = (0..d)
            .map(|i| {
                -(0..d)
                    .map(|j| a[(i, j)] * family.model.mean[j] + rp[(i, j)] * p.mean[j])
                    .sum::<f64>()
            })
            .collect();
        Ok(0.5 * crate::denoisers::linear::expected_square_norm(&b, &c, &p.mean, &noisy).0)
    })
}

/// The outcome of the non-Bayes family: the KL of its generated law and the bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilyOutcome {
    /// `KL(p‖p_θ)` with p_θ from [`reverse_sde_law`].
    pub kl: f64,
    /// Bound on the error of `kl` from the ODE (Richardson) and the finite horizon T.
    pub kl_error: f64,
    /// The right side, [`rotated_family_bound`].
    pub bound: Integral,
}

/// Runs the family against p: generated law by the reverse SDE's moment ODE (T = 10⁸, 2000
/// RK4 steps, checked against 4000), its KL in closed form, and the bound by quadrature.
/// `kl_error` propagates the ODE error e (entries of m and C) to first order,
/// `|ΔKL| ≤ ½d·e(1/λ_min(C) + (λ_max(Σ_p) + ‖δ‖²)/λ_min(C)²) + √d·e‖δ‖/λ_min(C)` (δ = m − μ_p),
/// doubled, plus `10d(‖Σ_p‖ + ‖Σ_q‖ + ‖δ‖² + 1)/T` for starting at p_T and stopping the
/// integral at T (both effects are O(1/T)).
pub fn rotated_family(family: &RotatedFamily, p: &Gaussian) -> Result<FamilyOutcome> {
    family_outcome(family, p, 1.0)
}

/// [`rotated_family`] with the diffusion term scaled (see [`moment_ode_law`]).
fn family_outcome(family: &RotatedFamily, p: &Gaussian, diffusion: f64) -> Result<FamilyOutcome> {
    let horizon = 1e8;
    let (law, e) = moment_ode_law(family, p, horizon, 2000, diffusion)?;
    let kl = gaussian_kl(p, &law)?;
    let d = p.dim() as f64;
    let (ec, _) = linalg::sym_eigen(&law.covariance)?;
    let (ep, _) = linalg::sym_eigen(&p.covariance)?;
    let (eq, _) = linalg::sym_eigen(&family.model.covariance)?;
    let delta2: f64 = law
        .mean
        .iter()
        .zip(&p.mean)
        .map(|(a, b)| (a - b).powi(2))
        .sum();
    let lmin = ec[0];
    let ode = 2.0
        * (0.5 * d * e * (1.0 / lmin + (ep[ep.len() - 1] + delta2) / (lmin * lmin))
            + d.sqrt() * e * delta2.sqrt() / lmin);
    let tail = 10.0 * d * (ep[ep.len() - 1] + eq[eq.len() - 1] + delta2 + 1.0) / horizon;
    Ok(FamilyOutcome {
        kl,
        kl_error: ode + tail,
        bound: rotated_family_bound(family, p)?,
    })
}

/// The reverse SDE driven by q's Bayes denoiser (the family with R = 0) generates q and attains
/// the bound: residual `|KL(p‖p_θ) − ∫|`, tolerance `kl_error + 10·(quadrature estimate)` (see
/// [`rotated_family`] and [`ODE_CLAIM`]). Planted: the covariance equation's diffusion term
/// halved (`dC/dt = −(MC + CMᵀ + ½I)`, the ½g² of the probability-flow ODE written into the
/// SDE's moment equation), against the same bound and tolerance.
pub fn bayes_family_attains_bound(p: &Gaussian, q: &Gaussian) -> Result<Controlled> {
    let family = RotatedFamily {
        model: q.clone(),
        rotation: rotation(p.dim(), 0.0),
    };
    let o = family_outcome(&family, p, 1.0)?;
    let planted = family_outcome(&family, p, 0.5)?;
    let tolerance = o.kl_error + 10.0 * o.bound.error;
    Ok(Controlled {
        check: Check {
            residual: (o.kl - o.bound.value).abs(),
            tolerance,
        },
        planted: Check {
            residual: (planted.kl - o.bound.value).abs(),
            tolerance,
        },
    })
}

/// An antisymmetric 2×2 generator `[[0, ε], [−ε, 0]]` embedded in the first two coordinates.
pub fn rotation(d: usize, eps: f64) -> Mat {
    Mat::from_fn(d, d, |i, j| match (i, j) {
        (0, 1) => eps,
        (1, 0) => -eps,
        _ => 0.0,
    })
}

/// The 1-D mixture of the default cases, `0.3·N(−2, 0.3) + 0.5·N(0.5, 1) + 0.2·N(3, 0.5)`:
/// well separated modes of different widths.
pub fn three_component_mixture() -> Result<GaussianMixture> {
    GaussianMixture::new(
        &[0.3, 0.5, 0.2],
        &[vec![-2.0], vec![0.5], vec![3.0]],
        &[
            Mat::from_fn(1, 1, |_, _| 0.3),
            Mat::from_fn(1, 1, |_, _| 1.0),
            Mat::from_fn(1, 1, |_, _| 0.5),
        ],
    )
}

/// A random SPD matrix `A Aᵀ + 0.2·I`, A with N(0, 1/d) entries.
pub fn random_spd(rng: &mut Rng, d: usize) -> Mat {
    let a = Mat::from_fn(d, d, |_, _| rng.normal() / (d as f64).sqrt());
    let mut m = &a * a.transpose();
    for i in 0..d {
        m[(i, i)] += 0.2;
    }
    m
}

/// Row: Gaussian p and q, equality.
pub const GAUSSIAN_CLAIM: Claim = Claim {
    theorem: THEOREM,
    statement: "Gaussians p, q (non-commuting Σ, d ≤ 6): KL(p‖q) = ∫(MSE(f_q) − MSE(f*))σ⁻³dσ \
                (equality)",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "10× the double-exponential error estimate (difference of successive \
                      levels: an estimate, not a bound — a rigorous DE bound needs the integrand's \
                      analytic continuation, not computed) + derived rounding 64dκε(1 + |KL| + \
                      |∫|); calibrated on these 18 cases, where |KL − ∫| reaches 4.3× the \
                      estimate (the residual sits at the integrand's rounding floor, which the \
                      estimate does not see): the factor 10 leaves a margin of 2.3",
    planted_variant: "KL(q‖p) in place of KL(p‖q) (arguments swapped)",
};

/// Row: a 1-D mixture p against Gaussian models q.
pub const MIXTURE_GAUSSIAN_CLAIM: Claim = Claim {
    theorem: THEOREM,
    statement: "1-D GMM p vs Gaussian q: KL by quadrature = ∫ gap σ⁻³dσ by nested quadrature",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "kl_bound::mixture_tolerance: 10× the summed double-exponential error \
                      estimates (outer, and the largest inner one times the Jacobian of s = ct/(1 − \
                      t)) — estimates, not bounds; calibrated on the default mixture against three \
                      Gaussians and two mixtures — + 1e3ε(1 + |KL| + |∫|) log-sum-exp rounding",
    planted_variant: "σ for σ²: the scores evaluated with the variance s where the standard \
                      deviation σ is expected",
};

/// Row: a 1-D mixture p against a non-Gaussian (mixture) model q.
pub const MIXTURE_PAIR_CLAIM: Claim = Claim {
    theorem: THEOREM,
    statement: "1-D GMM p vs the Bayes denoiser of a 2-component mixture q (not affine): KL(p‖q) \
                = ∫ gap σ⁻³dσ (equality beyond Gaussian q)",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "kl_bound::mixture_tolerance (as the GMM-vs-Gaussian row)",
    planted_variant: "the ½ of de Bruijn's identity dropped (σ⁻³dσ read as ds/s²)",
};

/// Row: the reverse SDE with q's Bayes denoiser attains the bound.
pub const ODE_CLAIM: Claim = Claim {
    theorem: THEOREM,
    statement: "reverse SDE with q's Bayes denoiser generates q: KL(p‖p_θ) = bound (ODE route, \
                d = 2, 3)",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "kl_bound::rotated_family: first-order propagation of the RK4 Richardson \
                      estimate |y_n − y_2n|/15 (an estimate) into the KL, doubled, + 10d(…)/T for \
                      the horizon T = 10⁸, + 10× the bound's double-exponential error estimate",
    planted_variant: "the covariance ODE's diffusion term halved (dC/dt = −(MC + CMᵀ + ½I))",
};

/// The `verify` rows of `kl_bound`.
///
/// CPU-only: the GPU argument (the signature of [`super::Theorem::verdicts`]) is not used.
pub fn default_verdicts(_gpu: Result<&crate::gpu::Gpu>) -> Vec<Verdict> {
    vec![
        Verdict::collect(&GAUSSIAN_CLAIM, CPU_BACKEND, || {
            let mut rng = Rng::new(0x0c1b, 0);
            let mut out = Vec::new();
            for d in 1..=6 {
                for _ in 0..3 {
                    let p = Gaussian::new(rng.normals(d), random_spd(&mut rng, d))?;
                    let q = Gaussian::new(rng.normals(d), random_spd(&mut rng, d))?;
                    out.push(gaussian_equality(&p, &q)?);
                }
            }
            Ok(out)
        }),
        Verdict::collect(&MIXTURE_GAUSSIAN_CLAIM, CPU_BACKEND, || {
            let p = three_component_mixture()?;
            let (m, v) = (p.mean()[0], p.covariance()[(0, 0)]);
            Ok(vec![
                mixture_equality(&p, m, v)?,
                mixture_equality(&p, 0.0, 1.0)?,
            ])
        }),
        Verdict::collect(&MIXTURE_PAIR_CLAIM, CPU_BACKEND, || {
            Ok(vec![mixture_pair_equality(
                &three_component_mixture()?,
                &two_component_model()?,
            )?])
        }),
        Verdict::collect(&ODE_CLAIM, CPU_BACKEND, || {
            let mut rng = Rng::new(0x0c1c, 0);
            let mut out = Vec::new();
            for d in [2usize, 3] {
                let p = Gaussian::new(rng.normals(d), random_spd(&mut rng, d))?;
                let q = Gaussian::new(rng.normals(d), random_spd(&mut rng, d))?;
                out.push(bayes_family_attains_bound(&p, &q)?);
            }
            Ok(out)
        }),
    ]
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

    /// The mixture row's planted residual is `|KL − ∫(dropped half)|`, the distance of the
    /// planted integral from the KL (its own residual is at quadrature level).
    #[test]
    fn mixture_row_planted_residual_is_its_distance_from_kl() {
        let (p, q) = (
            three_component_mixture().unwrap(),
            two_component_model().unwrap(),
        );
        let row = mixture_pair_equality(&p, &q).unwrap();
        let kl = mixture_kl(&p, &q).unwrap();
        let scale = p.covariance()[(0, 0)].max(q.covariance()[(0, 0)]);
        let planted = score_gap_integral(&p, scale, GapVariant::DroppedHalf, |y, sigma| {
            q.score(&[y], sigma).map(|g| g[0])
        })
        .unwrap();
        let expected = (kl.value - planted.value).abs();
        assert!(row.check.passed() && expected > row.check.tolerance);
        assert!((row.planted.residual - expected).abs() <= 1e-12 * expected);
    }

    /// The reverse-SDE rows' error allowance is the documented one:
    /// `2(½d·e(1/λ_min + (λ_max(Σ_p) + ‖Δμ‖²)/λ_min²) + √d·e·‖Δμ‖/λ_min) + 10d(λ_max(Σ_p) +
    /// λ_max(Σ_q) + ‖Δμ‖² + 1)/T`, with e the ODE's error estimate, λ_min the generated
    /// covariance's smallest eigenvalue and T = 10⁸, written out here for a 2-D pair; the ODE
    /// term must matter at the test's precision (it is ≳ 10⁻⁶ of the total).
    #[test]
    fn family_error_allowance_is_the_documented_bound() {
        let p = Gaussian::new(
            vec![0.5, -0.2],
            Mat::from_fn(2, 2, |i, j| [[1.5, 0.3], [0.3, 0.8]][i][j]),
        )
        .unwrap();
        // q's covariance diag(2, ½) keeps the generated λ_min away from 1.
        let q = Gaussian::new(
            vec![0.0, 0.0],
            Mat::from_fn(2, 2, |i, j| if i == j { [2.0, 0.5][i] } else { 0.0 }),
        )
        .unwrap();
        let family = RotatedFamily {
            model: q.clone(),
            rotation: rotation(2, 0.3),
        };
        let o = family_outcome(&family, &p, 1.0).unwrap();
        let (law, e) = moment_ode_law(&family, &p, 1e8, 2000, 1.0).unwrap();
        let (ec, _) = linalg::sym_eigen(&law.covariance).unwrap();
        let (ep, _) = linalg::sym_eigen(&p.covariance).unwrap();
        let delta2: f64 = law
            .mean
            .iter()
            .zip(&p.mean)
            .map(|(a, b)| (a - b).powi(2))
            .sum();
        let (d, lmin, lp) = (2.0f64, ec[0], ep[1]);
        assert!((lmin - 1.0).abs() > 0.3, "λ_min = {lmin}");
        let ode = 2.0
            * (0.5 * d * e * (1.0 / lmin + (lp + delta2) / (lmin * lmin))
                + d.sqrt() * e * delta2.sqrt() / lmin);
        let tail = 10.0 * d * (lp + 2.0 + delta2 + 1.0) / 1e8;
        let expected = ode + tail;
        assert!(ode > 1e-6 * expected, "ode {ode:e} vs {expected:e}");
        assert!(
            (o.kl_error - expected).abs() <= 1e-12 * expected,
            "{} vs {expected}",
            o.kl_error
        );
    }
}
