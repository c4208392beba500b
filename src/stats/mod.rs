//! Statistical tolerances (z from a false-failure probability, paired Monte Carlo tests) and
//! numerical differentiation with an error estimate, used by every theorem check.

pub mod finite_difference;
pub mod gauss_quadrature;
pub mod gaussian_law;
pub mod intrinsic_dimension;
pub mod moments;
pub mod nearest;
pub mod two_sample;

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// `z` with `P(|Z| > z) = alpha` for `Z ~ N(0, 1)`: a two-sided check `|estimate − truth| ≤ z·SE`
/// of an asymptotically normal estimator fails by bad luck with probability `alpha`.
pub fn two_sided_z(alpha: f64) -> f64 {
    let n = Normal::new(0.0, 1.0).expect("N(0,1) is valid");
    n.inverse_cdf(1.0 - alpha / 2.0)
}

/// `t` with `P(|T| > t) = alpha` for `T` Student-t with `dof ≥ 1` degrees of freedom: the
/// two-sided check `|mean − truth| ≤ t·SE` of the mean of `dof + 1` independent normal samples
/// (SE from their sample standard deviation) fails by bad luck with probability `alpha`. Taken
/// from the lower tail (`−F⁻¹(alpha/2)`), which keeps the precision of a small `alpha`.
pub fn two_sided_t(alpha: f64, dof: usize) -> f64 {
    let t = StudentsT::new(0.0, 1.0, dof.max(1) as f64).expect("dof ≥ 1 is valid");
    -t.inverse_cdf(alpha / 2.0)
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

    /// Student-t quantiles against scipy's `t.isf(5e-7, dof)` (two-sided 1e-6) and the 5%
    /// textbook value; many degrees of freedom approach the normal z.
    #[test]
    fn t_matches_scipy_quantiles() {
        for (dof, want) in [
            (7, 15.767_009_437_482_583),
            (15, 7.903_233_627_313_883),
            (31, 6.071_975_924_718_4),
            (127, 5.142_273_102_535_304),
        ] {
            let t = two_sided_t(1e-6, dof);
            assert!(
                (t - want).abs() < 1e-6 * want,
                "dof {dof}: {t} against {want}"
            );
        }
        assert!((two_sided_t(0.05, 10) - 2.228_138_851_986_274).abs() < 1e-9);
        assert!((two_sided_t(1e-6, 100_000) - two_sided_z(1e-6)).abs() < 1e-3);
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
