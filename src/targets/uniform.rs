//! The uniform law on `[−a, a]` in one dimension: a target that is *not* a Gaussian mixture,
//! so Tweedie's formula can be checked off the mixture engine entirely.
//!
//! `p_σ(y) = (Φ((y+a)/σ) − Φ((y−a)/σ)) / 2a` in closed form (Φ from libm's `erfc`) (so its score is analytic:
//! `∇log p_σ(y) = (φ((y+a)/σ) − φ((y−a)/σ)) / (σ (Φ((y+a)/σ) − Φ((y−a)/σ)))`), while the posterior
//! mean `E[x|y] = ∫_{−a}^{a} x φ((y−x)/σ) dx / ∫_{−a}^{a} φ((y−x)/σ) dx` is computed by
//! double-exponential quadrature — a route that never touches Φ.

use crate::error::{ensure_finite, ensure_sigma, Error, Result};

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
        if !(half_width.is_finite() && half_width > 0.0) {
            return Err(Error::InvalidArgument {
                what: "half_width".into(),
                reason: format!("must be finite and > 0, got {half_width}"),
            });
        }
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
        let (mut num, mut den) = ((0.0, 0.0), (0.0, 0.0));
        let mut evaluations = 0.0;
        for w in cuts.windows(2) {
            let dq = quadrature::double_exponential::integrate(lik, w[0], w[1], tol);
            let nq = quadrature::double_exponential::integrate(|x| x * lik(x), w[0], w[1], tol);
            den = (den.0 + dq.integral, den.1 + dq.error_estimate);
            num = (num.0 + nq.integral, num.1 + nq.error_estimate);
            evaluations += f64::from(dq.num_function_evaluations + nq.num_function_evaluations);
        }
        let value = num.0 / den.0;
        // The integrator's estimate covers truncation only; summing N evaluations of integrands
        // bounded by max(1, a) over a width-2a interval adds at most N·ε·2a·max(1, a).
        let rounding = evaluations * f64::EPSILON * 2.0 * a * a.max(1.0);
        let error = (num.1 + value.abs() * den.1 + 2.0 * rounding) / den.0.abs();
        Ok(Quadrature { value, error })
    }
}
