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
//! 5. Adam on W₁, b₁, W₂, b₂ (`mlp_adam` of `gpu/mlp.wgsl`, bias-corrected, the kernel that
//!    [`crate::gpu::mlp::adam_reference`] checks).
//!
//! A whole epoch is recorded into one submission; its loss, the mean over the epoch's samples of
//! `‖x̂ − x‖²` (each batch evaluated before its own update), is summed on the GPU and is the only
//! value read back.
//!
//! Randomness (all [`crate::rng`] Philox streams keyed by the seed): the initialisation is
//! stream 0; epoch t's permutation is stream `2t + 2`, its noise stream `2t + 1`, in which
//! element `e = r·d + j` of batch b is normal `e mod 4` of block `b·2³² + ⌊e/4⌋`. A checkpoint
//! ([`DenseState`]) holds the f32 parameters, Adam moments, step and epoch counts and the seed,
//! so a resumed run is bit-for-bit the uninterrupted one.

use super::gemm::{Bias, Epilogue, GpuMat, PreparedProduct, Product};
use super::mlp::AdamConfig;
use super::philox::NORMAL_ABS_ERROR_F32;
use super::shaders;
use super::uniforms::{AdamParams, ColumnSumParams, GatherParams, LayerParams, ResidualParams};
use super::{grid_for, Dispatch, Gpu, WORKGROUP_SIZE};
use crate::denoisers::bottleneck::{Architecture, BottleneckNet, SigmaInput};
use crate::error::{Error, Result};
use crate::linalg::Mat;
use crate::numerics::activation::{activation_rounding, derivative_from_output, Activation};
use crate::numerics::F32_UNIT_ROUNDOFF as U;
use crate::numerics::{gamma_f32, DotBound};
use crate::rng::{PhiloxStream, Rng};
use serde::{Deserialize, Serialize};

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

/// The parameters of the network `x̂ = W₂·φ(W₁·y + b₁) + b₂` in f64.
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

impl DenseParams {
    /// The same network as a [`BottleneckNet`] (encoder = the hidden layer with φ, linear
    /// decoder, σ-blind), to denoise or sample with on the CPU.
    pub fn network(&self, activation: Activation) -> Result<BottleneckNet> {
        let (h, d) = (self.w1.nrows(), self.w1.ncols());
        let arch = Architecture {
            dim: d,
            encoder: vec![],
            bottleneck: h,
            decoder: vec![],
            hidden: activation,
            code: activation,
            output: Activation::Identity,
            sigma: SigmaInput::None,
        };
        let mut theta = Vec::with_capacity(arch.parameter_count());
        for (w, b) in [(&self.w1, &self.b1), (&self.w2, &self.b2)] {
            for i in 0..w.nrows() {
                theta.extend((0..w.ncols()).map(|j| w[(i, j)]));
            }
            theta.extend(b);
        }
        BottleneckNet::from_parameters(arch, &theta)
    }
}

/// One tensor's f32 values and Adam moments, row-major.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdamTensor {
    /// θ.
    pub value: Vec<f32>,
    /// Adam's first moment m.
    pub m: Vec<f32>,
    /// Adam's second moment v.
    pub v: Vec<f32>,
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
pub fn epoch_permutation(seed: u64, epoch: u64, n: usize) -> Result<Vec<u32>> {
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

/// The inputs of one batch as the gather kernel builds them, in f64.
#[derive(Debug, Clone)]
pub struct BatchInputs {
    /// `X_b`: the data rows of the epoch's permutation.
    pub x: Mat,
    /// `Y_b = α·X_b + σ·ε` with the CPU's ε.
    pub y: Mat,
    /// Elementwise bound on the kernel's `|Ŷ − Y|`:
    /// `γ₃(|αx| + |σ|(|ε| + Δε)) + |σ|Δε`, Δε = [`NORMAL_ABS_ERROR_F32`] (α, σ rounded to f32,
    /// two products and a sum, and the normal's own error).
    pub y_bound: Mat,
}

/// The reference of the gather: batch `batch` (of size `batch_size`, the last one shorter) of
/// epoch `epoch` for `data` (N×d, values as the GPU holds them, i.e. f32-representable).
pub fn batch_inputs_reference(
    data: &Mat,
    seed: u64,
    epoch: u64,
    (batch_size, batch): (usize, usize),
    alpha: f64,
    sigma: f64,
) -> Result<BatchInputs> {
    let (n, d) = (data.nrows(), data.ncols());
    let (start, rows) = batch_range(n, batch_size, batch)?;
    let perm = epoch_permutation(seed, epoch, n)?;
    let eps = batch_noise(seed, epoch, batch as u32, rows, d)?;
    let g3 = gamma_f32(3);
    let x = Mat::from_fn(rows, d, |r, j| data[(perm[start + r] as usize, j)]);
    let y = Mat::from_fn(rows, d, |r, j| alpha * x[(r, j)] + sigma * eps[r * d + j]);
    let y_bound = Mat::from_fn(rows, d, |r, j| {
        let e = eps[r * d + j].abs();
        g3 * ((alpha * x[(r, j)]).abs() + sigma.abs() * (e + NORMAL_ABS_ERROR_F32))
            + sigma.abs() * NORMAL_ABS_ERROR_F32
    });
    Ok(BatchInputs { x, y, y_bound })
}

/// `(start, rows)` of batch `batch` among N samples in batches of B, or an error naming it.
fn batch_range(n: usize, batch_size: usize, batch: usize) -> Result<(usize, usize)> {
    let count = n.div_ceil(batch_size.max(1));
    if batch_size == 0 || batch >= count {
        return Err(Error::InvalidArgument {
            what: "batch index".into(),
            reason: format!("{batch} with batch size {batch_size} and N = {n} ({count} batches)"),
        });
    }
    let start = batch * batch_size;
    Ok((start, batch_size.min(n - start)))
}

/// The f64 reference of one batch's forward and backward pass with elementwise bounds on the
/// GPU's f32 error ([`batch_reference`]).
#[derive(Debug, Clone)]
pub struct BatchReference {
    /// `X̂`.
    pub x_hat: Mat,
    /// Bound on `|X̂_gpu − X̂|`.
    pub x_hat_bound: Mat,
    /// `‖x̂_r − x_r‖²` per row.
    pub row_sq: Vec<f64>,
    /// Bound on the GPU's error in each.
    pub row_sq_bound: Vec<f64>,
    /// The gradient of `(1/B)Σ_r‖x̂_r − x_r‖²`.
    pub gradient: DenseParams,
    /// Elementwise bounds on the GPU's gradient error.
    pub gradient_bound: DenseParams,
}

/// The f64 forward and backward pass of one batch — clean rows `x`, noisy inputs `y` known to
/// within `y_bound` (from [`batch_inputs_reference`]), parameters as the GPU holds them — with
/// first-order running error bounds on the kernels' f32 results (u = 2⁻²⁴, γ_n = nu/(1 − nu)):
/// * a GEMM entry `Σ_l a_l b_l (+ bias)` over k terms: `γ_{k+1}Σ(|a| + δa)(|b| + δb) +
///   Σ(δa|b| + |a|δb)` (k products and additions, the bias addition);
/// * `H = φ(Z)`: `Lip(φ)·δZ + ρ_φ` ([`activation_rounding`]);
/// * residual `X̂ − X` (u), `G = fl(2/B)·res` (γ₂); the row sums of squares pass through
///   `⌈d/64⌉` strided additions and a 6-level tree: `γ_{⌈d/64⌉+7}Σ(|res| + δres)²` on top of
///   `Σ(2|res|δres + δres²)`;
/// * the mask `φ'` from H: tanh `1 − H²` errs by `(2|H| + δH)δH + u(|H| + δH)² + u|φ'|`; a
///   (leaky) ReLU mask is exact unless `|Z| ≤ δZ` (the f32 Z may sit across the kink:
///   `|1 − slope|`), plus the slope's rounding; `dZ = dH·φ'` adds one rounding;
/// * bias gradients are sequential column sums over the B rows (`γ_B`).
pub fn batch_reference(
    params: &DenseParams,
    activation: Activation,
    x: &Mat,
    y: &Mat,
    y_bound: &Mat,
) -> Result<BatchReference> {
    let (rows, d) = (x.nrows(), x.ncols());
    let h = params.b1.len();
    let shapes_ok = (y.nrows(), y.ncols()) == (rows, d)
        && (y_bound.nrows(), y_bound.ncols()) == (rows, d)
        && (params.w1.nrows(), params.w1.ncols()) == (h, d)
        && (params.w2.nrows(), params.w2.ncols()) == (d, h)
        && params.b2.len() == d;
    if !shapes_ok || rows == 0 {
        return Err(Error::InvalidArgument {
            what: "dense batch reference".into(),
            reason: format!(
                "need x, y, y_bound B×d (B ≥ 1), W₁ h×d, b₁ h, W₂ d×h, b₂ d; got x {rows}×{d}, \
                 y {}×{}, W₁ {}×{}, b₁ {h}, W₂ {}×{}, b₂ {}",
                y.nrows(),
                y.ncols(),
                params.w1.nrows(),
                params.w1.ncols(),
                params.w2.nrows(),
                params.w2.ncols(),
                params.b2.len()
            ),
        });
    }
    let (w1, w2) = (&params.w1, &params.w2);
    // forward: Z, H
    let mut z = Mat::zeros(rows, h);
    let mut ez = Mat::zeros(rows, h);
    let mut hh = Mat::zeros(rows, h);
    let mut eh = Mat::zeros(rows, h);
    for r in 0..rows {
        for q in 0..h {
            let mut acc = DotBound::new(params.b1[q]);
            for j in 0..d {
                acc.add((y[(r, j)], y_bound[(r, j)]), (w1[(q, j)], 0.0));
            }
            let (v, e) = acc.finish(1);
            z[(r, q)] = v;
            ez[(r, q)] = e;
            hh[(r, q)] = activation.apply(v);
            eh[(r, q)] = activation.lipschitz() * e + activation_rounding(activation, v);
        }
    }
    // X̂, residual, G, row sums of squares
    let scale = 2.0 / rows as f64;
    let mut x_hat = Mat::zeros(rows, d);
    let mut x_hat_bound = Mat::zeros(rows, d);
    let mut g = Mat::zeros(rows, d);
    let mut eg = Mat::zeros(rows, d);
    let mut row_sq = vec![0.0; rows];
    let mut row_sq_bound = vec![0.0; rows];
    let sum_rounding = gamma_f32(d.div_ceil(64) + 7);
    for r in 0..rows {
        let (mut mag, mut prop) = (0.0, 0.0);
        for j in 0..d {
            let mut acc = DotBound::new(params.b2[j]);
            for q in 0..h {
                acc.add((hh[(r, q)], eh[(r, q)]), (w2[(j, q)], 0.0));
            }
            let (v, e) = acc.finish(1);
            x_hat[(r, j)] = v;
            x_hat_bound[(r, j)] = e;
            let res = v - x[(r, j)];
            let eres = e + U * (res.abs() + e);
            g[(r, j)] = scale * res;
            eg[(r, j)] = scale * (eres + gamma_f32(2) * (res.abs() + eres));
            row_sq[r] += res * res;
            prop += 2.0 * res.abs() * eres + eres * eres;
            mag += (res.abs() + eres).powi(2);
        }
        row_sq_bound[r] = sum_rounding * mag + prop;
    }
    // ∇W₂ = Gᵀ·H, ∇b₂ = colsum G
    let mut dw2 = Mat::zeros(d, h);
    let mut edw2 = Mat::zeros(d, h);
    let mut db2 = vec![0.0; d];
    let mut edb2 = vec![0.0; d];
    for j in 0..d {
        for q in 0..h {
            let mut acc = DotBound::new(0.0);
            for r in 0..rows {
                acc.add((g[(r, j)], eg[(r, j)]), (hh[(r, q)], eh[(r, q)]));
            }
            (dw2[(j, q)], edw2[(j, q)]) = acc.finish(1);
        }
        let mut acc = DotBound::new(0.0);
        for r in 0..rows {
            acc.add((g[(r, j)], eg[(r, j)]), (1.0, 0.0));
        }
        (db2[j], edb2[j]) = acc.finish(0);
    }
    // dZ = (G·W₂) ⊙ φ'(H)
    let mut dz = Mat::zeros(rows, h);
    let mut edz = Mat::zeros(rows, h);
    for r in 0..rows {
        for q in 0..h {
            let mut acc = DotBound::new(0.0);
            for j in 0..d {
                acc.add((g[(r, j)], eg[(r, j)]), (w2[(j, q)], 0.0));
            }
            let (dh, edh) = acc.finish(1);
            let (hv, he) = (hh[(r, q)], eh[(r, q)]);
            let m = derivative_from_output(activation, hv);
            let em = match activation {
                Activation::Identity => 0.0,
                Activation::Tanh => {
                    let sq = (2.0 * hv.abs() + he) * he;
                    sq + U * (hv.abs() + he).powi(2) + U * (m.abs() + sq)
                }
                Activation::Relu | Activation::LeakyRelu { .. } => {
                    let slope = match activation {
                        Activation::LeakyRelu { slope } => slope,
                        _ => 0.0,
                    };
                    let flip = if z[(r, q)].abs() <= ez[(r, q)] {
                        (1.0 - slope).abs()
                    } else {
                        0.0
                    };
                    flip + if hv > 0.0 { 0.0 } else { U * slope.abs() }
                }
            };
            dz[(r, q)] = dh * m;
            edz[(r, q)] =
                m.abs() * edh + em * (dh.abs() + edh) + U * (dh.abs() + edh) * (m.abs() + em);
        }
    }
    // ∇W₁ = dZᵀ·Y, ∇b₁ = colsum dZ
    let mut dw1 = Mat::zeros(h, d);
    let mut edw1 = Mat::zeros(h, d);
    let mut db1 = vec![0.0; h];
    let mut edb1 = vec![0.0; h];
    for q in 0..h {
        for j in 0..d {
            let mut acc = DotBound::new(0.0);
            for r in 0..rows {
                acc.add((dz[(r, q)], edz[(r, q)]), (y[(r, j)], y_bound[(r, j)]));
            }
            (dw1[(q, j)], edw1[(q, j)]) = acc.finish(1);
        }
        let mut acc = DotBound::new(0.0);
        for r in 0..rows {
            acc.add((dz[(r, q)], edz[(r, q)]), (1.0, 0.0));
        }
        (db1[q], edb1[q]) = acc.finish(0);
    }
    Ok(BatchReference {
        x_hat,
        x_hat_bound,
        row_sq,
        row_sq_bound,
        gradient: DenseParams {
            w1: dw1,
            b1: db1,
            w2: dw2,
            b2: db2,
        },
        gradient_bound: DenseParams {
            w1: edw1,
            b1: edb1,
            w2: edw2,
            b2: edb2,
        },
    })
}

/// Draws one batch of noisy inputs with the gather kernel of `gpu/dense.wgsl`: row r of
/// `clean` (rows × dim) is row `permutation[start + r]` of the resident `data`, and row r of
/// `noisy` is `α·clean_r + σ·ε_r` with ε from Philox (`seed`, `stream`), counter block
/// `(batch, r, ·)` — the draw the trainer makes per batch, for callers outside it (the image
/// experiments). `params.grid_x` must be `groups[0]`.
pub(crate) fn gather_noisy(
    gpu: &Gpu,
    params: &GatherParams,
    permutation: &wgpu::Buffer,
    data: &wgpu::Buffer,
    clean: &wgpu::Buffer,
    noisy: &wgpu::Buffer,
    groups: [u32; 3],
) -> Result<()> {
    let uniform = gpu.uniform("dense gather", params);
    gpu.dispatch(
        &shaders::DENSE_GATHER,
        &[&uniform, permutation, data, clean, noisy],
        groups,
    )
}

/// A tensor of the network: its value and gradient (as matrices the GEMMs bind) and Adam's
/// moments.
struct Tensor {
    value: GpuMat,
    grad: GpuMat,
    m: wgpu::Buffer,
    v: wgpu::Buffer,
    len: usize,
}

impl Tensor {
    fn new(gpu: &Gpu, label: &str, value: &Mat) -> Result<Self> {
        let (r, c) = (value.nrows(), value.ncols());
        let zeros = vec![0.0f32; r * c];
        let m = gpu.output(label, r * c)?;
        let v = gpu.output(label, r * c)?;
        gpu.queue()
            .write_buffer(&m, 0, bytemuck::cast_slice(&zeros));
        gpu.queue()
            .write_buffer(&v, 0, bytemuck::cast_slice(&zeros));
        Ok(Self {
            value: GpuMat::upload(gpu, label, value)?,
            grad: GpuMat::poisoned(gpu, label, r, c)?,
            m,
            v,
            len: r * c,
        })
    }

    fn state(&self, gpu: &Gpu) -> Result<AdamTensor> {
        Ok(AdamTensor {
            value: gpu.read(self.value.buffer(), self.len)?,
            m: gpu.read(&self.m, self.len)?,
            v: gpu.read(&self.v, self.len)?,
        })
    }

    fn check(&self, what: &str, s: &AdamTensor) -> Result<()> {
        for (part, x) in [("value", &s.value), ("m", &s.m), ("v", &s.v)] {
            if x.len() != self.len {
                return Err(Error::DimensionMismatch {
                    what: format!("checkpoint {what} {part}").into(),
                    expected: self.len,
                    got: x.len(),
                });
            }
            if let Some(i) = x.iter().position(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    what: format!("checkpoint {what} {part}").into(),
                    index: i,
                    value: f64::from(x[i]),
                });
            }
        }
        if let Some(i) = s.v.iter().position(|v| *v < 0.0) {
            return Err(Error::InvalidArgument {
                what: format!("checkpoint {what} v").into(),
                reason: format!("Adam's second moment must be ≥ 0, got {} at {i}", s.v[i]),
            });
        }
        Ok(())
    }

    fn write(&self, gpu: &Gpu, s: &AdamTensor) {
        let q = gpu.queue();
        q.write_buffer(self.value.buffer(), 0, bytemuck::cast_slice(&s.value));
        q.write_buffer(&self.m, 0, bytemuck::cast_slice(&s.m));
        q.write_buffer(&self.v, 0, bytemuck::cast_slice(&s.v));
    }
}

/// The work matrices of one batch shape.
struct Work {
    x: GpuMat,
    y: GpuMat,
    h: GpuMat,
    x_hat: GpuMat,
    g: GpuMat,
    dz: GpuMat,
}

impl Work {
    fn new(gpu: &Gpu, rows: usize, d: usize, h: usize) -> Result<Self> {
        Ok(Self {
            x: GpuMat::poisoned(gpu, "dense X_b", rows, d)?,
            y: GpuMat::poisoned(gpu, "dense Y_b", rows, d)?,
            h: GpuMat::poisoned(gpu, "dense H", rows, h)?,
            x_hat: GpuMat::poisoned(gpu, "dense X̂", rows, d)?,
            g: GpuMat::poisoned(gpu, "dense G", rows, d)?,
            dz: GpuMat::poisoned(gpu, "dense dZ", rows, h)?,
        })
    }

    /// The same buffers viewed with `rows` rows.
    fn leading(&self, rows: usize) -> Result<Self> {
        Ok(Self {
            x: self.x.leading_rows(rows)?,
            y: self.y.leading_rows(rows)?,
            h: self.h.leading_rows(rows)?,
            x_hat: self.x_hat.leading_rows(rows)?,
            g: self.g.leading_rows(rows)?,
            dz: self.dz.leading_rows(rows)?,
        })
    }
}

/// Per-batch uniforms: gather and Adam (rewritten every epoch), residual and column sums.
struct Slot {
    start: usize,
    rows: usize,
    gather: wgpu::Buffer,
    gather_groups: [u32; 3],
    residual: wgpu::Buffer,
    sum_d: wgpu::Buffer,
    sum_h: wgpu::Buffer,
    adam: [wgpu::Buffer; 4],
}

/// The one-hidden-layer dense trainer (module doc), holding the data, the network, Adam's state
/// and the work buffers of one batch on the GPU.
pub struct DenseTrainer<'g> {
    gpu: &'g Gpu,
    config: DenseConfig,
    dim: usize,
    samples: usize,
    data: GpuMat,
    /// W₁ (h×d), b₁ (1×h), W₂ (d×h), b₂ (1×d).
    tensors: [Tensor; 4],
    full: Work,
    short: Option<Work>,
    slots: Vec<Slot>,
    perm: wgpu::Buffer,
    row_sq: wgpu::Buffer,
    loss: wgpu::Buffer,
    sum_params: wgpu::Buffer,
    sum_d_groups: [u32; 3],
    sum_h_groups: [u32; 3],
    seed: u64,
    step: u64,
    epoch: u64,
}

fn groups_1d(gpu: &Gpu, n: usize) -> [u32; 3] {
    grid_for(
        (n as u32).div_ceil(WORKGROUP_SIZE),
        gpu.limits().max_compute_workgroups_per_dimension,
    )
}

fn check_alpha_sigma(alpha: f64, sigma: f64) -> Result<()> {
    if !alpha.is_finite() {
        return Err(Error::InvalidArgument {
            what: "alpha".into(),
            reason: format!("must be finite, got {alpha}"),
        });
    }
    crate::error::ensure_sigma(sigma)
}

impl<'g> DenseTrainer<'g> {
    /// A network for the N×d clean images `data` (resident; shared, not copied), initialised as
    /// PyTorch's `nn.Linear`: every weight and bias of a layer with fan-in f drawn from
    /// `U(−1/√f, 1/√f)` (W₁, b₁, W₂, b₂ in that order from stream 0 of the seed), then rounded
    /// to f32; Adam's moments zero, step and epoch 0.
    pub fn new(gpu: &'g Gpu, data: &GpuMat, config: DenseConfig) -> Result<Self> {
        config.validate()?;
        let (n, d) = data.shape();
        let (h, b) = (config.hidden, config.batch);
        if n == 0 || d == 0 {
            return Err(Error::InvalidArgument {
                what: "training data".into(),
                reason: format!("need N ≥ 1 rows of d ≥ 1 pixels, got {n}×{d}"),
            });
        }
        if b > n {
            return Err(Error::InvalidArgument {
                what: "batch size".into(),
                reason: format!("{b} exceeds the N = {n} samples"),
            });
        }
        let max = gpu.limits().max_compute_workgroups_per_dimension as usize;
        if b > max
            || n.checked_mul(d.max(h))
                .is_none_or(|v| v > u32::MAX as usize)
        {
            return Err(Error::GpuLimit(format!(
                "dense trainer: batch {b} (one workgroup per row, ≤ {max}) or N·max(d, h) = \
                 {n}·{} (u32 indices)",
                d.max(h)
            )));
        }
        let mut rng = Rng::new(config.seed, INIT_STREAM);
        let mut row_major = |rows: usize, cols: usize, fan_in: usize| {
            let s = 1.0 / (fan_in as f64).sqrt();
            let v: Vec<f64> = (0..rows * cols)
                .map(|_| s * (2.0 * rng.uniform() - 1.0))
                .collect();
            Mat::from_fn(rows, cols, |i, j| v[i * cols + j])
        };
        let w1 = row_major(h, d, d);
        let b1 = row_major(1, h, d);
        let w2 = row_major(d, h, h);
        let b2 = row_major(1, d, h);
        let tensors = [
            Tensor::new(gpu, "dense W1", &w1)?,
            Tensor::new(gpu, "dense b1", &b1)?,
            Tensor::new(gpu, "dense W2", &w2)?,
            Tensor::new(gpu, "dense b2", &b2)?,
        ];
        let full = Work::new(gpu, b, d, h)?;
        let short = match n % b {
            0 => None,
            r => Some(full.leading(r)?),
        };
        let sum_d_groups = groups_1d(gpu, d);
        let sum_h_groups = groups_1d(gpu, h);
        let mut slots = Vec::new();
        for k in 0..n.div_ceil(b) {
            let (start, rows) = batch_range(n, b, k)?;
            let gather_groups = groups_1d(gpu, (rows * d).div_ceil(4));
            let residual = ResidualParams {
                rows: rows as u32,
                dim: d as u32,
                offset: start as u32,
                scale: (2.0 / rows as f64) as f32,
                ..ResidualParams::default()
            };
            let sum = |cols: usize, groups: [u32; 3]| ColumnSumParams {
                rows: rows as u32,
                cols: cols as u32,
                grid_x: groups[0],
                pad: 0,
            };
            slots.push(Slot {
                start,
                rows,
                gather: gpu.uniform("dense gather", &GatherParams::default()),
                gather_groups,
                residual: gpu.uniform("dense residual", &residual),
                sum_d: gpu.uniform("dense column sum", &sum(d, sum_d_groups)),
                sum_h: gpu.uniform("dense column sum", &sum(h, sum_h_groups)),
                adam: std::array::from_fn(|_| gpu.uniform("dense adam", &AdamParams::default())),
            });
        }
        // `mlp_sum` reads the count from the first word of its `LayerParams`.
        let sum_params = LayerParams {
            m: n as u32,
            ..LayerParams::default()
        };
        Ok(Self {
            gpu,
            config,
            dim: d,
            samples: n,
            data: data.leading_rows(n)?,
            tensors,
            full,
            short,
            slots,
            perm: gpu.output("dense permutation", n)?,
            row_sq: gpu.output("dense row squared errors", n)?,
            loss: gpu.output("dense epoch loss", 1)?,
            sum_params: gpu.uniform("dense loss sum", &sum_params),
            sum_d_groups,
            sum_h_groups,
            seed: config.seed,
            step: 0,
            epoch: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DenseConfig {
        &self.config
    }

    /// Epochs completed (the index of the next epoch).
    pub fn epochs_done(&self) -> u64 {
        self.epoch
    }

    /// Adam steps taken.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// Batches per epoch, `⌈N/B⌉`.
    pub fn batches_per_epoch(&self) -> usize {
        self.slots.len()
    }

    fn work(&self, slot: usize) -> &Work {
        match &self.short {
            Some(short) if self.slots[slot].rows < self.config.batch => short,
            _ => &self.full,
        }
    }

    /// Uploads epoch `epoch`'s permutation and writes every batch's gather parameters.
    fn write_epoch(&self, epoch: u64, alpha: f64, sigma: f64) -> Result<()> {
        let perm = epoch_permutation(self.seed, epoch, self.samples)?;
        let q = self.gpu.queue();
        q.write_buffer(&self.perm, 0, bytemuck::cast_slice(&perm));
        let stream = noise_stream(self.seed, epoch)?;
        for (k, slot) in self.slots.iter().enumerate() {
            let u = GatherParams {
                rows: slot.rows as u32,
                dim: self.dim as u32,
                start: slot.start as u32,
                batch: k as u32,
                stream: stream.stream,
                seed_lo: self.seed as u32,
                seed_hi: (self.seed >> 32) as u32,
                grid_x: slot.gather_groups[0],
                alpha: alpha as f32,
                sigma: sigma as f32,
                ..GatherParams::default()
            };
            q.write_buffer(&slot.gather, 0, bytemuck::bytes_of(&u));
        }
        Ok(())
    }

    /// Writes batch `slot`'s Adam parameters for step `step`.
    fn write_adam(&self, slot: usize, step: u64) {
        for (t, buffer) in self.tensors.iter().zip(&self.slots[slot].adam) {
            let u = crate::gpu::mlp::adam_params(&self.config.adam, step, t.len);
            self.gpu
                .queue()
                .write_buffer(buffer, 0, bytemuck::bytes_of(&u));
        }
    }

    /// The five GEMMs of a batch: forward `H`, `X̂`; backward `∇W₂`, `dZ`, `∇W₁`.
    fn products(&self, slot: usize) -> Result<Vec<PreparedProduct<'_>>> {
        let w = self.work(slot);
        let [w1, b1, w2, b2] = &self.tensors;
        let act = self.config.activation;
        [
            Product::new((&w.y, false), (&w1.value, true), &w.h).with(Epilogue::Activation {
                bias: Bias::PerColumn(&b1.value),
                activation: act,
            }),
            Product::new((&w.h, false), (&w2.value, true), &w.x_hat).with(Epilogue::Activation {
                bias: Bias::PerColumn(&b2.value),
                activation: Activation::Identity,
            }),
            Product::new((&w.g, true), (&w.h, false), &w2.grad),
            Product::new((&w.g, false), (&w2.value, false), &w.dz).with(Epilogue::DerivativeMask {
                activation: act,
                output: &w.h,
            }),
            Product::new((&w.dz, true), (&w.y, false), &w1.grad),
        ]
        .into_iter()
        .map(|p| p.prepare(self.gpu))
        .collect()
    }

    /// The dispatches of batch `slot` (gather, forward, loss, backward, and Adam if `update`).
    fn batch_specs<'s>(
        &'s self,
        slot: usize,
        products: &'s [PreparedProduct<'s>],
        update: bool,
    ) -> Vec<Dispatch<'s>> {
        let s = &self.slots[slot];
        let w = self.work(slot);
        let [_, b1, _, b2] = &self.tensors;
        // a product is one dispatch, or two when split along k
        let gemm = |i: usize| -> Vec<Dispatch<'s>> { products[i].dispatches() };
        let mut specs = [
            vec![(
                &shaders::DENSE_GATHER,
                vec![
                    &s.gather,
                    &self.perm,
                    self.data.buffer(),
                    w.x.buffer(),
                    w.y.buffer(),
                ],
                s.gather_groups,
            )],
            gemm(0),
            gemm(1),
            vec![
                (
                    &shaders::DENSE_RESIDUAL,
                    vec![
                        &s.residual,
                        w.x_hat.buffer(),
                        w.x.buffer(),
                        w.g.buffer(),
                        &self.row_sq,
                    ],
                    [s.rows as u32, 1, 1],
                ),
                (
                    &shaders::DENSE_COLUMN_SUM,
                    vec![&s.sum_d, w.g.buffer(), b2.grad.buffer()],
                    self.sum_d_groups,
                ),
            ],
            gemm(2),
            gemm(3),
            vec![(
                &shaders::DENSE_COLUMN_SUM,
                vec![&s.sum_h, w.dz.buffer(), b1.grad.buffer()],
                self.sum_h_groups,
            )],
            gemm(4),
        ]
        .concat();
        if update {
            for (t, params) in self.tensors.iter().zip(&s.adam) {
                specs.push((
                    &shaders::MLP_ADAM,
                    vec![params, t.grad.buffer(), t.value.buffer(), &t.m, &t.v],
                    groups_1d(self.gpu, t.len),
                ));
            }
        }
        specs
    }

    fn check_batch(&self, epoch: u64, batch: usize) -> Result<()> {
        stream_id(epoch, 2)?;
        batch_range(self.samples, self.config.batch, batch).map(|_| ())
    }

    /// Trains `epochs` epochs (each one submission: every batch's gather, forward, backward and
    /// Adam step, then the loss sum) on `y = α·x + σ·ε`, calling `on_epoch(epoch index, loss)`
    /// after each, and returns the losses: the mean over the epoch's N samples of `‖x̂ − x‖²`,
    /// each batch evaluated before its own update. The epoch index (which keys the permutation
    /// and the noise) continues from [`DenseTrainer::epochs_done`].
    pub fn train_epochs(
        &mut self,
        alpha: f64,
        sigma: f64,
        epochs: usize,
        on_epoch: &mut dyn FnMut(usize, f64),
    ) -> Result<Vec<f64>> {
        check_alpha_sigma(alpha, sigma)?;
        // The products and dispatches depend only on the batch slots' buffers: prepared once,
        // replayed every epoch after the permutation, gather and Adam uniforms are rewritten.
        let products: Vec<Vec<PreparedProduct>> = (0..self.slots.len())
            .map(|slot| self.products(slot))
            .collect::<Result<_>>()?;
        let mut specs: Vec<Dispatch> = Vec::new();
        for (slot, p) in products.iter().enumerate() {
            specs.extend(self.batch_specs(slot, p, true));
        }
        specs.push((
            &shaders::MLP_SUM,
            vec![&self.sum_params, &self.row_sq, &self.loss],
            [1, 1, 1],
        ));
        let (mut epoch, mut step) = (self.epoch, self.step);
        let mut losses = Vec::with_capacity(epochs);
        let mut run_epoch = || -> Result<()> {
            stream_id(epoch, 2)?;
            self.write_epoch(epoch, alpha, sigma)?;
            for slot in 0..self.slots.len() {
                self.write_adam(slot, step + 1 + slot as u64);
            }
            self.gpu.run_dispatches(&specs, 1)?;
            let total: Vec<f32> = self.gpu.read(&self.loss, 1)?;
            let loss = f64::from(total[0]) / self.samples as f64;
            on_epoch(epoch as usize, loss);
            step += self.slots.len() as u64;
            epoch += 1;
            losses.push(loss);
            Ok(())
        };
        let outcome = (0..epochs).try_for_each(|_| run_epoch());
        drop(specs);
        drop(products);
        // Counts advance by the epochs that completed, also when a later one failed.
        self.epoch = epoch;
        self.step = step;
        outcome.map(|()| losses)
    }

    /// One Adam step on batch `batch` of epoch `epoch`'s permutation and noise — the step
    /// [`DenseTrainer::train_epochs`] takes there — returning the batch's loss
    /// `(1/B)Σ_r‖x̂_r − x_r‖²` before the update. Advances the step count, not the epoch count.
    pub fn train_batch(&mut self, alpha: f64, sigma: f64, epoch: u64, batch: usize) -> Result<f64> {
        check_alpha_sigma(alpha, sigma)?;
        self.check_batch(epoch, batch)?;
        self.write_epoch(epoch, alpha, sigma)?;
        self.write_adam(batch, self.step + 1);
        let products = self.products(batch)?;
        self.gpu
            .run_dispatches(&self.batch_specs(batch, &products, true), 1)?;
        self.step += 1;
        let s = &self.slots[batch];
        let sq: Vec<f32> = self.gpu.read(&self.row_sq, s.start + s.rows)?;
        Ok(sq[s.start..].iter().map(|&v| f64::from(v)).sum::<f64>() / s.rows as f64)
    }

    /// Gather, forward and backward of batch `batch` of epoch `epoch` without updating: the
    /// GPU's inputs, outputs, per-row squared errors and gradient, for the parity tests.
    pub fn evaluate_batch(
        &self,
        alpha: f64,
        sigma: f64,
        epoch: u64,
        batch: usize,
    ) -> Result<BatchEvaluation> {
        check_alpha_sigma(alpha, sigma)?;
        self.check_batch(epoch, batch)?;
        self.write_epoch(epoch, alpha, sigma)?;
        let products = self.products(batch)?;
        self.gpu
            .run_dispatches(&self.batch_specs(batch, &products, false), 1)?;
        let w = self.work(batch);
        let s = &self.slots[batch];
        let sq: Vec<f32> = self.gpu.read(&self.row_sq, s.start + s.rows)?;
        Ok(BatchEvaluation {
            x: w.x.download(self.gpu)?,
            y: w.y.download(self.gpu)?,
            x_hat: w.x_hat.download(self.gpu)?,
            row_sq: sq[s.start..].iter().map(|&v| f64::from(v)).collect(),
            gradient: self.download(|t| &t.grad)?,
        })
    }

    fn download(&self, pick: impl Fn(&Tensor) -> &GpuMat) -> Result<DenseParams> {
        let row = |m: Mat| (0..m.ncols()).map(|j| m[(0, j)]).collect::<Vec<f64>>();
        let [w1, b1, w2, b2] = &self.tensors;
        Ok(DenseParams {
            w1: pick(w1).download(self.gpu)?,
            b1: row(pick(b1).download(self.gpu)?),
            w2: pick(w2).download(self.gpu)?,
            b2: row(pick(b2).download(self.gpu)?),
        })
    }

    /// `x̂ = W₂·φ(W₁·y + b₁) + b₂` for every row of `y` (R×d, any R) into `out` (R×d; it may be
    /// `y` itself, which is read before it is overwritten).
    pub fn predict(&self, y: &GpuMat, out: &GpuMat) -> Result<()> {
        let (r, d) = y.shape();
        if d != self.dim || out.shape() != (r, d) {
            return Err(Error::InvalidArgument {
                what: "dense predict".into(),
                reason: format!(
                    "need y and out R×{}, got y {r}×{d} and out {:?}",
                    self.dim,
                    out.shape()
                ),
            });
        }
        if r == 0 {
            return Ok(());
        }
        let hidden = GpuMat::poisoned(self.gpu, "dense predict H", r, self.config.hidden)?;
        let [w1, b1, w2, b2] = &self.tensors;
        let products = [
            Product::new((y, false), (&w1.value, true), &hidden).with(Epilogue::Activation {
                bias: Bias::PerColumn(&b1.value),
                activation: self.config.activation,
            }),
            Product::new((&hidden, false), (&w2.value, true), out).with(Epilogue::Activation {
                bias: Bias::PerColumn(&b2.value),
                activation: Activation::Identity,
            }),
        ]
        .into_iter()
        .map(|p| p.prepare(self.gpu))
        .collect::<Result<Vec<_>>>()?;
        super::gemm::run_products(self.gpu, &products, 1)
    }

    /// W₁, b₁, W₂, b₂ downloaded (f32 values as f64).
    pub fn parameters(&self) -> Result<DenseParams> {
        self.download(|t| &t.value)
    }

    /// A checkpoint: parameters, Adam moments, step and epoch counts, seed.
    pub fn state(&self) -> Result<DenseState> {
        let [w1, b1, w2, b2] = &self.tensors;
        Ok(DenseState {
            dim: self.dim,
            hidden: self.config.hidden,
            activation: self.config.activation,
            seed: self.seed,
            step: self.step,
            epoch: self.epoch,
            w1: w1.state(self.gpu)?,
            b1: b1.state(self.gpu)?,
            w2: w2.state(self.gpu)?,
            b2: b2.state(self.gpu)?,
        })
    }

    /// Restores a checkpoint of a network of the same d, h and φ (its seed, step and epoch
    /// counts replace this trainer's, so training continues as the saved run would have).
    pub fn set_state(&mut self, state: &DenseState) -> Result<()> {
        if (state.dim, state.hidden) != (self.dim, self.config.hidden)
            || state.activation != self.config.activation
        {
            return Err(Error::InvalidArgument {
                what: "checkpoint".into(),
                reason: format!(
                    "is d = {}, h = {}, φ = {:?}; this trainer is d = {}, h = {}, φ = {:?}",
                    state.dim,
                    state.hidden,
                    state.activation,
                    self.dim,
                    self.config.hidden,
                    self.config.activation
                ),
            });
        }
        let parts = [&state.w1, &state.b1, &state.w2, &state.b2];
        for (name, (t, s)) in ["W1", "b1", "W2", "b2"]
            .iter()
            .zip(self.tensors.iter().zip(parts))
        {
            t.check(name, s)?;
        }
        stream_id(state.epoch, 2)?;
        for (t, s) in self.tensors.iter().zip(parts) {
            t.write(self.gpu, s);
        }
        self.seed = state.seed;
        self.step = state.step;
        self.epoch = state.epoch;
        Ok(())
    }

    /// Floating-point operations of one epoch: the GEMMs `10·N·d·h` — forward `H` and `X̂`
    /// (`2·N·d·h` each) and backward `∇W₂`, `dZ`, `∇W₁` (`2·N·d·h` each; the input gradient
    /// `∂L/∂y` is never formed, so this is 5/6 of the `3×forward` rule's `12·N·d·h`) — plus
    /// the elementwise work, one flop per arithmetic operation or function: per sample
    /// `9d` (gather `αx + σε` 3, output bias 1, residual, scale, square and sum 4, `∇b₂` 1) and
    /// `6h` (bias and φ 2, mask 3, `∇b₁` 1), and per Adam step `12` per parameter.
    pub fn flops_per_epoch(&self) -> f64 {
        let (n, d, h) = (
            self.samples as f64,
            self.dim as f64,
            self.config.hidden as f64,
        );
        let params = 2.0 * d * h + d + h;
        10.0 * n * d * h + n * (9.0 * d + 6.0 * h) + 12.0 * params * self.slots.len() as f64
    }
}
