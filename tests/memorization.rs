//! `memorization`: the optimal denoiser of a finite training set reproduces it (book §3.3).
//! See theorems/memorization.md.

mod common;

use common::config;
use diffusion_theorems::denoisers::linear::OptimalAffine;
use diffusion_theorems::diffusion::{Ddim, Sampler, Schedule};
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::targets::{empirical::empirical, Target};
use diffusion_theorems::theorems::memorization as mem;
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(128))]

    /// Eq. 3.3.3 written out (softmax of −‖y − x⁽ⁱ⁾‖²/2σ²) equals the Bayes posterior mean of the
    /// empirical law from the mixture engine, to rounding, for random training sets (N 2–40,
    /// d 1–8), σ from 0.03 to 10, and points near and far.
    #[test]
    fn softmax_average_equals_empirical_bayes_denoiser(
        n in 2usize..=40,
        d in 1usize..=8,
        seed in 0u64..10_000,
        log_sigma in -1.5f64..1.0,
        reach in 0.0f64..3.0,
    ) {
        let training = mem::training_set(n, d, seed);
        let y: Vec<f64> = Rng::new(seed, 7).normals(d).iter().map(|v| reach * v).collect();
        let check = mem::softmax_equals_bayes(&training, &y, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(check.passed(), "{check:?}");
    }
}

/// DDIM (VP cosine, 100 steps) with the empirical Bayes denoiser of 50 points in d = 8: every one
/// of 256 samples is memorized (max d₁/d₂ < 1/3, so MemRatio = 1); the same holds for 64 samples
/// with N = 2000.
#[test]
fn ddim_with_empirical_denoiser_reproduces_training_points() {
    for (n, samples) in [(50usize, 256usize), (2000, 64)] {
        let training = mem::training_set(n, 8, 1);
        let (ratio, worst) = mem::sampled_mem_ratio(&training, 100, samples, 3).unwrap();
        assert_eq!(ratio, 1.0, "N={n}");
        assert!(worst < 1.0 / 3.0, "N={n}: max d1/d2 = {worst}");
    }
}

/// The memorization ratio rises to 1 as the number of DDIM steps grows (the final noise level
/// σ₁ = sin(0.999π/2L)·… shrinks): 2, 5, 10, 20 steps give non-decreasing ratios ending at 1.
#[test]
fn memorization_ratio_rises_to_one_with_steps() {
    let training = mem::training_set(50, 8, 1);
    let ratios: Vec<f64> = [2usize, 5, 10, 20]
        .iter()
        .map(|&l| mem::sampled_mem_ratio(&training, l, 256, 3).unwrap().0)
        .collect();
    assert!(ratios.windows(2).all(|w| w[0] <= w[1]), "{ratios:?}");
    assert!(ratios[0] < 0.5 && ratios[3] == 1.0, "{ratios:?}");
}

/// Contrast: the optimal affine denoiser of the same 50 points (it sees only their mean and
/// covariance) generalizes — DDIM with it from the same noise memorizes under 10% of samples.
#[test]
fn affine_denoiser_of_the_same_data_does_not_memorize() {
    let training = mem::training_set(50, 8, 1);
    let rows: Vec<Vec<f64>> = (0..50)
        .map(|i| diffusion_theorems::linalg::row(&training, i))
        .collect();
    let law = empirical(&rows).unwrap();
    let affine = OptimalAffine::from_moments(&law.mean(), &law.covariance()).unwrap();
    let mut rng = Rng::new(3, 0);
    let noise = Mat::from_fn(256, 8, |_, _| rng.normal());
    let samples = Ddim {
        schedule: Schedule::vp_cosine(0.999, 100).unwrap(),
    }
    .sample(&affine, &noise)
    .unwrap();
    let (ratio, _) = mem::mem_ratio(&training, &samples).unwrap();
    assert!(ratio < 0.1, "affine MemRatio {ratio}");
}

/// The criterion of eq. 3.3.5 on hand-made points: training {0, 10} on a line; 1 is memorized
/// (1/9 < 1/3), 4 is not (4/6), and a training point itself is (ratio 0).
#[test]
fn mem_ratio_criterion_matches_eq_3_3_5() {
    let training = Mat::from_fn(2, 1, |i, _| 10.0 * i as f64);
    let samples = Mat::from_fn(3, 1, |i, _| [1.0, 4.0, 10.0][i]);
    let (ratio, worst) = mem::mem_ratio(&training, &samples).unwrap();
    assert!((ratio - 2.0 / 3.0).abs() < 1e-15, "{ratio}");
    assert!((worst - 4.0 / 6.0).abs() < 1e-15, "{worst}");
}

/// Bad input is a typed error: σ ≤ 0, NaN, wrong dimensions, fewer than two training points.
#[test]
fn bad_inputs_are_typed_errors() {
    let training = mem::training_set(5, 3, 0);
    assert!(mem::softmax_denoiser(&training, &[0.0; 3], 0.0).is_err());
    assert!(mem::softmax_denoiser(&training, &[0.0; 2], 1.0)
        .unwrap_err()
        .to_string()
        .contains("y"));
    assert!(mem::softmax_denoiser(&training, &[f64::NAN, 0.0, 0.0], 1.0)
        .unwrap_err()
        .to_string()
        .contains("NaN"));
    assert!(mem::mem_ratio(&Mat::zeros(1, 3), &Mat::zeros(2, 3)).is_err());
    assert!(mem::mem_ratio(&training, &Mat::zeros(2, 4)).is_err());
}
