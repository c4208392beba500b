//! `polynomial_moments`: the optimal degree-d polynomial denoiser depends only on the moments up
//! to order 2d; what DDIM generates with it. See theorems/polynomial_moments.md.

mod common;

use common::config;
use diffusion_theorems::denoisers::polynomial::{
    fit_polynomial, optimal_polynomial, OptimalPolynomial,
};
use diffusion_theorems::denoisers::Denoiser;
use diffusion_theorems::diffusion::Schedule;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::stats::gauss_quadrature::gauss_rule;
use diffusion_theorems::stats::moments::{joint_moment, mixture_moments, monomials, noisy_moment};
use diffusion_theorems::stats::two_sided_z;
use diffusion_theorems::targets::{GaussianMixture, Target};
use diffusion_theorems::theorems::polynomial_moments as pm;
use proptest::prelude::*;

/// A random 1-D mixture with K components of positive variance (so every Gauss rule exists).
fn mixture_1d() -> impl Strategy<Value = GaussianMixture> {
    (1usize..=4).prop_flat_map(|k| {
        (
            proptest::collection::vec(0.1f64..1.0, k),
            proptest::collection::vec(-3.0f64..3.0, k),
            proptest::collection::vec(0.05f64..2.0, k),
        )
            .prop_map(|(w, m, v)| {
                let total: f64 = w.iter().sum();
                let weights: Vec<f64> = w.iter().map(|x| x / total).collect();
                let means: Vec<Vec<f64>> = m.iter().map(|x| vec![*x]).collect();
                let covs: Vec<Mat> = v.iter().map(|x| Mat::from_fn(1, 1, |_, _| *x)).collect();
                GaussianMixture::new(&weights, &means, &covs).expect("valid by construction")
            })
    })
}

proptest! {
    #![proptest_config(config(64))]

    /// Random 1-D GMMs, d ≤ 5, σ ∈ [0.1, 3]: the degree-d optimal denoiser of P equals that of
    /// its (d+1)-node Gauss rule — a discrete law sharing only P's moments up to order 2d+1 —
    /// within the perturbation bound of the normal equations for the measured moment mismatch.
    #[test]
    fn optimal_denoiser_depends_only_on_moments_up_to_2d(
        p in mixture_1d(),
        degree in 1usize..=5,
        log_sigma in -1.0f64..0.5,
    ) {
        let check = pm::quadrature_pair(&p, degree, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }

    /// 2-D: for a product target P₁⊗P₂ the product of the (d+1)-node rules matches every mixed
    /// moment of total degree ≤ 2d, and the degree-d optimal denoisers agree (d ≤ 3).
    #[test]
    fn product_gauss_rules_match_mixed_moments_in_2d(
        p1 in mixture_1d(),
        p2 in mixture_1d(),
        degree in 1usize..=3,
        log_sigma in -1.0f64..0.5,
    ) {
        let check = pm::product_pair(&p1, &p2, degree, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }

    /// Degree 1 is the optimal affine denoiser μ + Σ(Σ+σ²I)⁻¹(y − μ) (consistency with
    /// linear_gaussian), for random GMMs in d = 1–4.
    #[test]
    fn degree_one_equals_optimal_affine_denoiser(
        target in common::gmm(1..=4, 1..=4),
        log_sigma in -1.0f64..0.5,
    ) {
        let check = pm::degree_one_is_affine(&target, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }

    /// The noisy moments E[y^α] by the binomial expansion over X's moments equal those from
    /// Stein's recursion on the joint law of (x, y), to rounding: each route sums at most
    /// |α|!-many products (terms × Gaussian moment factors) of size at most (S + σ)^|α| (S the
    /// target's scale), each with relative error under a few dozen ε — `1024·ε·|α|!·(S + σ)^|α|`.
    #[test]
    fn noisy_moments_binomial_equals_joint_stein_recursion(
        target in common::gmm(1..=3, 1..=3),
        log_sigma in -1.0f64..0.5,
    ) {
        let sigma = 10f64.powf(log_sigma);
        let n = target.dim();
        let zero = vec![0; n];
        for alpha in monomials(n, 6) {
            let a = noisy_moment(&target, sigma, &alpha).unwrap();
            let b = joint_moment(&target, sigma, &[(zero.clone(), alpha.clone())]).unwrap()[0];
            let deg: usize = alpha.iter().sum();
            let scale = (target.scale() + sigma).powi(deg as i32) * (1..=deg).product::<usize>() as f64;
            prop_assert!((a - b).abs() <= 1024.0 * f64::EPSILON * scale, "α={alpha:?}: {a} vs {b}");
        }
    }
}

/// Tightness: the d-node rule matches moments only up to 2d − 1, and its degree-d optimal
/// denoiser differs from P's by more than 10⁴ times the tolerance within which the (d+1)-node
/// rule's agrees (the gap is smallest at large σ, where both denoisers flatten towards the mean).
#[test]
fn lower_order_gauss_rule_gives_a_different_denoiser() {
    let p = pm::default_target().unwrap();
    for degree in 1..=5 {
        for &sigma in &[0.1, 0.5, 2.0] {
            let matched = pm::quadrature_pair(&p, degree, sigma).unwrap();
            let short = pm::quadrature_tightness(&p, degree, sigma).unwrap();
            assert!(matched.passed(), "d={degree} σ={sigma}: {matched:?}");
            assert!(
                short.residual > 1e4 * matched.tolerance,
                "d={degree} σ={sigma}: d-node rule {short:?} vs matched tolerance {}",
                matched.tolerance
            );
        }
    }
}

/// DDIM (VP cosine, 50 steps) with the optimal degree-d denoisers of P and of its (d+1)-node rule,
/// from identical noise, gives identical samples (d = 1, 3, 5 in 1-D; d = 2 for a 2-D product
/// target) within the first-order propagation of the per-step bound.
#[test]
fn ddim_from_identical_noise_gives_identical_samples() {
    let schedule = Schedule::vp_cosine(0.999, 50).unwrap();
    let p = pm::default_target().unwrap();
    let mut rng = Rng::new(0x90, 0);
    let noise = Mat::from_fn(64, 1, |_, _| rng.normal());
    for degree in [1usize, 3, 5] {
        let q = gauss_rule(&p, degree + 1).unwrap().law;
        let check = pm::ddim_pair(&p, &q, degree, &schedule, &noise).unwrap();
        assert!(check.passed(), "d={degree}: {check:?}");
    }
    let p2 = GaussianMixture::new(
        &[0.6, 0.4],
        &[vec![-1.0], vec![1.5]],
        &[
            Mat::from_fn(1, 1, |_, _| 0.4),
            Mat::from_fn(1, 1, |_, _| 0.2),
        ],
    )
    .unwrap();
    let prod = pm::product_mixture(&p, &p2).unwrap();
    let rules = pm::product_mixture(
        &gauss_rule(&p, 3).unwrap().law,
        &gauss_rule(&p2, 3).unwrap().law,
    )
    .unwrap();
    let noise2 = Mat::from_fn(32, 2, |_, _| rng.normal());
    let check = pm::ddim_pair(&prod, &rules, 2, &schedule, &noise2).unwrap();
    assert!(check.passed(), "2-D: {check:?}");
}

/// The N-node Gauss rule matches the law's moments of orders 0..=2N−1 (to its Hankel condition
/// number times ε) and not order 2N.
#[test]
fn gauss_rule_matches_moments_up_to_2n_minus_1() {
    let p = pm::default_target().unwrap();
    for nodes in 1..=6 {
        let rule = gauss_rule(&p, nodes).unwrap();
        let matched = pm::moment_mismatch(&p, &rule.law, 2 * nodes - 1).unwrap();
        let next = pm::moment_mismatch(&p, &rule.law, 2 * nodes).unwrap();
        let tolerance = 64.0 * (2 * nodes) as f64 * rule.hankel_condition * f64::EPSILON;
        assert!(
            matched <= tolerance,
            "N={nodes}: mismatch {matched} > {tolerance}"
        );
        assert!(
            next > 1e6 * tolerance,
            "N={nodes}: order 2N matched too ({next})"
        );
    }
}

/// The monomial basis is graded lexicographic with C(n+d, d) − 1 elements.
#[test]
fn monomials_are_graded_lexicographic() {
    assert_eq!(
        monomials(2, 3),
        vec![
            vec![1, 0],
            vec![0, 1],
            vec![2, 0],
            vec![1, 1],
            vec![0, 2],
            vec![3, 0],
            vec![2, 1],
            vec![1, 2],
            vec![0, 3],
        ]
    );
    for (n, d) in [(1usize, 5usize), (3, 4), (4, 3)] {
        let count = (1..=d).fold(1usize, |acc, i| acc * (n + i) / i) - 1;
        assert_eq!(monomials(n, d).len(), count);
    }
}

/// Exact moments against Monte Carlo: 2¹⁶ draws of a 2-D GMM and of its noisy observation,
/// every moment up to order 4 within z·SE (family-wise α = 1e-6).
#[test]
fn exact_moments_match_monte_carlo() {
    let mut rng = Rng::new(0x3c, 0);
    let target = diffusion_theorems::theorems::random_gmm(&mut rng, 2, 3).unwrap();
    let sigma = 0.5;
    let n = 1 << 16;
    let (xs, ys) = diffusion_theorems::theorems::linear_gaussian::noisy_pairs(&target, sigma, n, 9);
    let basis = monomials(2, 4);
    let exact_x = mixture_moments(&target, &basis).unwrap();
    let z = two_sided_z(1e-6 / (2 * basis.len()) as f64);
    for (alpha, ex) in basis.iter().zip(&exact_x) {
        for (samples, exact) in [
            (&xs, *ex),
            (&ys, noisy_moment(&target, sigma, alpha).unwrap()),
        ] {
            let v: Vec<f64> = (0..n)
                .map(|i| {
                    diffusion_theorems::stats::moments::monomial_value(
                        &[samples[(i, 0)], samples[(i, 1)]],
                        alpha,
                    )
                })
                .collect();
            let (mean, se) = diffusion_theorems::stats::mean_and_std_error(&v);
            assert!(
                (mean - exact).abs() <= z * se,
                "α={alpha:?}: MC {mean} ± {se} vs exact {exact}"
            );
        }
    }
}

/// The least-squares fit from 2¹⁴ samples agrees with the moment solution within z·(sandwich SE)
/// at every grid point (α = 1e-6 per case, Bonferroni over points), d = 1, 3, 5.
#[test]
fn least_squares_fit_converges_to_moment_solution() {
    let p = pm::default_target().unwrap();
    for degree in [1usize, 3, 5] {
        let check =
            pm::least_squares_matches_optimal(&p, degree, 0.5, 1 << 14, degree as u64, 1e-6 / 3.0)
                .unwrap();
        assert!(check.passed(), "d={degree}: {check:?}");
    }
}

/// Documented counterexample to "log p_gen is a polynomial of degree d + 1" (Levine–Weiss,
/// Fig. 3): the exact generated density of 1-D DDIM (push-forward through the flow map) is
/// fitted to rounding by degree 2 when d = 1 (it is Gaussian), but for d = 3, 5 the best degree
/// d+1 polynomial misses log p_gen by more than 5% of its range, for L = 50 and L = 1000 steps
/// alike — the gap does not close with more steps.
#[test]
fn generated_log_density_is_not_a_degree_d_plus_1_polynomial() {
    let p = pm::default_target().unwrap();
    for steps in [50usize, 1000] {
        let schedule = Schedule::vp_cosine(0.999, steps).unwrap();
        let affine = pm::generated_log_density(&p, 1, &schedule, &[2]).unwrap();
        let (_, residual, floor) = affine.residuals[0];
        assert!(residual <= floor, "d=1, L={steps}: {affine:?}");
        for degree in [3usize, 5] {
            let fit = pm::generated_log_density(&p, degree, &schedule, &[degree + 1]).unwrap();
            let (_, residual, floor) = fit.residuals[0];
            assert!(
                residual > 0.05 * fit.range && residual > 1e6 * floor,
                "d={degree}, L={steps}: {fit:?}"
            );
        }
    }
}

/// Documented counterexample in 2-D: the optimal degree-3 and degree-5 polynomial denoisers of
/// the Fig. 3 mixture have asymmetric Jacobians at σ = 0.5 (by more than 10⁶ times the rounding
/// bound at some point of a grid), so their scores are not gradient fields — not the score of
/// any density, let alone exp(polynomial); degree 1 is symmetric to rounding.
#[test]
fn polynomial_score_is_not_a_gradient_field_in_2d() {
    let target = diffusion_theorems::experiments::polynomial_2d::target().unwrap();
    let points: Vec<Vec<f64>> = (0..7)
        .flat_map(|i| (0..7).map(move |j| vec![-3.0 + f64::from(i), -2.0 + f64::from(j)]))
        .collect();
    for degree in [1usize, 3, 5] {
        let fit = optimal_polynomial(&target, 0.5, degree).unwrap();
        let checks: Vec<_> = points
            .iter()
            .map(|y| pm::jacobian_asymmetry(&fit, y).unwrap())
            .collect();
        let worst = checks
            .iter()
            .map(|c| c.residual / c.tolerance)
            .fold(0.0, f64::max);
        if degree == 1 {
            assert!(checks.iter().all(|c| c.passed()), "d=1: {checks:?}");
        } else {
            assert!(
                worst > 1e6,
                "d={degree}: largest asymmetry/bound only {worst}"
            );
        }
    }
}

/// The random-feature denoiser of §3.2, `A (c∘R y)^k` with a ridge read-out, fitted on the GPU
/// (projection and Gram by the WGSL GEMM, powers by the power-feature kernel, conjugate gradients
/// with GPU products) predicts what the f64 Cholesky fit predicts, at every training point, within
/// the derived f32 bound (`gpu_fit_error_bound` times ‖D^{-1/2}φ̃(y)‖) — for k = 3 and for
/// k = 27, where the scales keep every power in [−1, 1] so nothing overflows.
#[test]
fn random_feature_gpu_fit_matches_f64_fit() {
    use diffusion_theorems::denoisers::random_feature::{
        fit_cpu, fit_gpu, gpu_fit_error_bound, random_projection,
    };
    let gpu = common::gpu();
    let target = diffusion_theorems::experiments::polynomial_2d::target().unwrap();
    let sigma = 0.5;
    let (xs, ys) =
        diffusion_theorems::theorems::linear_gaussian::noisy_pairs(&target, sigma, 256, 5);
    let projection = random_projection(7, 32, 2);
    for power in [3usize, 27] {
        let (cpu, system) = fit_cpu(&xs, &ys, &projection, power, 0.05, sigma).unwrap();
        let (gpu_fit, report) =
            fit_gpu(gpu, &xs, &ys, &projection, power, 0.05, sigma, 1e-6).unwrap();
        let (bound, diag) =
            gpu_fit_error_bound(&xs, &ys, &cpu, &system, report.relative_residual).unwrap();
        for i in 0..ys.nrows() {
            let y = diffusion_theorems::linalg::row(&ys, i);
            let h = cpu.features(&y);
            let scaled: f64 = h
                .iter()
                .zip(&diag)
                .map(|(v, d)| v * v / d)
                .sum::<f64>()
                .sqrt();
            let (a, b) = (
                gpu_fit.denoise(&y, sigma).unwrap(),
                cpu.denoise(&y, sigma).unwrap(),
            );
            let diff = diffusion_theorems::linalg::max_abs_diff(&a, &b);
            assert!(
                diff.is_finite() && diff <= bound * scaled,
                "k={power} point {i}: {diff} > {}",
                bound * scaled
            );
        }
        assert!(
            cpu.denoise(&[0.0, 0.0], 0.7).is_err(),
            "fitted at σ = 0.5 only"
        );
    }
}

/// Bad input is a typed error: degree 0, a 2-D target for a 1-D rule, zero nodes, a law with
/// too few atoms for the degree, σ ≤ 0.
#[test]
fn bad_inputs_are_typed_errors() {
    let p = pm::default_target().unwrap();
    assert!(optimal_polynomial(&p, 0.5, 0)
        .unwrap_err()
        .to_string()
        .contains("degree"));
    assert!(optimal_polynomial(&p, -1.0, 2).is_err());
    assert!(gauss_rule(&p, 0).is_err());
    let two_d = pm::product_mixture(&p, &p).unwrap();
    assert!(gauss_rule(&two_d, 3)
        .unwrap_err()
        .to_string()
        .contains("dimension"));
    let atoms = gauss_rule(&p, 2).unwrap().law;
    assert!(gauss_rule(&atoms, 4)
        .unwrap_err()
        .to_string()
        .contains("support points"));
    assert!(OptimalPolynomial::new(p.clone(), 0).is_err());
    let den = OptimalPolynomial::new(p, 2).unwrap();
    assert!(den.denoise(&[f64::NAN], 0.5).is_err());
    assert!(fit_polynomial(&Mat::zeros(3, 1), &Mat::zeros(2, 1), 2, 1.0).is_err());
}
