//! DDIM with an affine denoiser `f(y; s) = W(s) y + b(s)` ([`OptimalAffine`]) as the GPU
//! kernels of [`crate::gpu::ddim`] take it: the schedule's step coefficients and the denoiser's
//! W and b at each step's noise level, one step at a time.

use crate::denoisers::linear::OptimalAffine;
use crate::denoisers::Denoiser;
use crate::diffusion::samplers::step_coefficients;
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::ddim::{AffineDdimStep, AffineStep};
use crate::linalg::Mat;

/// The coefficients of DDIM step ℓ (1 ≤ ℓ ≤ L) of `schedule`: `k_ℓ`, `a_ℓ` of
/// [`step_coefficients`] and `a_ℓ/α_ℓ`.
pub(crate) fn affine_step(schedule: &Schedule, l: usize) -> AffineStep {
    let (k, a, _) = step_coefficients(schedule, l, false);
    AffineStep {
        k,
        a_over_alpha: a / schedule.alpha(l),
        a,
    }
}

/// The steps ℓ = L, …, 1 of DDIM on `schedule` with `denoiser` (W and b computed as each step is
/// taken), for [`crate::gpu::ddim::ddim_affine`] and its reference.
pub fn affine_ddim_steps<'a>(
    schedule: &'a Schedule,
    denoiser: &'a OptimalAffine,
) -> impl Iterator<Item = Result<AffineDdimStep>> + 'a {
    (1..=schedule.steps()).rev().map(move |l| {
        let s = schedule.denoiser_noise(l);
        Ok(AffineDdimStep {
            step: affine_step(schedule, l),
            weight: denoiser.weight(s)?,
            bias: denoiser.bias(s)?,
        })
    })
}

/// The initial state `x_L = initial_scale·noise`, refusing noise whose width is not the
/// denoiser's dimension.
pub fn initial_state(schedule: &Schedule, denoiser: &OptimalAffine, noise: &Mat) -> Result<Mat> {
    if noise.ncols() != denoiser.dim() {
        return Err(Error::DimensionMismatch {
            what: "initial noise (columns)".into(),
            expected: denoiser.dim(),
            got: noise.ncols(),
        });
    }
    Ok(Mat::from_fn(noise.nrows(), noise.ncols(), |p, j| {
        schedule.initial_scale() * noise[(p, j)]
    }))
}
