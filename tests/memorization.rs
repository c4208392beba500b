//! `memorization`: the optimal denoiser of a finite training set reproduces it (book §3.3).
//! See theorems/memorization.md.

use crate::common;

use common::config;
use diffusion_theorems::denoisers::linear::OptimalAffine;
use diffusion_theorems::denoisers::Bayes;
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::rng::Rng;
use diffusion_theorems::targets::Target;
use diffusion_theorems::theorems::{self, memorization as mem};
use proptest::prelude::*;

proptest! {
    #![proptest_config(config(128))]

    /// Eq. 3.3.3 written out (softmax of −‖y − x⁽ⁱ⁾‖²/2σ², its own log-sum-exp) equals the Bayes
    /// posterior mean of the empirical law from the mixture engine, to rounding (derived bound
    /// `16(N+d)ε(1+Q)max|x|`), for random training sets (N 2–40, d 1–8), σ from 0.03 to 10, and
    /// points near and far.
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
        let c = mem::softmax_equals_bayes(&training, &y, 10f64.powf(log_sigma)).unwrap();
        prop_assert!(c.check.passed(), "{c:?}");
    }
}

/// Headline of eq. 3.3.3: on the verify row's cases (N = 50, d = 8, σ ∈ {0.05, 0.3, 1, 5}) the
/// check passes and the same check rejects the planted softmax with σ for σ² (power > 1).
#[test]
fn softmax_check_rejects_sigma_for_sigma_squared() {
    let training = mem::training_set(50, 8, 1);
    let mut rng = Rng::new(2, 0);
    let mut cases = Vec::new();
    for sigma in [0.05, 0.3, 1.0, 5.0] {
        for _ in 0..8 {
            let y: Vec<f64> = rng.normals(8).iter().map(|v| 1.5 * v).collect();
            cases.push(mem::softmax_equals_bayes(&training, &y, sigma).unwrap());
        }
    }
    assert!(cases.iter().all(|c| c.check.passed()), "{cases:?}");
    assert!(theorems::power(&cases) > 1.0, "{cases:?}");
}

/// Headline of the sampler claim, with evidence that can fail: DDIM (VP cosine, L = 100)
/// *stopped* at s = σ_m/α_m (the denoiser is the identity below, so the last step is no
/// denoiser call) has the law of the noisy training set `(1/N)Σ N(x⁽ⁱ⁾, s²I)`: the `d₁/d₂`
/// samples of 500 stopped DDIM runs and 2000 direct draws agree within the two-sample DKW
/// bound at α = 1e-6 over the 5 levels (derived), for the mixture engine's Bayes denoiser and
/// for eq. 3.3.3; the planted σ-for-σ² softmax is rejected. MemRatio(s) rises to 1 as s → 0
/// along with its prediction (observed 0.99, 0.80, 0.41, 0.11, 0.00 at s = 0.094 … 1.0).
#[test]
fn stopped_ddim_matches_the_noisy_training_law() {
    let training = mem::training_set(50, 8, 1);
    let bayes = Bayes::new(mem::empirical_law(&training).unwrap());
    let mut cases = Vec::new();
    let mut profile = Vec::new();
    for m in mem::STOP_STEPS {
        let p = mem::stopped_ddim_profile(&training, &bayes, &mem::stopped_run(m)).unwrap();
        assert!(p.check.passed(), "Bayes engine, m = {m}: {p:?}");
        profile.push(p);
        cases.push(mem::stopped_ddim_matches_noisy_law(&training, &mem::stopped_run(m)).unwrap());
    }
    assert!(cases.iter().all(|c| c.check.passed()), "{cases:?}");
    assert!(theorems::power(&cases) > 1.0, "{cases:?}");
    // MemRatio(s) falls as s grows, from ≈ 1 at the smallest stop level to ≈ 0 at s ≈ 1.
    assert!(profile
        .windows(2)
        .all(|w| w[0].ddim_mem_ratio >= w[1].ddim_mem_ratio));
    assert!(
        profile[0].ddim_mem_ratio > 0.95 && profile[4].ddim_mem_ratio < 0.05,
        "{profile:?}"
    );
}

/// Full DDIM (L = 100) with the empirical Bayes denoiser of 50 points in d = 8 (the mixture
/// engine): every one of 1000 samples is memorized (d₁/d₂ < 1/3 — by construction, see the
/// theorem file) AND the copied training points are uniform (Pearson χ² ≤ χ²₄₉(1 − 10⁻⁶),
/// derived), as the flow's pushforward of N(0, I) is the empirical law. The planted
/// σ-for-σ² softmax is rejected. With N = 2000 (64 samples, too few for χ²) MemRatio = 1 as
/// well.
#[test]
fn ddim_with_empirical_denoiser_reproduces_training_points() {
    let training = mem::training_set(50, 8, 1);
    let bayes = Bayes::new(mem::empirical_law(&training).unwrap());
    let samples = mem::ddim_samples(&bayes, 100, 1000, 3).unwrap();
    let check = mem::copies_uniform_check(&training, &samples, 1e-6).unwrap();
    assert!(check.passed(), "{check:?}");
    let c = mem::ddim_copies_are_uniform(&training, 100, 1000, 3, 1e-6).unwrap();
    assert!(c.check.passed() && !c.planted.passed(), "{c:?}");
    let (ratio, worst) =
        mem::sampled_mem_ratio(&mem::training_set(2000, 8, 1), 100, 64, 3).unwrap();
    assert_eq!(ratio, 1.0);
    assert!(worst < 1.0 / 3.0, "max d1/d2 = {worst}");
}

/// The memorization ratio rises to 1 as the number of DDIM steps grows (the final noise level
/// σ₁/α₁ = tan(0.999π/2L) shrinks): 2, 5, 10, 20 steps give non-decreasing ratios ending at 1.
/// The last step's denoiser call decides this (by construction, not a route).
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

/// Contrast, with its positive control in the same machinery: the optimal affine denoiser of
/// the same 50 points (it sees only their mean and covariance) generalizes — DDIM with it from
/// the same noise memorizes under 10% of 256 samples — while the empirical Bayes denoiser, run
/// through the same `ddim_samples` + `mem_ratio`, memorizes all of them.
#[test]
fn affine_denoiser_of_the_same_data_does_not_memorize() {
    let training = mem::training_set(50, 8, 1);
    let law = mem::empirical_law(&training).unwrap();
    let affine = OptimalAffine::from_moments(&law.mean(), &law.covariance()).unwrap();
    let bayes = Bayes::new(law);
    let ratio = |d: &dyn diffusion_theorems::denoisers::Denoiser| {
        mem::mem_ratio(&training, &mem::ddim_samples(d, 100, 256, 3).unwrap())
            .unwrap()
            .0
    };
    assert_eq!(ratio(&bayes), 1.0, "control: the empirical Bayes denoiser");
    let affine_ratio = ratio(&affine);
    assert!(affine_ratio < 0.1, "affine MemRatio {affine_ratio}");
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
    assert!(mem::SoftmaxDenoiser::new(Mat::zeros(0, 3), mem::LogitScale::TwiceVariance).is_err());
    let bayes = Bayes::new(mem::empirical_law(&training).unwrap());
    assert!(mem::stopped_ddim(&bayes, 10, 10, 4, 0).is_err());
    assert!(mem::stopped_ddim(&bayes, 10, 0, 4, 0).is_err());
}

/// Reproducibility: every verify row of `memorization` passes and reproduces its recorded numbers —
/// cases, power, and the geometric means over all cases of the tolerance and of the planted
/// variant's residual (`tests/common/pins/memorization.json`). A changed allowance or negative control in any
/// case fails here until it is recorded on purpose (`PIN_UPDATE=1`).
#[test]
fn verify_rows_reproduce_their_pinned_numbers() {
    common::assert_rows_reproduce_pins("memorization");
}
