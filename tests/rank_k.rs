//! `rank_k`: the optimal rank-K linear denoiser Σ_{i≤K} λᵢ/(λᵢ+σ²)uᵢuᵢᵀ, its MSE, sampling
//! N(μ, Σ_K), and the book's low-rank closed forms. See theorems/rank_k.md.

use crate::common;

use common::{config, cov_strategy};
use diffusion_theorems::denoisers::rank_k::{affine_mse, descending_eigenvalues, RankK};
use diffusion_theorems::denoisers::Denoiser;
use diffusion_theorems::diffusion::Schedule;
use diffusion_theorems::linalg::{max_abs_diff_mat, Mat};
use diffusion_theorems::rng::Rng;
use diffusion_theorems::theorems::linear_gaussian::{self as lg, PlantedLimit};
use diffusion_theorems::theorems::{power, rank_k};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn closed_form_equals_eckart_young_construction(
        (cov, _mean, k) in cov_strategy(),
        log_sigma in -1.5f64..1.0,
    ) {
        let case = rank_k::closed_form_equals_eckart_young(&cov, 10f64.powf(log_sigma), k).unwrap();
        prop_assert!(case.check.passed(), "{case:?}");
        // keeping the K smallest directions is a different map when K < d and Σ ≠ 0
        let lambdas = descending_eigenvalues(&cov).unwrap();
        if k < cov.nrows() && lambdas[0] > 1e-6 {
            prop_assert!(!case.planted.passed(), "bottom-K map not rejected: {case:?}");
        }
    }

    #[test]
    fn mse_equals_tail_plus_shrunk_head_formula(
        (cov, mean, k) in cov_strategy(),
        log_sigma in -2.0f64..1.0,
    ) {
        let case = rank_k::mse_matches_formula(&mean, &cov, 10f64.powf(log_sigma), k).unwrap();
        prop_assert!(case.check.passed(), "{case:?}");
        let lambdas = descending_eigenvalues(&cov).unwrap();
        if k < cov.nrows() && lambdas[0] - lambdas[cov.nrows() - 1] > 1e-3 {
            prop_assert!(!case.planted.passed(), "ascending-order formula not rejected: {case:?}");
        }
    }

    #[test]
    fn no_random_rank_k_map_beats_the_optimum(
        (cov, mean, k) in cov_strategy(),
        log_sigma in -2.0f64..1.0,
        seed in 0u64..1000,
    ) {
        let mut rng = Rng::new(seed, 0);
        let case = rank_k::no_random_rank_k_map_beats_optimum(
            &mean, &cov, 10f64.powf(log_sigma), k, 20, &mut rng,
        ).unwrap();
        prop_assert!(case.check.passed(), "{case:?}");
    }

    #[test]
    fn low_rank_gmm_softmax_form_equals_general_gmm_formula_for_equal_subspace_dimensions(
        d in 2usize..=8,
        kk in 1usize..=4,
        seed in 0u64..1000,
        log_t in -1.0f64..0.7,
        reach in 0.0f64..4.0,
    ) {
        let mut rng = Rng::new(seed, 1);
        let p = 1 + (rng.next_u32() as usize) % (d - 1);
        let bases: Vec<Mat> = (0..kk)
            .map(|_| Mat::from_fn(d, p, |_, _| rng.normal()).qr().compute_thin_Q())
            .collect();
        let y: Vec<f64> = rng.normals(d).iter().map(|v| v * reach).collect();
        let check = rank_k::low_rank_gmm_softmax_form(&bases, &y, 10f64.powf(log_t), false).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn low_rank_gmm_softmax_form_with_dimension_correction_holds_for_unequal_dimensions(
        d in 2usize..=8,
        kk in 1usize..=4,
        seed in 0u64..1000,
        log_t in -1.0f64..0.7,
        reach in 0.0f64..4.0,
    ) {
        let mut rng = Rng::new(seed, 1);
        let bases: Vec<Mat> = (0..kk)
            .map(|_| {
                let p = 1 + (rng.next_u32() as usize) % (d - 1);
                Mat::from_fn(d, p, |_, _| rng.normal()).qr().compute_thin_Q()
            })
            .collect();
        let y: Vec<f64> = rng.normals(d).iter().map(|v| v * reach).collect();
        let case = rank_k::generalised_softmax_form(&bases, &y, 10f64.powf(log_t)).unwrap();
        prop_assert!(case.check.passed(), "{case:?}");
    }
}

/// The generalisation of eq.3.2.80 is needed for unequal dimensions (the book assumes equal
/// ones): in d = 3 with a line and a plane, t = 1, the form as printed misses the Bayes denoiser
/// by > 0.01 — the generalised check rejects it as its planted variant — while the generalised
/// form holds.
#[test]
fn low_rank_gmm_softmax_form_fails_for_unequal_dimensions_without_correction() {
    let line = Mat::from_fn(3, 1, |i, _| if i == 0 { 1.0 } else { 0.0 });
    let plane = Mat::from_fn(3, 2, |i, j| if i == j + 1 { 1.0 } else { 0.0 });
    let y = [1.0, 1.0, 0.5];
    let case = rank_k::generalised_softmax_form(&[line, plane], &y, 1.0).unwrap();
    assert!(case.planted.residual > 0.01, "{case:?}");
    assert!(!case.planted.passed(), "{case:?}");
    assert!(case.check.passed(), "{case:?}");
}

/// Ties: Σ = diag(3, 2, 2, 1). With K = 3 the tie (λ₂ = λ₃) lies inside the kept set and L* is
/// the same for any orthonormal basis of the tied eigenspace; with K = 2 the tie straddles the
/// cut, another basis gives a different L* (by > 0.1) with the same MSE (= the formula), and the
/// Eckart–Young comparison refuses with a typed error instead of reporting a false mismatch.
#[test]
fn tied_eigenvalues_give_a_unique_mse_and_a_basis_independent_map_inside_the_cut() {
    let lam = [3.0, 2.0, 2.0, 1.0];
    let cov = Mat::from_fn(4, 4, |i, j| if i == j { lam[i] } else { 0.0 });
    let mean = vec![0.3, -0.2, 1.0, 0.0];
    let sigma = 0.7;
    let (c, s) = (0.6f64, 0.8f64);
    // the tied eigenspace span(e1, e2) rotated by (c, s)
    let alt = |k: usize| {
        let mut basis = Mat::zeros(4, k);
        let cols = [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, c, s, 0.0],
            [0.0, -s, c, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        for j in 0..k {
            for i in 0..4 {
                basis[(i, j)] = cols[j][i];
            }
        }
        Mat::from_fn(4, 4, |i, j| {
            (0..k)
                .map(|l| lam[l] / (lam[l] + sigma * sigma) * basis[(i, l)] * basis[(j, l)])
                .sum()
        })
    };
    let zero = vec![0.0; 4];
    let lambdas = descending_eigenvalues(&cov).unwrap();
    for k in [2usize, 3] {
        let rk = RankK::optimal(&mean, &cov, k).unwrap();
        let w = rk.weight(sigma).unwrap();
        let w_alt = alt(k);
        let b_alt: Vec<f64> = (0..4)
            .map(|i| mean[i] - (0..4).map(|j| w_alt[(i, j)] * mean[j]).sum::<f64>())
            .collect();
        let mse = affine_mse(&mean, &cov, &w, &rk.bias(sigma).unwrap(), sigma).unwrap();
        let mse_alt = affine_mse(&mean, &cov, &w_alt, &b_alt, sigma).unwrap();
        let formula = rank_k::optimal_mse_of(&lambdas, sigma, k);
        let tol = 64.0 * 4.0 * f64::EPSILON * 20.0;
        assert!((mse - formula).abs() <= tol && (mse_alt - formula).abs() <= tol);
        let diff = max_abs_diff_mat(&w, &w_alt);
        if k == 3 {
            assert!(diff <= tol, "tie inside the cut: {diff}");
            assert!(rank_k::closed_form_equals_eckart_young(&cov, sigma, k)
                .unwrap()
                .check
                .passed());
        } else {
            assert!(
                diff > 0.1,
                "tie at the cut must leave the optimum non-unique: {diff}"
            );
            let e = rank_k::closed_form_equals_eckart_young(&cov, sigma, k).unwrap_err();
            assert!(e.to_string().contains("tie"), "{e}");
        }
    }
    let _ = zero;
}

/// K ≥ rank Σ: the rank-K optimum is the full optimal affine denoiser (rank-2 Σ in d = 5,
/// K = 2..5).
#[test]
fn k_at_least_rank_gives_the_full_optimal_affine_denoiser() {
    let mut rng = Rng::new(0xabc, 0);
    let f = Mat::from_fn(5, 2, |_, _| rng.normal());
    let cov = &f * f.transpose();
    let mean = rng.normals(5);
    for k in 2..=5 {
        for sigma in [0.05, 1.0, 10.0] {
            let check = rank_k::full_rank_limit(&mean, &cov, sigma, k).unwrap();
            assert!(check.passed(), "K={k} σ={sigma}: {check:?}");
            let ey = rank_k::closed_form_equals_eckart_young(&cov, sigma, k).unwrap();
            assert!(ey.check.passed(), "K={k} σ={sigma}: {ey:?}");
        }
    }
}

/// Sampling with the rank-K optimum (DDIM, VP cosine): the map is the closed-form one (derived
/// without the sampler), 10000 draws pass the χ²/Wishart test (α = 1e-6) with the dropped
/// directions exactly at μ, and the sampler's map converges to the exact-flow law N(μ, Σ_K)
/// within the proved first-order band for L = 10..640 (t_max = 1 − 1e-6). Planted variants
/// rejected: the swapped retention (map and draws), and the limit N(μ, Σ) with the dropped
/// directions kept.
#[test]
fn ddim_with_rank_k_optimum_generates_n_mu_sigma_k() {
    let mut rng = Rng::new(0x4a4d, 0);
    let f = Mat::from_fn(4, 4, |_, _| rng.normal());
    let cov = &f * f.transpose();
    let mean = rng.normals(4);
    let schedule = Schedule::vp_cosine(0.99, 25).unwrap();
    for k in 1..=3 {
        let map = lg::ddim_map_matches_closed_form(&schedule, &mean, &cov, k).unwrap();
        assert!(map.check.passed(), "K={k}: {map:?}");
        assert!(!map.planted.passed(), "K={k}: {map:?}");
        let mc = lg::sampled_moments_match_closed_form(&schedule, &mean, &cov, k, false, 10_000, 3)
            .unwrap();
        assert!(mc.check.passed(), "K={k}: {mc:?}");
        assert!(!mc.planted.passed(), "K={k}: {mc:?}");
        let mut cases = Vec::new();
        for steps in [10usize, 40, 160, 640] {
            let fine = Schedule::vp_cosine(1.0 - 1e-6, steps).unwrap();
            for c in lg::ddim_converges_to_exact_flow(
                &fine,
                &mean,
                &cov,
                k,
                PlantedLimit::KeepsDroppedDirections,
            )
            .unwrap()
            {
                assert!(c.check.passed(), "K={k} L={steps}: {c:?}");
                cases.push(c);
            }
        }
        assert!(power(&cases) > 1.0, "K={k}: N(μ, Σ) not rejected");
        // the exact-flow limit is Σ_K: its variances λ/(α_L²λ + σ_L²) are Σ_K's eigenvalues
        let end = Schedule::vp_cosine(1.0 - 1e-6, 10).unwrap();
        let law = lg::generated_law(&end, &mean, &cov, k, false).unwrap();
        let limit: Vec<f64> = law
            .eigenvalues
            .iter()
            .map(|&l| lg::flow::exact_flow_gain(&end, l).powi(2))
            .collect();
        let assembled = Mat::from_fn(4, 4, |a, b| {
            (0..4)
                .map(|i| law.basis[(a, i)] * limit[i] * law.basis[(b, i)])
                .sum()
        });
        let sigma_k = rank_k::truncated_covariance(&cov, k).unwrap();
        let err = max_abs_diff_mat(&assembled, &sigma_k);
        let lmax = descending_eigenvalues(&cov).unwrap()[0];
        assert!(err <= 1e-10 * lmax, "K={k}: {err}");
    }
}

/// Book eq.3.2.58: Σ = UUᵀ (U orthonormal d×P) has optimal denoiser UUᵀ/(1+t²).
#[test]
fn low_rank_gaussian_denoiser_is_uut_over_one_plus_t2() {
    let mut rng = Rng::new(0x358, 0);
    for (d, p) in [(2usize, 1usize), (5, 2), (10, 7)] {
        let u = Mat::from_fn(d, p, |_, _| rng.normal())
            .qr()
            .compute_thin_Q();
        for t in [0.01, 0.5, 3.0] {
            let check = rank_k::low_rank_gaussian_denoiser(&u, t).unwrap();
            assert!(check.passed(), "d={d} P={p} t={t}: {check:?}");
        }
    }
}

/// Book eq.3.2.60–3.2.67: the subspace denoiser's MSE formula equals the trace formula, and the
/// PCA basis beats 200 random orthonormal bases — learning it is PCA.
#[test]
fn learning_the_subspace_denoiser_is_pca() {
    let mut rng = Rng::new(0x367, 0);
    for (d, p) in [(3usize, 1usize), (6, 2), (8, 5)] {
        let f = Mat::from_fn(d, d, |_, _| rng.normal());
        let m = &f * f.transpose();
        for t in [0.1, 1.0] {
            let check = rank_k::subspace_learning_is_pca(&m, p, t, 200, &mut rng).unwrap();
            assert!(check.passed(), "d={d} P={p} t={t}: {check:?}");
        }
    }
}

/// Bad input is a typed error, never a panic.
#[test]
fn bad_input_is_a_typed_error() {
    let eye = Mat::from_fn(3, 3, |i, j| if i == j { 1.0 } else { 0.0 });
    assert!(RankK::optimal(&[0.0; 3], &eye, 0).is_err());
    assert!(RankK::optimal(&[0.0; 3], &eye, 4).is_err());
    assert!(RankK::optimal(&[0.0; 2], &eye, 1).is_err());
    let r = RankK::optimal(&[0.0; 3], &eye, 2).unwrap();
    assert!(r.denoise(&[0.0; 3], f64::NAN).is_err());
    assert!(r.denoise(&[0.0; 2], 1.0).is_err());
    assert!(rank_k::low_rank_gmm_softmax_form(&[], &[0.0], 1.0, false).is_err());
    assert!(affine_mse(&[0.0; 3], &eye, &eye, &[0.0; 2], 1.0).is_err());
}

/// Gradient descent on W = A·B (A d×K, B K×d) on the GPU from a random start converges to the
/// rank-K optimum of the same samples (compared as the product, not the factors): the distance
/// falls by orders of magnitude over the rounds and ends within the f32 floor plus the last
/// round's change. The trained bias is the optimum's `x̄ − W_K ȳ` (means from the same GPU
/// moments) to within what the product's distance allows: `|b − b*|_i ≤ max|AB − W_K|·Σ|ȳ_j|`
/// plus the f64 rounding `4(d+1)ε(|x̄_i| + Σ_j|W_K,ij ȳ_j|)` of forming either bias.
#[test]
fn gpu_gradient_descent_product_converges_to_rank_k_optimum() {
    let gpu = common::gpu();
    let mut rng = Rng::new(0x4a4e, 0);
    for &(d, k) in &[(5usize, 2usize), (6, 3)] {
        let target = diffusion_theorems::targets::random_gmm(&mut rng, d, 2).unwrap();
        let (case, trained) =
            rank_k::gpu_gd_converges_to_optimum(gpu, &target, 0.5, k, 1 << 13, 17).unwrap();
        assert!(
            case.check.passed(),
            "d={d} K={k}: {case:?} history {:?}",
            trained.history
        );
        assert!(
            !case.planted.passed(),
            "rank K+1 optimum not rejected: {case:?}"
        );
        let (xs, ys) = lg::noisy_pairs(&target, 0.5, 1 << 13, 17);
        let moments = diffusion_theorems::denoisers::gd::gpu_moments(gpu, &xs, &ys, true).unwrap();
        let (_, _, xbar, ybar) = moments.centred().unwrap();
        let product = &trained.left * &trained.right;
        let distance = max_abs_diff_mat(&product, &trained.optimum);
        let ybar_l1: f64 = ybar.iter().map(|v| v.abs()).sum();
        for (i, (&mean_x, &bias)) in xbar.iter().zip(&trained.bias).enumerate() {
            let w_y: Vec<f64> = (0..d).map(|j| trained.optimum[(i, j)] * ybar[j]).collect();
            let optimal_bias = mean_x - w_y.iter().sum::<f64>();
            let rounding = 4.0
                * (d + 1) as f64
                * f64::EPSILON
                * (mean_x.abs() + w_y.iter().map(|v| v.abs()).sum::<f64>());
            assert!(
                (bias - optimal_bias).abs() <= distance * ybar_l1 + rounding,
                "d={d} K={k} bias {i}: {bias} vs {optimal_bias}"
            );
        }
        let check = case.check;
        let start = trained.history[0].1;
        assert!(
            check.residual < 1e-3 * start,
            "history {:?}",
            trained.history
        );
        assert!(
            check.residual < 1e-3 * (1.0 + max_abs_diff_mat(&trained.optimum, &Mat::zeros(d, d))),
            "not converged: {:?}",
            trained.history
        );
    }
}

/// GD towards a rank-K optimum that is not unique is refused: with `C_yy = I` and `C_xy = I`
/// (d = 2) the whitened cross-moment has the tied singular values 1, 1, so no rank-1 optimum
/// exists to converge to and the error says so.
#[test]
fn gpu_gradient_descent_refuses_a_tied_rank_k_optimum() {
    let gpu = common::gpu();
    let identity_aug = Mat::from_fn(3, 3, |i, j| if i == j { 1.0 } else { 0.0 });
    let moments = diffusion_theorems::denoisers::gd::SampleMoments {
        second: identity_aug.clone(),
        cross: Mat::from_fn(2, 3, |i, j| if i == j { 1.0 } else { 0.0 }),
        second_bound: Mat::zeros(3, 3),
        cross_bound: Mat::zeros(2, 3),
        augmented: true,
        samples: 1,
    };
    match diffusion_theorems::denoisers::gd::train_rank_k_gd(gpu, &moments, 1, 10, 1, 3) {
        Err(e) => assert!(e.to_string().contains("not unique"), "{e}"),
        Ok(_) => panic!("a tied rank-1 optimum was not refused"),
    }
}

/// Reproducibility: every verify row of `rank_k` passes and reproduces its recorded numbers —
/// cases, power, and the geometric means over all cases of the tolerance and of the planted
/// variant's residual (`tests/common/pins/rank_k.json`). A changed allowance or negative control in any
/// case fails here until it is recorded on purpose (`PIN_UPDATE=1`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("rank_k");
}
