//! `sure` — Stein's unbiased risk estimate (Sugolov Prop. 5; Kadkhodaie et al. eq. 7, App. C.3):
//! for y = x + σg, g ~ N(0, I) and any weakly differentiable f,
//!
//! `E‖x − f(y)‖² = E‖y − f(y)‖² + 2σ²E tr∇f(y) − σ²d`,
//!
//! and the optimality of the posterior mean (Sugolov Prop. 2):
//! `MSE(f) = MSE(f*) + E‖f*(y) − f(y)‖²` for `f* = E[x|y]`.
//!
//! Routes: for affine f on a Gaussian target both sides in closed form (the left from the joint
//! law of (x, g), the right from the marginal law of y); for non-linear f on mixtures, paired
//! Monte Carlo on the GPU (`gpu/denoiser_jvp.wgsl` evaluates f and a Hutchinson probe
//! `zᵀ∇f(y)z`), the per-sample difference `D = ‖x − f‖² − ‖y − f‖² − 2σ²zᵀ∇f z + σ²d` tested
//! for mean zero against `z·SE` plus a derived bound on the f32 bias; SURE as a per-image
//! risk estimate, choosing a soft-threshold level.
//!
//! Every check returns a [`Controlled`]: the check of the claim and the same check run on a
//! planted wrong variant (the factor 2 of `2σ² tr∇f` dropped, the Wiener gain at the wrong
//! noise variance), which it must reject.
//!
//! [`Controlled`]: crate::theorems::Controlled

mod affine;
mod cases;
mod monte_carlo;
mod optimality;
mod threshold;

use crate::error::{ensure_finite, ensure_len, Error, Result};
use crate::gpu::Gpu;
use crate::linalg::{self, Mat};
use crate::theorems::{Depth, Verdict, CPU_BACKEND};

pub use affine::{affine_gaussian, expected_residual_square, AffineSides, AFFINE};
pub use cases::{
    affine_cases, optimality_cases, random_affine, sparse_prior, threshold_levels, GPU_NONLINEAR,
    THRESHOLD, THRESHOLD_SIGMAS,
};
pub(crate) use cases::{gpu_nonlinear_cases, threshold_cases};
pub use monte_carlo::{default_denoisers, monte_carlo_check, sure_monte_carlo, SureMonteCarlo};
pub use optimality::{optimality_gaussian, optimality_monte_carlo, OPTIMALITY};
pub use threshold::{
    choose_soft_threshold, soft_threshold_sure, ThresholdChoice, ThresholdSelection,
};

/// The theorem id.
pub const THEOREM: &str = "sure";

fn check_gaussian(mean: &[f64], cov: &Mat, d: usize) -> Result<()> {
    ensure_len("mean", mean, d)?;
    ensure_finite("mean", mean)?;
    if cov.nrows() != d || cov.ncols() != d {
        return Err(Error::DimensionMismatch {
            what: "covariance".into(),
            expected: d,
            got: if cov.nrows() != d {
                cov.nrows()
            } else {
                cov.ncols()
            },
        });
    }
    linalg::ensure_finite_mat("covariance", cov)
}

/// The `verify` rows of `sure`.
pub(crate) fn default_verdicts(gpu: Result<&Gpu>, depth: Depth) -> Vec<Verdict> {
    let backend = super::backend_label(&gpu);
    vec![
        Verdict::collect(&AFFINE, CPU_BACKEND, depth, || affine_cases(depth)),
        Verdict::collect(&OPTIMALITY, CPU_BACKEND, depth, || optimality_cases(depth)),
        Verdict::collect(&THRESHOLD, CPU_BACKEND, depth, || threshold_cases(depth)),
        Verdict::collect(&GPU_NONLINEAR, &backend, depth, || {
            gpu_nonlinear_cases(gpu?, depth)
        }),
    ]
}
