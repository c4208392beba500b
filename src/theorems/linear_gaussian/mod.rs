//! `linear_gaussian` — Levine–Weiss Thm 3: the MSE-optimal affine denoiser is
//! `f*(y; σ) = μ + Σ(Σ + σ²I)⁻¹(y − μ)`, it depends on the data only through (μ, Σ), and
//! sampling with it generates a Gaussian law that tends to `N(μ, Σ)`.
//!
//! Routes compared: the spectral closed form ([`OptimalAffine`]) against a Cholesky solve of the
//! normal equations and against the Bayes posterior mean of `N(μ, Σ)` (Woodbury algebra in the
//! mixture engine); least-squares fits from samples against the closed form (z·SE, sandwich
//! standard errors); the DDIM map run on basis noise against its per-eigen-direction closed form
//! ([`generated_law`], derived in [`flow`] from the book's update without the sampler code);
//! sample moments of many DDIM draws against that closed form (χ²/Wishart tests at a stated α);
//! and the sampler's map against the exact probability-flow solution with its first-order
//! defect ([`ddim_converges_to_exact_flow`]).
//!
//! Every check returns a [`Controlled`]: the check of the claim and the same check with a
//! planted wrong variant in place of one route, which it must reject.

pub mod flow;

use super::{
    tweedie, Check, Claim, Controlled, Depth, FalseFailure, ToleranceKind, Verdict, CPU_BACKEND,
};
use crate::denoisers::linear::{fit_affine, fit_bias_free, OptimalAffine};
use crate::denoisers::{Denoiser, RankK};
use crate::diffusion::samplers::{Ancestral, Ddim, Sampler};
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::linalg::{self, max_abs, max_abs_diff, max_abs_diff_mat, Mat, EPS};
use crate::rng::{PhiloxStream, Rng};
use crate::stats::gaussian_law::test_gaussian_law;
use crate::stats::two_sided_z;
use crate::targets::{gaussian::gaussian, ClosedForm, GaussianMixture, Target};

mod convergence;
mod fig2;
mod fits;
mod generated;

pub use convergence::*;
pub use fig2::*;
pub use fits::*;
pub use generated::*;

/// The theorem id.
pub const THEOREM: &str = "linear_gaussian";

/// Family-wise false-failure probability of every Monte Carlo check of this theorem.
pub const ALPHA: f64 = 1e-6;

/// The optimal affine denoiser at `y` by three routes: spectral (`OptimalAffine`), Cholesky
/// (`W = ((Σ + σ²I)⁻¹Σ)ᵀ`), and the Bayes posterior mean of `N(μ, Σ)`. Residual: the largest
/// pairwise difference; tolerance: twice the f64 bound [`tweedie::rounding_bound`] of the
/// Gaussian (each route is a backward-stable solve with condition number `(λ_max + σ²)/σ²`).
/// Planted: the Cholesky route solved with `Σ + σI` (σ for σ²).
pub fn optimal_affine_routes(target: &dyn Target, y: &[f64], sigma: f64) -> Result<Controlled> {
    let (mu, cov) = (target.mean(), target.covariance());
    let spectral = OptimalAffine::from_moments(&mu, &cov)?.denoise(y, sigma)?;
    let g = gaussian(&mu, &cov)?;
    let bayes = g.posterior_mean(y, sigma)?;
    let tolerance = 2.0 * tweedie::rounding_bound(&g, y, sigma)?;
    let check_with = |added_variance: f64| -> Result<Check> {
        let cholesky = cholesky_affine(&mu, &cov, y, added_variance)?;
        Ok(Check {
            residual: max_abs_diff(&spectral, &cholesky)
                .max(max_abs_diff(&spectral, &bayes))
                .max(max_abs_diff(&cholesky, &bayes)),
            tolerance,
        })
    };
    Ok(Controlled {
        check: check_with(sigma * sigma)?,
        planted: check_with(sigma)?,
    })
}

/// The affine denoiser `μ + W(y − μ)` with `Wᵀ = (Σ + vI)⁻¹Σ` by a Cholesky solve
/// (v = σ² for the optimum).
fn cholesky_affine(mu: &[f64], cov: &Mat, y: &[f64], added_variance: f64) -> Result<Vec<f64>> {
    let d = mu.len();
    let tilde = Mat::from_fn(d, d, |i, j| {
        cov[(i, j)] + if i == j { added_variance } else { 0.0 }
    });
    let wt = linalg::spd_solve(&tilde, cov)?;
    Ok((0..d)
        .map(|i| mu[i] + (0..d).map(|j| wt[(j, i)] * (y[j] - mu[j])).sum::<f64>())
        .collect())
}

/// Row: the optimal affine denoiser by three routes, and least squares from samples.
pub const AFFINE_ROUTES: Claim = Claim {
    theorem: THEOREM,
    statement: "optimal affine denoiser f* = μ + Σ(Σ+σ²I)⁻¹(y−μ): spectral = Cholesky = Bayes of \
                N(μ,Σ); least-squares fits (affine, bias-free) from 20000 pairs (80000 at thorough) → f*",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "2× tweedie::rounding_bound 32(d+2)εκ(1+Q)S√d (backward-stable solves); \
                      z(α/(d(d+1)))·sandwich SE, α = 1e-6 (least_squares_matches_closed_form)",
    planted_variant: "σ for σ²: Σ + σI in the Cholesky route and in the least-squares truth",
    // the two least-squares fits, each at family-wise α
    false_failure: FalseFailure::PerRow(2.0 * ALPHA),
};

/// Row: the Fig. 2 pair (equal moments, different laws).
pub const FIG2_PAIR: Claim = Claim {
    theorem: THEOREM,
    statement: "Fig. 2: a 3-GMM and a 2-GMM with equal (μ, Σ) have identical optimal affine \
                denoisers and identical DDIM samples from identical noise",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "moment rounding 8(K+d)ε(|Σ|+|μ|²) through ‖ΔW‖ ≤ ΔΣ/σ², per DDIM step, \
                      times the tail gain products, plus ddim_rounding_bound of each run",
    planted_variant: "the 2-GMM's denoiser built from its within-component covariance Σ_k w_kΣ_k \
                      (between-component covariance dropped)",
    false_failure: FalseFailure::None,
};

/// Row: the generated law equals its closed form (derived without the sampler code).
pub const GENERATED_LAW: Claim = Claim {
    theorem: THEOREM,
    statement: "DDIM / ancestral with f* generate the per-direction closed-form Gaussian derived \
                from eq.3.2.84/3.2.87 without the sampler (map on basis noise; 20000-draw \
                χ²/Wishart test (5000 at quick, 80000 at thorough), α = 1e-6)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "map: 2× ddim_rounding_bound (per-step f64 rounding × tail gain products × \
                      √d); draws: exact χ² quantiles, Bonferroni to family-wise α = 1e-6",
    planted_variant: "retention exponent swapped: DDIM with q = (r_{ℓ−1}/r_ℓ)² (the bug \
                      k = (σ_{ℓ−1}/σ_ℓ)²), ancestral with q = r_{ℓ−1}/r_ℓ",
    // two sampled-law tests (DDIM, ancestral), each at family-wise α
    false_failure: FalseFailure::PerRow(2.0 * ALPHA),
};

/// Row: convergence to the exact probability flow at rate 1/L.
pub const CONVERGENCE: Claim = Claim {
    theorem: THEOREM,
    statement: "DDIM with f* → exact probability-flow law (N(μ,Σ) up to O(α_L)) at rate 1/L: \
                sampler map within the proved defect band, L = 25…400 (…1600 at thorough), VP cosine \
                and VE uniform",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "flow::defect_band: 1 − ∏cos Δφ ∈ [1 − e^(−S/2), 1 − e^(−T/2)], S = Σsin²Δφ \
                      ≤ C/L, T = Σtan²Δφ (log cos x ∈ [−tan²x/2, −sin²x/2]; half-width \
                      O(ΣΔφ⁴)) + 2× ddim_rounding_bound",
    planted_variant: "no first-order defect: DDIM claimed exact up to O(1/L²) (predicted map = \
                      the exact flow's)",
    false_failure: FalseFailure::None,
};

/// Row: the bias-free caveat, as repaired.
pub const BIAS_FREE: Claim = Claim {
    theorem: THEOREM,
    statement: "bias-free optimum W = M(M+σ²I)⁻¹, M = Σ+μμᵀ: DDIM generates the closed-form law \
                of (0, Σ+μμᵀ) (→ N(0, Σ+μμᵀ)), 20000 draws (5000 at quick, 80000 at \
                thorough), χ² α = 1e-6",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "exact χ² quantiles, Bonferroni to family-wise α = 1e-6 (test_gaussian_law)",
    planted_variant: "the statement as printed: the law of (μ, Σ) (Levine–Weiss Thm 3 applied to \
                      a bias-free denoiser)",
    false_failure: FalseFailure::PerRow(ALPHA),
};

/// Row: GD on the GPU reaches least squares.
pub const GPU_GD: Claim = Claim {
    theorem: THEOREM,
    statement: "GD on the GPU (WGSL GEMM) = least squares of the same samples, affine and \
                bias-free",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "LinearGd::error_bound ρ^T‖W*‖ + f32 floor/(1−ρ), plus the moments' f32 \
                      error through W* = RS⁻¹ and the f64 solve's 64dκε‖W*‖",
    planted_variant: "the other least-squares fit (bias-free ↔ affine: the flag passed wrongly)",
    false_failure: FalseFailure::None,
};

/// Default checks for `verify`.
pub(crate) fn default_verdicts(gpu: Result<&Gpu>, depth: Depth) -> Vec<Verdict> {
    // least-squares pairs (their SE is a sandwich estimate: not fewer at quick) and sampled-law
    // draws (exact χ² quantiles: a quarter at quick)
    let pairs = 20_000.max(depth.samples(20_000));
    let draws = depth.samples(20_000);
    let mut out = Vec::new();
    out.push(Verdict::collect(&AFFINE_ROUTES, CPU_BACKEND, depth, || {
        let mut cases = Vec::new();
        let (a, _) = fig2_pair()?;
        let mut rng = Rng::new(0x11a, 0);
        // one random target per d (d = 2, 8 at quick; four per d at thorough)
        for _ in 0..depth.replicates() {
            for d in depth.thin(2, [2usize, 4, 8]) {
                let t = crate::targets::random_gmm(&mut rng, d, 3)?;
                for &sigma in &[0.05, 0.5, 3.0] {
                    let y = rng.normals(d);
                    cases.push(optimal_affine_routes(&t, &y, sigma)?);
                }
            }
        }
        for &sigma in &[0.05, 0.3, 1.0, 5.0] {
            for i in 0..5 {
                let y = [f64::from(i) - 1.0, 2.0 - f64::from(i)];
                cases.push(optimal_affine_routes(&a, &y, sigma)?);
            }
        }
        for bias_free in [false, true] {
            cases.push(least_squares_matches_closed_form(
                &a, 0.5, pairs, 8, bias_free,
            )?);
        }
        Ok(cases)
    }));
    out.push(Verdict::collect(&FIG2_PAIR, CPU_BACKEND, depth, || {
        let mut cases = Vec::new();
        for &sigma in &[0.05, 0.3, 1.0, 5.0] {
            for i in 0..5 {
                let y = [f64::from(i) - 1.0, 2.0 - f64::from(i)];
                cases.push(fig2_denoisers_agree(&y, sigma)?);
            }
        }
        let mut rng = Rng::new(0xf16, 3);
        let noise = Mat::from_fn(depth.samples(200), 2, |_, _| rng.normal());
        cases.push(fig2_samples_agree(
            &Schedule::vp_cosine(0.999, 50)?,
            &noise,
        )?);
        cases.push(fig2_samples_agree(
            &Schedule::ve_uniform(20.0, 50)?,
            &noise,
        )?);
        Ok(cases)
    }));
    out.push(Verdict::collect(&GENERATED_LAW, CPU_BACKEND, depth, || {
        let (a, _) = fig2_pair()?;
        let (mu, cov) = (a.mean(), a.covariance());
        let schedule = Schedule::vp_cosine(0.999, 50)?;
        let mut cases = vec![ddim_map_matches_closed_form(&schedule, &mu, &cov, 2)?];
        for (stochastic, seed) in [(false, 7), (true, 9)] {
            cases.push(sampled_moments_match_closed_form(
                &schedule, &mu, &cov, 2, stochastic, draws, seed,
            )?);
        }
        Ok(cases)
    }));
    // L = 25…400 (25, 100, 400 at quick; up to 1600 at thorough)
    let step_counts = match depth {
        Depth::Thorough => vec![25usize, 50, 100, 200, 400, 800, 1600],
        _ => depth.thin(2, [25usize, 50, 100, 200, 400]),
    };
    out.push(Verdict::collect(&CONVERGENCE, CPU_BACKEND, depth, || {
        let (a, _) = fig2_pair()?;
        let mut rng = Rng::new(0x11c, 0);
        let t = crate::targets::random_gmm(&mut rng, 4, 3)?;
        let mut cases = Vec::new();
        for (mu, cov) in [(a.mean(), a.covariance()), (t.mean(), t.covariance())] {
            for &steps in &step_counts {
                for schedule in [
                    Schedule::vp_cosine(0.999, steps)?,
                    Schedule::ve_uniform(10.0, steps)?,
                ] {
                    let d = mu.len();
                    cases.extend(ddim_converges_to_exact_flow(
                        &schedule,
                        &mu,
                        &cov,
                        d,
                        PlantedLimit::NoFirstOrderDefect,
                    )?);
                }
            }
        }
        Ok(cases)
    }));
    out.push(Verdict::collect(&BIAS_FREE, CPU_BACKEND, depth, || {
        let (a, _) = fig2_pair()?;
        let (mu, cov) = (a.mean(), a.covariance());
        let schedule = Schedule::vp_cosine(0.999, 100)?;
        let m = second_moment(&mu, &cov);
        Ok(vec![Controlled {
            check: bias_free_sampling_matches_law(&schedule, &mu, &cov, &[0.0, 0.0], &m, draws, 4)?,
            planted: bias_free_sampling_matches_law(&schedule, &mu, &cov, &mu, &cov, draws, 4)?,
        }])
    }));
    let backend = super::backend_label(&gpu);
    out.push(Verdict::collect(&GPU_GD, &backend, depth, || {
        let gpu = gpu?;
        let mut rng = Rng::new(0x11d, 0);
        let mut cases = Vec::new();
        // d = 2, 5 (2 at quick)
        for d in depth.thin(2, [2usize, 5]) {
            let t = crate::targets::random_gmm(&mut rng, d, 3)?;
            for bias_free in [false, true] {
                cases.push(gpu_gd_matches_least_squares(
                    gpu,
                    &t,
                    0.5,
                    1 << 14,
                    600,
                    21,
                    bias_free,
                )?);
            }
        }
        Ok(cases)
    }));
    out
}
