//! Statistical tolerances (z from a false-failure probability, paired Monte Carlo tests) and
//! numerical differentiation with an error estimate, used by every theorem check.

pub mod finite_difference;
pub mod gauss_quadrature;
pub mod gaussian_law;
pub mod intrinsic_dimension;
pub mod moments;
pub mod nearest;
pub mod two_sample;

use statrs::distribution::{ContinuousCDF, Normal};

/// `z` with `P(|Z| > z) = alpha` for `Z ~ N(0, 1)`: a two-sided check `|estimate − truth| ≤ z·SE`
/// of an asymptotically normal estimator fails by bad luck with probability `alpha`.
pub fn two_sided_z(alpha: f64) -> f64 {
    let n = Normal::new(0.0, 1.0).expect("N(0,1) is valid");
    n.inverse_cdf(1.0 - alpha / 2.0)
}

/// The paired test of `E[D] = 0` from samples `D_i`: returns `(mean, standard error)`,
/// `SE = s/√n` with `s` the sample standard deviation.
pub fn mean_and_std_error(samples: &[f64]) -> (f64, f64) {
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    (mean, (var / n).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn z_matches_the_familiar_quantiles() {
        assert!((two_sided_z(0.05) - 1.959_963_984_540_054).abs() < 1e-9);
        assert!((two_sided_z(1e-6) - 4.891_638_475_699_4).abs() < 1e-6);
    }

    /// `[1, 2, 3, 6]`: mean 3, sample variance (4 + 1 + 0 + 9)/3 = 14/3, SE = √(14/12); every
    /// value is exact to a few ulp, so the check is to 1e-15.
    #[test]
    fn mean_and_std_error_of_a_hand_computed_sample() {
        let (mean, se) = mean_and_std_error(&[1.0, 2.0, 3.0, 6.0]);
        assert!((mean - 3.0).abs() < 1e-15);
        assert!((se - (14.0f64 / 12.0).sqrt()).abs() < 1e-15, "{se}");
    }
}
