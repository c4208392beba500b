//! A small σ-conditioned U-Net denoiser (Levine–Weiss §2.1 and Fig. 1: U-Nets of 4, 3, 2 pooling
//! layers, small channels, circular padding) trained on the GPU with everything resident.
//!
//! **Architecture.** With depth D (pooling layers), widths `w_0, …, w_D` and level l at
//! resolution `H/2^l × W/2^l`, every *block* maps its input `A_in` to
//!
//! `Z = K ⋆ A_in` (convolution, `kernel × kernel`, stride 1, zero or circular padding, no bias),
//! `N = GroupNorm(Z; γ, β)` (G groups, ε = 10⁻⁵), `E = N + P·ẽ(σ)` (the σ embedding:
//! `ẽ(σ) = [sin ω_j ln σ, cos ω_j ln σ, 1]`, [`crate::gpu::embedding`]), `A = ReLU(E)`.
//!
//! The blocks, in forward order:
//! * encoder `e_0`: the image `y` (C₀ channels) → `w_0`; encoder `e_l` (l = 1..D): the average
//!   pool ×2 of `A(e_{l−1})` → `w_l`;
//! * decoder `d_l` (l = D−1 down to 0): the concatenation along channels of the ×2 upsampling
//!   (nearest or bilinear, [`Upsampling`]) of the level below's output (`A(e_D)` for l = D−1,
//!   `A(d_{l+1})` otherwise; `w_{l+1}` channels) with the skip `A(e_l)` (`w_l` channels) →
//!   `w_l`;
//! * the output `x̂ = K_out ⋆ A(last)` (`w_0 → C₀`, no bias, no normalisation), `last = d_0`
//!   (`e_0` when D = 0).
//!
//! **GroupNorm is global.** Its statistics are means over a whole (image, group), so one
//! pixel's output depends on every pixel of the image: a U-Net with GroupNorm has *no* finite
//! receptive field, unlike the BF-CNN ([`crate::gpu::bfcnn`]) whose Jacobian vanishes outside
//! its window (Levine–Weiss Thm 2's hypothesis). The locality tests keep this as a documented
//! counterexample.
//!
//! **Training** is the BF-CNN's ([`crate::gpu::bfcnn`]): a Philox permutation of the N images per
//! epoch (stream `2t + 2`), batches of B (the last shorter), `y = x + σε` drawn on the GPU by
//! the dense gather kernel (ε from stream `2t + 1`, [`batch_noise`]), the loss
//! `(1/B)Σ_r‖x̂_r − x_r‖²`, backpropagation through every block in reverse (the mask of ReLU read
//! off A, GroupNorm's and the embedding's gradients, the convolutions' input and weight
//! gradients, the pooling's and upsampling's adjoints, the concatenation's channel slices; the
//! skip's gradient added to the pooled path's), and Adam on every tensor. One epoch is one
//! submission; its mean loss the only value read back. σ is fixed within one call of
//! [`UNetTrainer::train_epochs`]; calls at several σ train one σ-conditioned network.
//!
//! **Initialisation** (stream 0 of the seed, tensors in order): PyTorch's defaults — each
//! convolution's weights `U(−1/√f, 1/√f)` with fan-in `f = in·kernel²`, GroupNorm's `γ = 1`,
//! `β = 0`, each embedding's `[W | b]` `U(−1/√2F, 1/√2F)` (`nn.Linear` with fan-in 2F).
//!
//! **Tensors** ([`UNetTrainer::parameters`], the checkpoint's order): per block in forward order
//! `K` (out × in·kernel²), `[γ | β]` (2·out), `P = [W | b]` (out × (2F + 1)); then `K_out`.
//!
//! Files: this one holds the configuration, checkpoint and trainer; `reference.rs` the f64
//! reference of the network and of one batch with running bounds on the f32 kernels' error.

mod reference;

pub use reference::*;

use super::adam::{AdamConfig, AdamTensor, Tensor};
use super::conv::{ConvShape, Padding};
use super::dense::{
    batch_range, check_training_images, noise_stream, read_batch, replay_epochs,
    write_epoch_gathers, GatherSlot,
};
use super::embedding::sigma_features;
use super::gemm::GpuMat;
use super::shaders::{self, Shader};
use super::uniforms::{
    AdamParams, ColumnSumParams, ConvParams, EmbedParams, GatherParams, NormParams, ResampleParams,
    ResidualParams, UnetParams,
};
use super::{groups_1d, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::io::grid::ImageShape;
use crate::linalg::Mat;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

pub use super::dense::batch_noise;

/// GroupNorm's variance offset ε (PyTorch's default).
pub const GROUP_NORM_EPS: f64 = 1e-5;

/// The decoder's ×2 upsampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Upsampling {
    /// Nearest neighbour: each pixel copied into a 2×2 block.
    Nearest,
    /// Bilinear, align_corners = false, edges clamped (PyTorch's `F.interpolate`).
    Bilinear,
}

/// Hyper-parameters of a [`UNetTrainer`].
#[derive(Debug, Clone, PartialEq)]
pub struct UNetConfig {
    /// The shape C₀ × H × W of the training images (H and W divisible by 2^D).
    pub image: ImageShape,
    /// Channels `w_0, …, w_D` of the levels; the depth D (pooling layers) is `widths.len() − 1`.
    pub widths: Vec<usize>,
    /// GroupNorm groups G (dividing every width).
    pub groups: usize,
    /// Frequencies F of the σ embedding (2F features).
    pub frequencies: usize,
    /// The side of every (square, odd) kernel.
    pub kernel: usize,
    /// Zero or circular padding, every convolution.
    pub padding: Padding,
    /// The decoder's upsampling.
    pub upsampling: Upsampling,
    /// Batch size B (≤ N).
    pub batch: usize,
    /// Adam.
    pub adam: AdamConfig,
    /// Seed of the initialisation, the permutations and the noise.
    pub seed: u64,
}

/// Where a block's input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockInput {
    /// The noisy image `y`.
    Image,
    /// The average pool ×2 of block `source`'s output.
    Pooled {
        /// The block whose output is pooled.
        source: usize,
    },
    /// `[Up(A(up)) | A(skip)]` along channels.
    Concat {
        /// The block below, upsampled.
        up: usize,
        /// The encoder block at this level (the skip connection).
        skip: usize,
    },
}

/// One block of the U-Net (module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// The level l (resolution `H/2^l × W/2^l`).
    pub level: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Its input.
    pub input: BlockInput,
}

impl UNetConfig {
    /// The depth D (pooling layers).
    pub fn depth(&self) -> usize {
        self.widths.len().saturating_sub(1)
    }

    /// Refuses empty or zero widths, widths not divisible by the groups, sides not divisible by
    /// 2^D, a zero batch, group count, frequency count or image side, an even kernel, or a bad
    /// Adam configuration, naming the value.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str, reason: String| {
            Err(Error::InvalidArgument {
                what: what.into(),
                reason,
            })
        };
        if self.widths.is_empty() {
            return bad("U-Net widths", "need at least one level, got none".into());
        }
        for (what, v) in [
            ("U-Net GroupNorm groups", self.groups),
            ("U-Net embedding frequencies", self.frequencies),
            ("U-Net batch size", self.batch),
            ("U-Net image channels", self.image.channels),
            ("U-Net image height", self.image.height),
            ("U-Net image width", self.image.width),
        ] {
            if v == 0 {
                return bad(what, "must be ≥ 1, got 0".into());
            }
        }
        if let Some((l, w)) = self
            .widths
            .iter()
            .enumerate()
            .find(|(_, &w)| w == 0 || !w.is_multiple_of(self.groups))
        {
            return bad(
                "U-Net widths",
                format!(
                    "level {l} has {w} channels, which must be ≥ 1 and divisible by the {} \
                     GroupNorm groups",
                    self.groups
                ),
            );
        }
        let scale = 1usize
            .checked_shl(self.depth() as u32)
            .filter(|s| *s <= self.image.height.min(self.image.width))
            .unwrap_or(0);
        if scale == 0
            || !self.image.height.is_multiple_of(scale)
            || !self.image.width.is_multiple_of(scale)
        {
            return bad(
                "U-Net image side",
                format!(
                    "{}×{} must be divisible by 2^D = 2^{} (D pooling layers)",
                    self.image.height,
                    self.image.width,
                    self.depth()
                ),
            );
        }
        if self.kernel.is_multiple_of(2) {
            return bad(
                "U-Net kernel",
                format!(
                    "the side must be odd (a centred window), got {}",
                    self.kernel
                ),
            );
        }
        self.adam.validate()
    }

    /// The blocks in forward order (module doc): `e_0, …, e_D, d_{D−1}, …, d_0`.
    pub fn blocks(&self) -> Vec<Block> {
        let d = self.depth();
        let w = &self.widths;
        let mut blocks = vec![Block {
            level: 0,
            in_channels: self.image.channels,
            out_channels: w[0],
            input: BlockInput::Image,
        }];
        for l in 1..=d {
            blocks.push(Block {
                level: l,
                in_channels: w[l - 1],
                out_channels: w[l],
                input: BlockInput::Pooled { source: l - 1 },
            });
        }
        for l in (0..d).rev() {
            let up = blocks.len() - 1;
            blocks.push(Block {
                level: l,
                in_channels: w[l + 1] + w[l],
                out_channels: w[l],
                input: BlockInput::Concat { up, skip: l },
            });
        }
        blocks
    }

    /// `(height, width)` at level `l`.
    pub fn side(&self, level: usize) -> (usize, usize) {
        (self.image.height >> level, self.image.width >> level)
    }

    /// The convolution of `block` on `batch` images.
    pub fn block_conv(&self, block: &Block, batch: usize) -> ConvShape {
        let (height, width) = self.side(block.level);
        ConvShape {
            batch,
            in_channels: block.in_channels,
            out_channels: block.out_channels,
            height,
            width,
            kernel: self.kernel,
            padding: self.padding,
        }
    }

    /// The output convolution `w_0 → C₀` on `batch` images.
    pub fn output_conv(&self, batch: usize) -> ConvShape {
        ConvShape {
            batch,
            in_channels: self.widths[0],
            out_channels: self.image.channels,
            height: self.image.height,
            width: self.image.width,
            kernel: self.kernel,
            padding: self.padding,
        }
    }

    /// The lengths of the tensors in order (module doc).
    pub fn tensor_lengths(&self) -> Vec<usize> {
        let k = 2 * self.frequencies + 1;
        let mut lengths = Vec::new();
        for b in self.blocks() {
            lengths.push(self.block_conv(&b, 1).weight_len());
            lengths.push(2 * b.out_channels);
            lengths.push(b.out_channels * k);
        }
        lengths.push(self.output_conv(1).weight_len());
        lengths
    }

    /// The name of tensor `t` in order ("block 2 K", "block 0 γβ", "block 1 P", "K_out").
    pub fn tensor_name(&self, t: usize) -> String {
        let blocks = self.blocks().len();
        if t >= 3 * blocks {
            return "K_out".into();
        }
        let part = ["K", "γβ", "P"][t % 3];
        format!("block {} {part}", t / 3)
    }

    /// The initial tensors (module doc), f64 values of f32 numbers.
    fn initial_tensors(&self) -> Vec<Vec<f64>> {
        let mut rng = Rng::new(self.seed, 0);
        let mut uniform = |n: usize, fan_in: usize| -> Vec<f64> {
            let s = 1.0 / (fan_in as f64).sqrt();
            (0..n)
                .map(|_| f64::from((s * (2.0 * rng.uniform() - 1.0)) as f32))
                .collect()
        };
        let k2 = self.kernel * self.kernel;
        let features = 2 * self.frequencies;
        let mut tensors = Vec::new();
        for b in self.blocks() {
            tensors.push(uniform(
                b.out_channels * b.in_channels * k2,
                b.in_channels * k2,
            ));
            let affine: Vec<f64> = (0..2 * b.out_channels)
                .map(|i| if i < b.out_channels { 1.0 } else { 0.0 })
                .collect();
            tensors.push(affine);
            tensors.push(uniform(b.out_channels * (features + 1), features));
        }
        let out = self.output_conv(1);
        tensors.push(uniform(out.weight_len(), out.in_channels * k2));
        tensors
    }
}

/// A checkpoint of a [`UNetTrainer`]: everything a resumed run needs to continue bit for bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetState {
    /// C₀, H, W of the images.
    pub image: [usize; 3],
    /// The level widths.
    pub widths: Vec<usize>,
    /// GroupNorm groups.
    pub groups: usize,
    /// Embedding frequencies.
    pub frequencies: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Padding.
    pub padding: Padding,
    /// Upsampling.
    pub upsampling: Upsampling,
    /// The seed of the permutations and the noise.
    pub seed: u64,
    /// Adam steps taken (the next is `step + 1`).
    pub step: u64,
    /// Epochs completed (the next epoch's index, which keys its permutation and noise).
    pub epoch: u64,
    /// The tensors with Adam's moments, in the module doc's order.
    pub tensors: Vec<AdamTensor>,
}

/// What the GPU computed for one batch without updating ([`UNetTrainer::evaluate_batch`]).
#[derive(Debug, Clone)]
pub struct UNetEvaluation {
    /// The gathered clean images `X_b` (flat, image by image).
    pub x: Vec<f64>,
    /// The noisy inputs `Y_b = X_b + σε` the GPU drew (flat, image by image).
    pub y: Vec<f64>,
    /// `‖x̂_r − x_r‖²` per image of the batch.
    pub row_sq: Vec<f64>,
    /// The gradient of the batch loss `(1/B)Σ_r‖x̂_r − x_r‖²` for every tensor, in order.
    pub gradient: Vec<Vec<f64>>,
}

/// A uniform buffer and the grid it was sized for.
type Params = (wgpu::Buffer, [u32; 3]);

/// The uniforms of one block for one row count.
struct BlockParams {
    /// forward, input gradient, weight gradient of the convolution
    conv: [Params; 3],
    /// GroupNorm over `rows·G` statistics, `len` entries, `out` channels
    norm: [Params; 3],
    /// the embedding's add (`len` entries) and gradient (`out·(2F + 1)` entries)
    embed: [Params; 2],
    /// forward preparation of the input: the pool, or the upsampling and the concatenation
    prepare: Vec<Params>,
    /// backward: the pool's adjoint and the skip slice added to it (Pooled), or the up
    /// branch's slice and the upsampling's adjoint (Concat)
    unprepare: Vec<Params>,
}

/// Every uniform of one row count (a batch slot, or a chunk of [`UNetTrainer::predict`]).
struct RowParams {
    rows: usize,
    blocks: Vec<BlockParams>,
    output: [Params; 3],
}

/// Per-batch uniforms: gather and Adam (rewritten every epoch), the residual, and the layers'.
struct Slot {
    start: usize,
    rows: usize,
    gather: wgpu::Buffer,
    gather_groups: [u32; 3],
    residual: wgpu::Buffer,
    params: RowParams,
    adam: Vec<wgpu::Buffer>,
}

/// One block's resident buffers (B images each).
struct BlockBuffers {
    /// the prepared input (pooled or concatenated; unused for the image)
    input: wgpu::Buffer,
    /// the upsampled branch (Concat)
    up: wgpu::Buffer,
    z: wgpu::Buffer,
    n: wgpu::Buffer,
    e: wgpu::Buffer,
    a: wgpu::Buffer,
    stats: wgpu::Buffer,
    /// ∂L/∂A, ∂L/∂E, ∂L/∂Z, ∂L/∂(input)
    ga: wgpu::Buffer,
    ge: wgpu::Buffer,
    gz: wgpu::Buffer,
    gin: wgpu::Buffer,
    /// the pool's adjoint (Pooled) or the up branch's slice (Concat)
    gprep: wgpu::Buffer,
}

/// The U-Net trainer (module doc).
pub struct UNetTrainer<'g> {
    gpu: &'g Gpu,
    config: UNetConfig,
    blocks: Vec<Block>,
    samples: usize,
    data: GpuMat,
    tensors: Vec<Tensor>,
    /// `Y_b` and `X_b`
    noisy: wgpu::Buffer,
    clean: wgpu::Buffer,
    buffers: Vec<BlockBuffers>,
    x_hat: wgpu::Buffer,
    g_out: wgpu::Buffer,
    /// the features `ẽ(σ)` of every row (B × (2F + 1))
    features: wgpu::Buffer,
    slots: Vec<Slot>,
    perm: wgpu::Buffer,
    row_sq: wgpu::Buffer,
    ones: wgpu::Buffer,
    loss: wgpu::Buffer,
    sum_params: wgpu::Buffer,
    seed: u64,
    step: u64,
    epoch: u64,
}

fn conv_params(gpu: &Gpu, shape: &ConvShape, items: usize) -> Result<Params> {
    let groups = groups_1d(gpu, items);
    let p = ConvParams {
        batch: shape.batch as u32,
        in_channels: shape.in_channels as u32,
        out_channels: shape.out_channels as u32,
        height: shape.height as u32,
        width: shape.width as u32,
        kernel: shape.kernel as u32,
        circular: u32::from(shape.padding == Padding::Circular),
        grid_x: groups[0],
    };
    Ok((gpu.shared_uniform("U-Net conv", &p)?, groups))
}

fn conv_triple(gpu: &Gpu, shape: &ConvShape) -> Result<[Params; 3]> {
    Ok([
        conv_params(gpu, shape, shape.output_len())?,
        conv_params(gpu, shape, shape.input_len())?,
        conv_params(gpu, shape, shape.weight_len())?,
    ])
}

/// Resampling parameters: `planes` planes of `height × width` in, factor 2, `scale`.
fn resample_params(
    gpu: &Gpu,
    (planes, height, width): (usize, usize, usize),
    scale: f64,
    items: usize,
) -> Result<Params> {
    let groups = groups_1d(gpu, items);
    let p = ResampleParams {
        planes: planes as u32,
        height: height as u32,
        width: width as u32,
        factor: 2,
        scale: scale as f32,
        grid_x: groups[0],
        pad0: 0,
        pad1: 0,
    };
    Ok((gpu.shared_uniform("U-Net resample", &p)?, groups))
}

/// Concatenation / slice parameters (`gpu/unet.wgsl`).
fn unet_params(
    gpu: &Gpu,
    (rows, first, second, plane): (usize, usize, usize, usize),
    (offset, accumulate): (usize, bool),
    items: usize,
) -> Result<Params> {
    let groups = groups_1d(gpu, items);
    let p = UnetParams {
        batch: rows as u32,
        first_channels: first as u32,
        second_channels: second as u32,
        plane: plane as u32,
        offset: offset as u32,
        accumulate: u32::from(accumulate),
        grid_x: groups[0],
        pad0: 0,
    };
    Ok((gpu.shared_uniform("U-Net skip", &p)?, groups))
}

impl RowParams {
    fn new(gpu: &Gpu, config: &UNetConfig, blocks: &[Block], rows: usize) -> Result<Self> {
        let features = 2 * config.frequencies + 1;
        let mut out = Vec::with_capacity(blocks.len());
        for b in blocks {
            let shape = config.block_conv(b, rows);
            let (h, w) = config.side(b.level);
            let plane = h * w;
            let len = shape.output_len();
            let norm = |items: usize| -> Result<Params> {
                let groups = groups_1d(gpu, items);
                let p = NormParams {
                    batch: rows as u32,
                    channels: b.out_channels as u32,
                    groups: config.groups as u32,
                    plane: plane as u32,
                    eps: GROUP_NORM_EPS as f32,
                    grid_x: groups[0],
                    pad0: 0,
                    pad1: 0,
                };
                Ok((gpu.shared_uniform("U-Net norm", &p)?, groups))
            };
            let embed = |items: usize| -> Result<Params> {
                let groups = groups_1d(gpu, items);
                let p = EmbedParams {
                    batch: rows as u32,
                    channels: b.out_channels as u32,
                    plane: plane as u32,
                    features: features as u32,
                    grid_x: groups[0],
                    ..EmbedParams::default()
                };
                Ok((gpu.shared_uniform("U-Net embedding", &p)?, groups))
            };
            let (prepare, unprepare) = match b.input {
                BlockInput::Image => (Vec::new(), Vec::new()),
                BlockInput::Pooled { .. } => {
                    // the source at level l − 1: c = in_channels planes of 2h × 2w
                    let c = b.in_channels;
                    let big = 4 * plane;
                    let skip_total = config.widths[b.level] + c;
                    (
                        vec![resample_params(
                            gpu,
                            (rows * c, 2 * h, 2 * w),
                            0.25,
                            rows * c * plane,
                        )?],
                        vec![
                            resample_params(gpu, (rows * c, h, w), 0.25, rows * c * big)?,
                            unet_params(
                                gpu,
                                (rows, skip_total, c, big),
                                (config.widths[b.level], true),
                                rows * c * big,
                            )?,
                        ],
                    )
                }
                BlockInput::Concat { .. } => {
                    let below = config.widths[b.level + 1];
                    let skip = config.widths[b.level];
                    let small = (h / 2, w / 2);
                    let up_scale = 1.0;
                    (
                        vec![
                            resample_params(
                                gpu,
                                (rows * below, small.0, small.1),
                                up_scale,
                                rows * below * plane,
                            )?,
                            unet_params(
                                gpu,
                                (rows, below, skip, plane),
                                (0, false),
                                rows * (below + skip) * plane,
                            )?,
                        ],
                        vec![
                            unet_params(
                                gpu,
                                (rows, below + skip, below, plane),
                                (0, false),
                                rows * below * plane,
                            )?,
                            resample_params(
                                gpu,
                                (rows * below, h, w),
                                1.0,
                                rows * below * plane / 4,
                            )?,
                        ],
                    )
                }
            };
            out.push(BlockParams {
                conv: conv_triple(gpu, &shape)?,
                norm: [
                    norm(rows * config.groups)?,
                    norm(len)?,
                    norm(b.out_channels)?,
                ],
                embed: [embed(len)?, embed(b.out_channels * features)?],
                prepare,
                unprepare,
            });
        }
        Ok(Self {
            rows,
            blocks: out,
            output: conv_triple(gpu, &config.output_conv(rows))?,
        })
    }
}

impl<'g> UNetTrainer<'g> {
    /// A network for the N clean images `images` (N × C₀·H·W, one CHW image per row), uploaded
    /// in f32, initialised as the module doc says; Adam's moments zero, step and epoch 0.
    /// Errors: a bad configuration, images of the wrong width, none, fewer than B, non-finite
    /// or beyond f32's range (naming the entry), sizes beyond a storage binding or the kernels'
    /// 32-bit indices.
    pub fn new(gpu: &'g Gpu, images: &Mat, config: UNetConfig) -> Result<Self> {
        config.validate()?;
        check_training_images(
            "U-Net",
            images,
            (&config.image, config.image.dim()),
            config.batch,
        )?;
        let (n, d, b) = (images.nrows(), images.ncols(), config.batch);
        let blocks = config.blocks();
        let widest = blocks
            .iter()
            .map(|bl| {
                let (h, w) = config.side(bl.level);
                bl.in_channels.max(bl.out_channels) * h * w
            })
            .max()
            .unwrap_or(0)
            .max(d);
        let words = (gpu.max_binding_bytes() / 4) as usize;
        let max_groups = gpu.limits().max_compute_workgroups_per_dimension as usize;
        if b > max_groups
            || n.checked_mul(d).is_none_or(|v| v > words)
            || b.checked_mul(widest).is_none_or(|v| v > words)
        {
            return Err(Error::GpuLimit(format!(
                "U-Net trainer: batch {b} (≤ {max_groups}), N·d = {n}·{d} or B·{widest} words \
                 beyond a storage binding of {words} words"
            )));
        }
        for bl in &blocks {
            config.block_conv(bl, b).validate()?;
        }
        let lengths = config.tensor_lengths();
        let tensors = config
            .initial_tensors()
            .iter()
            .enumerate()
            .map(|(t, v)| {
                let m = Mat::from_fn(1, lengths[t], |_, j| v[j]);
                Tensor::new(gpu, &format!("U-Net {}", config.tensor_name(t)), &m)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut buffers = Vec::with_capacity(blocks.len());
        for bl in &blocks {
            let (h, w) = config.side(bl.level);
            let plane = h * w;
            let out_len = b * bl.out_channels * plane;
            let in_len = b * bl.in_channels * plane;
            let up_len = match bl.input {
                BlockInput::Concat { .. } => b * config.widths[bl.level + 1] * plane,
                _ => 1,
            };
            let prep_len = match bl.input {
                BlockInput::Image => 1,
                BlockInput::Pooled { .. } => in_len * 4,
                BlockInput::Concat { .. } => up_len,
            };
            let out = |label: &str, len: usize| gpu.output(&format!("U-Net {label}"), len);
            buffers.push(BlockBuffers {
                input: out("input", in_len)?,
                up: out("up", up_len)?,
                z: out("Z", out_len)?,
                n: out("N", out_len)?,
                e: out("E", out_len)?,
                a: out("A", out_len)?,
                stats: out("stats", 4 * b * config.groups)?,
                ga: out("dA", out_len)?,
                ge: out("dE", out_len)?,
                gz: out("dZ", out_len)?,
                gin: out("d input", in_len)?,
                gprep: out("d prepared", prep_len)?,
            });
        }
        let mut slots = Vec::new();
        for k in 0..n.div_ceil(b) {
            let (start, rows) = batch_range(n, b, k)?;
            let residual = ResidualParams {
                rows: rows as u32,
                dim: d as u32,
                offset: start as u32,
                scale: (2.0 / rows as f64) as f32,
                ..ResidualParams::default()
            };
            slots.push(Slot {
                start,
                rows,
                gather: gpu.uniform("U-Net gather", &GatherParams::default()),
                gather_groups: groups_1d(gpu, (rows * d).div_ceil(4)),
                residual: gpu.uniform("U-Net residual", &residual),
                params: RowParams::new(gpu, &config, &blocks, rows)?,
                adam: (0..tensors.len())
                    .map(|_| gpu.uniform("U-Net adam", &AdamParams::default()))
                    .collect(),
            });
        }
        let sum_params = ColumnSumParams {
            rows: n as u32,
            cols: 1,
            grid_x: 1,
            pad: 0,
        };
        Ok(Self {
            gpu,
            samples: n,
            data: GpuMat::upload(gpu, "U-Net images", images)?,
            tensors,
            noisy: gpu.output("U-Net Y_b", b * d)?,
            clean: gpu.output("U-Net X_b", b * d)?,
            buffers,
            x_hat: gpu.output("U-Net X̂", b * d)?,
            g_out: gpu.output("U-Net dX̂", b * d)?,
            features: gpu.output("U-Net features", b * (2 * config.frequencies + 1))?,
            slots,
            perm: gpu.output("U-Net permutation", n)?,
            row_sq: gpu.output("U-Net squared errors", n)?,
            ones: gpu.input("U-Net loss weights", &vec![1.0f32; b])?,
            loss: gpu.output("U-Net epoch loss", 1)?,
            sum_params: gpu.uniform("U-Net loss sum", &sum_params),
            seed: config.seed,
            step: 0,
            epoch: 0,
            blocks,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &UNetConfig {
        &self.config
    }

    /// Adam steps taken.
    pub fn steps_done(&self) -> u64 {
        self.step
    }

    /// Epochs completed.
    pub fn epochs_done(&self) -> u64 {
        self.epoch
    }

    /// Batches per epoch, `⌈N/B⌉`.
    pub fn batches_per_epoch(&self) -> usize {
        self.slots.len()
    }

    /// Writes `ẽ(σ)` (rounded to f32) into every row of the features buffer.
    fn write_features(&self, sigma: f64) -> Result<()> {
        let mut row = sigma_features(sigma, self.config.frequencies)?;
        row.push(1.0);
        let all: Vec<f32> = (0..self.config.batch)
            .flat_map(|_| row.iter().map(|&v| v as f32))
            .collect();
        self.gpu
            .queue()
            .write_buffer(&self.features, 0, bytemuck::cast_slice(&all));
        Ok(())
    }

    /// Uploads epoch `epoch`'s permutation and every batch's gather parameters (`y = x + σε`).
    fn write_epoch(&self, epoch: u64, sigma: f64) -> Result<()> {
        let slots = self.slots.iter().map(|slot| GatherSlot {
            rows: slot.rows,
            start: slot.start,
            grid_x: slot.gather_groups[0],
            buffer: &slot.gather,
        });
        write_epoch_gathers(
            self.gpu,
            &self.perm,
            (self.seed, self.samples, epoch),
            (self.config.image.dim(), 1.0, sigma),
            slots,
        )
    }

    fn write_adam(&self, slot: usize, step: u64) {
        Tensor::write_steps(
            self.gpu,
            &self.config.adam,
            step,
            &self.tensors,
            &self.slots[slot].adam,
        );
    }

    /// The forward dispatches for `p.rows` images in `self.noisy` → `self.x_hat`.
    fn forward_specs<'a>(&'a self, p: &'a RowParams) -> Vec<Dispatch<'a>> {
        let mut specs: Vec<Dispatch> = Vec::new();
        for (i, (bl, bp)) in self.blocks.iter().zip(&p.blocks).enumerate() {
            let buf = &self.buffers[i];
            let input = match bl.input {
                BlockInput::Image => &self.noisy,
                BlockInput::Pooled { source } => {
                    let (params, groups) = &bp.prepare[0];
                    specs.push((
                        &shaders::RESAMPLE_POOL_SUM,
                        vec![params, &self.buffers[source].a, &buf.input],
                        *groups,
                    ));
                    &buf.input
                }
                BlockInput::Concat { up, skip } => {
                    let (params, groups) = &bp.prepare[0];
                    let shader: &'static Shader = match self.config.upsampling {
                        Upsampling::Nearest => &shaders::RESAMPLE_UPSAMPLE,
                        Upsampling::Bilinear => &shaders::RESAMPLE_BILINEAR_UP2,
                    };
                    specs.push((shader, vec![params, &self.buffers[up].a, &buf.up], *groups));
                    let (params, groups) = &bp.prepare[1];
                    specs.push((
                        &shaders::UNET_CONCAT,
                        vec![params, &buf.up, &self.buffers[skip].a, &buf.input],
                        *groups,
                    ));
                    &buf.input
                }
            };
            let [k, affine, embedding] = [
                &self.tensors[3 * i],
                &self.tensors[3 * i + 1],
                &self.tensors[3 * i + 2],
            ];
            let (cp, cg) = &bp.conv[0];
            specs.push((
                &shaders::CONV_FORWARD,
                vec![cp, input, k.value.buffer(), &buf.z],
                *cg,
            ));
            for (s, (np, ng)) in [&shaders::GROUP_NORM_STATS, &shaders::GROUP_NORM_APPLY]
                .into_iter()
                .zip(&bp.norm)
            {
                specs.push((
                    s,
                    // dy (binding 2) is unused by the forward entry points
                    vec![
                        np,
                        &buf.z,
                        &buf.z,
                        affine.value.buffer(),
                        &buf.stats,
                        &buf.n,
                    ],
                    *ng,
                ));
            }
            let (ep, eg) = &bp.embed[0];
            specs.push((
                &shaders::EMBED_ADD,
                vec![ep, &buf.n, &self.features, &buf.e, embedding.value.buffer()],
                *eg,
            ));
            specs.push((
                &shaders::CONV_RELU_MASK,
                vec![cp, &buf.e, &buf.e, &buf.a],
                *cg,
            ));
        }
        let (op, og) = &p.output[0];
        let last = self.blocks.len() - 1;
        specs.push((
            &shaders::CONV_FORWARD,
            vec![
                op,
                &self.buffers[last].a,
                self.tensors[3 * self.blocks.len()].value.buffer(),
                &self.x_hat,
            ],
            *og,
        ));
        specs
    }

    /// The dispatches of batch `slot` (module doc), with Adam if `update`.
    fn batch_specs(&self, slot: usize, update: bool) -> Vec<Dispatch<'_>> {
        let s = &self.slots[slot];
        let p = &s.params;
        let mut specs: Vec<Dispatch> = vec![(
            &shaders::DENSE_GATHER,
            vec![
                &s.gather,
                &self.perm,
                self.data.buffer(),
                &self.clean,
                &self.noisy,
            ],
            s.gather_groups,
        )];
        specs.extend(self.forward_specs(p));
        specs.push((
            &shaders::DENSE_RESIDUAL,
            vec![
                &s.residual,
                &self.x_hat,
                &self.clean,
                &self.g_out,
                &self.row_sq,
                &self.ones,
            ],
            [s.rows as u32, 1, 1],
        ));
        let nb = self.blocks.len();
        let k_out = &self.tensors[3 * nb];
        let last = &self.buffers[nb - 1];
        let [_, (ip, ig), (wp, wg)] = &p.output;
        specs.push((
            &shaders::CONV_WEIGHT_GRAD,
            vec![wp, &last.a, &self.g_out, k_out.grad.buffer()],
            *wg,
        ));
        specs.push((
            &shaders::CONV_INPUT_GRAD,
            vec![ip, &self.g_out, k_out.value.buffer(), &last.ga],
            *ig,
        ));
        for i in (0..nb).rev() {
            let (bl, bp, buf) = (&self.blocks[i], &p.blocks[i], &self.buffers[i]);
            let [k, affine, embedding] = [
                &self.tensors[3 * i],
                &self.tensors[3 * i + 1],
                &self.tensors[3 * i + 2],
            ];
            let [(cp, cg), (ip, ig), (wp, wg)] = &bp.conv;
            specs.push((
                &shaders::CONV_RELU_MASK,
                vec![cp, &buf.ga, &buf.a, &buf.ge],
                *cg,
            ));
            let (ep, eg) = &bp.embed[1];
            specs.push((
                &shaders::EMBED_GRAD,
                vec![ep, &buf.ge, &self.features, embedding.grad.buffer()],
                *eg,
            ));
            // GroupNorm's backward: (A, B) per group into the stats, then dZ and ∇[γ | β]
            let [(sp, sg), (np, ng), (ap, ag)] = &bp.norm;
            for (shader, params, out, groups) in [
                (&shaders::GROUP_NORM_GRAD_STATS, sp, &buf.gz, sg),
                (&shaders::GROUP_NORM_GRAD_INPUT, np, &buf.gz, ng),
                (
                    &shaders::GROUP_NORM_GRAD_AFFINE,
                    ap,
                    affine.grad.buffer(),
                    ag,
                ),
            ] {
                specs.push((
                    shader,
                    vec![
                        params,
                        &buf.z,
                        &buf.ge,
                        affine.value.buffer(),
                        &buf.stats,
                        out,
                    ],
                    *groups,
                ));
            }
            let input = match bl.input {
                BlockInput::Image => &self.noisy,
                _ => &buf.input,
            };
            specs.push((
                &shaders::CONV_WEIGHT_GRAD,
                vec![wp, input, &buf.gz, k.grad.buffer()],
                *wg,
            ));
            if bl.input == BlockInput::Image {
                continue;
            }
            specs.push((
                &shaders::CONV_INPUT_GRAD,
                vec![ip, &buf.gz, k.value.buffer(), &buf.gin],
                *ig,
            ));
            match bl.input {
                BlockInput::Image => {}
                BlockInput::Pooled { source } => {
                    // ∂L/∂A(source) = Pᵀ(∂L/∂input) + the skip's slice of its decoder's input
                    // gradient (that decoder ran its backward before this block)
                    let decoder = self.decoder_of(source);
                    let (up, ug) = &bp.unprepare[0];
                    specs.push((
                        &shaders::RESAMPLE_UPSAMPLE,
                        vec![up, &buf.gin, &buf.gprep],
                        *ug,
                    ));
                    let (tp, tg) = &bp.unprepare[1];
                    specs.push((
                        &shaders::UNET_TAKE,
                        vec![
                            tp,
                            &self.buffers[decoder].gin,
                            &buf.gprep,
                            &self.buffers[source].ga,
                        ],
                        *tg,
                    ));
                }
                BlockInput::Concat { up, .. } => {
                    // the up branch's slice, then the upsampling's adjoint into ∂L/∂A(up)
                    let (tp, tg) = &bp.unprepare[0];
                    specs.push((
                        &shaders::UNET_TAKE,
                        vec![tp, &buf.gin, &buf.gin, &buf.gprep],
                        *tg,
                    ));
                    let (rp, rg) = &bp.unprepare[1];
                    let shader: &'static Shader = match self.config.upsampling {
                        Upsampling::Nearest => &shaders::RESAMPLE_POOL_SUM,
                        Upsampling::Bilinear => &shaders::RESAMPLE_BILINEAR_UP2_GRAD,
                    };
                    specs.push((shader, vec![rp, &buf.gprep, &self.buffers[up].ga], *rg));
                }
            }
        }
        if update {
            for (t, params) in self.tensors.iter().zip(&s.adam) {
                specs.push(t.update(self.gpu, params));
            }
        }
        specs
    }

    /// The decoder block whose skip is encoder block `encoder`.
    fn decoder_of(&self, encoder: usize) -> usize {
        self.blocks
            .iter()
            .position(|b| matches!(b.input, BlockInput::Concat { skip, .. } if skip == encoder))
            .unwrap_or(encoder)
    }

    /// Trains `epochs` epochs (each one submission) on `y = x + σε`, calling `on_epoch(epoch
    /// index, loss)` after each, and returns the losses: the mean over the epoch's N images of
    /// `‖x̂ − x‖²`, each batch evaluated before its own update. The epoch index (which keys the
    /// permutation and the noise) continues from the epochs already done (kept in the
    /// checkpoint). Errors: σ not finite and > 0 (naming it), an epoch past the Philox streams.
    pub fn train_epochs(
        &mut self,
        sigma: f64,
        epochs: usize,
        on_epoch: &mut dyn FnMut(usize, f64),
    ) -> Result<Vec<f64>> {
        crate::error::ensure_sigma(sigma)?;
        self.write_features(sigma)?;
        let mut specs: Vec<Dispatch> = Vec::new();
        for slot in 0..self.slots.len() {
            specs.extend(self.batch_specs(slot, true));
        }
        let (mut epoch, mut step) = (self.epoch, self.step);
        let outcome = replay_epochs(
            self.gpu,
            specs,
            (&self.sum_params, &self.row_sq, &self.loss),
            (self.samples, self.slots.len()),
            (&mut epoch, &mut step),
            epochs,
            &mut |epoch, first_step| {
                self.write_epoch(epoch, sigma)?;
                for slot in 0..self.slots.len() {
                    self.write_adam(slot, first_step + slot as u64);
                }
                Ok(())
            },
            on_epoch,
        );
        self.epoch = epoch;
        self.step = step;
        outcome
    }

    /// Gather, forward and backward of batch `batch` of epoch `epoch` without updating: the
    /// batch's clean and noisy images, each image's squared error and every tensor's gradient,
    /// for the parity test against [`unet_batch_reference`]. Errors: a bad σ, epoch or batch
    /// index.
    pub fn evaluate_batch(&self, sigma: f64, epoch: u64, batch: usize) -> Result<UNetEvaluation> {
        crate::error::ensure_sigma(sigma)?;
        batch_range(self.samples, self.config.batch, batch)?;
        self.write_features(sigma)?;
        self.write_epoch(epoch, sigma)?;
        self.gpu
            .run_dispatches(&self.batch_specs(batch, false), 1)?;
        let s = &self.slots[batch];
        let (x, y, row_sq) = read_batch(
            self.gpu,
            (&self.clean, &self.noisy, &self.row_sq),
            (s.start, s.rows, self.config.image.dim()),
        )?;
        Ok(UNetEvaluation {
            x,
            y,
            row_sq,
            gradient: Tensor::read_all(self.gpu, &self.tensors, true)?,
        })
    }

    /// `x̂ = f(y, σ)` for every row of `y` (R × C₀·H·W, any R ≥ 1) on the GPU, B rows at a time
    /// through the trainer's own forward dispatches. Errors: a wrong width, no rows, entries
    /// non-finite or beyond f32's range, a bad σ.
    pub fn predict(&self, y: &Mat, sigma: f64) -> Result<Mat> {
        let (r, d) = (y.nrows(), y.ncols());
        if d != self.config.image.dim() || r == 0 {
            return Err(Error::InvalidArgument {
                what: "U-Net predict".into(),
                reason: format!(
                    "need R ≥ 1 rows of {} pixels, got {r}×{d}",
                    self.config.image.dim()
                ),
            });
        }
        let flat: Vec<f64> = (0..r)
            .flat_map(|i| (0..d).map(move |j| y[(i, j)]))
            .collect();
        super::conv::ensure_operand("U-Net predict input", &flat, r * d)?;
        self.write_features(sigma)?;
        let mut out = Vec::with_capacity(r * d);
        for (start, rows) in super::chunks(r, self.config.batch) {
            let params = RowParams::new(self.gpu, &self.config, &self.blocks, rows)?;
            let chunk: Vec<f32> = flat[start * d..(start + rows) * d]
                .iter()
                .map(|&v| v as f32)
                .collect();
            self.gpu
                .queue()
                .write_buffer(&self.noisy, 0, bytemuck::cast_slice(&chunk));
            self.gpu.run_dispatches(&self.forward_specs(&params), 1)?;
            let x_hat: Vec<f32> = self.gpu.read(&self.x_hat, params.rows * d)?;
            out.extend(x_hat.into_iter().map(f64::from));
        }
        Ok(Mat::from_fn(r, d, |i, j| out[i * d + j]))
    }

    /// The tensors (f32 values as f64) in the module doc's order.
    pub fn parameters(&self) -> Result<Vec<Vec<f64>>> {
        Tensor::read_all(self.gpu, &self.tensors, false)
    }

    /// A checkpoint: tensors, Adam moments, step and epoch counts, seed.
    pub fn state(&self) -> Result<UNetState> {
        let c = &self.config;
        Ok(UNetState {
            image: [c.image.channels, c.image.height, c.image.width],
            widths: c.widths.clone(),
            groups: c.groups,
            frequencies: c.frequencies,
            kernel: c.kernel,
            padding: c.padding,
            upsampling: c.upsampling,
            seed: self.seed,
            step: self.step,
            epoch: self.epoch,
            tensors: self
                .tensors
                .iter()
                .map(|t| t.state(self.gpu))
                .collect::<Result<_>>()?,
        })
    }

    /// Restores a checkpoint of a network of the same architecture (its seed, step and epoch
    /// counts replace this trainer's, so training continues as the saved run would have).
    /// Errors: another architecture, tensors of the wrong count or length, non-finite, or a
    /// negative second moment (naming the tensor).
    pub fn set_state(&mut self, state: &UNetState) -> Result<()> {
        let c = &self.config;
        let mine = (
            [c.image.channels, c.image.height, c.image.width],
            c.widths.clone(),
            (c.groups, c.frequencies, c.kernel),
            (c.padding, c.upsampling),
        );
        let theirs = (
            state.image,
            state.widths.clone(),
            (state.groups, state.frequencies, state.kernel),
            (state.padding, state.upsampling),
        );
        if mine != theirs || state.tensors.len() != self.tensors.len() {
            return Err(Error::InvalidArgument {
                what: "U-Net checkpoint".into(),
                reason: format!(
                    "is (image, widths, (groups, frequencies, kernel), (padding, upsampling)) = \
                     {theirs:?} with {} tensors; this trainer is {mine:?} with {}",
                    state.tensors.len(),
                    self.tensors.len()
                ),
            });
        }
        for (t, (tensor, s)) in self.tensors.iter().zip(&state.tensors).enumerate() {
            tensor.check(&self.config.tensor_name(t), s)?;
        }
        noise_stream(state.seed, state.epoch)?;
        for (t, s) in self.tensors.iter().zip(&state.tensors) {
            t.write(self.gpu, s);
        }
        self.seed = state.seed;
        self.step = state.step;
        self.epoch = state.epoch;
        Ok(())
    }

    /// Floating-point operations of one epoch, one flop per arithmetic operation: per image,
    /// with `F = 2·in·out·kernel²·H_l·W_l` a convolution's forward (padding's dropped terms
    /// included), `2F` for the forward and weight gradient of every convolution and `F` more
    /// for the input gradient of every convolution but `e_0`'s; per block output entry
    /// GroupNorm's forward (≈ 7: sum, centred square, normalise, scale, shift) and backward
    /// (≈ 12), the embedding's add (`2(2F_e + 1) + 1`) and gradient (1, the plane sums), ReLU
    /// and its mask (2); per pooled or upsampled input entry 4 (the adjoint included); the
    /// gather 3d and residual 4d; and per Adam step 12 per parameter.
    pub fn flops_per_epoch(&self) -> f64 {
        let c = &self.config;
        let k2 = (c.kernel * c.kernel) as f64;
        let features = (2 * c.frequencies + 1) as f64;
        let mut per_image = 7.0 * c.image.dim() as f64;
        for (i, b) in self.blocks.iter().enumerate() {
            let (h, w) = c.side(b.level);
            let plane = (h * w) as f64;
            let f = 2.0 * (b.in_channels * b.out_channels) as f64 * k2 * plane;
            per_image += if i == 0 { 2.0 * f } else { 3.0 * f };
            let entries = b.out_channels as f64 * plane;
            per_image += entries * (7.0 + 12.0 + 2.0 * features + 1.0 + 1.0 + 2.0);
            if b.input != BlockInput::Image {
                per_image += 4.0 * b.in_channels as f64 * plane;
            }
        }
        let out = c.output_conv(1);
        per_image += 3.0
            * 2.0
            * (out.in_channels * out.out_channels) as f64
            * k2
            * (c.image.height * c.image.width) as f64;
        let params: usize = self.tensors.iter().map(|t| t.len).sum();
        self.samples as f64 * per_image + 12.0 * params as f64 * self.slots.len() as f64
    }
}
