//! Shared proptest strategies and configuration for the theorem tests (named ranges, fixed seed).
#![allow(dead_code)]

use diffusion_theorems::denoisers::bottleneck::{Activation, Architecture, SigmaInput};
use diffusion_theorems::linalg::Mat;
use diffusion_theorems::targets::{gmm_from_draws, GaussianMixture};
use diffusion_theorems::theorems::point_near_component;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};

/// Dimensions of random targets (issue: d 1–16).
pub const DIMS: std::ops::RangeInclusive<usize> = 1..=16;
/// Mixture sizes (K 1–6).
pub const COMPONENTS: std::ops::RangeInclusive<usize> = 1..=6;
/// log10 σ (σ from 1e-2 to 10).
pub const LOG10_SIGMA: std::ops::Range<f64> = -2.0..1.0;
/// Means lie in this box.
pub const MEAN_RANGE: std::ops::Range<f64> = -3.0..3.0;
/// How far a query point lies from its mode, in units of (√λ_max + σ): near (0) to far (6).
pub const REACH: std::ops::Range<f64> = 0.0..6.0;

/// Fixed-seed configuration: `cases` by default, `PROPTEST_CASES` overrides; shrunk failures
/// are saved next to the test source (`tests/<file>.regressions`) and replayed forever — except
/// under `NO_REGRESSION_FILES=1` (the mutation runs, where a failure is the planted bug's and
/// must not be replayed against the next mutant).
pub fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let persist = std::env::var("NO_REGRESSION_FILES").map_or(true, |v| v != "1");
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x00D1_FF05),
        failure_persistence: persist
            .then(|| Box::new(FileFailurePersistence::WithSource("regressions")) as _),
        ..Config::default()
    }
}

/// One case of a noisy-density claim: a target, a noise level and a query point.
#[derive(Debug, Clone)]
pub struct Case {
    pub target: GaussianMixture,
    pub sigma: f64,
    pub y: Vec<f64>,
}

/// A random GMM with d in `dims`, K in `components`: weights ∝ [0.1, 1), means in [−3, 3]ᵈ,
/// covariances `F Fᵀ` with F the first r columns of a d×d matrix of entries in [−1, 1] and
/// r ∈ 0..=d (so point masses, singular and full covariances all occur).
pub fn gmm(
    dims: std::ops::RangeInclusive<usize>,
    components: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = GaussianMixture> {
    (dims, components).prop_flat_map(|(d, k)| {
        (
            proptest::collection::vec(0.1f64..1.0, k),
            proptest::collection::vec(proptest::collection::vec(MEAN_RANGE, d), k),
            proptest::collection::vec((0..=d, proptest::collection::vec(-1.0f64..1.0, d * d)), k),
        )
            .prop_map(move |(raw, means, factors)| {
                let factors: Vec<Mat> = factors
                    .iter()
                    .map(|(r, entries)| Mat::from_fn(d, *r, |i, j| entries[i * d + j]))
                    .collect();
                gmm_from_draws(&raw, &means, &factors).expect("valid by construction")
            })
    })
}

/// A case: a random GMM, σ log-uniform in [1e-2, 10], and y placed `reach·(√λ_max + σ)` from a
/// random component's mean in a random direction (near and far points).
pub fn case(
    dims: std::ops::RangeInclusive<usize>,
    components: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Case> {
    gmm(dims, components).prop_flat_map(|target| {
        let d = target.components()[0].mean.len();
        let k = target.components().len();
        (
            Just(target),
            LOG10_SIGMA,
            0..k,
            proptest::collection::vec(-1.0f64..1.0, d),
            REACH,
        )
            .prop_map(|(target, log_sigma, comp, dir, reach)| {
                let sigma = 10f64.powf(log_sigma);
                let y = point_near_component(&target.components()[comp], sigma, reach, &dir);
                Case { target, sigma, y }
            })
    })
}

/// The shared GPU context; a missing adapter fails the test with the one-line install hint.
pub fn gpu() -> &'static diffusion_theorems::gpu::Gpu {
    match diffusion_theorems::gpu::Gpu::shared() {
        Ok(g) => g,
        Err(e) => panic!("{e}"),
    }
}

/// Every case of a verify row passes and its planted variant is rejected (power > 1): what the
/// row tests assert of the cases a `Verdict` is collected from.
pub fn assert_controlled(cases: &[diffusion_theorems::theorems::Controlled]) {
    for c in cases {
        assert!(c.check.passed(), "{c:?}");
    }
    let power = diffusion_theorems::theorems::power(cases);
    assert!(power > 1.0, "planted variant not rejected: power {power}");
}

pub fn sigma_input(k: u8) -> SigmaInput {
    match k % 3 {
        0 => SigmaInput::None,
        1 => SigmaInput::Encoder,
        _ => SigmaInput::EncoderAndDecoder,
    }
}

pub fn activation(k: u8) -> Activation {
    match k % 4 {
        0 => Activation::Tanh,
        1 => Activation::LeakyRelu { slope: 0.2 },
        2 => Activation::Relu,
        _ => Activation::Identity,
    }
}

/// (n, h < n, encoder widths, decoder widths, hidden activation, σ input, seed).
pub fn arch_strategy(smooth: bool) -> impl Strategy<Value = (Architecture, u64)> {
    (2usize..=8).prop_flat_map(move |n| {
        (
            1..n,
            proptest::collection::vec(1usize..=24, 0..=4),
            proptest::collection::vec(1usize..=24, 0..=4),
            0u8..4,
            0u8..3,
            0u64..1_000_000,
        )
            .prop_map(move |(h, enc, dec, act, sig, seed)| {
                let hidden = if smooth {
                    Activation::Tanh
                } else {
                    activation(act)
                };
                (
                    Architecture {
                        dim: n,
                        encoder: enc,
                        bottleneck: h,
                        decoder: dec,
                        hidden,
                        code: if smooth { Activation::Tanh } else { hidden },
                        output: Activation::Identity,
                        sigma: sigma_input(sig),
                    },
                    seed,
                )
            })
    })
}

/// A random 1-D mixture with K components of positive variance (so every Gauss rule exists).
pub fn mixture_1d() -> impl Strategy<Value = GaussianMixture> {
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

/// A random covariance `F Fᵀ`, F d×r with entries in [−1, 1] (rank r ≤ d), and a mean.
pub fn covariance(d: usize, r: usize, entries: &[f64]) -> Mat {
    let f = Mat::from_fn(d, r, |i, j| entries[i * d + j]);
    &f * f.transpose()
}

pub fn cov_strategy() -> impl Strategy<Value = (Mat, Vec<f64>, usize)> {
    (1usize..=8).prop_flat_map(|d| {
        (
            0..=d,
            proptest::collection::vec(-1.0f64..1.0, d * d),
            proptest::collection::vec(-3.0f64..3.0, d),
            1..=d,
        )
            .prop_map(move |(r, e, mean, k)| (covariance(d, r, &e), mean, k))
    })
}
