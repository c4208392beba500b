//! `--export-models`: the fitted denoisers as NumPy `.npy` arrays under `<experiment>/models/`,
//! each folder with a `README.md` giving every array's shape and the formula that uses it, so
//! that a NumPy or PyTorch user can re-run a denoiser and the DDIM sampler without this crate.
//!
//! Conventions: an image is a row `x ∈ ℝᵈ`, `d = C·H·W`, the CHW image flattened in C order
//! (`img.reshape(-1)` of an `(C, H, W)` array, values in [−1, 1]) — the layout of the sample
//! exports `(samples, C, H, W)`. Matrices the GPU multiplies with are written as the f32 values
//! the GPU held (`<f4`); vectors the CPU uses in f64 as `<f8`. Step ℓ = 0 … L indexes the
//! schedule arrays `alpha.npy`, `sigma.npy` (shape (L+1,)): `α₀ = 1, σ₀ = 0`, and DDIM runs
//! `x_{ℓ−1} = (σ_{ℓ−1}/σ_ℓ)·x_ℓ + (α_{ℓ−1} − (σ_{ℓ−1}/σ_ℓ)·α_ℓ)·x̂₀(x_ℓ)` for ℓ = L … 1 from
//! `x_L` = standard normal noise (see [`super::ddim`]).
//!
//! Sizes at paper scale (d = 12288, N = 1000, f32): the polynomial read-outs `(w+1)×d` for 50
//! steps of 6 models ≈ 15 GB, the bottleneck weights ≈ 7.9 GB, the linear bases ≈ 0.1 GB.

use super::RunFolder;
use crate::diffusion::Schedule;
use crate::error::Result;
use crate::gpu::dense::DenseParams;
use crate::io::npy;
use crate::linalg::Mat;

/// The DDIM paragraph shared by every README.
const DDIM: &str = "Schedule: `alpha.npy`, `sigma.npy`, shape (L+1,), float64, index = step ℓ \
(α₀ = 1, σ₀ = 0). Sampling (deterministic DDIM, x₀-prediction): x = noise (standard normal, \
shape (B, d)); for ℓ = L … 1: `x0 = predict(ℓ, x)`; \
`x = (sigma[ℓ-1]/sigma[ℓ])*x + (alpha[ℓ-1] - sigma[ℓ-1]/sigma[ℓ]*alpha[ℓ])*x0`. \
A row whose entries leave ±1e3 is frozen at 0 (escaped). Images are rows of d = C·H·W values \
(the CHW image flattened in C order), in [−1, 1]; `samples.reshape(B, C, H, W)` gives images.";

/// With [`super::Settings::export_models`], the folder `folder/models/` holding `schedule`
/// ([`write_schedule`]), where an experiment writes its models; else `None`.
pub(crate) fn models_folder(
    export_models: bool,
    folder: &RunFolder,
    schedule: &Schedule,
) -> Result<Option<RunFolder>> {
    if !export_models {
        return Ok(None);
    }
    let models = folder.child("models")?;
    write_schedule(&models, schedule)?;
    Ok(Some(models))
}

/// Writes `alpha.npy` and `sigma.npy` (shape (L+1,), f64) of `schedule` into `folder`.
pub(crate) fn write_schedule(folder: &RunFolder, schedule: &Schedule) -> Result<()> {
    let steps = 0..=schedule.steps();
    let alpha: Vec<f64> = steps.clone().map(|l| schedule.alpha(l)).collect();
    let sigma: Vec<f64> = steps.map(|l| schedule.sigma(l)).collect();
    npy::write_f64(&folder.path("alpha.npy"), &[alpha.len()], &alpha)?;
    npy::write_f64(&folder.path("sigma.npy"), &[sigma.len()], &sigma)
}

/// Writes `values` as a float64 vector `folder/name`.
pub(crate) fn write_vector(folder: &RunFolder, name: &str, values: &[f64]) -> Result<()> {
    npy::write_f64(&folder.path(name), &[values.len()], values)
}

/// Writes `matrix` as a float32 `(rows, cols)` array `folder/name` (the values a GPU copy of it
/// holds: each entry rounded to nearest f32).
pub fn write_f32(folder: &RunFolder, name: &str, matrix: &Mat) -> Result<()> {
    npy::write_mat_f32(&folder.path(name), matrix)
}

/// Writes the f32 parameters of `x̂ = W₂·relu(W₁·y + b₁) + b₂` as `w1.npy` (h×d), `b1.npy`
/// (h,), `w2.npy` (d×h), `b2.npy` (d,), all float32, into `folder`.
pub(crate) fn write_dense(folder: &RunFolder, params: &DenseParams) -> Result<()> {
    let vector = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    write_f32(folder, "w1.npy", &params.w1)?;
    npy::write_f32(
        &folder.path("b1.npy"),
        &[params.b1.len()],
        &vector(&params.b1),
    )?;
    write_f32(folder, "w2.npy", &params.w2)?;
    npy::write_f32(
        &folder.path("b2.npy"),
        &[params.b2.len()],
        &vector(&params.b2),
    )
}

/// `models/README.md` of `exp linear`: `d` pixels, the model folders written.
pub(crate) fn linear_readme(d: usize, models: &[(String, usize)]) -> String {
    let list: String = models
        .iter()
        .map(|(name, k)| format!("* `{name}/`: K = {k}\n"))
        .collect();
    format!(
        "# Linear x₀-predictors (Levine–Weiss Thm 4, Fig. 5–6)\n\n{DDIM}\n\n\
         One folder per model:\n\n{list}\n\
         In each: `mean.npy` μ, shape ({d},), float64; `basis.npy` U, shape ({d}, K), float32 \
         (orthonormal principal directions of the training images, columns in order of \
         decreasing eigenvalue); `eigenvalues.npy` λ, shape (K,), float64 (of the covariance \
         (1/N)Σ(x−μ)(x−μ)ᵀ).\n\n\
         Predictor at step ℓ (a = alpha[ℓ], s = sigma[ℓ]), for a batch X of shape (B, {d}):\n\n\
         ```python\nc = (X - a*mean) @ U\nx0 = mean + (c * (a*lam/(a*a*lam + s*s))) @ U.T\n```\n\n\
         The rank-K model of the paper is the K leading columns of the full one. `refit/` is \
         the full model refitted on N of its own samples (Fig. 6).\n"
    )
}

/// `models/README.md` of `exp polynomial`: `d` pixels, width `w`, the model folders written
/// (name, degree, whether max-normalised), L steps.
pub(crate) fn polynomial_readme(
    d: usize,
    w: usize,
    models: &[(String, usize, bool)],
    steps: usize,
) -> String {
    let list: String = models
        .iter()
        .map(|(name, k, max)| {
            format!(
                "* `{name}/`: degree k = {k}, {}\n",
                if *max {
                    "max-normalized features (not a polynomial)"
                } else {
                    "polynomial features"
                }
            )
        })
        .collect();
    format!(
        "# Random-feature polynomial x₀-predictors (Levine–Weiss §3.2, Fig. 7)\n\n{DDIM}\n\n\
         `projection.npy` R, shape ({w}, {d}), float32, shared by every model and step.\n\n\
         One folder per model:\n\n{list}\n\
         In each: `scale.npy` c, shape ({},), float64, c[ℓ] = 1/sqrt(α_ℓ² m₂ + σ_ℓ² d) with m₂ \
         the mean squared norm of the training images; `readout-<ℓ>.npy` A_ℓ, shape ({}, {d}), \
         float32, for ℓ = 1 … {steps} (the ridge solution of the module docs, row 0 the \
         constant feature).\n\n\
         Predictor at step ℓ for a batch X of shape (B, {d}):\n\n\
         ```python\nphi = (c[l] * (X @ R.T)) ** k\n\
         # max-normalized models only: phi /= abs(phi).max(axis=1, keepdims=True) (rows with max 0 unchanged)\n\
         feats = np.concatenate([np.ones((B, 1)), phi], axis=1)\nx0 = feats @ A[l]\n```\n",
        steps + 1,
        w + 1,
    )
}

/// `models/README.md` of `exp bottleneck`: `d` pixels, the hidden widths, L steps.
pub(crate) fn bottleneck_readme(d: usize, hidden: &[usize], steps: usize) -> String {
    let list: String = hidden
        .iter()
        .map(|h| format!("* `h{h}/`: hidden width h = {h}\n"))
        .collect();
    format!(
        "# Per-step bottleneck MLPs (Levine–Weiss §3.3, Fig. 9)\n\n{DDIM}\n\n\
         One folder per width:\n\n{list}\n\
         In each, `step-<ℓ>/` for ℓ = 1 … {steps} (the network trained for step ℓ, σ-blind; a \
         run resumed from a checkpoint writes the steps it trains, the interrupted run wrote \
         the others): `w1.npy` W₁ (h, {d}), `b1.npy` b₁ (h,), `w2.npy` W₂ ({d}, h), \
         `b2.npy` b₂ ({d},), all float32 (the trained f32 parameters).\n\n\
         Predictor at step ℓ for a batch X of shape (B, {d}):\n\n\
         ```python\nx0 = np.maximum(X @ w1.T + b1, 0) @ w2.T + b2\n```\n"
    )
}
