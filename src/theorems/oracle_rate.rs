//! `oracle_rate` — the decay of the oracle denoising error (Sugolov Thm 1; Kadkhodaie et al.
//! eq. 13, with the sign of its exponent corrected).
//!
//! For an orthonormal basis `(ψ_k)` and `y = x + z`, `z ~ N(0, σ²I)`, the oracle diagonal
//! denoiser `x̂ = Σ_k λ_k⟨y, ψ_k⟩ψ_k` with `λ_k = c_k²/(c_k² + σ²)`, `c_k² = ⟨x, ψ_k⟩²` (the
//! best shrinkage in that basis, which knows x) has the error
//!
//! `R(σ) = E_z‖x − x̂‖² = Σ_k σ²c_k²/(c_k² + σ²)`,
//!
//! and if `c·k^{−(α+1)} ≤ c_k² ≤ c′·k^{−(α+1)}` then `R(σ) ∼ σ^{2α/(α+1)} = (σ²)^{α/(α+1)}`: a
//! slope of `α/(α+1)` in `ln σ²` (the "optimal PSNR slope").
//!
//! Routes compared (each verify row runs one planted wrong variant that it must reject):
//! 1. [`Coefficients::sandwich`]: `R` (the sum) against the M-term bound
//!    `B(σ) = min_M (Mσ² + Σ_{k>M} c_(k)²)` (a brute-force minimum over M on the sorted
//!    coefficients): `B/2 ≤ R ≤ B` exactly, for every sequence, since
//!    `½·min(a, b) ≤ ab/(a + b) ≤ min(a, b)` for `a, b ≥ 0` and `B = Σ_k min(c_k², σ²)`.
//! 2. [`rate_check`]: Theorem 1 with explicit constants (integral comparison of the sums of
//!    `min(c·k^{−β}, σ²)`, `β = α + 1`):
//!    `½[(β/α)c^{1/β}s^{α/β} − s − c(n+1)^{−α}/α] ≤ R ≤ (β/α)c′^{1/β}s^{α/β}`, `s = σ²`.
//! 3. [`power_law_slope`]: the least-squares slope of `ln R` over `ln σ²` for the exact power law
//!    `c_k² = k^{−β}` against `α/β`, within a bound derived from the closed form
//!    `∫_0^∞ s/(1 + s x^β) dx = C_β s^{α/β}`, `C_β = (π/β)/sin(π/β)` (a Beta function), and the
//!    sum–integral comparison `I(s) − s − (n+1)^{−α}/α ≤ R_n(s) ≤ I(s)`.
//! 4. [`texture_slope_cases`]: the same slope, fitted on textures from the crate's `C^α` image
//!    generator in the 2-D Fourier basis, against `α/(α+1)` (z·SE over images plus a calibrated
//!    finite-window allowance). The generator's background at filter exponent γ has power
//!    `∝ |ω|^{−2γ}`; sorted over the 2-D lattice (`#{|ω| ≤ r} ≈ πr²`) its k-th coefficient is
//!    `∝ k^{−γ}`, so Theorem 1's exponent is `γ − 1`: the generator's own α gives the slope
//!    `(α − 1)/α`, and the filter exponent `α + 1` gives `α/(α+1)`. Full generated images (with
//!    the contour) do not reach `α/(α+1)` in the Fourier basis: see `theorems/oracle_rate.md`.

use super::{Check, Claim, Controlled, Depth, FalseFailure, ToleranceKind, Verdict, CPU_BACKEND};
use crate::error::{ensure_positive_finite, ensure_sigma_squared, Error, Result};
use crate::gpu::Gpu;
use crate::numerics::gamma_f64;
use crate::rng::Rng;
use crate::stats::{mean_and_std_error, two_sided_t};
use crate::targets::images::calpha::CAlphaGenerator;
use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

/// The theorem id.
pub const THEOREM: &str = "oracle_rate";

/// The smallest positive subnormal f64, `2⁻¹⁰⁷⁴`: the absolute error of one rounding that
/// underflows.
const UNDERFLOW: f64 = f64::from_bits(1);

/// Returns an error unless the decay exponent `α` is finite and `> 0`.
/// Returns an error unless every squared coefficient is finite and `≥ 0` and there is one.
fn ensure_coefficients(squared: &[f64]) -> Result<()> {
    if squared.is_empty() {
        return Err(Error::InvalidArgument {
            what: "squared coefficients".into(),
            reason: "need at least one coefficient, got none".into(),
        });
    }
    for (index, &value) in squared.iter().enumerate() {
        if !value.is_finite() {
            return Err(Error::NonFinite {
                what: "squared coefficients".into(),
                index,
                value,
            });
        }
        if value < 0.0 {
            return Err(Error::InvalidArgument {
                what: format!("squared coefficient {index}").into(),
                reason: format!("a squared coefficient must be ≥ 0, got {value}"),
            });
        }
    }
    Ok(())
}

/// `Σ_k s·c_k²/(c_k² + s)` by recursive summation in the given order (the oracle risk at noise
/// variance `s = σ²`; a zero coefficient contributes 0).
fn risk_at_variance(squared: &[f64], s: f64) -> f64 {
    squared.iter().map(|&c| s * c / (c + s)).sum()
}

/// One value of the M-term bound: `B = Mσ² + Σ_{k>M} c_(k)²` at the minimising `M`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MTerm {
    /// `B(σ) = min_M (Mσ² + Σ_{k>M} c_(k)²)`.
    pub value: f64,
    /// The minimising `M` found first (in exact arithmetic every M from `#{k : c_k² > σ²}` to
    /// `#{k : c_k² ≥ σ²}` minimises, since adding the (M+1)-th term changes the sum by
    /// `σ² − c_(M+1)²`; in floating point a tie may go to any of them).
    pub terms: usize,
}

/// The squared coefficients `c_k² = ⟨x, ψ_k⟩²` of a signal in an orthonormal basis, kept in the
/// given order (for the oracle risk) and sorted in decreasing order with their tail sums
/// `T_M = Σ_{k>M} c_(k)²` (for the M-term bound).
#[derive(Debug, Clone, PartialEq)]
pub struct Coefficients {
    squared: Vec<f64>,
    sorted: Vec<f64>,
    /// `tails[M] = Σ_{k>M} c_(k)²` for `M = 0..=n`, summed from the smallest term up.
    tails: Vec<f64>,
}

impl Coefficients {
    /// The coefficients `c_k²` (finite, `≥ 0`, at least one).
    pub fn new(squared: Vec<f64>) -> Result<Self> {
        ensure_coefficients(&squared)?;
        let mut sorted = squared.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let mut tails = vec![0.0; sorted.len() + 1];
        for m in (0..sorted.len()).rev() {
            tails[m] = tails[m + 1] + sorted[m];
        }
        Ok(Self {
            squared,
            sorted,
            tails,
        })
    }

    /// The number of coefficients n.
    pub fn len(&self) -> usize {
        self.squared.len()
    }

    /// Always false (a [`Coefficients`] holds at least one coefficient).
    pub fn is_empty(&self) -> bool {
        self.squared.is_empty()
    }

    /// The squared coefficients in the given order.
    pub fn squared(&self) -> &[f64] {
        &self.squared
    }

    /// The oracle risk `R(σ) = Σ_k σ²c_k²/(c_k² + σ²)` (recursive summation; relative error
    /// `≤ γ_{n+2}`, see [`Coefficients::sandwich`]).
    pub fn oracle_risk(&self, sigma: f64) -> Result<f64> {
        ensure_sigma_squared(sigma)?;
        Ok(risk_at_variance(&self.squared, sigma * sigma))
    }

    /// The M-term bound `B(σ) = min_{0≤M≤n} (Mσ² + Σ_{k>M} c_(k)²)` by brute force over every
    /// M, from the sorted coefficients and their tail sums (it never evaluates
    /// `σ²c²/(c² + σ²)`). Each candidate has relative error `≤ γ_{n+2}` (the tail sum of at most
    /// n terms, one product, one sum), so the minimum has too.
    pub fn m_term_bound(&self, sigma: f64) -> Result<MTerm> {
        ensure_sigma_squared(sigma)?;
        Ok(self.m_term_at_variance(sigma * sigma))
    }

    fn m_term_at_variance(&self, s: f64) -> MTerm {
        let mut best = MTerm {
            value: f64::INFINITY,
            terms: 0,
        };
        for (m, tail) in self.tails.iter().enumerate() {
            let value = m as f64 * s + tail;
            if value < best.value {
                best = MTerm { value, terms: m };
            }
        }
        best
    }

    /// Route (a): `B/2 ≤ R ≤ B` at σ. Residual `max(0, ½ − q, q − 1)` of the computed ratio
    /// `q = R/B`; tolerance `γ_{2n+6} + (4n + 8)·2⁻¹⁰⁷⁴/B` (R and B each within relative
    /// `γ_{n+2}`, the division one rounding, and q ≤ 1; the second term covers roundings that
    /// underflow). Planted: σ for σ² in the oracle sum, `R′ = Σ σc²/(c² + σ)`, against the same
    /// B and tolerance. An all-zero sequence (R = B = 0) is refused.
    pub fn sandwich(&self, sigma: f64) -> Result<Controlled> {
        ensure_sigma_squared(sigma)?;
        let s = sigma * sigma;
        let bound = self.m_term_at_variance(s).value;
        if bound <= 0.0 {
            return Err(Error::InvalidArgument {
                what: "squared coefficients".into(),
                reason: format!(
                    "the M-term bound is {bound} at sigma = {sigma}: every coefficient is 0, so \
                     R = B = 0 and R/B is undefined"
                ),
            });
        }
        let n = self.len();
        let tolerance = gamma_f64(2 * n + 6) + (4 * n + 8) as f64 * UNDERFLOW / bound;
        let check = |risk: f64| {
            let q = risk / bound;
            Check {
                residual: (0.5 - q).max(q - 1.0).max(0.0),
                tolerance,
            }
        };
        Ok(Controlled {
            check: check(risk_at_variance(&self.squared, s)),
            planted: check(risk_at_variance(&self.squared, sigma)),
        })
    }
}

/// `C_β = ∫_0^∞ du/(1 + u^β) = B(1/β, 1 − 1/β)/β = (π/β)/sin(π/β)` for `β > 1` (the Beta
/// function and Euler's reflection formula `Γ(t)Γ(1 − t) = π/sin(πt)`). With `u = s^{1/β}x`,
/// `∫_0^∞ s/(1 + s·x^β) dx = C_β·s^{1 − 1/β}`: the integral form of the oracle risk of
/// `c_k² = k^{−β}`.
pub fn integral_constant(beta: f64) -> Result<f64> {
    if !(beta.is_finite() && beta > 1.0) {
        return Err(Error::InvalidArgument {
            what: "power-law exponent beta = alpha + 1".into(),
            reason: format!("beta must be finite and > 1, got {beta}"),
        });
    }
    let t = std::f64::consts::PI / beta;
    Ok(t / t.sin())
}

/// The exact power law `c_k² = k^{−(α+1)}`, `k = 1..=n`.
pub fn power_law(alpha: f64, n: usize) -> Result<Vec<f64>> {
    ensure_positive_finite("decay exponent alpha", alpha)?;
    if n == 0 {
        return Err(Error::InvalidArgument {
            what: "number of coefficients n".into(),
            reason: "need n ≥ 1, got 0".into(),
        });
    }
    let beta = alpha + 1.0;
    Ok((1..=n).map(|k| (k as f64).powf(-beta)).collect())
}

/// A perturbed power law `c_k² = u_k·k^{−(α+1)}`, `k = 1..=n`, with multipliers `u_k`
/// log-uniform on `[c, c′]` drawn from `rng` (one uniform each): a sequence that satisfies
/// Theorem 1's hypothesis with constants c and c′ but is neither sorted nor a pure power law.
pub fn perturbed_power_law(
    alpha: f64,
    n: usize,
    (low, high): (f64, f64),
    rng: &mut Rng,
) -> Result<Vec<f64>> {
    let exact = power_law(alpha, n)?;
    if !(low.is_finite() && high.is_finite() && low > 0.0 && low <= high) {
        return Err(Error::InvalidArgument {
            what: "multiplier range (c, c')".into(),
            reason: format!("need 0 < c ≤ c' < ∞, got ({low}, {high})"),
        });
    }
    let span = (high / low).ln();
    Ok(exact
        .into_iter()
        .map(|c| c * low * (span * rng.uniform()).exp())
        .collect())
}

/// The tightest constants of Theorem 1's hypothesis for a finite sequence:
/// `c = min_k c_k²·k^{α+1}` and `c′ = max_k c_k²·k^{α+1}` (each within relative `2ε`: one
/// `powf` and one product).
pub fn hypothesis_constants(squared: &[f64], alpha: f64) -> Result<(f64, f64)> {
    ensure_coefficients(squared)?;
    ensure_positive_finite("decay exponent alpha", alpha)?;
    let beta = alpha + 1.0;
    let scaled = squared
        .iter()
        .enumerate()
        .map(|(i, c)| c * ((i + 1) as f64).powf(beta));
    let (low, high) = scaled.fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
    if !high.is_finite() {
        return Err(Error::InvalidArgument {
            what: "squared coefficients".into(),
            reason: format!("c_k²·k^(alpha+1) overflows for alpha = {alpha}"),
        });
    }
    Ok((low, high))
}

/// Theorem 1's two sides at noise variance `s = σ²` for n coefficients with
/// `c·k^{−β} ≤ c_k² ≤ c′·k^{−β}`, `β = α + 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateBounds {
    /// `½[(β/α)c^{1/β}s^{α/β} − s − c(n+1)^{−α}/α]` (it may be ≤ 0, then it says nothing).
    pub lower: f64,
    /// `(β/α)c′^{1/β}s^{α/β}`.
    pub upper: f64,
    /// `½[(β/α)c^{1/β}s^{α/β} + s + c(n+1)^{−α}/α]`: the magnitude the lower bound is
    /// computed from (its rounding error is at most `γ_16` times this).
    pub lower_magnitude: f64,
}

/// Theorem 1 with explicit constants, for `s = σ²` raised to `exponent` (`α/β` is the theorem;
/// the planted variant passes `−α/β`). Derivation: `½B ≤ R ≤ B` ([`Coefficients::sandwich`]) and
/// `B = Σ_{k≤n} min(c_k², s)` is increasing in every `c_k²`; for `f(x) = min(c·x^{−β}, s)`
/// (decreasing), `∫_1^{n+1} f ≤ Σ_{k=1}^n f(k) ≤ ∫_0^∞ f`, and
/// `∫_0^∞ min(c·x^{−β}, s) dx = (β/α)c^{1/β}s^{α/β}` (crossover at `x* = (c/s)^{1/β}`), while
/// `∫_0^1 f ≤ s` and `∫_{n+1}^∞ f ≤ c(n+1)^{−α}/α`.
fn rate_bounds_with_exponent(
    alpha: f64,
    (low, high): (f64, f64),
    n: usize,
    s: f64,
    exponent: f64,
) -> RateBounds {
    let beta = alpha + 1.0;
    let power = s.powf(exponent);
    let scale = beta / alpha;
    let first = scale * low.powf(1.0 / beta) * power;
    let tail = low * ((n + 1) as f64).powf(-alpha) / alpha;
    RateBounds {
        lower: 0.5 * (first - s - tail),
        upper: scale * high.powf(1.0 / beta) * power,
        lower_magnitude: 0.5 * (first + s + tail),
    }
}

/// [`RateBounds`] of Theorem 1 at σ for n coefficients with constants `(c, c′)`, `c ≤ c′`.
pub fn theorem_1_bounds(
    alpha: f64,
    (low, high): (f64, f64),
    n: usize,
    sigma: f64,
) -> Result<RateBounds> {
    ensure_positive_finite("decay exponent alpha", alpha)?;
    ensure_sigma_squared(sigma)?;
    if !(low.is_finite() && high.is_finite() && low >= 0.0 && low <= high) {
        return Err(Error::InvalidArgument {
            what: "hypothesis constants (c, c')".into(),
            reason: format!("need 0 ≤ c ≤ c' < ∞, got ({low}, {high})"),
        });
    }
    Ok(rate_bounds_with_exponent(
        alpha,
        (low, high),
        n,
        sigma * sigma,
        alpha / (alpha + 1.0),
    ))
}

/// The relative check of `lower ≤ R ≤ upper`: residual `max(0, lower − R, R − upper)/R`,
/// tolerance `(γ_16·max(lower_magnitude, upper) + γ_{n+2}R)/R·(1 + γ_{n+3})` (the closed forms
/// within `γ_16`, each libm call counted as one rounding of ε, i.e. within one ulp; R within
/// `γ_{n+2}`; the division by the computed R).
fn relative_bounds_check(risk: f64, bounds: RateBounds, n: usize) -> Check {
    let excess = (bounds.lower - risk).max(risk - bounds.upper).max(0.0);
    let rounding =
        gamma_f64(16) * bounds.lower_magnitude.max(bounds.upper) + gamma_f64(n + 2) * risk;
    Check {
        residual: excess / risk,
        tolerance: rounding / risk * (1.0 + gamma_f64(n + 3)),
    }
}

/// Route (b′): Theorem 1 with the explicit constants of [`theorem_1_bounds`], the constants
/// `(c, c′)` taken from the sequence itself ([`hypothesis_constants`]). Planted: the exponent as
/// printed in Kadkhodaie et al. eq. 13, `σ^{−2α/(α+1)}`, i.e. the same bounds with
/// `s^{−α/β}` for `s^{α/β}` (it fails for small σ, where the true risk vanishes). Refuses a
/// sequence that is all zero (R = 0).
pub fn rate_check(squared: &[f64], alpha: f64, sigma: f64) -> Result<Controlled> {
    let constants = hypothesis_constants(squared, alpha)?;
    ensure_sigma_squared(sigma)?;
    let s = sigma * sigma;
    let risk = risk_at_variance(squared, s);
    if risk.is_nan() || risk <= 0.0 {
        return Err(Error::InvalidArgument {
            what: "squared coefficients".into(),
            reason: format!("the oracle risk is {risk} at sigma = {sigma}: need a nonzero one"),
        });
    }
    let n = squared.len();
    let ratio = alpha / (alpha + 1.0);
    // the constants are computed within relative 2ε, inside γ_16 of the closed forms
    let bounds = |exponent| rate_bounds_with_exponent(alpha, constants, n, s, exponent);
    Ok(Controlled {
        check: relative_bounds_check(risk, bounds(ratio), n),
        planted: relative_bounds_check(risk, bounds(-ratio), n),
    })
}

/// The least-squares slope `Σ_i a_i y_i` with `a_i = (x_i − x̄)/Σ_j(x_j − x̄)²`, and the weights
/// `a_i` (they satisfy `Σa_i = 0`, `Σa_i x_i = 1`, so a line `p·x + q` has slope exactly p).
pub fn least_squares_slope(x: &[f64], y: &[f64]) -> Result<(f64, Vec<f64>)> {
    if x.len() != y.len() {
        return Err(Error::DimensionMismatch {
            what: "least-squares ordinates".into(),
            expected: x.len(),
            got: y.len(),
        });
    }
    crate::error::ensure_finite("least-squares abscissae", x)?;
    crate::error::ensure_finite("least-squares ordinates", y)?;
    let mean = x.iter().sum::<f64>() / x.len().max(1) as f64;
    let spread: f64 = x.iter().map(|v| (v - mean).powi(2)).sum();
    if x.len() < 2 || spread <= 0.0 {
        return Err(Error::InvalidArgument {
            what: "least-squares abscissae".into(),
            reason: format!(
                "need at least two distinct abscissae, got {} with spread {spread}",
                x.len()
            ),
        });
    }
    let weights: Vec<f64> = x.iter().map(|v| (v - mean) / spread).collect();
    let slope = weights.iter().zip(y).map(|(a, b)| a * b).sum();
    Ok((slope, weights))
}

/// A grid of noise variances `s = σ²` in the asymptotic range of the exact power law
/// `c_k² = k^{−(α+1)}`, and the number of terms n that the risk sums.
#[derive(Debug, Clone, PartialEq)]
pub struct SlopeWindow {
    /// The decay exponent α.
    pub alpha: f64,
    /// The variances `s_i = σ_i²`, log-spaced, decreasing.
    pub variances: Vec<f64>,
    /// The number of terms n of the finite sequence.
    pub terms: usize,
}

/// The most terms [`slope_window`] sums (2²²): beyond it the truncation part of the bound
/// grows instead.
pub const MAX_TERMS: usize = 1 << 22;

/// The window where the power-law risk is within relative `correction` of its integral form:
/// the largest variance `s_hi = (correction·C_β)^β` (so that `s_hi/I(s_hi) =
/// s_hi^{1/β}/C_β = correction`), `points` variances log-spaced over `decades` decades below it,
/// and `n = ⌈(2/(α·correction·I(s_lo)))^{1/α}⌉` terms (so that the truncated tail
/// `(n+1)^{−α}/α ≤ ½·correction·I(s_lo)`), at most [`MAX_TERMS`].
pub fn slope_window(
    alpha: f64,
    correction: f64,
    decades: f64,
    points: usize,
) -> Result<SlopeWindow> {
    ensure_positive_finite("decay exponent alpha", alpha)?;
    if !(correction > 0.0 && correction < 1.0 && decades > 0.0 && decades.is_finite()) {
        return Err(Error::InvalidArgument {
            what: "slope window".into(),
            reason: format!(
                "need 0 < correction < 1 and 0 < decades < ∞, got correction = {correction}, \
                 decades = {decades}"
            ),
        });
    }
    if points < 2 {
        return Err(Error::InvalidArgument {
            what: "slope window points".into(),
            reason: format!("need at least 2 points, got {points}"),
        });
    }
    let beta = alpha + 1.0;
    let constant = integral_constant(beta)?;
    let high = (correction * constant).powf(beta);
    let variances: Vec<f64> = (0..points)
        .map(|i| high * 10f64.powf(-decades * i as f64 / (points - 1) as f64))
        .collect();
    let low = variances[points - 1];
    let min_variance = crate::error::SIGMA_RANGE.0.powi(2);
    if !(low >= min_variance && high.is_finite()) {
        return Err(Error::InvalidArgument {
            what: "slope window".into(),
            reason: format!(
                "the variances [{low:e}, {high:e}] for alpha = {alpha} leave the normal f64 range"
            ),
        });
    }
    let integral = constant * low.powf(alpha / beta);
    let needed = (2.0 / (alpha * correction * integral))
        .powf(1.0 / alpha)
        .ceil();
    let terms = if needed.is_finite() && needed < MAX_TERMS as f64 {
        (needed as usize).max(1)
    } else {
        MAX_TERMS
    };
    Ok(SlopeWindow {
        alpha,
        variances,
        terms,
    })
}

/// The outcome of [`power_law_slope`].
#[derive(Debug, Clone, PartialEq)]
pub struct PowerLawSlope {
    /// The fitted slope `b̂` of `ln R` over `ln σ²`.
    pub slope: f64,
    /// The prediction `α/(α+1)`.
    pub predicted: f64,
    /// The slopes of the planted variants on the same window, for the tests: σ for σ² in the
    /// oracle sum (predicted `α/(2(α+1))`).
    pub sigma_for_variance_slope: f64,
    /// The check against `α/(α+1)` and the planted `(α − 1)/α` (coefficients `k^{−α}` read
    /// for `k^{−(α+1)}`), with the derived tolerance.
    pub controlled: Controlled,
}

/// Route (b): the least-squares slope of `ln R_n(s_i)` over `ln s_i` for `c_k² = k^{−β}`,
/// `k ≤ n`, on the window's variances, against `α/β`.
///
/// Bound. For `g(x) = s/(1 + s·x^β)` (decreasing), `∫_1^{n+1} g ≤ R_n(s) ≤ ∫_0^∞ g = I(s) =
/// C_β s^{α/β}` ([`integral_constant`]), and `∫_0^1 g ≤ s`, `∫_{n+1}^∞ g ≤ (n+1)^{−α}/α`. So
/// `ln R_n(s_i) = ln C_β + (α/β) ln s_i + ε_i` with `ε_i ∈ [−e_i, 0]`,
/// `e_i = −ln(1 − (s_i + (n+1)^{−α}/α)/I(s_i))`, and with the least-squares weights `a_i`
/// (`Σa_i = 0`, `Σa_i ln s_i = 1`) `b̂ − α/β = Σ a_i ε_i ∈ [−Σ_{a_i>0} a_i e_i, Σ_{a_i<0}|a_i|e_i]`.
/// Tolerance: the larger of the two sides, plus rounding
/// `Σ|a_i|(2γ_{n+3} + (G + 4)ε(|ln R_i| + |ln s_i|))` (R within `γ_{n+3}`, counting `powf`; the
/// logs and the weighted sum of G terms). It is a proof: a correct implementation cannot fail
/// it. Planted: the slope `(α − 1)/α` of coefficients `k^{−α}` (the exponent off by one), same
/// tolerance.
pub fn power_law_slope(window: &SlopeWindow) -> Result<PowerLawSlope> {
    let alpha = window.alpha;
    ensure_positive_finite("decay exponent alpha", alpha)?;
    let beta = alpha + 1.0;
    let constant = integral_constant(beta)?;
    let coefficients = power_law(alpha, window.terms)?;
    let n = window.terms;
    let truncation = ((n + 1) as f64).powf(-alpha) / alpha;
    let mut logs_s = Vec::with_capacity(window.variances.len());
    let mut logs_r = Vec::with_capacity(window.variances.len());
    let mut logs_planted = Vec::with_capacity(window.variances.len());
    let mut corrections = Vec::with_capacity(window.variances.len());
    for &s in &window.variances {
        ensure_positive_finite("slope window variance", s)?;
        let integral = constant * s.powf(alpha / beta);
        let relative = (s + truncation) / integral;
        if relative >= 1.0 {
            return Err(Error::InvalidArgument {
                what: "slope window".into(),
                reason: format!(
                    "variance {s:e} is outside the asymptotic range of alpha = {alpha}: \
                     (s + (n+1)^-alpha/alpha)/I(s) = {relative} ≥ 1"
                ),
            });
        }
        corrections.push(-(-relative).ln_1p());
        logs_s.push(s.ln());
        logs_r.push(risk_at_variance(&coefficients, s).ln());
        logs_planted.push(risk_at_variance(&coefficients, s.sqrt()).ln());
    }
    let (slope, weights) = least_squares_slope(&logs_s, &logs_r)?;
    let (planted_slope, _) = least_squares_slope(&logs_s, &logs_planted)?;
    let (mut up, mut down, mut rounding) = (0.0, 0.0, 0.0);
    let g = window.variances.len();
    for (i, a) in weights.iter().enumerate() {
        if *a > 0.0 {
            down += a * corrections[i];
        } else {
            up += -a * corrections[i];
        }
        rounding += a.abs()
            * (2.0 * gamma_f64(n + 3)
                + (g + 4) as f64 * f64::EPSILON * (logs_r[i].abs() + logs_s[i].abs()));
    }
    let tolerance = up.max(down) + rounding;
    let predicted = alpha / beta;
    Ok(PowerLawSlope {
        slope,
        predicted,
        sigma_for_variance_slope: planted_slope,
        controlled: Controlled {
            check: Check {
                residual: (slope - predicted).abs(),
                tolerance,
            },
            planted: Check {
                residual: (slope - (alpha - 1.0) / alpha).abs(),
                tolerance,
            },
        },
    })
}

/// The squared moduli `|x̂_ω|²` of the unitary 2-D DFT `x̂_ω = N⁻¹Σ_p x_p e^{−2πi⟨ω,p⟩/N}` of
/// each `size × size` channel of `image` (channels one after another, row-major), all channels
/// pooled, each channel's bins `(k₁, k₂)` row-major: `3N²` values for a CHW colour image, `N²` for one field. The unitary DFT is an
/// orthonormal basis of `ℂ^{N²}` and white noise of variance σ² has `E|ẑ_ω|² = σ²` in it, so
/// the oracle risk is `Σ_ω σ²|x̂_ω|²/(|x̂_ω|² + σ²)` (the conjugate pairs `±ω` carry equal
/// values; the oracle's real shrinkage maps real images to real images).
pub fn fourier_power(image: &[f64], size: usize) -> Result<Vec<f64>> {
    let plane = size * size;
    if size < 2 || image.is_empty() || !image.len().is_multiple_of(plane) {
        return Err(Error::InvalidArgument {
            what: "image for the Fourier basis".into(),
            reason: format!(
                "need size ≥ 2 and a whole number of size × size channels, got {} values for \
                 size {size}",
                image.len()
            ),
        });
    }
    crate::error::ensure_finite("image", image)?;
    let fft = FftPlanner::new().plan_fft_forward(size);
    let norm = 1.0 / (size as f64);
    let mut out = Vec::with_capacity(image.len());
    let mut buffer: Vec<Complex<f64>> = vec![Complex::new(0.0, 0.0); plane];
    for channel in image.chunks_exact(plane) {
        for (b, v) in buffer.iter_mut().zip(channel) {
            *b = Complex::new(*v, 0.0);
        }
        // rows, transpose, rows again, transpose back: bin (k₁, k₂) row-major
        fft.process(&mut buffer);
        transpose_square(&mut buffer, size);
        fft.process(&mut buffer);
        transpose_square(&mut buffer, size);
        out.extend(buffer.iter().map(|v| (v * norm).norm_sqr()));
    }
    Ok(out)
}

/// Transposes an `n × n` row-major buffer in place.
fn transpose_square(buffer: &mut [Complex<f64>], n: usize) {
    for i in 0..n {
        for j in i + 1..n {
            buffer.swap(i * n + j, j * n + i);
        }
    }
}

/// The rank window of an image's slope fit: σ² runs between the `WINDOW_FIRST_RANK`-th
/// and the `(d/WINDOW_LAST_FRACTION)`-th largest squared coefficient, where `M(σ) =
/// #{c_k² > σ²}` goes from 16 to d/8: away from the few largest coefficients and from the
/// saturation `M → d` (where the risk tends to `dσ²`, slope 1).
pub const WINDOW_FIRST_RANK: usize = 16;

/// See [`WINDOW_FIRST_RANK`]: the window ends at rank `d/8`.
pub const WINDOW_LAST_FRACTION: usize = 8;

/// Points of the σ² grid of an image's slope fit.
pub const WINDOW_POINTS: usize = 12;

/// The least-squares slope of `ln R(σ)` over `ln σ²` on [`WINDOW_POINTS`] log-spaced variances
/// from the `(d/8)`-th to the 16th largest of the coefficients `c2` (d of them, `d ≥ 256`).
pub fn window_slope(c2: &[f64]) -> Result<f64> {
    ensure_coefficients(c2)?;
    let d = c2.len();
    let last = d / WINDOW_LAST_FRACTION;
    if last < 2 * WINDOW_FIRST_RANK {
        return Err(Error::InvalidArgument {
            what: "number of coefficients of the slope window".into(),
            reason: format!(
                "need d ≥ {} so that the window runs from rank {WINDOW_FIRST_RANK} to d/8, \
                 got d = {d}",
                2 * WINDOW_FIRST_RANK * WINDOW_LAST_FRACTION
            ),
        });
    }
    let mut sorted = c2.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let (high, low) = (sorted[WINDOW_FIRST_RANK - 1], sorted[last - 1]);
    if !(low > 0.0 && high > low) {
        return Err(Error::InvalidArgument {
            what: "coefficients of the slope window".into(),
            reason: format!(
                "the window's variances must satisfy 0 < s_lo < s_hi, got s_lo = {low}, \
                 s_hi = {high}"
            ),
        });
    }
    let step = (high / low).ln() / (WINDOW_POINTS - 1) as f64;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for i in 0..WINDOW_POINTS {
        let s = low * (step * i as f64).exp();
        xs.push(s.ln());
        ys.push(risk_at_variance(c2, s).ln());
    }
    Ok(least_squares_slope(&xs, &ys)?.0)
}

/// The derived expected power spectrum of the generator's background at filter exponent γ
/// (`CAlphaGenerator::new(γ, N).background_field`): with `f(ω) = |ω|^{−γ}` (0 at DC) and
/// `E|FFT(b)_ω|² = N²/12` for i.i.d. `U(−½, ½)` pixels, the unitary DFT of the unit-variance
/// field has `E|B̂_ω|² = N²·f(ω)²/Σ_{ω′} f(ω′)²` exactly, row-major over the DFT bins (signed
/// frequencies, as the generator's).
pub fn texture_spectrum(filter_exponent: f64, size: usize) -> Result<Vec<f64>> {
    ensure_positive_finite("decay exponent alpha", filter_exponent)?;
    if size < 2 {
        return Err(Error::InvalidArgument {
            what: "texture size".into(),
            reason: format!("size must be ≥ 2, got {size}"),
        });
    }
    let signed = |k: usize| {
        if 2 * k <= size {
            k as f64
        } else {
            k as f64 - size as f64
        }
    };
    let filter: Vec<f64> = (0..size * size)
        .map(|bin| {
            let r2 = signed(bin / size).powi(2) + signed(bin % size).powi(2);
            if bin == 0 {
                0.0
            } else {
                r2.powf(-filter_exponent)
            }
        })
        .collect();
    let total: f64 = filter.iter().sum();
    let plane = (size * size) as f64;
    Ok(filter.iter().map(|f| plane * f / total).collect())
}

/// Seed of the texture row's fields (stream j is field j).
const TEXTURE_SEED: u64 = 0x0AC1_E5A7_E000_0000;

/// The window slopes ([`window_slope`]) of `n` background fields of
/// `CAlphaGenerator::new(filter_exponent, size)`, field j drawn from `Rng::new(seed, j)`.
pub fn texture_slopes(filter_exponent: f64, size: usize, n: usize, seed: u64) -> Result<Vec<f64>> {
    let generator = CAlphaGenerator::new(filter_exponent, size)?;
    (0..n)
        .map(|j| {
            let stream = u32::try_from(j).map_err(|_| Error::InvalidArgument {
                what: "number of textures".into(),
                reason: format!("at most 2^32 fields, got {n}"),
            })?;
            let field = generator.background_field(&mut Rng::new(seed, stream));
            window_slope(&fourier_power(&field, size)?)
        })
        .collect()
}

/// The window slopes of images `0..n` of seed `seed` of the crate's `C^α` source at side `size`
/// (`CAlphaGenerator::image`: contour, two textures per channel, three channels), in the pooled
/// per-channel Fourier basis ([`fourier_power`]).
pub fn image_slopes(alpha: f64, size: usize, n: usize, seed: u64) -> Result<Vec<f64>> {
    let generator = CAlphaGenerator::new(alpha, size)?;
    (0..n)
        .map(|j| {
            let index = u32::try_from(j).map_err(|_| Error::InvalidArgument {
                what: "number of images".into(),
                reason: format!("at most 2^32 images, got {n}"),
            })?;
            window_slope(&fourier_power(&generator.image(seed, index), size)?)
        })
        .collect()
}

/// The finite-window allowance δ of the image slope checks. Calibrated: the largest
/// `|mean slope − (γ − 1)/γ|` over 256 textures per filter exponent γ ∈ {2, 3, 4, 5, 6} (which
/// covers γ = α + 1 for α ∈ {1, 2, 3, 5} and the generator's own α ∈ {2, 3, 5}), N = 32, seed
/// disjoint from the rows', was 0.0137 at γ = 2, at most 0.0058 elsewhere
/// (`tests/oracle_rate.rs::calibrate_the_window_allowance`); δ = 0.03 is a little more than
/// twice the largest. No bound is derived: the lattice sum–integral bound of the 2-D spectrum is
/// `~2.5/r` in relative terms at the radius r where the power meets σ², useless at N = 32.
pub const WINDOW_ALLOWANCE: f64 = 0.03;

/// False-failure probability of each image slope check (per α).
pub const IMAGE_ALPHA: f64 = 1e-6;

/// The image slope check shared by the texture row, its control and the counterexample:
/// residual `|mean(slopes) − predicted|`, tolerance `t_{n−1}(α)·SE + δ` with the Student-t
/// quantile at two-sided level `IMAGE_ALPHA` (the slopes of independent images, normal by the
/// CLT over their coefficients) and δ = [`WINDOW_ALLOWANCE`]; planted: the same residual against
/// `planted`. Needs at least two slopes.
pub fn slope_check(slopes: &[f64], predicted: f64, planted: f64) -> Result<Controlled> {
    if slopes.len() < 2 {
        return Err(Error::InvalidArgument {
            what: "number of image slopes".into(),
            reason: format!("need at least 2 for a standard error, got {}", slopes.len()),
        });
    }
    crate::error::ensure_finite("image slopes", slopes)?;
    let (mean, se) = mean_and_std_error(slopes);
    let tolerance = two_sided_t(IMAGE_ALPHA, slopes.len() - 1) * se + WINDOW_ALLOWANCE;
    Ok(Controlled {
        check: Check {
            residual: (mean - predicted).abs(),
            tolerance,
        },
        planted: Check {
            residual: (mean - planted).abs(),
            tolerance,
        },
    })
}

/// The paper's α values (Sugolov Fig. 6; Kadkhodaie et al. Fig. 4 of the text in
/// `shared/papers`).
pub const PAPER_ALPHAS: [f64; 4] = [1.0, 2.0, 3.0, 5.0];

/// The side of the generated textures and images.
pub const IMAGE_SIZE: usize = 32;

/// One line of [`fourier_slope_table`]: mean window slope and its standard error over the
/// images, for one α.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlopeLine {
    /// α.
    pub alpha: f64,
    /// The paper's slope `α/(α+1)`.
    pub paper: f64,
    /// The generator's full images at α: (mean, SE).
    pub images: (f64, f64),
    /// The generator's background alone at α: (mean, SE); Theorem 1 predicts `(α − 1)/α`.
    pub texture_at_alpha: (f64, f64),
    /// The background at filter exponent α + 1: (mean, SE); Theorem 1 predicts `α/(α+1)`.
    pub texture_at_alpha_plus_one: (f64, f64),
}

/// The Fourier-oracle slopes of the generator's images and textures for α ∈ [`PAPER_ALPHAS`],
/// n of each at side [`IMAGE_SIZE`] (seed `seed`).
pub fn fourier_slope_table(n: usize, seed: u64) -> Result<Vec<SlopeLine>> {
    PAPER_ALPHAS
        .iter()
        .map(|&alpha| {
            let summary = |v: Vec<f64>| mean_and_std_error(&v);
            Ok(SlopeLine {
                alpha,
                paper: alpha / (alpha + 1.0),
                images: summary(image_slopes(alpha, IMAGE_SIZE, n, seed)?),
                texture_at_alpha: summary(texture_slopes(alpha, IMAGE_SIZE, n, seed + 1)?),
                texture_at_alpha_plus_one: summary(texture_slopes(
                    alpha + 1.0,
                    IMAGE_SIZE,
                    n,
                    seed + 2,
                )?),
            })
        })
        .collect()
}

/// Row: route (a).
pub const SANDWICH: Claim = Claim {
    theorem: THEOREM,
    statement: "B/2 ≤ R ≤ B: oracle risk R(σ) = Σσ²c²/(c²+σ²) within the M-term bound \
                B = min_M(Mσ² + Σ_{k>M}c_(k)²)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "oracle_rate::Coefficients::sandwich: γ_{2n+6} (R and B each within \
                      γ_{n+2}, one division, q ≤ 1) + underflow",
    planted_variant: "σ for σ² in the oracle sum: R′ = Σσc²/(c²+σ)",
    false_failure: FalseFailure::None,
};

/// Row: Theorem 1 with constants.
pub const RATE_CONSTANTS: Claim = Claim {
    theorem: THEOREM,
    statement: "c·k^-(α+1) ≤ c_k² ≤ c′·k^-(α+1) ⇒ ½[(β/α)c^(1/β)σ^(2α/β) − σ² − c(n+1)^-α/α] ≤ R \
                ≤ (β/α)c′^(1/β)σ^(2α/β), β = α+1 (Sugolov Thm 1 with its constants)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "oracle_rate::rate_check: closed forms within γ_16 (libm calls within one \
                      ulp), R within γ_{n+2}, relative to R",
    planted_variant: "the exponent as printed in Kadkhodaie et al. eq. 13: σ^(−2α/(α+1))",
    false_failure: FalseFailure::None,
};

/// Row: the exact power-law slope.
pub const POWER_LAW_SLOPE: Claim = Claim {
    theorem: THEOREM,
    statement: "c_k² = k^-(α+1): least-squares slope of ln R over ln σ² = α/(α+1) (4 decades \
                where the risk is within 2% of its integral form)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "oracle_rate::power_law_slope: I(s) − s − (n+1)^-α/α ≤ R_n ≤ I(s) = \
                      (π/β)/sin(π/β)·s^(α/β) through the least-squares weights, + rounding",
    planted_variant: "the exponent off by one (c_k² ∼ k^-α): slope (α−1)/α",
    false_failure: FalseFailure::None,
};

/// Row: the generator's textures.
pub const TEXTURE_SLOPE: Claim = Claim {
    theorem: THEOREM,
    statement: "C^α textures (the C^α generator's background at filter exponent α+1, N = 32, \
                2-D Fourier basis): mean Fourier-oracle slope = α/(α+1), α ∈ {1, 2, 3, 5}",
    tolerance_kind: ToleranceKind::Calibrated,
    tolerance_basis: "oracle_rate::slope_check: Student-t(n−1) quantile at α = 1e-6 per α × SE \
                      over the textures + finite-window allowance 0.03 (over twice the largest \
                      bias, 0.0137, of 256 held-out textures per α at N = 32)",
    planted_variant: "1-D rank counting in 2-D (sorted power ∼ k^-2(α+1)): slope (2α+1)/(2α+2)",
    false_failure: FalseFailure::PerCase(IMAGE_ALPHA),
};

/// Seed of the random sequences of the first two rows.
const SEQUENCE_SEED: u64 = 0x0AC1_E000;

/// The α values of the sequence rows.
const SEQUENCE_ALPHAS: [f64; 5] = [0.5, 1.0, 2.0, 3.0, 5.0];

/// Terms of each sequence of the first two rows.
const SEQUENCE_TERMS: usize = 4096;

/// The multiplier range `(c, c′)` of the perturbed power laws.
const MULTIPLIERS: (f64, f64) = (0.25, 4.0);

/// The σ² grid of the first two rows: `10^{−12}` to `10²`, two points per decade (29); every
/// second point at quick.
fn sequence_sigmas(depth: Depth) -> Vec<f64> {
    depth.thin(
        2,
        (0..=28).map(|i| 10f64.powf((-12.0 + 0.5 * i as f64) / 2.0)),
    )
}

/// The sequences of the first two rows at a depth, with the α they decay at: for each α of
/// `SEQUENCE_ALPHAS`, the exact power law and, per seed of `depth.seeds`, two perturbed power
/// laws (multipliers log-uniform on `[¼, 4]`); for the sandwich row also, per seed, four
/// arbitrary sequences (log₁₀ c² uniform on `[−14, 2]`, every 7th coefficient 0, lengths
/// 1, 17, 512, 4096).
fn sequences(depth: Depth, arbitrary: bool) -> Result<Vec<(f64, Vec<f64>)>> {
    let mut out = Vec::new();
    for seed in depth.seeds(SEQUENCE_SEED) {
        let mut rng = Rng::new(seed, 0);
        for &alpha in &SEQUENCE_ALPHAS {
            if seed == SEQUENCE_SEED {
                out.push((alpha, power_law(alpha, SEQUENCE_TERMS)?));
            }
            for _ in 0..2 {
                out.push((
                    alpha,
                    perturbed_power_law(alpha, SEQUENCE_TERMS, MULTIPLIERS, &mut rng)?,
                ));
            }
        }
        if arbitrary {
            for len in [1usize, 17, 512, 4096] {
                let values = (0..len)
                    .map(|k| {
                        if k % 7 == 6 {
                            0.0
                        } else {
                            10f64.powf(-14.0 + 16.0 * rng.uniform())
                        }
                    })
                    .collect();
                out.push((f64::NAN, values));
            }
        }
    }
    Ok(out)
}

/// The [`SANDWICH`] row's cases: [`Coefficients::sandwich`] on the sequences of `sequences`
/// (exact and perturbed power laws, arbitrary sequences) at every σ of the grid: 551 cases by
/// default (19 sequences × 29 σ), 285 at quick (15 σ), 1769 at thorough (61 sequences from four
/// seeds).
pub fn sandwich_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let sigmas = sequence_sigmas(depth);
    let mut out = Vec::new();
    for (_, values) in sequences(depth, true)? {
        let coefficients = Coefficients::new(values)?;
        for &sigma in &sigmas {
            out.push(coefficients.sandwich(sigma)?);
        }
    }
    Ok(out)
}

/// The ratios `R/B` of the [`SANDWICH`] row's cases, in its order (for the report of how much
/// of `[½, 1]` they use).
pub fn sandwich_ratios(depth: Depth) -> Result<Vec<f64>> {
    let sigmas = sequence_sigmas(depth);
    let mut out = Vec::new();
    for (_, values) in sequences(depth, true)? {
        let coefficients = Coefficients::new(values)?;
        for &sigma in &sigmas {
            let risk = coefficients.oracle_risk(sigma)?;
            out.push(risk / coefficients.m_term_bound(sigma)?.value);
        }
    }
    Ok(out)
}

/// The [`RATE_CONSTANTS`] row's cases: [`rate_check`] on the exact and perturbed power laws of
/// `sequences` at every σ of the grid: 435 cases by default (15 sequences × 29 σ), 225 at quick,
/// 1305 at thorough (45 sequences).
pub fn rate_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let sigmas = sequence_sigmas(depth);
    let mut out = Vec::new();
    for (alpha, values) in sequences(depth, false)? {
        for &sigma in &sigmas {
            out.push(rate_check(&values, alpha, sigma)?);
        }
    }
    Ok(out)
}

/// The α values of the power-law slope row: {1, 1.5, 2, 3, 4, 5, 6, 8} by default, every
/// second at quick, 32 values `1 + 7j/31` at thorough.
fn slope_alphas(depth: Depth) -> Vec<f64> {
    match depth {
        Depth::Thorough => (0..32).map(|j| 1.0 + 7.0 * j as f64 / 31.0).collect(),
        _ => depth.thin(2, [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0]),
    }
}

/// The relative distance to the integral form at the top of the slope window (2%).
pub const SLOPE_CORRECTION: f64 = 0.02;

/// The decades of σ² the slope window spans.
pub const SLOPE_DECADES: f64 = 4.0;

/// Points of the slope window.
pub const SLOPE_POINTS: usize = 13;

/// The [`POWER_LAW_SLOPE`] row's cases: [`power_law_slope`] on [`slope_window`]`(α, 2%, 4
/// decades, 13 points)` for each α of the row (8 by default, 4 at quick, 32 at thorough).
pub fn power_law_slope_cases(depth: Depth) -> Result<Vec<Controlled>> {
    slope_alphas(depth)
        .into_iter()
        .map(|alpha| {
            let window = slope_window(alpha, SLOPE_CORRECTION, SLOPE_DECADES, SLOPE_POINTS)?;
            Ok(power_law_slope(&window)?.controlled)
        })
        .collect()
}

/// Seed of the texture row (disjoint from the calibration's and the tests').
const TEXTURE_ROW_SEED: u64 = TEXTURE_SEED + 20;

/// Textures per α of the texture row: 16 at quick, 32 by default, 128 at thorough.
pub fn textures_per_alpha(depth: Depth) -> usize {
    depth.samples(32).max(16)
}

/// The [`TEXTURE_SLOPE`] row's cases: for α ∈ [`PAPER_ALPHAS`], [`slope_check`] of the window
/// slopes of [`textures_per_alpha`] textures at filter exponent α + 1 (side 32) against
/// `α/(α+1)`, planted `(2α+1)/(2α+2)`.
pub fn texture_slope_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let n = textures_per_alpha(depth);
    PAPER_ALPHAS
        .iter()
        .map(|&alpha| {
            let slopes = texture_slopes(alpha + 1.0, IMAGE_SIZE, n, TEXTURE_ROW_SEED)?;
            slope_check(
                &slopes,
                alpha / (alpha + 1.0),
                (2.0 * alpha + 1.0) / (2.0 * alpha + 2.0),
            )
        })
        .collect()
}

/// The checks of `verify` at a depth.
pub(crate) fn default_verdicts(_gpu: Result<&Gpu>, depth: Depth) -> Vec<Verdict> {
    vec![
        Verdict::collect(&SANDWICH, CPU_BACKEND, depth, || sandwich_cases(depth)),
        Verdict::collect(&RATE_CONSTANTS, CPU_BACKEND, depth, || rate_cases(depth)),
        Verdict::collect(&POWER_LAW_SLOPE, CPU_BACKEND, depth, || {
            power_law_slope_cases(depth)
        }),
        Verdict::collect(&TEXTURE_SLOPE, CPU_BACKEND, depth, || {
            texture_slope_cases(depth)
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `C_2 = π/2`, `C_3 = 2π/(3√3)` and `C_β → 1` as β → ∞; β ≤ 1 is refused.
    #[test]
    fn integral_constant_by_hand() {
        use std::f64::consts::PI;
        assert!((integral_constant(2.0).unwrap() - PI / 2.0).abs() < 1e-15);
        let c3 = 2.0 * PI / (3.0 * 3f64.sqrt());
        assert!((integral_constant(3.0).unwrap() - c3).abs() < 1e-15);
        assert!((integral_constant(1e6).unwrap() - 1.0).abs() < 1e-11);
        assert!(integral_constant(1.0).is_err());
    }

    /// The least-squares slope of an exact line is its slope; the weights sum to 0 and have
    /// unit moment.
    #[test]
    fn least_squares_slope_of_a_line() {
        let x = [0.0, 1.0, 3.0, 7.0];
        let y: Vec<f64> = x.iter().map(|v| 2.5 * v - 4.0).collect();
        let (slope, a) = least_squares_slope(&x, &y).unwrap();
        assert!((slope - 2.5).abs() < 1e-14, "{slope}");
        assert!(a.iter().sum::<f64>().abs() < 1e-15);
        let moment: f64 = a.iter().zip(&x).map(|(a, x)| a * x).sum();
        assert!((moment - 1.0).abs() < 1e-15);
        assert!(least_squares_slope(&[1.0, 1.0], &[0.0, 1.0]).is_err());
    }

    /// The M-term bound by hand: c² = (4, 1, 0.25) at σ² = 0.5 keeps M = 2 terms:
    /// B = 2·0.5 + 0.25 = 1.25; at σ² = 9 it keeps none: B = 5.25.
    #[test]
    fn m_term_bound_by_hand() {
        let c = Coefficients::new(vec![1.0, 0.25, 4.0]).unwrap();
        let b = c.m_term_bound(0.5f64.sqrt()).unwrap();
        assert_eq!(b.terms, 2);
        assert!((b.value - 1.25).abs() < 1e-15);
        let b = c.m_term_bound(3.0).unwrap();
        assert_eq!((b.terms, b.value), (0, 5.25));
    }

    /// The image slope check's tolerance written out again: slopes `[1, 2, 3, 6]` have mean 3
    /// and SE `√(14/12)`, so the tolerance is `t₃(1e-6)·√(14/12) + 0.03` and the residuals are
    /// `|3 − 2.5|` and `|3 − 4|`.
    #[test]
    fn slope_check_by_hand() {
        let out = slope_check(&[1.0, 2.0, 3.0, 6.0], 2.5, 4.0).unwrap();
        let tolerance = two_sided_t(1e-6, 3) * (14.0f64 / 12.0).sqrt() + 0.03;
        assert!((out.check.tolerance - tolerance).abs() < 1e-12 * tolerance);
        assert_eq!(out.planted.tolerance, out.check.tolerance);
        assert!((out.check.residual - 0.5).abs() < 1e-15);
        assert!((out.planted.residual - 1.0).abs() < 1e-15);
    }

    /// The unitary DFT by hand: a constant 2×2 channel of ones has `x̂_0 = 2`, the other bins
    /// 0; a checkerboard `[[1, −1], [−1, 1]]` has all its power at bin (1, 1); a row-wise
    /// alternation `[[1, −1], [1, −1]]` at bin (0, 1) (row-major `(k₁, k₂)`, k₁ the row
    /// frequency).
    #[test]
    fn fourier_power_by_hand() {
        let p = fourier_power(&[1.0; 4], 2).unwrap();
        assert_eq!(p, vec![4.0, 0.0, 0.0, 0.0]);
        let p = fourier_power(&[1.0, -1.0, -1.0, 1.0], 2).unwrap();
        assert_eq!(p, vec![0.0, 0.0, 0.0, 4.0]);
        let p = fourier_power(&[1.0, -1.0, 1.0, -1.0], 2).unwrap();
        assert_eq!(p, vec![0.0, 4.0, 0.0, 0.0]);
    }

    /// The texture spectrum sums to N² (unit variance per pixel) and is 0 at DC only.
    #[test]
    fn texture_spectrum_has_unit_pixel_variance() {
        let p = texture_spectrum(2.0, 16).unwrap();
        assert!((p.iter().sum::<f64>() - 256.0).abs() < 1e-10);
        assert_eq!(p[0], 0.0);
        assert!(p[1..].iter().all(|v| *v > 0.0));
    }
}
