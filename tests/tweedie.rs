//! `tweedie`: E[x|y] = y + σ²∇log p_σ(y), and its VP form. See theorems/tweedie.md.

mod common;

use common::{case, config, gpu, Case};
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::{PhiloxStream, Rng};
use diffusion_theorems::targets::Target;
use diffusion_theorems::theorems::{random_gmm, tweedie};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn posterior_mean_equals_y_plus_sigma2_analytic_score(c in case(1..=16, 1..=6)) {
        let Case { target, sigma, y } = c;
        let check = tweedie::bayes_vs_analytic_score(&target, &y, sigma).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn posterior_mean_equals_y_plus_sigma2_finite_difference_score(c in case(1..=16, 1..=6)) {
        let Case { target, sigma, y } = c;
        let check = tweedie::bayes_vs_finite_difference_score(&target, &y, sigma).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn vp_form_matches_posterior_mean_of_rescaled_observation(
        c in case(1..=16, 1..=6),
        t in 0.02f64..0.98,
    ) {
        let Case { target, y, .. } = c;
        let check = tweedie::vp_form(&target, &y, t).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn two_point_posterior_mean_is_tanh(y in -6.0f64..6.0, log_sigma in -1.5f64..1.0) {
        let check = tweedie::two_point_tanh(y, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }
}

/// Uniform[−1, 1]: quadrature of Bayes' rule against the analytic score, on a grid of σ and y
/// within 6σ of the support.
#[test]
fn uniform_target_quadrature_matches_score_formula() {
    for &sigma in &[0.03, 0.1, 0.5, 1.0, 3.0] {
        for i in 0..=40 {
            let y = (1.0 + 6.0 * sigma) * (f64::from(i) / 20.0 - 1.0);
            let check = tweedie::uniform_quadrature(1.0, y, sigma).unwrap();
            assert!(check.passed(), "σ={sigma} y={y}: {check:?}");
        }
    }
    assert!(tweedie::uniform_quadrature(1.0, 10.0, 0.1).is_err());
}

/// The GPU importance-sampling estimate of E[x|y] lies within z·SE of the Bayes closed form
/// for random GMMs in d = 1..3 (family-wise false-failure probability 1e-6 per target).
#[test]
fn gpu_monte_carlo_posterior_mean_within_z_se() {
    let gpu = gpu();
    let mut rng = Rng::new(0x51ee, 1);
    for (i, d) in [1usize, 2, 3, 1, 2, 3].into_iter().enumerate() {
        let target = random_gmm(&mut rng, d, 1 + i % 4).unwrap();
        let sigma = 1.0;
        let x = target.sample(&mut rng, 6);
        let noise = Mat::from_fn(6, d, |_, _| sigma * rng.normal());
        let queries = &x + &noise;
        let checks = tweedie::gpu_monte_carlo(
            gpu,
            &target,
            &queries,
            sigma,
            1 << 18,
            PhiloxStream::new(0x51ee, i as u32),
        )
        .unwrap();
        for c in checks {
            assert!(c.passed(), "target {i} (d={d}): {c:?}");
        }
    }
}
