//! `linear_gaussian`: the optimal affine denoiser μ + Σ(Σ+σ²I)⁻¹(y−μ) depends only on (μ, Σ);
//! DDIM with it generates a Gaussian law that tends to N(μ, Σ); the bias-free caveat.
//! See theorems/linear_gaussian.md.

mod common;

use common::{config, gmm};
use diffusion_theorems::denoisers::linear::{fit_affine, fit_bias_free, OptimalAffine};
use diffusion_theorems::denoisers::Denoiser;
use diffusion_theorems::diffusion::{Ddim, Sampler, Schedule};
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::stats::gaussian_law::test_gaussian_law;
use diffusion_theorems::targets::Target;
use diffusion_theorems::theorems::linear_gaussian as lg;
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
        let check = lg::optimal_affine_routes(&target, &y[..d], 10f64.powf(log_sigma)).unwrap();
        prop_assert!(check.passed(), "{check:?}");
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
        let check =
            lg::ddim_map_matches_closed_form(&schedule, &target.mean(), &target.covariance(), d)
                .unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }
}

/// Fig. 2: the 3-GMM and the 2-GMM have identical (μ, Σ) and therefore identical optimal affine
/// denoisers at every σ (grid 1e-2..1e2), although their Bayes denoisers differ by more than 0.1.
#[test]
fn fig2_pair_has_identical_optimal_affine_denoisers() {
    let (a, b) = lg::fig2_pair().unwrap();
    assert_eq!(a.components().len(), 3);
    assert_eq!(b.components().len(), 2);
    for e in -8..=8 {
        let sigma = 10f64.powf(f64::from(e) / 4.0);
        for i in -3..=3 {
            let y = [f64::from(i), 0.5 - f64::from(i) * 0.7];
            let check = lg::fig2_denoisers_agree(&y, sigma).unwrap();
            assert!(check.passed(), "σ={sigma} y={y:?}: {check:?}");
        }
    }
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
        let check = lg::fig2_samples_agree(&schedule, &noise).unwrap();
        assert!(check.passed(), "{check:?}");
    }
}

/// The DDIM-generated covariance (VP cosine, t_max = 1 − 1e-6, so the initial N(0, I) is the
/// exact marginal up to α_L² ≈ 2.5e-12) converges to Σ at rate 1/L: the observed order
/// log₂(err(L)/err(2L)) lies in [0.95, 1.05] for L = 80..640, and err(640) < 0.011·λ_max.
/// The same for the ancestral sampler.
#[test]
fn ddim_generated_covariance_converges_to_sigma_at_rate_one_over_l() {
    let (a, _) = lg::fig2_pair().unwrap();
    let (mu, cov) = (a.mean(), a.covariance());
    for stochastic in [false, true] {
        let err = |steps: usize| {
            let s = Schedule::vp_cosine(1.0 - 1e-6, steps).unwrap();
            let law = lg::generated_law(&s, &mu, &cov, 2, stochastic).unwrap();
            law.eigenvalues
                .iter()
                .zip(&law.variances)
                .map(|(l, v)| (l - v).abs())
                .fold(0.0, f64::max)
        };
        let mut prev = err(80);
        for steps in [160, 320, 640] {
            let e = err(steps);
            let order = (prev / e).log2();
            assert!((0.95..=1.05).contains(&order), "L={steps}: order {order}");
            prev = e;
        }
        let lmax = 2.0f64.max(cov[(0, 0)] + cov[(1, 1)]);
        assert!(prev < 0.011 * lmax, "err(640) = {prev}");
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
            let check = lg::sampled_moments_match_closed_form(
                &schedule, &mu, &cov, d, stochastic, 20_000, 0x5eed,
            )
            .unwrap();
            assert!(check.passed(), "stochastic={stochastic}: {check:?}");
        }
    }
}

/// Book Example 3.5 / Fig. 3.6: the DDIM run reproduces the product ∏c_{ℓ,L} of eq.3.2.45–46,
/// and the products do not go to 0: they converge (at rate 1/L) to √(λ/(λ+T²)) > 0.
#[test]
fn example_3_5_contraction_products_do_not_vanish() {
    for lambda in [0.1, 1.0, 10.0] {
        for steps in [1usize, 10, 100, 1000] {
            let check = lg::example_3_5_sampler_matches_formula(lambda, 1.0, steps).unwrap();
            assert!(check.passed(), "λ={lambda} L={steps}: {check:?}");
        }
        let limit = (lambda / (lambda + 1.0)).sqrt();
        let mut prev = (lg::example_3_5_product(lambda, 1.0, 100) - limit).abs();
        for steps in [1000usize, 10_000] {
            let p = lg::example_3_5_product(lambda, 1.0, steps);
            let e = (p - limit).abs();
            assert!(p > 0.29, "λ={lambda} L={steps}: product {p} collapses");
            // one decade of L gains one decade of accuracy (first order), within 10%
            assert!(e < 0.11 * prev, "λ={lambda} L={steps}: {e} vs {prev}");
            prev = e;
        }
    }
}

/// Least squares from 20000 samples of the Fig. 2 GMMs (and a random 4-D GMM) agrees with the
/// closed form W = Σ(Σ+σ²I)⁻¹, b = μ − Wμ: every entry within z(1e-6/(d(d+1)))·SE (sandwich).
#[test]
fn least_squares_affine_fit_converges_to_closed_form() {
    let (a, b) = lg::fig2_pair().unwrap();
    let mut rng = Rng::new(0x15, 3);
    let c = diffusion_theorems::theorems::random_gmm(&mut rng, 4, 3).unwrap();
    for (i, t) in [&a, &b, &c].into_iter().enumerate() {
        for sigma in [0.3, 1.0] {
            let check =
                lg::least_squares_matches_closed_form(t, sigma, 20_000, i as u64, false).unwrap();
            assert!(check.passed(), "target {i} σ={sigma}: {check:?}");
        }
    }
}

/// The bias-free caveat (a counterexample to "N(μ, Σ)" and its repair): with f(y) = W y the
/// optimal W is M(M+σ²I)⁻¹, M = Σ + μμᵀ (least squares agrees, z-test α = 1e-6), and DDIM with
/// it generates the closed-form law of (0, M) — which tends to N(0, Σ + μμᵀ) — not N(μ, Σ):
/// 20000 draws pass the χ² test against the former and fail it against the latter by a
/// factor > 100.
#[test]
fn bias_free_optimal_denoiser_generates_uncentred_law_not_n_mu_sigma() {
    let (a, _) = lg::fig2_pair().unwrap();
    for sigma in [0.3, 1.0] {
        let check = lg::least_squares_matches_closed_form(&a, sigma, 20_000, 9, true).unwrap();
        assert!(check.passed(), "σ={sigma}: {check:?}");
    }
    let (mu, cov) = (a.mean(), a.covariance());
    let m = Mat::from_fn(2, 2, |i, j| cov[(i, j)] + mu[i] * mu[j]);
    let schedule = Schedule::vp_cosine(1.0 - 1e-6, 200).unwrap();
    let repaired =
        lg::sampled_moments_match_closed_form(&schedule, &[0.0, 0.0], &m, 2, false, 20_000, 4)
            .unwrap();
    assert!(repaired.passed(), "{repaired:?}");
    let den = OptimalAffine::bias_free_from_moments(&mu, &cov).unwrap();
    let mut rng = Rng::new(4, 0);
    let noise = Mat::from_fn(20_000, 2, |_, _| rng.normal());
    let samples = Ddim { schedule }.sample(&den, &noise).unwrap();
    let naive = test_gaussian_law(&samples, &mu, &cov, lg::ALPHA, 0.0).unwrap();
    assert!(naive.worst > 100.0, "N(μ,Σ) should be rejected: {naive:?}");
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
        let target = diffusion_theorems::theorems::random_gmm(&mut rng, d, 3).unwrap();
        for bias_free in [false, true] {
            let check =
                lg::gpu_gd_matches_least_squares(gpu, &target, 0.7, 1 << 13, 400, 3, bias_free)
                    .unwrap();
            assert!(check.passed(), "d={d} bias_free={bias_free}: {check:?}");
            // informative: far below the size of the map itself
            assert!(check.tolerance < 1e-2, "{check:?}");
        }
    }
}
