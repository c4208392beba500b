//! A one-hidden-layer σ-blind MLP denoiser `x̂ = W₂·φ(W₁·y + b₁) + b₂` (d → h → d), trained on
//! the GPU with everything resident (the per-step networks of Levine–Weiss §3.3: one network per
//! DDIM step, CelebA scale d = 12288, N = 1000, h ∈ {1000, 500, 100}, batch 128, Adam): the
//! GEMMs of `gpu/gemm.wgsl` with fused epilogues, and the gather, residual and column-sum
//! kernels of `gpu/dense.wgsl`. The f64 references of one batch, with running error bounds,
//! are here too.
//!
//! Samples are rows. One training step on a batch of `B` clean rows `X_b` (the last batch of an
//! epoch has `N − ⌊N/B⌋·B` rows when B does not divide N — no row is dropped, and its mean is
//! over its own rows):
//! 1. gather: `X_b` = rows `perm[start..start + B]` of the data, `Y_b = α·X_b + σ·ε` with ε
//!    from Philox on the GPU ([`batch_noise`] regenerates it on the CPU);
//! 2. `H = φ(Y_b·W₁ᵀ + b₁)` (bias + activation epilogue; only H is stored),
//!    `X̂ = H·W₂ᵀ + b₂`;
//! 3. `G = (2/B)(X̂ − X_b)`, the gradient of the batch loss `(1/B)Σ_r‖x̂_r − x_r‖²`, and each
//!    row's `‖x̂_r − x_r‖²`;
//! 4. `∇W₂ = Gᵀ·H`, `∇b₂ = Σ_r G_r`, `dZ = (G·W₂) ⊙ φ'(Z)` (derivative-mask epilogue, φ' read
//!    off H), `∇W₁ = dZᵀ·Y_b`, `∇b₁ = Σ_r dZ_r`;
//! 5. Adam on W₁, b₁, W₂, b₂ (`mlp_adam` of `gpu/adam.wgsl`, bias-corrected, the kernel that
//!    [`crate::gpu::adam::adam_reference`] checks).
//!
//! A whole epoch is recorded into one submission; its loss, the mean over the epoch's samples of
//! `‖x̂ − x‖²` (each batch evaluated before its own update), is summed on the GPU (sequentially,
//! by the column-sum kernel) and is the only value read back.
//!
//! Randomness (all [`crate::rng`] Philox streams keyed by the seed): the initialisation is
//! stream 0; epoch t's permutation is stream `2t + 2`, its noise stream `2t + 1`, in which
//! element `e = r·d + j` of batch b is normal `e mod 4` of block `b·2³² + ⌊e/4⌋`. A checkpoint
//! ([`DenseState`]) holds the f32 parameters, Adam moments, step and epoch counts and the seed,
//! so a resumed run is bit-for-bit the uninterrupted one.
//!
//! Files: this one holds the configuration, parameters, checkpoint and the Philox streams;
//! `reference.rs` the f64 reference of one batch with its running error bounds; `trainer.rs`
//! the resident trainer and its kernels.

pub use super::adam::AdamTensor;
use super::adam::{adam_params, AdamConfig, Tensor};
use super::gemm::{Bias, Epilogue, GpuMat, PreparedProduct, Product};
use super::philox::NORMAL_ABS_ERROR_F32;
use super::shaders;
use super::uniforms::{AdamParams, ColumnSumParams, GatherParams, ResidualParams};
use super::{groups_1d, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::linalg::Mat;
use crate::numerics::activation::{
    activation_rounding, derivative_from_output, derivative_from_output_error, Activation,
};
use crate::numerics::F32_UNIT_ROUNDOFF as U;
use crate::numerics::{gamma_f32, DotBound};
use crate::rng::{PhiloxStream, Rng};
use serde::{Deserialize, Serialize};

mod reference;
mod trainer;

pub use reference::*;
pub use trainer::*;

/// Hyper-parameters of a [`DenseTrainer`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DenseConfig {
    /// Hidden width h.
    pub hidden: usize,
    /// φ of the hidden layer (a leaky slope must be ≥ 0: φ' is read off the sign of φ(z)).
    pub activation: Activation,
    /// Batch size B (≤ N).
    pub batch: usize,
    /// Adam.
    pub adam: AdamConfig,
    /// Seed of the initialisation, the permutations and the noise.
    pub seed: u64,
}

impl DenseConfig {
    /// Refuses `h = 0`, `B = 0`, a bad Adam configuration or a leaky slope that is not finite
    /// and ≥ 0, naming the value.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str, reason: String| {
            Err(Error::InvalidArgument {
                what: what.into(),
                reason,
            })
        };
        if self.hidden == 0 {
            return bad("hidden width h", "must be ≥ 1, got 0".into());
        }
        if self.batch == 0 {
            return bad("batch size", "must be ≥ 1, got 0".into());
        }
        if let Activation::LeakyRelu { slope } = self.activation {
            if !(slope.is_finite() && slope >= 0.0) {
                return bad(
                    "leaky slope",
                    format!("must be finite and ≥ 0 (φ' is read off the sign of φ), got {slope}"),
                );
            }
        }
        self.adam.validate()
    }
}

/// The parameters of the network `x̂ = W₂·φ(W₁·y + b₁) + b₂` in f64 (as a bottleneck denoiser:
/// [`crate::denoisers::training::dense_network`]).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseParams {
    /// W₁ (h×d).
    pub w1: Mat,
    /// b₁ (h).
    pub b1: Vec<f64>,
    /// W₂ (d×h).
    pub w2: Mat,
    /// b₂ (d).
    pub b2: Vec<f64>,
}

/// A checkpoint of a [`DenseTrainer`]: everything a resumed run needs to continue bit for bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseState {
    /// d.
    pub dim: usize,
    /// h.
    pub hidden: usize,
    /// φ.
    pub activation: Activation,
    /// The seed of the permutations and the noise.
    pub seed: u64,
    /// Adam steps taken (the next is `step + 1`).
    pub step: u64,
    /// Epochs completed (the next epoch's index, which keys its permutation and noise).
    pub epoch: u64,
    /// W₁ (h×d).
    pub w1: AdamTensor,
    /// b₁ (h).
    pub b1: AdamTensor,
    /// W₂ (d×h).
    pub w2: AdamTensor,
    /// b₂ (d).
    pub b2: AdamTensor,
}

/// What the GPU computed for one batch without updating ([`DenseTrainer::evaluate_batch`]).
#[derive(Debug, Clone)]
pub struct BatchEvaluation {
    /// The gathered clean rows `X_b`.
    pub x: Mat,
    /// The noisy inputs `Y_b = αX_b + σε`.
    pub y: Mat,
    /// The outputs `X̂`.
    pub x_hat: Mat,
    /// `‖x̂_r − x_r‖²` per row.
    pub row_sq: Vec<f64>,
    /// The gradient of the batch loss `(1/B)Σ_r‖x̂_r − x_r‖²`.
    pub gradient: DenseParams,
}

/// Stream of the initialisation.
const INIT_STREAM: u32 = 0;

/// Stream `2·epoch + lane` (lane 1 noise, 2 permutation), or an error past the u32 range.
fn stream_id(epoch: u64, lane: u64) -> Result<u32> {
    epoch
        .checked_mul(2)
        .and_then(|e| e.checked_add(lane))
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| Error::InvalidArgument {
            what: "epoch".into(),
            reason: format!("epoch {epoch} is past the last one with its own Philox stream"),
        })
}

/// The Philox stream of epoch `epoch`'s noise: `(seed, 2·epoch + 1)`.
pub fn noise_stream(seed: u64, epoch: u64) -> Result<PhiloxStream> {
    Ok(PhiloxStream::new(seed, stream_id(epoch, 1)?))
}

/// Epoch `epoch`'s permutation of `0..n`: Fisher–Yates on stream `(seed, 2·epoch + 2)`, index
/// `⌊w·(i + 1)/2³²⌋` from the 32-bit word w (bias ≤ n/2³²).
pub(crate) fn epoch_permutation(seed: u64, epoch: u64, n: usize) -> Result<Vec<u32>> {
    let n32 = u32::try_from(n).map_err(|_| Error::InvalidArgument {
        what: "samples N".into(),
        reason: format!("must be < 2³², got {n}"),
    })?;
    let mut rng = Rng::new(seed, stream_id(epoch, 2)?);
    let mut p: Vec<u32> = (0..n32).collect();
    for i in (1..n).rev() {
        let j = ((u64::from(rng.next_u32()) * (i as u64 + 1)) >> 32) as usize;
        p.swap(i, j);
    }
    Ok(p)
}

/// The noise ε (row-major, `rows × dim`) of batch `batch` of epoch `epoch`, as the gather
/// kernel draws it: element e is normal `e mod 4` of block `batch·2³² + ⌊e/4⌋` of
/// [`noise_stream`] (computed in f64; the GPU's f32 normals are within
/// [`NORMAL_ABS_ERROR_F32`]).
pub fn batch_noise(seed: u64, epoch: u64, batch: u32, rows: usize, dim: usize) -> Result<Vec<f64>> {
    let stream = noise_stream(seed, epoch)?;
    let total = rows * dim;
    let mut out = Vec::with_capacity(total);
    for blk in 0..total.div_ceil(4) as u64 {
        let z = stream.normals((u64::from(batch) << 32) | blk);
        out.extend(z.iter().take(total - out.len()));
    }
    Ok(out)
}
