//! `linear_gaussian`: the optimal affine denoiser μ + Σ(Σ+σ²I)⁻¹(y−μ) depends only on (μ, Σ);
//! DDIM with it generates a Gaussian law that tends to N(μ, Σ); the bias-free caveat.
//! See theorems/linear_gaussian.md.
//!
//! Every headline check is a `Controlled`: the tests assert the claim passes AND the planted
//! wrong variant is rejected (`theorems::power > 1`).

use crate::common;

use common::{config, gmm};
use diffusion_theorems::denoisers::linear::{fit_affine, fit_bias_free, OptimalAffine};
use diffusion_theorems::denoisers::Denoiser;
use diffusion_theorems::diffusion::{Ddim, Sampler, Schedule};
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::targets::Target;
use diffusion_theorems::theorems::linear_gaussian::{self as lg, flow, PlantedLimit};
use diffusion_theorems::theorems::power;
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn optimal_affine_spectral_equals_cholesky_equals_gaussian_bayes(
        target in gmm(1..=8, 1..=4),
        log_sigma in -2.0f64..1.0,
        dir in proptest::collection::vec(-3.0f64..3.0, 8),
    ) {
        let d = target.dim();
        let y: Vec<f64> = target.mean().iter().zip(&dir).map(|(m, u)| m + u).collect();
        let sigma = 10f64.powf(log_sigma);
        let case = lg::optimal_affine_routes(&target, &y[..d], sigma).unwrap();
        prop_assert!(case.check.passed(), "{case:?}");
        // σ for σ² is a different map wherever σ is far from 1 and Σ is not negligible
        let trace: f64 = (0..d).map(|i| target.covariance()[(i, i)]).sum();
        if !(0.3..=3.0).contains(&sigma) && trace > 0.1 {
            prop_assert!(!case.planted.passed(), "planted σ for σ² not rejected: {case:?}");
        }
    }

    #[test]
    fn ddim_map_is_the_closed_form_gaussian_map(
        target in gmm(1..=6, 1..=3),
        steps in 1usize..60,
        kind in 0usize..3,
    ) {
        let schedule = match kind {
            0 => Schedule::ve_uniform(10.0, steps),
            1 => Schedule::ve_exponential(0.05, 6.0 / steps as f64, steps),
            _ => Schedule::vp_cosine(0.995, steps),
        }
        .unwrap();
        let d = target.dim();
        let case =
            lg::ddim_map_matches_closed_form(&schedule, &target.mean(), &target.covariance(), d)
                .unwrap();
        prop_assert!(case.check.passed(), "{case:?}");
        // with one step the retention r_0/r_1 = 0 whatever its exponent; with Σ = 0 (a point
        // mass) every gain is the retention's product, 0 from the first step on
        let trace: f64 = (0..d).map(|i| target.covariance()[(i, i)]).sum();
        if steps >= 2 && trace > 0.0 {
            prop_assert!(!case.planted.passed(), "swapped retention not rejected: {case:?}");
        }
    }
}

/// Fig. 2: the 3-GMM and the 2-GMM have identical (μ, Σ) and therefore identical optimal affine
/// denoisers at every σ (grid 1e-2..1e2), although their Bayes denoisers differ by more than 0.1.
#[test]
fn fig2_pair_has_identical_optimal_affine_denoisers() {
    let (a, b) = lg::fig2_pair().unwrap();
    assert_eq!(a.components().len(), 3);
    assert_eq!(b.components().len(), 2);
    let mut cases = Vec::new();
    for e in -8..=8 {
        let sigma = 10f64.powf(f64::from(e) / 4.0);
        for i in -3..=3 {
            let y = [f64::from(i), 0.5 - f64::from(i) * 0.7];
            let case = lg::fig2_denoisers_agree(&y, sigma).unwrap();
            assert!(case.check.passed(), "σ={sigma} y={y:?}: {case:?}");
            cases.push(case);
        }
    }
    assert!(
        power(&cases) > 1.0,
        "within-covariance denoiser not rejected"
    );
    let gap = lg::fig2_bayes_denoisers_differ().unwrap();
    assert!(gap > 0.1, "the two laws must be different: Bayes gap {gap}");
}

/// Fig. 2: identical noise gives identical DDIM samples (VE uniform, VE exponential, VP cosine).
#[test]
fn fig2_pair_generates_identical_samples_from_identical_noise() {
    let mut rng = Rng::new(0xf16, 2);
    let noise = Mat::from_fn(500, 2, |_, _| rng.normal());
    for schedule in [
        Schedule::ve_uniform(20.0, 100).unwrap(),
        Schedule::ve_exponential(0.02, 0.07, 100).unwrap(),
        Schedule::vp_cosine(0.999, 100).unwrap(),
    ] {
        let case = lg::fig2_samples_agree(&schedule, &noise).unwrap();
        assert!(case.check.passed(), "{case:?}");
        assert!(
            !case.planted.passed(),
            "within-covariance samples not rejected: {case:?}"
        );
    }
}

/// Convergence to the exact probability flow at rate 1/L, against the sampler: the DDIM map with
/// f* (Fig. 2 moments, a singular 3-D Σ) lies within the proved defect band around the exact
/// flow map for L = 10..640 on VP cosine (t_max = 0.999 and 1 − 1e-6) and VE uniform (T = 10),
/// and the planted "no first-order defect" (DDIM exact up to O(1/L²)) is rejected. The rate
/// constants are proved: S·L lies between (1 − Δφ_max²/3)φ_L² and C (VP cosine
/// `t_max(π/2)max(√λ, 1/√λ)φ_L`, VE uniform `Tφ_L/√λ`), so the defect is exactly first order.
/// At t_max = 1 − 1e-6 the exact-flow variances λ/(α_L²λ + σ_L²) equal Σ's eigenvalues to 1e-11.
#[test]
fn ddim_generated_covariance_converges_to_sigma_at_rate_one_over_l() {
    let (a, _) = lg::fig2_pair().unwrap();
    let f = Mat::from_fn(3, 2, |i, j| [[1.0, 0.5], [-0.3, 1.2], [0.8, -0.4]][i][j]);
    let singular = &f * f.transpose();
    for (mu, cov) in [(a.mean(), a.covariance()), (vec![0.5, -1.0, 2.0], singular)] {
        let d = mu.len();
        let lambdas = flow::descending_eigenpairs(&cov).unwrap().0;
        for steps in [10usize, 40, 160, 640] {
            for (schedule, vp) in [
                (Schedule::vp_cosine(0.999, steps).unwrap(), true),
                (Schedule::vp_cosine(1.0 - 1e-6, steps).unwrap(), true),
                (Schedule::ve_uniform(10.0, steps).unwrap(), false),
            ] {
                let cases = lg::ddim_converges_to_exact_flow(
                    &schedule,
                    &mu,
                    &cov,
                    d,
                    PlantedLimit::NoFirstOrderDefect,
                )
                .unwrap();
                for c in &cases {
                    assert!(c.check.passed(), "L={steps}: {c:?}");
                }
                assert!(
                    power(&cases) > 1.0,
                    "L={steps}: no-defect claim not rejected"
                );
                let t_max = schedule.time(steps);
                for &lam in lambdas.iter().filter(|&&l| l > 0.0) {
                    let s_l = flow::angle_defect(&schedule, lam) * steps as f64;
                    let upper = if vp {
                        flow::vp_cosine_rate_constant(t_max, lam)
                    } else {
                        flow::ve_uniform_rate_constant(t_max, lam)
                    };
                    let lower = flow::rate_lower_constant(&schedule, lam);
                    assert!(
                        lower <= s_l * (1.0 + 1e-12) && s_l <= upper * (1.0 + 1e-12),
                        "λ={lam} L={steps}: S·L = {s_l} outside [{lower}, {upper}]"
                    );
                }
            }
        }
        let end = Schedule::vp_cosine(1.0 - 1e-6, 10).unwrap();
        for &lam in &lambdas {
            let v = flow::exact_flow_gain(&end, lam).powi(2);
            assert!(
                (v - lam).abs() <= 1e-11 * (1.0 + lam),
                "λ={lam}: limit variance {v}"
            );
        }
    }
}

/// 20000 DDIM draws (and 20000 ancestral draws) with the optimal affine denoiser pass the exact
/// χ²/Wishart tests against the closed-form generated law, family-wise α = 1e-6, for the Fig. 2
/// moments and a singular 3-D covariance (whose null direction must hold to rounding).
#[test]
fn ddim_samples_pass_wishart_chi2_test_against_closed_form() {
    let (a, _) = lg::fig2_pair().unwrap();
    let f = Mat::from_fn(3, 2, |i, j| [[1.0, 0.5], [-0.3, 1.2], [0.8, -0.4]][i][j]);
    let singular = &f * f.transpose();
    let schedule = Schedule::vp_cosine(0.99, 30).unwrap();
    for (mu, cov) in [(a.mean(), a.covariance()), (vec![0.5, -1.0, 2.0], singular)] {
        for stochastic in [false, true] {
            let d = mu.len();
            let case = lg::sampled_moments_match_closed_form(
                &schedule, &mu, &cov, d, stochastic, 20_000, 0x5eed,
            )
            .unwrap();
            assert!(case.check.passed(), "stochastic={stochastic}: {case:?}");
            assert!(
                !case.planted.passed(),
                "swapped retention not rejected, stochastic={stochastic}: {case:?}"
            );
        }
    }
}

/// Book Example 3.5 / Fig. 3.6: the DDIM run reproduces the product ∏c_{ℓ,L} of eq.3.2.45–46
/// (the product with its last factor dropped is rejected), and the products do not go to 0: they lie in the proved first-order band around the exact
/// flow gain √(λ/(λ+T²)) > 0 for L = 1..10000 (the planted limit 0 of the contraction argument
/// eq.3.2.47 is rejected).
#[test]
fn example_3_5_contraction_products_do_not_vanish() {
    for lambda in [0.1, 1.0, 10.0] {
        for steps in [1usize, 10, 100, 1000] {
            let case = lg::example_3_5_sampler_matches_formula(lambda, 1.0, steps).unwrap();
            assert!(case.check.passed(), "λ={lambda} L={steps}: {case:?}");
            assert!(
                !case.planted.passed(),
                "λ={lambda} L={steps}: the dropped last factor not rejected"
            );
        }
        for steps in [10usize, 100, 1000, 10_000] {
            let case = lg::example_3_5_product_converges_to_exact_flow(lambda, 1.0, steps).unwrap();
            assert!(case.check.passed(), "λ={lambda} L={steps}: {case:?}");
            assert!(
                !case.planted.passed(),
                "λ={lambda} L={steps}: limit 0 not rejected"
            );
        }
    }
}

/// Least squares from 20000 samples of the Fig. 2 GMMs (and a random 4-D GMM) agrees with the
/// closed form W = Σ(Σ+σ²I)⁻¹, b = μ − Wμ: every entry within z(1e-6/(d(d+1)))·SE (sandwich).
#[test]
fn least_squares_affine_fit_converges_to_closed_form() {
    let (a, b) = lg::fig2_pair().unwrap();
    let mut rng = Rng::new(0x15, 3);
    let c = diffusion_theorems::targets::random_gmm(&mut rng, 4, 3).unwrap();
    for (i, t) in [&a, &b, &c].into_iter().enumerate() {
        for sigma in [0.3, 1.0] {
            let case =
                lg::least_squares_matches_closed_form(t, sigma, 20_000, i as u64, false).unwrap();
            assert!(case.check.passed(), "target {i} σ={sigma}: {case:?}");
            if sigma != 1.0 {
                assert!(!case.planted.passed(), "σ for σ² not rejected: {case:?}");
            }
        }
    }
}

/// The bias-free caveat, counterexample: "DDIM with the bias-free optimal denoiser generates
/// N(μ, Σ)" fails for the Fig. 2 moments (μ = (1, −0.5)): 20000 DDIM draws (VP cosine, 200
/// steps, t_max = 1 − 1e-6) are rejected by the χ² test against the DDIM law of (μ, Σ) by a
/// factor > 100.
#[test]
fn bias_free_optimal_denoiser_does_not_generate_n_mu_sigma() {
    let (a, _) = lg::fig2_pair().unwrap();
    let (mu, cov) = (a.mean(), a.covariance());
    let schedule = Schedule::vp_cosine(1.0 - 1e-6, 200).unwrap();
    let naive =
        lg::bias_free_sampling_matches_law(&schedule, &mu, &cov, &mu, &cov, 20_000, 4).unwrap();
    assert!(
        naive.residual > 100.0,
        "N(μ,Σ) should be rejected: {naive:?}"
    );
}

/// Positive control of the bias-free counterexample (same machinery): with μ = 0 the bias-free
/// optimum is the optimal affine denoiser, and the 20000 DDIM draws pass the χ² test against the
/// DDIM law of (0, Σ).
#[test]
fn bias_free_optimal_denoiser_generates_n_0_sigma_when_mean_is_zero() {
    let (a, _) = lg::fig2_pair().unwrap();
    let cov = a.covariance();
    let zero = [0.0, 0.0];
    let schedule = Schedule::vp_cosine(1.0 - 1e-6, 200).unwrap();
    let control =
        lg::bias_free_sampling_matches_law(&schedule, &zero, &cov, &zero, &cov, 20_000, 4).unwrap();
    assert!(control.passed(), "{control:?}");
}

/// Repair of the bias-free caveat: with f(y) = W y the optimal W is M(M+σ²I)⁻¹, M = Σ + μμᵀ
/// (least squares agrees, z-test α = 1e-6, and σ for σ² is rejected), and DDIM with it
/// generates the closed-form law of (0, M) — which tends to N(0, Σ + μμᵀ): 20000 draws pass the
/// χ² test against it.
#[test]
fn bias_free_optimal_denoiser_generates_n_0_sigma_plus_mu_mu_t() {
    let (a, _) = lg::fig2_pair().unwrap();
    for sigma in [0.3, 2.0] {
        let case = lg::least_squares_matches_closed_form(&a, sigma, 20_000, 9, true).unwrap();
        assert!(case.check.passed(), "σ={sigma}: {case:?}");
        assert!(
            !case.planted.passed(),
            "σ={sigma}: σ for σ² not rejected {case:?}"
        );
    }
    let (mu, cov) = (a.mean(), a.covariance());
    let m = lg::second_moment(&mu, &cov);
    let schedule = Schedule::vp_cosine(1.0 - 1e-6, 200).unwrap();
    let repaired =
        lg::bias_free_sampling_matches_law(&schedule, &mu, &cov, &[0.0, 0.0], &m, 20_000, 4)
            .unwrap();
    assert!(repaired.passed(), "{repaired:?}");
}

/// Bad input is a typed error, never a panic.
#[test]
fn bad_input_is_a_typed_error() {
    let eye = Mat::from_fn(2, 2, |i, j| if i == j { 1.0 } else { 0.0 });
    assert!(OptimalAffine::from_moments(&[0.0], &eye).is_err());
    assert!(OptimalAffine::from_moments(&[f64::NAN, 0.0], &eye).is_err());
    let neg = Mat::from_fn(2, 2, |i, j| if i == j { -1.0 } else { 0.0 });
    assert!(OptimalAffine::from_moments(&[0.0, 0.0], &neg).is_err());
    let f = OptimalAffine::from_moments(&[0.0, 0.0], &eye).unwrap();
    assert!(f.denoise(&[0.0, 0.0], 0.0).is_err());
    assert!(f.weight(-1.0).is_err());
    assert!(fit_affine(&Mat::zeros(2, 2), &Mat::zeros(2, 2)).is_err());
    assert!(fit_bias_free(&Mat::zeros(10, 2), &Mat::zeros(9, 2)).is_err());
    assert!(Schedule::ve_uniform(0.0, 10).is_err());
    assert!(Schedule::ve_uniform(1.0, 0).is_err());
    assert!(Schedule::vp_cosine(1.0, 10).is_err());
    assert!(Schedule::ve_exponential(1.0, 1e3, 1000).is_err());
    let ddim = Ddim {
        schedule: Schedule::ve_uniform(1.0, 3).unwrap(),
    };
    assert!(ddim.sample(&f, &Mat::zeros(4, 3)).is_err());
    let mut nan = Mat::zeros(1, 2);
    nan[(0, 1)] = f64::NAN;
    assert!(ddim.sample(&f, &nan).is_err());
}

/// Gradient descent on the GPU, every product a tiled WGSL GEMM, reaches the f64 least-squares
/// fit of the same samples — affine and bias-free, d ∈ {3, 6} — within the derived bound
/// (linear convergence of the exact iteration, its f32 floor, and the moments' f32 error).
/// With `least_squares_matches_closed_form`, closed form, least squares and GD agree.
#[test]
fn gpu_gradient_descent_matches_least_squares() {
    let gpu = common::gpu();
    let mut rng = Rng::new(0x9d, 0);
    for &d in &[3usize, 6] {
        let target = diffusion_theorems::targets::random_gmm(&mut rng, d, 3).unwrap();
        for bias_free in [false, true] {
            let case =
                lg::gpu_gd_matches_least_squares(gpu, &target, 0.7, 1 << 13, 400, 3, bias_free)
                    .unwrap();
            assert!(case.check.passed(), "d={d} bias_free={bias_free}: {case:?}");
            assert!(!case.planted.passed(), "other fit not rejected: {case:?}");
            // informative: far below the size of the map itself
            assert!(case.check.tolerance < 1e-2, "{case:?}");
        }
    }
}

/// The GPU's f32 sample moments `S = (1/n)Σ y'y'ᵀ`, `R = (1/n)Σ x y'ᵀ` (`y' = [y; 1]`) lie within
/// their stated elementwise bounds of the f64 moments of the same samples (the bounds that the
/// GD rows' tolerances are built on); n = 3000 spans several summation chunks.
#[test]
fn gpu_sample_moments_lie_within_their_f32_bounds() {
    let gpu = common::gpu();
    let target = diffusion_theorems::targets::random_gmm(&mut Rng::new(0x6d6f, 0), 4, 3).unwrap();
    let (xs, ys) = lg::noisy_pairs(&target, 0.5, 3000, 11);
    let m = diffusion_theorems::denoisers::gd::gpu_moments(gpu, &xs, &ys, true).unwrap();
    let (n, d) = (ys.nrows(), ys.ncols());
    let y_aug = |i: usize, a: usize| if a < d { ys[(i, a)] } else { 1.0 };
    for a in 0..=d {
        for b in 0..=d {
            let exact = (0..n).map(|i| y_aug(i, a) * y_aug(i, b)).sum::<f64>() / n as f64;
            let gap = (m.second[(a, b)] - exact).abs();
            assert!(
                gap <= m.second_bound[(a, b)],
                "S[{a},{b}]: |{gap:e}| > {:e}",
                m.second_bound[(a, b)]
            );
        }
        for x in 0..d {
            let exact = (0..n).map(|i| xs[(i, x)] * y_aug(i, a)).sum::<f64>() / n as f64;
            let gap = (m.cross[(x, a)] - exact).abs();
            assert!(
                gap <= m.cross_bound[(x, a)],
                "R[{x},{a}]: |{gap:e}| > {:e}",
                m.cross_bound[(x, a)]
            );
        }
    }
}

/// Reproducibility: every verify row of `linear_gaussian` passes and reproduces its recorded numbers —
/// cases, power, and the geometric means over all cases of the tolerance and of the planted
/// variant's residual (`tests/common/pins/linear_gaussian.json`). A changed allowance or negative control in any
/// case fails here until it is recorded on purpose (`PIN_UPDATE=1`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("linear_gaussian");
}
