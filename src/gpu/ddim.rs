//! DDIM (book eq. 3.2.84 / 3.2.87) with an affine denoiser `f(y; s) = W(s) y + b(s)` on the GPU
//! in f32, each step one GEMM of the family in `gpu/gemm*.wgsl` with the update fused into its
//! epilogue; the f64 reference with the f32 error bound its parity test uses. The kernels take
//! matrices and scalars only: each step's coefficients, `W` and `b` ([`AffineDdimStep`]);
//! [`crate::diffusion::affine`] builds the steps from a schedule and an affine denoiser.
//!
//! Rows are samples. Step ℓ queries the denoiser at `x/α_ℓ` and moves to
//! `x' = k_ℓ x + a_ℓ f(x/α_ℓ) = (a_ℓ/α_ℓ)·x Wᵀ + k_ℓ·x + a_ℓ b` ([`AffineStep`]): one product
//! with `α = a_ℓ/α_ℓ`, `β = k_ℓ`, `D = x` and the per-column bias `a_ℓ b` — the DDIM update
//! costs no pass of its own.

use super::gemm::{gemm_fused, Bias, Epilogue, GpuMat, HostProduct, Product};
use crate::error::{Error, Result};
use crate::linalg::{self, Mat};
use crate::numerics::activation::Activation;
use crate::numerics::F32_UNIT_ROUNDOFF;

/// One DDIM step with an affine denoiser, as the kernel takes it: `x' = a_over_alpha·x Wᵀ +
/// k·x + a·b` ([`AffineStep`]) with the denoiser's W (d×d) and b (length d) at this step's noise.
#[derive(Debug, Clone)]
pub struct AffineDdimStep {
    /// The step's coefficients.
    pub step: AffineStep,
    /// `W(s_ℓ)`.
    pub weight: Mat,
    /// `b(s_ℓ)`.
    pub bias: Vec<f64>,
}

impl AffineDdimStep {
    /// Refuses a W or b that does not match d columns of state, or a non-finite entry.
    fn check(&self, d: usize) -> Result<()> {
        for (what, got) in [
            ("denoiser weight (rows)", self.weight.nrows()),
            ("denoiser weight (columns)", self.weight.ncols()),
            ("denoiser bias", self.bias.len()),
        ] {
            if got != d {
                return Err(Error::DimensionMismatch {
                    what: what.into(),
                    expected: d,
                    got,
                });
            }
        }
        linalg::ensure_finite_mat("denoiser weight", &self.weight)?;
        crate::error::ensure_finite("denoiser bias", &self.bias)
    }
}

/// The coefficients of DDIM step ℓ with an affine denoiser, as the GEMM takes them:
/// `x' = a_over_alpha·x Wᵀ + k·x + a·b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AffineStep {
    /// `k_ℓ = σ_{ℓ−1}/σ_ℓ`, the weight of the current state (the GEMM's β).
    pub k: f64,
    /// `a_ℓ/α_ℓ`, the weight of `x Wᵀ` (the GEMM's α).
    pub a_over_alpha: f64,
    /// `a_ℓ = α_{ℓ−1} − k_ℓ α_ℓ`, the weight of the denoiser's bias b.
    pub a: f64,
}

impl AffineStep {
    /// The step on resident states: `next = a_over_alpha·x Wᵀ + k·x + bias` with `bias` the
    /// 1×d row `a·b` (rounded to f32) — to be prepared and recorded with the other steps.
    pub fn product<'a>(
        &self,
        x: &'a GpuMat,
        w: &'a GpuMat,
        bias: &'a GpuMat,
        next: &'a GpuMat,
    ) -> Product<'a> {
        Product::new((x, false), (w, true), next)
            .scaled(self.a_over_alpha as f32)
            .plus(self.k as f32, x)
            .with(Epilogue::Activation {
                bias: Bias::PerColumn(bias),
                activation: Activation::Identity,
            })
    }
}

/// Runs DDIM on the GPU from the initial state `x_L` (rows = samples) through `steps` (ℓ = L,
/// …, 1, taken one at a time so only one W is held): each step is one [`gemm_fused`] (W and
/// `a·b` uploaded, the output poisoned first, the product cut into blocks where the states or W
/// exceed a storage binding), the state carried between steps in f32.
pub fn ddim_affine(
    gpu: &super::Gpu,
    initial: &Mat,
    steps: impl IntoIterator<Item = Result<AffineDdimStep>>,
) -> Result<Mat> {
    linalg::ensure_finite_mat("initial state", initial)?;
    let mut x = initial.clone();
    for step in steps {
        let step = step?;
        step.check(x.ncols())?;
        let AffineDdimStep { step, weight, bias } = step;
        let bias = Mat::from_fn(1, bias.len(), |_, j| step.a * bias[j]);
        x = gemm_fused(
            gpu,
            &HostProduct {
                a: &x,
                trans_a: false,
                b: &weight,
                trans_b: true,
                alpha: step.a_over_alpha,
                beta: step.k,
                d: Some(&x),
                epilogue: Epilogue::Activation {
                    bias: Bias::PerColumn(&bias),
                    activation: Activation::Identity,
                },
            },
        )?;
    }
    Ok(x)
}

/// The f64 reference of [`ddim_affine`] (the same recursion, in f64) and an elementwise bound
/// on the kernel's f32 error, propagated step by step along the reference run (u = 2⁻²⁴,
/// `γ_m = mu/(1 − mu)`):
/// * initial state rounded to f32: `|Δx_L| ≤ u|x_L|`;
/// * one step, the GEMM bound with a bias ([`super::gemm::gemm_fused_reference`]: W, x, the
///   coefficients and `a·b` rounded to f32, the d-term dot product, α, β·D and the bias):
///   `|Δx'_i| ≤ γ_{d+7}(|a/α|Σ_j|W_ij||x_j| + |k||x_i| + |a b_i|) + |a/α|Σ_j|W_ij||Δx_j| +
///   |k||Δx_i|` (the last two carry the state's earlier error);
///
/// and the final bound doubled to cover second-order terms.
pub fn ddim_affine_reference(
    initial: &Mat,
    steps: impl IntoIterator<Item = Result<AffineDdimStep>>,
) -> Result<(Mat, Mat)> {
    linalg::ensure_finite_mat("initial state", initial)?;
    let u = F32_UNIT_ROUNDOFF;
    let (n, d) = (initial.nrows(), initial.ncols());
    let gamma = ((d + 7) as f64 * u) / (1.0 - (d + 7) as f64 * u);
    let mut x = initial.clone();
    let mut dx = Mat::from_fn(n, d, |p, j| u * x[(p, j)].abs());
    for step in steps {
        let step = step?;
        step.check(d)?;
        let AffineDdimStep {
            step,
            weight: w,
            bias: b,
        } = step;
        let (k, c) = (step.k, step.a_over_alpha);
        let mut nx = Mat::zeros(n, d);
        let mut ndx = Mat::zeros(n, d);
        for p in 0..n {
            for i in 0..d {
                let acc: f64 = (0..d).map(|j| w[(i, j)] * x[(p, j)]).sum();
                let abs_acc: f64 = (0..d).map(|j| (w[(i, j)] * x[(p, j)]).abs()).sum();
                let carried: f64 = (0..d).map(|j| w[(i, j)].abs() * dx[(p, j)]).sum();
                let ab = step.a * b[i];
                nx[(p, i)] = c * acc + k * x[(p, i)] + ab;
                ndx[(p, i)] = gamma * (c.abs() * abs_acc + k.abs() * x[(p, i)].abs() + ab.abs())
                    + c.abs() * carried
                    + k.abs() * dx[(p, i)];
            }
        }
        x = nx;
        dx = ndx;
    }
    let bound = Mat::from_fn(n, d, |p, j| 2.0 * dx[(p, j)]);
    Ok((x, bound))
}
