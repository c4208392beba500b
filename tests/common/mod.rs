//! Shared proptest strategies and configuration for the theorem tests (named ranges, fixed seed).
#![allow(dead_code)]

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
