//! The uniform law on `[−a, a]` in one dimension: a target that is *not* a Gaussian mixture,
//! so Tweedie's formula can be checked off the mixture engine entirely.
//!
//! `p_σ(y) = (Φ((y+a)/σ) − Φ((y−a)/σ)) / 2a` in closed form (Φ from libm's `erfc`) (so its score is analytic:
//! `∇log p_σ(y) = (φ((y+a)/σ) − φ((y−a)/σ)) / (σ (Φ((y+a)/σ) − Φ((y−a)/σ)))`), while the posterior
//! mean `E[x|y] = ∫_{−a}^{a} x φ((y−x)/σ) dx / ∫_{−a}^{a} φ((y−x)/σ) dx` is computed by
//! double-exponential quadrature — a route that never touches Φ.

use crate::error::{ensure_finite, ensure_positive_finite, ensure_sigma, Result};

/// `Uniform[−a, a]`.
#[derive(Debug, Clone, Copy)]
pub struct Uniform1d {
    half_width: f64,
}

/// A quadrature result: the value and the integrator's own error estimate (propagated).
#[derive(Debug, Clone, Copy)]
pub struct Quadrature {
    /// The integral (or ratio of integrals).
    pub value: f64,
    /// A bound on its error, from the integrator's error estimates.
    pub error: f64,
}

/// `φ(x) = exp(−x²/2)/√(2π)`.
fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// `Φ(hi) − Φ(lo)` for `lo < hi`, without cancellation: through the lower tail
/// `Φ(x) = ½erfc(−x/√2)` when the interval lies mostly left of 0, through the upper tail
/// `1 − Φ(x) = ½erfc(x/√2)` otherwise. libm's `erfc` (a port of FreeBSD's msun) is accurate to
/// about one ulp; statrs' normal CDF is not used here because it is only accurate to ~10⁻¹¹
/// (measured: Φ(1) off by 1.4·10⁻¹¹).
fn normal_mass(lo: f64, hi: f64) -> f64 {
    let s = std::f64::consts::FRAC_1_SQRT_2;
    if lo + hi < 0.0 {
        0.5 * (libm::erfc(-hi * s) - libm::erfc(-lo * s))
    } else {
        0.5 * (libm::erfc(lo * s) - libm::erfc(hi * s))
    }
}

impl Uniform1d {
    /// `Uniform[−a, a]`, `a > 0` finite.
    pub fn new(half_width: f64) -> Result<Self> {
        ensure_positive_finite("half_width", half_width)?;
        Ok(Self { half_width })
    }

    fn check(&self, y: f64, sigma: f64) -> Result<()> {
        ensure_sigma(sigma)?;
        ensure_finite("query point y", &[y])
    }

    /// `p_σ(y)` from the normal CDF.
    pub fn density(&self, y: f64, sigma: f64) -> Result<f64> {
        self.check(y, sigma)?;
        let a = self.half_width;
        Ok(normal_mass((y - a) / sigma, (y + a) / sigma) / (2.0 * a))
    }

    /// `∇log p_σ(y)` by analytic differentiation of the CDF form.
    pub fn score(&self, y: f64, sigma: f64) -> Result<f64> {
        self.check(y, sigma)?;
        let a = self.half_width;
        let mass = normal_mass((y - a) / sigma, (y + a) / sigma);
        Ok((normal_pdf((y + a) / sigma) - normal_pdf((y - a) / sigma)) / (sigma * mass))
    }

    /// `E[x|y]` by Bayes' rule and adaptive double-exponential quadrature of numerator and
    /// denominator; the error bound propagates both integrals' error estimates through the ratio.
    pub(crate) fn posterior_mean_quadrature(&self, y: f64, sigma: f64) -> Result<Quadrature> {
        self.check(y, sigma)?;
        let a = self.half_width;
        // Likelihood φ((y−x)/σ) up to the constant 1/(σ√2π), which cancels in the ratio; shifted
        // by the largest exponent on [−a, a] so the integrands stay O(1).
        let nearest = y.clamp(-a, a);
        let shift = ((y - nearest) / sigma).powi(2) / 2.0;
        let lik = |x: f64| (shift - ((y - x) / sigma).powi(2) / 2.0).exp();
        // A narrow likelihood (σ ≪ a) is a bump that a quadrature rule over all of [−a, a] can
        // step over entirely; the interval is split at the bump's centre and ±8σ around it, so
        // each piece is smooth on its own scale.
        let mut cuts = vec![-a, a];
        for c in [nearest - 8.0 * sigma, nearest, nearest + 8.0 * sigma] {
            if c > -a && c < a {
                cuts.push(c);
            }
        }
        cuts.sort_by(f64::total_cmp);
        cuts.dedup();
        let tol = 1e-15;
        let (mut num, mut den) = (Vec::new(), Vec::new());
        let mut evaluations = 0.0;
        for w in cuts.windows(2) {
            let dq = quadrature::double_exponential::integrate(lik, w[0], w[1], tol);
            let nq = quadrature::double_exponential::integrate(|x| x * lik(x), w[0], w[1], tol);
            den.push((dq.integral, dq.error_estimate));
            num.push((nq.integral, nq.error_estimate));
            evaluations += f64::from(dq.num_function_evaluations + nq.num_function_evaluations);
        }
        // The integrator's estimate covers truncation only; summing N evaluations of integrands
        // bounded by max(1, a) over a width-2a interval adds at most N·ε·2a·max(1, a).
        let rounding = evaluations * f64::EPSILON * 2.0 * a * a.max(1.0);
        Ok(ratio_with_error(
            sum_with_errors(&num),
            sum_with_errors(&den),
            rounding,
        ))
    }
}

/// `(Σ vᵢ, Σ eᵢ)` over pieces `(value, error estimate)` of one integral: the whole integral and
/// the bound on its error (errors add).
fn sum_with_errors(pieces: &[(f64, f64)]) -> (f64, f64) {
    pieces
        .iter()
        .fold((0.0, 0.0), |(v, e), &(vi, ei)| (v + vi, e + ei))
}

/// `N/D` with its error bound, from `N` and `D` each known to within `e_N`, `e_D` (truncation)
/// plus `r` (rounding): to first order `|N/D − N̂/D̂| ≤ (e_N + |N̂/D̂|·e_D + 2r)/|D̂|`.
fn ratio_with_error(
    (numerator, numerator_error): (f64, f64),
    (denominator, denominator_error): (f64, f64),
    rounding: f64,
) -> Quadrature {
    let value = numerator / denominator;
    Quadrature {
        value,
        error: (numerator_error + value.abs() * denominator_error + 2.0 * rounding)
            / denominator.abs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pieces' values and error estimates both add: (1, 0.25) + (2, 0.5) + (4, 1) = (7, 1.75)
    /// (exact in binary).
    #[test]
    fn sum_with_errors_by_hand() {
        assert_eq!(
            sum_with_errors(&[(1.0, 0.25), (2.0, 0.5), (4.0, 1.0)]),
            (7.0, 1.75)
        );
    }

    /// N = 3 ± 0.5, D = 2 ± 0.25, r = 0.125: value 1.5, error (0.5 + 1.5·0.25 + 0.25)/2 = 0.5625
    /// (exact in binary).
    #[test]
    fn ratio_with_error_by_hand() {
        let q = ratio_with_error((3.0, 0.5), (2.0, 0.25), 0.125);
        assert_eq!((q.value, q.error), (1.5, 0.5625));
        let negative = ratio_with_error((-3.0, 0.5), (-2.0, 0.25), 0.125);
        assert_eq!((negative.value, negative.error), (1.5, 0.5625));
    }
}
