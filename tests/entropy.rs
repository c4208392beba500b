//! `entropy`: `d/dt h(x_t) = d/t − mmse(t)/t³ > 0` along `x_t = x + t·g` (book Thm 3.1,
//! eq. 3.2.2, with de Bruijn's identity in I-MMSE form) and `h(E[x_s|x_t]) < h(x_t)` for
//! Gaussians (book Thm 3.3, eq. 3.2.48). See theorems/entropy.md.

use crate::common;

use common::assert_controlled;
use diffusion_theorems::error::Error;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::stats::two_sided_z;
use diffusion_theorems::targets::Target;
use diffusion_theorems::theorems::entropy as en;
use diffusion_theorems::theorems::{self, Depth};

/// The verify row [`en::DE_BRUIJN_GAUSSIAN`]: the Cholesky entropy difference equals the
/// integrated I-MMSE rate; `d/(2t)` rejected in every case.
#[test]
fn de_bruijn_row_passes_and_rejects_half_the_noise_term() {
    let cases = en::de_bruijn_cases(Depth::Default).unwrap();
    assert_controlled(&cases);
    assert!(cases.iter().all(|c| !c.planted.passed()));
}

/// The verify row [`en::FISHER_IMMSE`]: score route = posterior route within z·SE on GMMs, the
/// rate positive; `mmse/t²` rejected.
#[test]
fn fisher_row_passes_and_rejects_the_wrong_power() {
    assert_controlled(&en::fisher_cases(Depth::Default).unwrap());
}

/// The verify row [`en::DENOISED_ENTROPY`]: Thm 3.3 for Gaussians; the swapped step rejected in
/// every case, and the entropy change is negative in every case (asserted inside the check).
#[test]
fn denoised_entropy_row_passes_and_rejects_the_swapped_step() {
    let cases = en::denoised_cases(Depth::Default).unwrap();
    assert_controlled(&cases);
    assert!(cases.iter().all(|c| !c.planted.passed()));
    for g in en::gaussians(Depth::Default).unwrap() {
        let (_, value) = en::denoised_entropy(&g, 0.5, 2.0).unwrap();
        assert!(value < 0.0, "{value}");
    }
}

/// Book eq. 3.2.6 by hand against the I-MMSE rate: for `Σ = diag(λ)`,
/// `t·Σ 1/(λ_i + t²) = d/t − mmse(t)/t³` with `mmse = Σ λ_i t²/(λ_i + t²)` (the crate's
/// `affine_mse`), within 10⁻¹³ relative; and `d/(2t)` differs.
#[test]
fn book_eq_3_2_6_equals_the_immse_rate() {
    let lambdas = [0.0, 0.3, 2.0, 9.0];
    let cov = Mat::from_fn(4, 4, |i, j| if i == j { lambdas[i] } else { 0.0 });
    for t in [0.1, 1.0, 4.0] {
        let book: f64 = lambdas.iter().map(|l| t / (l + t * t)).sum();
        let (mmse, _) = en::gaussian_mmse(&[0.0; 4], &cov, t).unwrap();
        let immse = 4.0 / t - mmse / t.powi(3);
        assert!(
            (book - immse).abs() < 1e-13 * book,
            "t {t}: {book} vs {immse}"
        );
        assert!((book - (2.0 / t - mmse / t.powi(3))).abs() > 1e-3);
        assert!(book > 0.0);
    }
}

/// The Gaussian entropy by hand: `h(N(0, λ + t²))` in 1-D is `½ ln(2πe(λ + t²))`.
#[test]
fn gaussian_entropy_by_hand() {
    let cov = Mat::from_fn(1, 1, |_, _| 3.0);
    let h = en::gaussian_entropy(&cov, 1.0).unwrap();
    let want = 0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E * 4.0).ln();
    assert!((h - want).abs() < 1e-14, "{h} vs {want}");
}

/// The figures of theorems/entropy.md: for one mixture per d, the Monte Carlo rate `d/dt h`
/// by the score and by the posterior, at t = 0.5 and 2 (4000 draws).
#[test]
fn figures_entropy_rate_of_mixtures() {
    let targets = theorems::targets_at(Depth::Default, 0xE_7A0F).unwrap();
    println!("d | K | t | t·E‖s‖² ± SE | d/t − E tr Cov/t³");
    for target in targets.iter().skip(1).step_by(3) {
        for t in [0.5, 2.0] {
            let mc = en::fisher_case(target, t, 4000, 5).unwrap();
            let immse = mc.rate.0 - mc.difference.0;
            println!(
                "{} | {} | {t} | {:.4} ± {:.4} | {:.4}",
                target.dim(),
                target.components().len(),
                mc.rate.0,
                mc.rate.1,
                immse
            );
            assert!(mc.rate.0 > 0.0);
        }
    }
}

/// Every row passes and keeps its power at quick and thorough depth (quick: 6, 2, 6, 4, 4
/// cases; thorough: 48, 32, 48, 24, 24).
#[test]
fn rows_pass_with_power_at_every_depth() {
    for (depth, sizes) in [
        (Depth::Quick, [6, 2, 6, 4, 4]),
        (Depth::Thorough, [48, 32, 48, 24, 24]),
    ] {
        let rows = [
            en::de_bruijn_cases(depth).unwrap(),
            en::fisher_cases(depth).unwrap(),
            en::denoised_cases(depth).unwrap(),
            en::mixture_de_bruijn_cases(depth).unwrap(),
            en::mixture_denoised_cases(depth).unwrap(),
        ];
        for (cases, size) in rows.iter().zip(sizes) {
            assert_eq!(cases.len(), size, "{depth:?}");
            assert!(cases.iter().all(|c| c.check.passed()), "{depth:?}");
            println!(
                "{depth:?}: {} cases, power {:.3}",
                cases.len(),
                theorems::power(cases)
            );
            assert!(theorems::power(cases) > 1.0, "{depth:?}");
        }
    }
}

/// The Fisher row's check by hand: tolerance z·SE of the paired difference, planted at the same
/// z; a non-positive rate fails the case.
#[test]
fn fisher_check_by_hand() {
    let mc = en::FisherMc {
        difference: (0.1, 0.05),
        planted: (3.0, 0.1),
        rate: (2.0, 0.1),
    };
    let z = two_sided_z(1e-6);
    let c = en::fisher_check(&mc, z);
    assert_eq!(c.check.tolerance, z * 0.05);
    assert_eq!(c.planted.residual, 3.0);
    let negative = en::FisherMc {
        rate: (-0.1, 0.1),
        ..mc
    };
    assert!(!en::fisher_check(&negative, z).check.passed());
}

/// Bad input is a typed error naming the value.
#[test]
fn bad_input_is_a_typed_error() {
    let g = &en::gaussians(Depth::Quick).unwrap()[0];
    let order = en::gaussian_de_bruijn(g, 2.0, 1.0).unwrap_err();
    assert!(order.to_string().contains("(2, 1)"), "{order}");
    assert!(matches!(
        en::denoised_entropy(g, 0.0, 1.0).unwrap_err(),
        Error::InvalidSigma(_)
    ));
    assert!(en::denoised_entropy(g, 1.0, 1.0).is_err());
    let draws = en::fisher_case(g, 1.0, 1, 0).unwrap_err();
    assert!(draws.to_string().contains("got 1"), "{draws}");
    let asym = Mat::from_fn(2, 2, |i, j| if i < j { 1.0 } else { 0.0 });
    assert!(en::gaussian_entropy(&asym, 1.0).is_err());
}

/// Reproducibility: every verify row of `entropy` passes and reproduces its recorded numbers
/// (`tests/common/pins/entropy.json`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("entropy");
}

/// The verify row [`en::DE_BRUIJN_MIXTURE`]: on GMMs (d = 1, 2, 4) the Monte Carlo entropy
/// difference equals the integrated I-MMSE rate within z·SE + the quadrature allowance, and is
/// positive; `mmse/t²` rejected.
#[test]
fn mixture_de_bruijn_row_passes_and_rejects_the_wrong_power() {
    assert_controlled(&en::mixture_de_bruijn_cases(Depth::Default).unwrap());
}

/// The verify row [`en::DENOISED_ENTROPY_MIXTURE`]: Thm 3.3 for 1-D GMMs, `E log m'` (Monte
/// Carlo, posterior variance) = the entropy of the density of `m(Y)` minus that of `Y` (grid),
/// negative in every case (asserted inside the check and here); the swapped step rejected.
#[test]
fn mixture_denoised_entropy_row_passes_and_rejects_the_swapped_step() {
    assert_controlled(&en::mixture_denoised_cases(Depth::Default).unwrap());
    for target in en::denoising_mixtures(Depth::Default).unwrap() {
        for (s, t) in en::DENOISING_PAIRS {
            let b = en::denoised_entropy_grid(&target, s, t, en::GRID_POINTS, en::GRID_STEP * s)
                .unwrap();
            assert!(b < 0.0, "({s}, {t}): {b}");
        }
    }
}

/// The calibration of [`en::IMMSE_QUADRATURE_ALLOWANCE`] (held-out mixtures: seeds not used by
/// the row, d ∈ {1, 2, 4}, the row's pairs, 2000 draws shared by every node): the allowance is
/// at least 10× the largest difference between the [`en::IMMSE_NODES`]-node rule (8) and the
/// 4×-node rule.
#[test]
fn immse_quadrature_allowance_is_calibrated() {
    let mut rng = diffusion_theorems::rng::Rng::new(0xCA11B, 0);
    let mut worst: f64 = 0.0;
    for _ in 0..2 {
        for d in [1usize, 2, 4] {
            let target = diffusion_theorems::targets::random_gmm(&mut rng, d, 3).unwrap();
            for pair in en::MIXTURE_PAIRS {
                let q = |nodes| {
                    en::immse_integral(&target, pair, nodes, 2000, 7, true)
                        .unwrap()
                        .value
                        .0
                };
                let diff = (q(en::IMMSE_NODES) - q(4 * en::IMMSE_NODES)).abs();
                println!("d {d} pair {pair:?}: |Q_n − Q_4n| = {diff:.3e}");
                worst = worst.max(diff);
            }
        }
    }
    println!(
        "largest {worst:.3e}, allowance {}",
        en::IMMSE_QUADRATURE_ALLOWANCE
    );
    assert!(10.0 * worst <= en::IMMSE_QUADRATURE_ALLOWANCE, "{worst}");
}

/// The calibration of [`en::GRID_ALLOWANCE`] (held-out 1-D mixtures, K ∈ {2, 3, 5}, two seeds,
/// the row's pairs): the allowance is at least 10× the largest difference between side (b) at
/// the row's grid and step and at 4× the points and a 4× smaller step.
#[test]
fn grid_allowance_is_calibrated() {
    let mut rng = diffusion_theorems::rng::Rng::new(0xCA11B, 1);
    let mut worst: f64 = 0.0;
    for _ in 0..2 {
        for k in [2usize, 3, 5] {
            let target = diffusion_theorems::targets::random_gmm(&mut rng, 1, k).unwrap();
            for (s, t) in en::DENOISING_PAIRS {
                let b =
                    |points, step| en::denoised_entropy_grid(&target, s, t, points, step).unwrap();
                let coarse = b(en::GRID_POINTS, en::GRID_STEP * s);
                let fine = b(4 * en::GRID_POINTS, en::GRID_STEP * s / 4.0);
                let diff = (coarse - fine).abs();
                println!("K {k} (s, t) ({s}, {t}): {coarse:.10} vs {fine:.10}: {diff:.3e}");
                worst = worst.max(diff);
            }
        }
    }
    println!("largest {worst:.3e}, allowance {}", en::GRID_ALLOWANCE);
    assert!(10.0 * worst <= en::GRID_ALLOWANCE, "{worst}");
}

/// The figures of theorems/entropy.md for the mixture rows (their default cases): the entropy
/// difference by Monte Carlo of `−E log p_t` and by the integrated I-MMSE rate; and Thm 3.3's
/// `h(E[x_s|x_t]) − h(x_t)` by `E log m'` and by the density of `m(Y)`. Every entropy
/// difference is positive and every denoised change negative.
#[test]
fn figures_entropy_of_mixtures() {
    let (na, nb) = en::mixture_de_bruijn_draws(Depth::Default);
    println!("d | K | (t1, t2) | MC h(t2) − h(t1) ± SE | ∫ I-MMSE rate ± SE | planted (mmse/t²)");
    for (k, target) in en::de_bruijn_mixtures(Depth::Default)
        .unwrap()
        .iter()
        .enumerate()
    {
        for (j, &(t1, t2)) in en::MIXTURE_PAIRS.iter().enumerate() {
            let seed = 0xE_7A0F + 0x100 + (2 * k + j) as u64;
            let a = en::entropy_difference_mc(target, t1, t2, na, seed).unwrap();
            let b = en::immse_integral(target, (t1, t2), en::IMMSE_NODES, nb, seed, false).unwrap();
            println!(
                "{} | {} | ({t1}, {t2}) | {:.4} ± {:.4} | {:.4} ± {:.4} | {:.4}",
                target.dim(),
                target.components().len(),
                a.0,
                a.1,
                b.value.0,
                b.value.1,
                b.planted.0
            );
            assert!(a.0 > 0.0);
        }
    }
    let n = en::mixture_denoised_draws(Depth::Default);
    println!("K | (s, t) | E log m' ± SE | grid h(m(Y)) − h(Y) | planted (swapped)");
    for (k, target) in en::denoising_mixtures(Depth::Default)
        .unwrap()
        .iter()
        .enumerate()
    {
        for (j, &(s, t)) in en::DENOISING_PAIRS.iter().enumerate() {
            let seed = 0xE_7A0F + 0x200 + (2 * k + j) as u64;
            let a = en::log_slope_mc(target, s, t, n, seed).unwrap();
            let b = en::denoised_entropy_grid(target, s, t, en::GRID_POINTS, en::GRID_STEP * s)
                .unwrap();
            println!(
                "{} | ({s}, {t}) | {:.4} ± {:.4} | {:.4} | {:.4}",
                target.components().len(),
                a.value.0,
                a.value.1,
                b,
                a.planted.0
            );
            assert!(b < 0.0);
        }
    }
}

/// The mixture de Bruijn check by hand: tolerance `z·√(SE_A² + SE_B²)` + the quadrature
/// allowance, planted at the same z; a non-positive entropy difference fails the case.
#[test]
fn mixture_de_bruijn_check_by_hand() {
    let b = en::ImmseIntegral {
        value: (1.0, 0.03),
        planted: (2.0, 0.05),
    };
    let z = two_sided_z(1e-6);
    let c = en::mixture_de_bruijn_check((1.01, 0.04), &b, z);
    assert!((c.check.tolerance - (z * 0.05 + en::IMMSE_QUADRATURE_ALLOWANCE)).abs() < 1e-15);
    assert!(c.check.passed());
    assert!((c.planted.residual - 0.99).abs() < 1e-15);
    assert!(!c.planted.passed());
    assert!(!en::mixture_de_bruijn_check((-0.01, 0.04), &b, z)
        .check
        .passed());
}

/// Bad input to the mixture routes is a typed error naming the value: t1 ≥ t2 and s ≥ t
/// (named), t = 0 and NaN (`InvalidSigma`), one draw, a 2-D target for Thm 3.3 in 1-D, a grid
/// of 2 points, a zero difference step; nothing panics.
#[test]
fn mixture_routes_reject_bad_input() {
    let two_d = &en::de_bruijn_mixtures(Depth::Default).unwrap()[1];
    let one_d = &en::denoising_mixtures(Depth::Quick).unwrap()[0];
    let order = en::entropy_difference_mc(two_d, 0.8, 0.2, 10, 0).unwrap_err();
    assert!(order.to_string().contains("(0.8, 0.2)"), "{order}");
    assert!(matches!(
        en::immse_integral(two_d, (0.0, 1.0), 4, 10, 0, false).unwrap_err(),
        Error::InvalidSigma(_)
    ));
    assert!(matches!(
        en::entropy_difference_mc(two_d, f64::NAN, 1.0, 10, 0).unwrap_err(),
        Error::InvalidSigma(_)
    ));
    let draws = en::immse_integral(two_d, (0.2, 0.8), 4, 1, 0, false).unwrap_err();
    assert!(draws.to_string().contains("got 1"), "{draws}");
    let nodes = en::immse_integral(two_d, (0.2, 0.8), 0, 10, 0, false).unwrap_err();
    assert!(nodes.to_string().contains("got 0"), "{nodes}");
    let st = en::log_slope_mc(one_d, 1.0, 1.0, 10, 0).unwrap_err();
    assert!(st.to_string().contains("(1, 1)"), "{st}");
    let dim = en::log_slope_mc(two_d, 0.5, 1.0, 10, 0).unwrap_err();
    assert!(
        matches!(dim, Error::DimensionMismatch { got: 2, .. }),
        "{dim}"
    );
    assert!(en::denoised_entropy_grid(two_d, 0.5, 1.0, 64, 1e-4).is_err());
    let grid = en::denoised_entropy_grid(one_d, 0.5, 1.0, 2, 1e-4).unwrap_err();
    assert!(grid.to_string().contains("got 2"), "{grid}");
    let step = en::denoised_entropy_grid(one_d, 0.5, 1.0, 64, 0.0).unwrap_err();
    assert!(step.to_string().contains("got 0"), "{step}");
    assert!(en::mixture_denoised_entropy(one_d, (2.0, 0.5), 10, 5.0, 0).is_err());
}
