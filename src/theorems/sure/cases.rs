//! The default cases and claims of the `verify` rows.

use super::affine::affine_gaussian;
use super::monte_carlo::{default_denoisers, sure_monte_carlo};
use super::optimality::optimality_gaussian;
use super::threshold::choose_soft_threshold;
use super::THEOREM;
use crate::denoisers::Affine;
use crate::error::Result;
use crate::gpu::denoiser_jvp::JvpDenoiser;
use crate::gpu::Gpu;
use crate::linalg::Mat;
use crate::rng::Rng;
use crate::targets::{GaussianMixture, Target};
use crate::theorems::tweedie::MONTE_CARLO_ALPHA;
use crate::theorems::{targets_at, Claim, Controlled, Depth, FalseFailure, ToleranceKind};

/// A random affine map with W entries ~ N(0, 1/d) (not symmetric) and b ~ N(0, 1).
pub fn random_affine(rng: &mut Rng, d: usize) -> Result<Affine> {
    let s = 1.0 / (d as f64).sqrt();
    Affine::new(Mat::from_fn(d, d, |_, _| s * rng.normal()), rng.normals(d))
}

/// The 1-D spike-and-slab prior of the threshold-selection case: `0.9·δ₀ + 0.1·N(0, 3²)`.
pub fn sparse_prior() -> Result<GaussianMixture> {
    GaussianMixture::new(
        &[0.9, 0.1],
        &[vec![0.0], vec![0.0]],
        &[Mat::zeros(1, 1), Mat::from_fn(1, 1, |_, _| 9.0)],
    )
}

/// The [`AFFINE`] row's cases: a random affine map per target of [`targets_at`] (seed 3001), SURE on
/// the Gaussian with the target's mean and covariance, at every
/// [`crate::theorems::tweedie::DEFAULT_SIGMAS`] level.
///
/// [`AFFINE`]: super::AFFINE
pub fn affine_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let mut rng = Rng::new(0x005e_0001, 0);
    let mut out = Vec::new();
    for target in targets_at(depth, 3001)? {
        let d = target.dim();
        let den = random_affine(&mut rng, d)?;
        for &sigma in &crate::theorems::tweedie::DEFAULT_SIGMAS {
            out.push(affine_gaussian(
                &den,
                &target.mean(),
                &target.covariance(),
                sigma,
            )?);
        }
    }
    Ok(out)
}

/// The [`OPTIMALITY`] row's cases: a random affine perturbation per target of [`targets_at`] (seed 3002),
/// on the Gaussian with the target's mean and covariance + 0.1·I (full rank), at every
/// [`crate::theorems::tweedie::DEFAULT_SIGMAS`] level.
///
/// [`OPTIMALITY`]: super::OPTIMALITY
pub fn optimality_cases(depth: Depth) -> Result<Vec<Controlled>> {
    let mut rng = Rng::new(0x005e_0002, 0);
    let mut out = Vec::new();
    for target in targets_at(depth, 3002)? {
        let d = target.dim();
        let delta = random_affine(&mut rng, d)?;
        for &sigma in &crate::theorems::tweedie::DEFAULT_SIGMAS {
            let mut cov = target.covariance();
            for i in 0..d {
                cov[(i, i)] += 0.1;
            }
            out.push(optimality_gaussian(
                &target.mean(),
                &cov,
                sigma,
                delta.weight(),
                delta.bias(),
            )?);
        }
    }
    Ok(out)
}

/// Noise levels of the threshold-selection cases.
pub const THRESHOLD_SIGMAS: [f64; 3] = [0.5, 1.0, 2.0];

/// The threshold grid at noise σ: `τ ∈ σ·{0, 0.1, …, 3}`.
pub fn threshold_levels(sigma: f64) -> Vec<f64> {
    (0..=30).map(|i| 0.1 * f64::from(i) * sigma).collect()
}

/// Row: SURE as a per-image risk estimate.
pub const THRESHOLD: Claim = Claim {
    theorem: THEOREM,
    statement: "SURE-chosen soft threshold within the derived margin of the risk-optimal level \
                (5 images × σ ∈ {0.5, 1, 2}; 2 at quick, 20 at thorough; family-wise α = 1e-6)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "z(α/m)·√(d·Var(s_τ̂ − s_τ*)) (union bound over the m = 31 levels, normal \
                      approximation of a sum of d = 2¹⁴ iid terms, Bonferroni over the images) + \
                      2× the quadrature error estimates (double-exponential, estimates not bounds)",
    planted_variant: "the factor 2 dropped: SURE(τ) = Σ min(y², τ²) + σ²·1{|y| > τ} − σ²d",
    false_failure: FalseFailure::PerRow(1e-6),
};

/// The [`THRESHOLD`] row's cases: five observations (two at quick, twenty at thorough) of
/// d = 2¹⁴ coordinates from [`sparse_prior`] at each of [`THRESHOLD_SIGMAS`], grid
/// [`threshold_levels`], family-wise α = 1e-6 (Bonferroni over the observations).
pub(crate) fn threshold_cases(depth: Depth) -> Result<Vec<Controlled>> {
    use rayon::prelude::*;
    let prior = sparse_prior()?;
    let per_sigma: u64 = match depth {
        Depth::Quick => 2,
        Depth::Default => 5,
        Depth::Thorough => 20,
    };
    let runs = per_sigma as usize * THRESHOLD_SIGMAS.len();
    let alpha = 1e-6 / runs as f64;
    // the observations are independent (each from its own seed): they run on the cores, in
    // the same order of cases as one after another
    let observations: Vec<(f64, u64)> = THRESHOLD_SIGMAS
        .iter()
        .flat_map(|&sigma| (0..per_sigma).map(move |seed| (sigma, seed)))
        .collect();
    observations
        .par_iter()
        .map(|&(sigma, seed)| {
            let levels = threshold_levels(sigma);
            choose_soft_threshold(&prior, 1 << 14, sigma, &levels, seed, alpha)
                .map(|c| c.controlled())
        })
        .collect()
}

/// Row: SURE for non-linear maps by paired GPU Monte Carlo.
pub const GPU_NONLINEAR: Claim = Claim {
    theorem: THEOREM,
    statement: "non-linear f (Bayes, soft threshold, MLP, cubic map) on GMMs: paired GPU Monte \
                Carlo with Hutchinson probes, 2¹⁴ samples per case (2¹² on a software adapter; ¼ at \
                quick, ×4 at thorough), |mean D| ≤ z·SE + f32 bias (family-wise α = 1e-6)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "z(α/(4T)) two-sided normal quantile (statrs), Bonferroni over T targets × \
                      4 maps (T = 12; 3 at quick, 48 at thorough), fixed Philox seeds; residual \
                      net of the derived f32 bias bound of gpu::denoiser_jvp",
    planted_variant: "the factor 2 dropped: D' = ‖x−f‖² − ‖y−f‖² − σ²zᵀ∇f z + σ²d",
    false_failure: FalseFailure::PerRow(MONTE_CARLO_ALPHA),
};

/// The [`GPU_NONLINEAR`] row's cases: on each target of [`targets_at`] (seed 3003) at σ = 0.5,
/// its [`default_denoisers`], 2¹⁴ paired samples each (2¹² on a software adapter; a quarter at
/// quick, four times at thorough: the z·SE threshold is computed from the sample, so it widens
/// with a smaller sample and α stays).
pub(crate) fn gpu_nonlinear_cases(gpu: &Gpu, depth: Depth) -> Result<Vec<Controlled>> {
    let samples = depth.samples(if gpu.is_software() { 1 << 12 } else { 1 << 14 });
    let targets = targets_at(depth, 3003)?;
    let alpha = MONTE_CARLO_ALPHA / (4 * targets.len()) as f64;
    let mut rng = Rng::new(0x005e_0003, 0);
    let mut out = Vec::new();
    for (t, target) in targets.iter().enumerate() {
        let sigma = 0.5;
        let (bayes, soft, mlp, power) = default_denoisers(target, sigma, &mut rng)?;
        let dens = [
            JvpDenoiser::from(&bayes),
            JvpDenoiser::from(&soft),
            JvpDenoiser::from(&mlp),
            JvpDenoiser::from(&power),
        ];
        for (k, den) in dens.iter().enumerate() {
            let seed = 1000 + (4 * t + k) as u64;
            let mc = sure_monte_carlo(gpu, den, target, sigma, samples, seed)?;
            out.push(mc.controlled(alpha));
        }
    }
    Ok(out)
}
