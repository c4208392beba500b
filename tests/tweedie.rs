//! `tweedie`: E[x|y] = y + σ²∇log p_σ(y), and its VP form. See theorems/tweedie.md.

use crate::common;

use common::{assert_controlled, case, config, gpu, Case};
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::{PhiloxStream, Rng};
use diffusion_theorems::targets::random_gmm;
use diffusion_theorems::targets::Target;
use diffusion_theorems::theorems::{self, tweedie, Depth};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn posterior_mean_equals_y_plus_sigma2_analytic_score(c in case(1..=16, 1..=6)) {
        let Case { target, sigma, y } = c;
        let c = tweedie::bayes_vs_analytic_score(&target, &y, sigma).unwrap();
        prop_assert!(c.check.passed(), "{c:?}");
    }

    #[test]
    fn posterior_mean_equals_y_plus_sigma2_finite_difference_score(c in case(1..=16, 1..=6)) {
        let Case { target, sigma, y } = c;
        let c = tweedie::bayes_vs_finite_difference_score(&target, &y, sigma).unwrap();
        prop_assert!(c.check.passed(), "{c:?}");
    }

    #[test]
    fn vp_form_matches_posterior_mean_of_rescaled_observation(
        c in case(1..=16, 1..=6),
        t in 0.02f64..0.98,
    ) {
        let Case { target, y, .. } = c;
        let c = tweedie::vp_form(&target, &y, t).unwrap();
        prop_assert!(c.check.passed(), "{c:?}");
    }

    #[test]
    fn two_point_posterior_mean_is_tanh(y in -6.0f64..6.0, log_sigma in -1.5f64..1.0) {
        let c = tweedie::two_point_tanh(y, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(c.check.passed(), "{c:?}");
    }
}

/// Uniform[−1, 1]: quadrature of Bayes' rule against the analytic score, on a grid of σ and y
/// within 6σ of the support; the planted y + σ∇log p_σ(y) is rejected.
#[test]
fn uniform_target_quadrature_matches_score_formula() {
    let mut cases = Vec::new();
    for &sigma in &[0.03, 0.1, 0.5, 1.0, 3.0] {
        for i in 0..=40 {
            let y = (1.0 + 6.0 * sigma) * (f64::from(i) / 20.0 - 1.0);
            let c = tweedie::uniform_quadrature(1.0, y, sigma).unwrap();
            assert!(c.check.passed(), "σ={sigma} y={y}: {c:?}");
            cases.push(c);
        }
    }
    assert!(tweedie::uniform_quadrature(1.0, 10.0, 0.1).is_err());
    // σ for σ² (y + σ∇log p_σ) is rejected
    assert!(theorems::power(&cases) > 1.0, "{}", theorems::power(&cases));
}

/// The GPU importance-sampling estimate of E[x|y] lies within z·SE of the Bayes closed form
/// for random GMMs in d = 1..3 at σ ∈ {1, 2} (false-failure probability 1e-6 per target and σ),
/// and the same z-test rejects the planted mean Σ_k w_k m_k(y) (prior weights for
/// responsibilities).
#[test]
fn gpu_monte_carlo_posterior_mean_within_z_se() {
    let gpu = gpu();
    let mut rng = Rng::new(0x51ee, 1);
    let mut cases = Vec::new();
    for (i, d) in [1usize, 2, 3, 1, 2, 3].into_iter().enumerate() {
        let target = random_gmm(&mut rng, d, 1 + i % 4).unwrap();
        for sigma in [1.0, 2.0] {
            let x = target.sample(&mut rng, 6);
            let noise = Mat::from_fn(6, d, |_, _| sigma * rng.normal());
            let queries = &x + &noise;
            let checks = tweedie::gpu_monte_carlo(
                gpu,
                &target,
                &queries,
                sigma,
                1 << 18,
                PhiloxStream::new(0x51ee, cases.len() as u32),
            )
            .unwrap();
            for c in checks {
                assert!(c.check.passed(), "target {i} (d={d}, σ={sigma}): {c:?}");
                cases.push(c);
            }
        }
    }
    assert!(theorems::power(&cases) > 1.0, "{}", theorems::power(&cases));
}

/// The verify row [`tweedie::ANALYTIC_SCORE`]: Bayes = y + σ²·(analytic score) on the default
/// random GMMs (d ∈ {1, 2, 4, 8}, K ∈ {1, 3, 5}, σ 1e-2–10, near and far points), and
/// y + σ·(score) is rejected.
#[test]
fn analytic_score_row_passes_and_rejects_sigma_for_sigma2() {
    assert_controlled(&tweedie::analytic_score_cases(Depth::Default).unwrap());
}

/// The verify row [`tweedie::FINITE_DIFFERENCE_SCORE`]: the same with central differences of
/// log p_σ, and σ for σ² rejected.
#[test]
fn finite_difference_row_passes_and_rejects_sigma_for_sigma2() {
    assert_controlled(&tweedie::finite_difference_score_cases(Depth::Default).unwrap());
}

/// The verify row [`tweedie::VP_FORM`] (t ∈ {0.1, 0.5, 0.9}), and division by α_t² instead of
/// α_t rejected.
#[test]
fn vp_form_row_passes_and_rejects_alpha_squared() {
    assert_controlled(&tweedie::vp_form_cases(Depth::Default).unwrap());
}

/// The verify row [`tweedie::TWO_POINT_TANH`] (σ ∈ {0.1, 0.5, 1, 2}), and tanh(y/σ) rejected.
#[test]
fn two_point_row_passes_and_rejects_tanh_y_over_sigma() {
    assert_controlled(&tweedie::two_point_tanh_cases(Depth::Default).unwrap());
}

/// Reproducibility: every verify row of `tweedie` passes and reproduces its recorded numbers —
/// cases, power, and the geometric means over all cases of the tolerance and of the planted
/// variant's residual (`tests/common/pins/tweedie.json`). A changed allowance or negative control in any
/// case fails here until it is recorded on purpose (`PIN_UPDATE=1`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("tweedie");
}
