//! Distribution-free goodness-of-fit with exact (non-asymptotic) false-failure rates, from the
//! Dvoretzky–Kiefer–Wolfowitz inequality with Massart's constant:
//! `P(sup_x |F_n(x) − F(x)| > ε) ≤ 2 exp(−2nε²)` for the empirical CDF of n iid draws of any
//! continuous F.
//!
//! * one sample against a known CDF: reject when `D_n = sup|F_n − F| > ε_n(α)`,
//!   `ε_n(α) = √(ln(2/α)/(2n))`;
//! * two samples (n and m draws of the same continuous law): by the triangle inequality and a
//!   union bound, `sup|F_n − G_m| ≤ ε_n(α/2) + ε_m(α/2)` with probability ≥ 1 − α.
//!
//! A family of F such tests (e.g. one per projection direction) runs each at α/F (Bonferroni).

use crate::error::{Error, Result};

/// `ε_n(α) = √(ln(2/α)/(2n))`: the DKW–Massart band half-width at false-failure probability α.
pub fn dkw_epsilon(n: usize, alpha: f64) -> Result<f64> {
    if n == 0 || !(alpha > 0.0 && alpha < 1.0) {
        return Err(Error::InvalidArgument {
            what: "n, alpha".into(),
            reason: format!("need n ≥ 1 and 0 < α < 1, got n = {n}, α = {alpha}"),
        });
    }
    Ok(((2.0 / alpha).ln() / (2.0 * n as f64)).sqrt())
}

fn sorted(values: &[f64], what: &'static str) -> Result<Vec<f64>> {
    crate::error::ensure_finite(what, values)?;
    if values.is_empty() {
        return Err(Error::InvalidArgument {
            what: what.into(),
            reason: "no samples".into(),
        });
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// One-sample Kolmogorov–Smirnov statistic `D_n = sup_x |F_n(x) − F(x)|` for a continuous CDF:
/// `max_i max(i/n − F(x_(i)), F(x_(i)) − (i−1)/n)`.
pub fn ks_one_sample(samples: &[f64], cdf: impl Fn(f64) -> f64) -> Result<f64> {
    let v = sorted(samples, "samples")?;
    let n = v.len() as f64;
    Ok(v.iter().enumerate().fold(0.0f64, |m, (i, &x)| {
        let f = cdf(x);
        m.max((i as f64 + 1.0) / n - f).max(f - i as f64 / n)
    }))
}

/// Two-sample statistic `sup_x |F_n(x) − G_m(x)|` (merge of the sorted samples).
pub(crate) fn ks_two_sample(a: &[f64], b: &[f64]) -> Result<f64> {
    let (a, b) = (sorted(a, "first sample")?, sorted(b, "second sample")?);
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    Ok(d)
}

/// The two-sample DKW acceptance bound `ε_n(α/2) + ε_m(α/2)`.
pub(crate) fn two_sample_epsilon(n: usize, m: usize, alpha: f64) -> Result<f64> {
    Ok(dkw_epsilon(n, alpha / 2.0)? + dkw_epsilon(m, alpha / 2.0)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_statistics_on_small_exact_cases() {
        // F uniform on (0,1), samples at 0.25, 0.75: D = max(0.5−0.25, 0.25, 1−0.75, 0.75−0.5).
        let d = ks_one_sample(&[0.75, 0.25], |x| x.clamp(0.0, 1.0)).unwrap();
        assert!((d - 0.25).abs() < 1e-15);
        assert_eq!(ks_two_sample(&[0.0, 1.0], &[2.0, 3.0]).unwrap(), 1.0);
        assert_eq!(ks_two_sample(&[0.0, 2.0], &[1.0, 3.0]).unwrap(), 0.5);
        assert!((dkw_epsilon(2, 0.5).unwrap() - (4.0f64.ln() / 4.0).sqrt()).abs() < 1e-15);
        assert!(dkw_epsilon(0, 0.1).is_err());
        // Samples 0.1, 0.95: the supremum 0.45 is F(x₍₂₎) − 1/2, the gap below the second step.
        let d = ks_one_sample(&[0.95, 0.1], |x| x.clamp(0.0, 1.0)).unwrap();
        assert!((d - 0.45).abs() < 1e-15, "{d}");
        // ε₁₀(α/2) + ε₂₀(α/2) at α = 0.1: √(ln 40/20) + √(ln 40/40).
        let both = two_sample_epsilon(10, 20, 0.1).unwrap();
        let by_hand = (40f64.ln() / 20.0).sqrt() + (40f64.ln() / 40.0).sqrt();
        assert!((both - by_hand).abs() < 1e-15, "{both} vs {by_hand}");
    }
}
