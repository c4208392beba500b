//! `shuffled_pixels`: a fixed pixel permutation leaves the error of the optimal (empirical
//! Bayes) and of the optimal affine denoiser unchanged, and changes that of a local-window
//! linear denoiser (Kadkhodaie et al. §3, "Shuffled images"). See theorems/shuffled_pixels.md.

use crate::common;

use common::assert_controlled;
use diffusion_theorems::denoisers::linear::{affine_mse_with_magnitude, OptimalAffine};
use diffusion_theorems::denoisers::local::LocalWindow;
use diffusion_theorems::error::Error;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::stats::two_sided_z;
use diffusion_theorems::targets::Target;
use diffusion_theorems::theorems::shuffled_pixels::{
    self as sp, Family, Permutation, ShuffledPair,
};
use diffusion_theorems::theorems::{self, Depth};

/// The verify row [`sp::EMPIRICAL_INVARIANT`]: the empirical Bayes denoiser's MSE on the
/// permuted data set equals the original's within the derived bound; the same equality for the
/// local denoiser is rejected.
#[test]
fn empirical_row_passes_and_rejects_local_invariance() {
    let cases = sp::empirical_cases(Depth::Default).unwrap();
    assert_controlled(&cases);
    for c in &cases {
        assert!(!c.planted.passed(), "{c:?}");
    }
}

/// The verify row [`sp::AFFINE_INVARIANT`]: the optimal affine MSE from the permuted set's
/// moments equals the original's within the derived bound; the local closed form's equality is
/// rejected in every case.
#[test]
fn affine_row_passes_and_rejects_local_invariance() {
    let cases = sp::affine_cases(Depth::Default).unwrap();
    assert_controlled(&cases);
    for c in &cases {
        assert!(!c.planted.passed(), "{c:?}");
    }
}

/// The verify row [`sp::LOCAL_CHANGES`]: the local denoiser's closed form agrees with its Monte
/// Carlo on both sets, and its invariance is rejected at the same z.
#[test]
fn local_row_passes_and_rejects_invariance() {
    assert_controlled(&sp::local_cases(Depth::Default).unwrap());
}

/// The figures of theorems/shuffled_pixels.md: for each family and σ, the MSE (per image, all
/// 64 pixels) of the empirical optimal, optimal affine and local denoisers, unshuffled and
/// shuffled; the local MSE rises on shuffled images and stays between the affine MSE and the
/// identity's dσ² ... and the total variance (the local denoiser can do no worse than its
/// best constant, nor better than the global affine one).
#[test]
fn figures_local_rises_between_affine_and_variance() {
    println!("family | σ | empirical f* (orig, shuffled) | affine (orig, shuffled) | local 3×3 (orig, shuffled)");
    for family in sp::FAMILIES {
        let pair = ShuffledPair::of_family(family, 0x5_4FF1_ED00).unwrap();
        let variance: f64 = {
            let c = pair.original_law.covariance();
            (0..c.nrows()).map(|i| c[(i, i)]).sum()
        };
        for sigma in [0.05, 0.1, 0.2, 0.4, 0.8] {
            let e = sp::empirical_case(&pair, sigma, 2, 7).unwrap();
            let a = sp::affine_case(&pair, sigma).unwrap();
            println!(
                "{family:?} | {sigma} | {:.4}, {:.4} | {:.4}, {:.4} | {:.4}, {:.4}",
                e.original,
                e.shuffled,
                a.affine_original,
                a.affine_shuffled,
                a.local_original,
                a.local_shuffled
            );
            assert!(
                a.local_shuffled > a.local_original,
                "{family:?} σ {sigma}: {a:?}"
            );
            for local in [a.local_original, a.local_shuffled] {
                assert!(local >= a.affine_original * (1.0 - 1e-9), "{a:?}");
                assert!(local <= variance * (1.0 + 1e-9), "{a:?}");
            }
        }
    }
}

/// Two routes to the local denoiser's MSE agree: the Schur complements `Σ_pp − v_pᵀΣ_Np` (valid
/// only at the optimum of each window) and `affine_mse` of the assembled map (any map), within
/// `γ`-bounds of their magnitudes (calibrated factor 10⁻¹⁰ relative: d = 64 solves of 9×9
/// systems); and perturbing one window weight raises the affine MSE (the weights are optimal).
#[test]
fn local_schur_complement_equals_the_affine_mse_of_the_map() {
    let pair = ShuffledPair::of_family(Family::Disks, 11).unwrap();
    let (mean, cov) = (pair.original_law.mean(), pair.original_law.covariance());
    let lw = LocalWindow::new(sp::SIDE, 3, &mean, &cov).unwrap();
    for sigma in [0.05, 0.3, 1.0] {
        let f = lw.at(sigma).unwrap();
        let (mse, _) = affine_mse_with_magnitude(&mean, &cov, f.weight(), f.bias(), sigma).unwrap();
        let schur = lw.schur_mse(sigma).unwrap();
        assert!(
            (mse - schur).abs() <= 1e-10 * mse,
            "σ {sigma}: {mse} vs {schur}"
        );
        let mut w = f.weight().clone();
        let q = lw.neighbourhood(20)[1];
        w[(20, q)] += 1e-3;
        let b = diffusion_theorems::denoisers::linear::centring_bias(&w, &mean);
        let worse = affine_mse_with_magnitude(&mean, &cov, &w, &b, sigma)
            .unwrap()
            .0;
        assert!(worse > mse, "σ {sigma}");
    }
}

/// The window w = side covers the whole image: the local denoiser is then the global optimal
/// affine one, and its MSE is invariant (a positive control of the local machinery: with nothing
/// local left, the permutation changes nothing).
#[test]
fn a_window_covering_the_image_is_the_affine_denoiser_and_invariant() {
    let pair = ShuffledPair::of_family(Family::CAlpha(2.0), 5).unwrap();
    for sigma in [0.1, 0.5] {
        let mut mses = vec![];
        for law in [&pair.original_law, &pair.shuffled_law] {
            let (mean, cov) = (law.mean(), law.covariance());
            let whole = LocalWindow::new(sp::SIDE, 2 * sp::SIDE - 1, &mean, &cov).unwrap();
            let f = whole.at(sigma).unwrap();
            let g = OptimalAffine::from_moments(&mean, &cov)
                .unwrap()
                .at(sigma)
                .unwrap();
            let gap = diffusion_theorems::linalg::max_abs_diff_mat(f.weight(), g.weight());
            assert!(gap < 1e-8, "σ {sigma}: {gap}");
            mses.push(whole.schur_mse(sigma).unwrap());
        }
        assert!((mses[0] - mses[1]).abs() < 1e-10 * mses[0], "{mses:?}");
    }
}

/// Equivariance itself, pointwise: `f*_{P·data}(Py) = P f*_data(y)` for the empirical Bayes
/// denoiser (within 10⁻¹², calibrated far above the derived per-sample bound of
/// `empirical_case`), and not for the local denoiser.
#[test]
fn empirical_denoiser_is_permutation_equivariant_pointwise() {
    use diffusion_theorems::denoisers::{Bayes, Denoiser};
    let pair = ShuffledPair::of_family(Family::Disks, 3).unwrap();
    let a = Bayes::new(pair.original_law.clone());
    let b = Bayes::new(pair.shuffled_law.clone());
    let (la, lb) = pair.local_denoisers(3).unwrap();
    let (la, lb) = (la.at(0.2).unwrap(), lb.at(0.2).unwrap());
    let mut rng = Rng::new(9, 0);
    let mut local_gap: f64 = 0.0;
    for k in 0..10 {
        let y: Vec<f64> = pair.original[k]
            .iter()
            .map(|v| v + 0.2 * rng.normal())
            .collect();
        let py = pair.permutation.apply(&y).unwrap();
        let lhs = b.denoise(&py, 0.2).unwrap();
        let rhs = pair
            .permutation
            .apply(&a.denoise(&y, 0.2).unwrap())
            .unwrap();
        assert!(diffusion_theorems::linalg::max_abs_diff(&lhs, &rhs) < 1e-12);
        let l_lhs = lb.denoise(&py, 0.2).unwrap();
        let l_rhs = pair
            .permutation
            .apply(&la.denoise(&y, 0.2).unwrap())
            .unwrap();
        local_gap = local_gap.max(diffusion_theorems::linalg::max_abs_diff(&l_lhs, &l_rhs));
    }
    assert!(local_gap > 1e-2, "{local_gap}");
}

/// Every row passes and keeps its power at quick depth (every second σ, a quarter of the noise
/// draws), with 6, 6 and 12 cases.
#[test]
fn rows_pass_with_power_at_quick_depth() {
    rows_pass_with_power_at(Depth::Quick, [6, 6, 12]);
}

/// The same at thorough depth (four seeds of images and permutations, four times the draws:
/// 40, 40 and 80 cases), `#[ignore]`d because it takes about 16 times the default rows
/// (`cargo test --release --test proof_check shuffled_pixels::thorough -- --ignored`); `verify
/// --thorough` runs the same rows.
#[test]
#[ignore = "thorough depth, about 16× the default rows; verify --thorough runs them"]
fn rows_pass_with_power_at_thorough_depth() {
    rows_pass_with_power_at(Depth::Thorough, [40, 40, 80]);
}

fn rows_pass_with_power_at(depth: Depth, sizes: [usize; 3]) {
    let rows = [
        sp::empirical_cases(depth).unwrap(),
        sp::affine_cases(depth).unwrap(),
        sp::local_cases(depth).unwrap(),
    ];
    for (cases, size) in rows.iter().zip(sizes) {
        assert_eq!(cases.len(), size, "{depth:?}");
        assert!(cases.iter().all(|c| c.check.passed()), "{depth:?}");
        assert!(theorems::power(cases) > 1.0, "{depth:?}");
    }
}

/// The local row's checks by hand on one case: tolerance `z·SE` of the Monte Carlo side, the
/// planted check the shuffled Monte Carlo against the unshuffled closed form; z for the row's
/// α = 10⁻⁶ split over its 20 default checks is 5.4513 (scipy `norm.isf(1e-6/40)`).
#[test]
fn local_checks_by_hand() {
    let pair = ShuffledPair::of_family(Family::Disks, 2).unwrap();
    let case = sp::local_case(&pair, 0.2, 4, 1).unwrap();
    let z = two_sided_z(sp::LOCAL_ALPHA / 20.0);
    assert!((z - 5.451_310_437_8).abs() < 1e-6, "{z}");
    let [a, b] = sp::local_checks(&case, z);
    assert_eq!(
        a.check.residual,
        (case.closed_original - case.mc_original.0).abs()
    );
    assert_eq!(a.check.tolerance, z * case.mc_original.1);
    assert_eq!(b.check.tolerance, z * case.mc_shuffled.1);
    assert_eq!(
        a.planted.residual,
        (case.mc_shuffled.0 - case.closed_original).abs()
    );
    assert_eq!(a.planted, b.planted);
}

/// Bad input is a typed error naming the value: σ ≤ 0; an even or zero window; a permutation of
/// the wrong length; a mean or covariance of the wrong size; too few noise draws.
#[test]
fn bad_input_is_a_typed_error() {
    let pair = ShuffledPair::of_family(Family::Disks, 1).unwrap();
    assert!(matches!(
        sp::affine_case(&pair, 0.0).unwrap_err(),
        Error::InvalidSigma(_)
    ));
    let draws = sp::local_case(&pair, 0.1, 1, 0).unwrap_err();
    assert!(draws.to_string().contains("got 1"), "{draws}");
    assert!(sp::empirical_case(&pair, 0.1, 0, 0).is_err());
    let even = LocalWindow::new(8, 2, &[0.0; 64], &Mat::identity(64, 64)).unwrap_err();
    assert!(even.to_string().contains("window 2"), "{even}");
    let short = LocalWindow::new(8, 3, &[0.0; 10], &Mat::identity(64, 64)).unwrap_err();
    assert!(short.to_string().contains("10"), "{short}");
    let p = Permutation::random(10, &mut Rng::new(0, 0));
    let wrong = ShuffledPair::new(8, pair.original.clone(), p).unwrap_err();
    assert!(wrong.to_string().contains("expected 10"), "{wrong}");
    assert!(matches!(
        Permutation::new(vec![1, 5]).unwrap_err(),
        Error::InvalidArgument { .. }
    ));
}

/// Reproducibility: every verify row of `shuffled_pixels` passes and reproduces its recorded
/// numbers (`tests/common/pins/shuffled_pixels.json`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("shuffled_pixels");
}
