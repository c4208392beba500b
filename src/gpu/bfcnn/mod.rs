//! A bias-free convolutional denoiser (Kadkhodaie et al.'s BF-CNN shape; Mohan et al., ICLR
//! 2020) trained on the GPU with everything resident: `L` convolution layers with `kernel ×
//! kernel` windows, stride 1, zero or circular padding ([`Padding`]), **no bias anywhere**, ReLU
//! between layers, and no residual connection:
//!
//! `A₀ = y`, `Z_l = K_l ⋆ A_{l−1}`, `A_l = ReLU(Z_l)` (l < L), `x̂ = f(y) = Z_L`,
//!
//! layer 1 mapping the image's C₀ channels to `channels`, the middle layers `channels →
//! channels`, layer L back to C₀ (a single layer maps C₀ → C₀). Without biases, and with ReLU
//! positively homogeneous, `f(αy) = α·f(y)` for every α > 0 (Kadkhodaie et al. §3's
//! "f(y) = ∇f(y)·y").
//!
//! Training is the dense trainer's ([`crate::gpu::dense`]) with the layers swapped: per epoch
//! a Philox permutation of the N images (stream `2t + 2` of the seed) cut into batches of B (the
//! last one shorter when B does not divide N), the noisy inputs `y = x + σε` drawn on the GPU by
//! the dense gather kernel with ε from stream `2t + 1` ([`noise_stream`], [`batch_noise`]), the
//! loss `(1/B)Σ_r‖x̂_r − x_r‖²` of a batch, and Adam on every `K_l` (`gpu/adam.wgsl`). One
//! batch's dispatches, in one submission per epoch:
//! 1. gather `X_b`, `Y_b` (`dense_gather`);
//! 2. for l = 1..L: `Z_l = conv(A_{l−1}, K_l)` (`conv_forward`), `A_l = ReLU(Z_l)` (`conv_relu_mask`);
//! 3. `G_L = (2/B)(X̂ − X_b)` and each image's `‖x̂ − x‖²` (`dense_residual`);
//! 4. for l = L..1: `∇K_l = Σ_{b,i,j} G_l ⋆ A_{l−1}` (`conv_weight_grad`), and for l > 1
//!    `∂L/∂A_{l−1}` (`conv_input_grad`) masked by `[A_{l−1} > 0]` into `G_{l−1}`
//!    (`conv_relu_mask`);
//! 5. Adam on each `K_l` (`mlp_adam`).
//!
//! The epoch's loss, the mean over its N images of `‖x̂ − x‖²` (each batch evaluated before its
//! own update), is summed on the GPU and the only value read back. A checkpoint
//! ([`BfCnnState`]) holds the f32 weights, Adam moments, step and epoch counts and the seed: a
//! resumed run is bit for bit the uninterrupted one.
//!
//! The initialisation is PyTorch's `nn.Conv2d` default: every weight of a layer with fan-in
//! `f = in_channels·kernel²` drawn from `U(−1/√f, 1/√f)` (layers in order, stream 0 of the
//! seed), then rounded to f32.
//!
//! Files: this one holds the configuration, checkpoint and trainer; `reference.rs` the f64
//! reference of the network and of one batch, with running bounds on the f32 kernels' error.

mod reference;

pub use reference::*;

use super::adam::{AdamConfig, AdamTensor, Tensor};
use super::conv::{conv2d, ConvShape, Padding};
use super::dense::{
    batch_range, check_training_images, noise_stream, read_batch, replay_epochs,
    write_epoch_gathers, GatherSlot,
};
use super::gemm::GpuMat;
use super::shaders;
use super::uniforms::{AdamParams, ColumnSumParams, ConvParams, GatherParams, ResidualParams};
use super::{groups_1d, Dispatch, Gpu};
use crate::error::{Error, Result};
use crate::io::grid::ImageShape;
use crate::linalg::Mat;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

pub use super::dense::batch_noise;

/// Hyper-parameters of a [`BfCnnTrainer`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BfCnnConfig {
    /// The shape C₀ × H × W of the training images.
    pub image: ImageShape,
    /// Convolution layers L ≥ 1.
    pub layers: usize,
    /// Channels of the hidden layers (ignored when L = 1).
    pub channels: usize,
    /// The side of every (square, odd) kernel: 3 in BF-CNN.
    pub kernel: usize,
    /// Zero or circular padding, every layer.
    pub padding: Padding,
    /// Batch size B (≤ N).
    pub batch: usize,
    /// Adam.
    pub adam: AdamConfig,
    /// Seed of the initialisation, the permutations and the noise.
    pub seed: u64,
}

impl BfCnnConfig {
    /// Refuses a zero layer count, channel count, batch or image side, an even kernel, or a bad
    /// Adam configuration, naming the value.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str, reason: String| {
            Err(Error::InvalidArgument {
                what: what.into(),
                reason,
            })
        };
        for (what, v) in [
            ("BF-CNN layers", self.layers),
            ("BF-CNN hidden channels", self.channels),
            ("BF-CNN batch size", self.batch),
            ("BF-CNN image channels", self.image.channels),
            ("BF-CNN image height", self.image.height),
            ("BF-CNN image width", self.image.width),
        ] {
            if v == 0 {
                return bad(what, "must be ≥ 1, got 0".into());
            }
        }
        if self.kernel.is_multiple_of(2) {
            return bad(
                "BF-CNN kernel",
                format!(
                    "the side must be odd (a centred window), got {}",
                    self.kernel
                ),
            );
        }
        self.adam.validate()
    }

    /// `(in, out)` channels of layer `l` (0-based).
    pub fn layer_channels(&self, l: usize) -> (usize, usize) {
        let c0 = self.image.channels;
        let inner = self.channels;
        let input = if l == 0 { c0 } else { inner };
        let output = if l + 1 == self.layers { c0 } else { inner };
        (input, output)
    }

    /// The convolution of layer `l` (0-based) on a batch of `batch` images.
    pub fn layer_shape(&self, l: usize, batch: usize) -> ConvShape {
        let (in_channels, out_channels) = self.layer_channels(l);
        ConvShape {
            batch,
            in_channels,
            out_channels,
            height: self.image.height,
            width: self.image.width,
            kernel: self.kernel,
            padding: self.padding,
        }
    }
}

/// A checkpoint of a [`BfCnnTrainer`]: everything a resumed run needs to continue bit for bit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BfCnnState {
    /// C₀, H, W of the images.
    pub image: [usize; 3],
    /// L.
    pub layers: usize,
    /// Hidden channels.
    pub channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Padding.
    pub padding: Padding,
    /// The seed of the permutations and the noise.
    pub seed: u64,
    /// Adam steps taken (the next is `step + 1`).
    pub step: u64,
    /// Epochs completed (the next epoch's index, which keys its permutation and noise).
    pub epoch: u64,
    /// `K_l` with Adam's moments, out × in × kernel × kernel row-major, layer by layer.
    pub weights: Vec<AdamTensor>,
}

/// What the GPU computed for one batch without updating ([`BfCnnTrainer::evaluate_batch`]).
#[derive(Debug, Clone)]
pub struct BfCnnEvaluation {
    /// The gathered clean images `X_b` (flat, image by image).
    pub x: Vec<f64>,
    /// The noisy inputs `Y_b = X_b + σε` the GPU drew (flat, image by image).
    pub y: Vec<f64>,
    /// `‖x̂_r − x_r‖²` per image of the batch.
    pub row_sq: Vec<f64>,
    /// `∂L/∂K_l` of the batch loss `(1/B)Σ_r‖x̂_r − x_r‖²`, layer by layer.
    pub gradient: Vec<Vec<f64>>,
}

/// Per-batch uniforms: gather and Adam (rewritten every epoch), the residual, and each layer's
/// forward (also its ReLU and mask), input-gradient and weight-gradient parameters.
struct Slot {
    start: usize,
    rows: usize,
    gather: wgpu::Buffer,
    gather_groups: [u32; 3],
    residual: wgpu::Buffer,
    /// per layer: (params, grid) of forward, input gradient, weight gradient
    conv: Vec<[(wgpu::Buffer, [u32; 3]); 3]>,
    adam: Vec<wgpu::Buffer>,
}

/// The BF-CNN trainer (module doc): data, weights, Adam's state and one batch's activations
/// and gradients resident on the GPU.
pub struct BfCnnTrainer<'g> {
    gpu: &'g Gpu,
    config: BfCnnConfig,
    samples: usize,
    data: GpuMat,
    weights: Vec<Tensor>,
    /// `A₀ = Y_b`, then `A_l` for l = 1..L−1 (B images each).
    acts: Vec<wgpu::Buffer>,
    /// The clean batch `X_b`.
    clean: wgpu::Buffer,
    /// `Z_l` of the layer being computed (hidden width), and `X̂ = Z_L`.
    z: wgpu::Buffer,
    x_hat: wgpu::Buffer,
    /// `G_l = ∂L/∂Z_l` for l = 1..L.
    grads: Vec<wgpu::Buffer>,
    /// `∂L/∂A_{l−1}` before its mask.
    da: wgpu::Buffer,
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

fn conv_params(shape: &ConvShape, groups: [u32; 3]) -> ConvParams {
    ConvParams {
        batch: shape.batch as u32,
        in_channels: shape.in_channels as u32,
        out_channels: shape.out_channels as u32,
        height: shape.height as u32,
        width: shape.width as u32,
        kernel: shape.kernel as u32,
        circular: u32::from(shape.padding == Padding::Circular),
        grid_x: groups[0],
    }
}

impl<'g> BfCnnTrainer<'g> {
    /// A network for the N clean images `images` (N × C₀·H·W, one CHW image per row), uploaded
    /// in f32, initialised as the module doc says; Adam's moments zero, step and epoch 0.
    /// Errors: a bad configuration, images of the wrong width, none, fewer than B, non-finite
    /// or beyond f32's range (naming the entry), sizes beyond a storage binding or the kernels'
    /// 32-bit indices.
    pub fn new(gpu: &'g Gpu, images: &Mat, config: BfCnnConfig) -> Result<Self> {
        config.validate()?;
        check_training_images(
            "BF-CNN",
            images,
            (&config.image, config.image.dim()),
            config.batch,
        )?;
        let (n, d, b) = (images.nrows(), images.ncols(), config.batch);
        let plane = config.image.height * config.image.width;
        let widest = config.image.channels.max(config.channels) * plane;
        let words = (gpu.max_binding_bytes() / 4) as usize;
        let max_groups = gpu.limits().max_compute_workgroups_per_dimension as usize;
        if b > max_groups
            || n.checked_mul(d).is_none_or(|v| v > words)
            || b.checked_mul(widest).is_none_or(|v| v > words)
        {
            return Err(Error::GpuLimit(format!(
                "BF-CNN trainer: batch {b} (≤ {max_groups}), N·d = {n}·{d} or B·{widest} words \
                 beyond a storage binding of {words} words"
            )));
        }
        for l in 0..config.layers {
            config.layer_shape(l, b).validate()?;
        }
        let mut rng = Rng::new(config.seed, 0);
        let mut weights = Vec::with_capacity(config.layers);
        for l in 0..config.layers {
            let (cin, cout) = config.layer_channels(l);
            let fan_in = cin * config.kernel * config.kernel;
            let s = 1.0 / (fan_in as f64).sqrt();
            let v: Vec<f64> = (0..cout * fan_in)
                .map(|_| s * (2.0 * rng.uniform() - 1.0))
                .collect();
            let m = Mat::from_fn(cout, fan_in, |i, j| v[i * fan_in + j]);
            weights.push(Tensor::new(gpu, &format!("BF-CNN K{}", l + 1), &m)?);
        }
        let hidden = b * config.channels * plane;
        let mut acts = vec![gpu.output("BF-CNN A0", b * d)?];
        for l in 1..config.layers {
            acts.push(gpu.output(&format!("BF-CNN A{l}"), hidden)?);
        }
        let grads = (0..config.layers)
            .map(|l| {
                let (_, cout) = config.layer_channels(l);
                gpu.output(&format!("BF-CNN G{}", l + 1), b * cout * plane)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut slots = Vec::new();
        for k in 0..n.div_ceil(b) {
            let (start, rows) = batch_range(n, b, k)?;
            let conv = (0..config.layers)
                .map(|l| {
                    let shape = config.layer_shape(l, rows);
                    let make = |count: usize| {
                        let g = groups_1d(gpu, count);
                        (gpu.uniform("BF-CNN conv", &conv_params(&shape, g)), g)
                    };
                    [
                        make(shape.output_len()),
                        make(shape.input_len()),
                        make(shape.weight_len()),
                    ]
                })
                .collect();
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
                gather: gpu.uniform("BF-CNN gather", &GatherParams::default()),
                gather_groups: groups_1d(gpu, (rows * d).div_ceil(4)),
                residual: gpu.uniform("BF-CNN residual", &residual),
                conv,
                adam: (0..config.layers)
                    .map(|_| gpu.uniform("BF-CNN adam", &AdamParams::default()))
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
            config,
            samples: n,
            data: GpuMat::upload(gpu, "BF-CNN images", images)?,
            weights,
            acts,
            clean: gpu.output("BF-CNN X_b", b * d)?,
            z: gpu.output("BF-CNN Z", hidden.max(b * d))?,
            x_hat: gpu.output("BF-CNN X̂", b * d)?,
            grads,
            da: gpu.output("BF-CNN dA", hidden)?,
            slots,
            perm: gpu.output("BF-CNN permutation", n)?,
            row_sq: gpu.output("BF-CNN squared errors", n)?,
            ones: gpu.input("BF-CNN loss weights", &vec![1.0f32; b])?,
            loss: gpu.output("BF-CNN epoch loss", 1)?,
            sum_params: gpu.uniform("BF-CNN loss sum", &sum_params),
            seed: config.seed,
            step: 0,
            epoch: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &BfCnnConfig {
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

    /// Uploads epoch `epoch`'s permutation and writes every batch's gather parameters
    /// (`y = x + σε`).
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
            &self.weights,
            &self.slots[slot].adam,
        );
    }

    /// The dispatches of batch `slot` (module doc), with Adam if `update`.
    fn batch_specs(&self, slot: usize, update: bool) -> Vec<Dispatch<'_>> {
        let s = &self.slots[slot];
        let layers = self.config.layers;
        let mut specs: Vec<Dispatch> = vec![(
            &shaders::DENSE_GATHER,
            vec![
                &s.gather,
                &self.perm,
                self.data.buffer(),
                &self.clean,
                &self.acts[0],
            ],
            s.gather_groups,
        )];
        for l in 0..layers {
            let (params, groups) = (&s.conv[l][0].0, s.conv[l][0].1);
            let value = self.weights[l].value.buffer();
            if l + 1 < layers {
                specs.push((
                    &shaders::CONV_FORWARD,
                    vec![params, &self.acts[l], value, &self.z],
                    groups,
                ));
                specs.push((
                    &shaders::CONV_RELU_MASK,
                    vec![params, &self.z, &self.z, &self.acts[l + 1]],
                    groups,
                ));
            } else {
                specs.push((
                    &shaders::CONV_FORWARD,
                    vec![params, &self.acts[l], value, &self.x_hat],
                    groups,
                ));
            }
        }
        specs.push((
            &shaders::DENSE_RESIDUAL,
            vec![
                &s.residual,
                &self.x_hat,
                &self.clean,
                &self.grads[layers - 1],
                &self.row_sq,
                &self.ones,
            ],
            [s.rows as u32, 1, 1],
        ));
        for l in (0..layers).rev() {
            let [_, input, weight] = &s.conv[l];
            specs.push((
                &shaders::CONV_WEIGHT_GRAD,
                vec![
                    &weight.0,
                    &self.acts[l],
                    &self.grads[l],
                    self.weights[l].grad.buffer(),
                ],
                weight.1,
            ));
            if l > 0 {
                specs.push((
                    &shaders::CONV_INPUT_GRAD,
                    vec![
                        &input.0,
                        &self.grads[l],
                        self.weights[l].value.buffer(),
                        &self.da,
                    ],
                    input.1,
                ));
                // A_l's mask has the shape of layer l − 1's output: its forward parameters
                let (params, groups) = (&s.conv[l - 1][0].0, s.conv[l - 1][0].1);
                specs.push((
                    &shaders::CONV_RELU_MASK,
                    vec![params, &self.da, &self.acts[l], &self.grads[l - 1]],
                    groups,
                ));
            }
        }
        if update {
            for (t, params) in self.weights.iter().zip(&s.adam) {
                specs.push(t.update(self.gpu, params));
            }
        }
        specs
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
    /// batch's clean and noisy images, each image's squared error and the gradient, for the parity test against
    /// [`bfcnn_batch_reference`]. Errors: a bad σ, epoch or batch index.
    pub fn evaluate_batch(&self, sigma: f64, epoch: u64, batch: usize) -> Result<BfCnnEvaluation> {
        crate::error::ensure_sigma(sigma)?;
        batch_range(self.samples, self.config.batch, batch)?;
        self.write_epoch(epoch, sigma)?;
        self.gpu
            .run_dispatches(&self.batch_specs(batch, false), 1)?;
        let s = &self.slots[batch];
        let (x, y, row_sq) = read_batch(
            self.gpu,
            (&self.clean, &self.acts[0], &self.row_sq),
            (s.start, s.rows, self.config.image.dim()),
        )?;
        Ok(BfCnnEvaluation {
            x,
            y,
            row_sq,
            gradient: Tensor::read_all(self.gpu, &self.weights, true)?,
        })
    }

    /// `x̂ = f(y)` for every row of `y` (R × C₀·H·W, any R ≥ 1) on the GPU: the trainer's
    /// convolution kernels layer by layer, ReLU between them (exact in f32, applied on the way).
    /// Errors: a wrong width, non-finite or beyond f32's range.
    pub fn predict(&self, y: &Mat) -> Result<Mat> {
        let (r, d) = (y.nrows(), y.ncols());
        if d != self.config.image.dim() || r == 0 {
            return Err(Error::InvalidArgument {
                what: "BF-CNN predict".into(),
                reason: format!(
                    "need R ≥ 1 rows of {} pixels, got {r}×{d}",
                    self.config.image.dim()
                ),
            });
        }
        let mut a: Vec<f64> = (0..r)
            .flat_map(|i| (0..d).map(move |j| y[(i, j)]))
            .collect();
        for (l, k) in self.parameters()?.iter().enumerate() {
            a = conv2d(self.gpu, &self.config.layer_shape(l, r), &a, k)?;
            if l + 1 < self.config.layers {
                a.iter_mut().for_each(|v| *v = v.max(0.0));
            }
        }
        Ok(Mat::from_fn(r, d, |i, j| a[i * d + j]))
    }

    /// The weights `K_l` (f32 values as f64), out × in × kernel × kernel row-major, layer by
    /// layer.
    pub fn parameters(&self) -> Result<Vec<Vec<f64>>> {
        Tensor::read_all(self.gpu, &self.weights, false)
    }

    /// A checkpoint: weights, Adam moments, step and epoch counts, seed.
    pub fn state(&self) -> Result<BfCnnState> {
        let c = &self.config;
        Ok(BfCnnState {
            image: [c.image.channels, c.image.height, c.image.width],
            layers: c.layers,
            channels: c.channels,
            kernel: c.kernel,
            padding: c.padding,
            seed: self.seed,
            step: self.step,
            epoch: self.epoch,
            weights: self
                .weights
                .iter()
                .map(|t| t.state(self.gpu))
                .collect::<Result<_>>()?,
        })
    }

    /// Restores a checkpoint of a network of the same architecture (its seed, step and epoch
    /// counts replace this trainer's, so training continues as the saved run would have).
    /// Errors: another architecture, weights of the wrong length, non-finite, or a negative
    /// second moment (naming the layer).
    pub fn set_state(&mut self, state: &BfCnnState) -> Result<()> {
        let c = &self.config;
        let mine = (
            [c.image.channels, c.image.height, c.image.width],
            c.layers,
            c.channels,
            c.kernel,
            c.padding,
        );
        let theirs = (
            state.image,
            state.layers,
            state.channels,
            state.kernel,
            state.padding,
        );
        if mine != theirs || state.weights.len() != c.layers {
            return Err(Error::InvalidArgument {
                what: "BF-CNN checkpoint".into(),
                reason: format!(
                    "is (image, layers, channels, kernel, padding) = {theirs:?} with {} weight \
                     tensors; this trainer is {mine:?}",
                    state.weights.len()
                ),
            });
        }
        for (l, (t, s)) in self.weights.iter().zip(&state.weights).enumerate() {
            t.check(&format!("K{}", l + 1), s)?;
        }
        noise_stream(state.seed, state.epoch)?;
        for (t, s) in self.weights.iter().zip(&state.weights) {
            t.write(self.gpu, s);
        }
        self.seed = state.seed;
        self.step = state.step;
        self.epoch = state.epoch;
        Ok(())
    }

    /// Floating-point operations of one epoch, one flop per arithmetic operation: with
    /// `F_l = 2·in_l·out_l·kernel²·H·W` a layer's forward convolution per image (multiply-adds
    /// counted as two, padding's dropped terms included), per image `Σ_l F_l` forward, `Σ_l F_l`
    /// for the weight gradients and `Σ_{l>1} F_l` for the input gradients; the elementwise work
    /// per image: gather `y = x + σε` 3d (d = C₀HW), ReLU and its mask one each per hidden
    /// activation `2(L − 1)·channels·HW`, the residual, scale, square and sum 4d; and per Adam
    /// step 12 per weight.
    pub fn flops_per_epoch(&self) -> f64 {
        let c = &self.config;
        let plane = (c.image.height * c.image.width) as f64;
        let k2 = (c.kernel * c.kernel) as f64;
        let f = |l: usize| {
            let (i, o) = c.layer_channels(l);
            2.0 * (i * o) as f64 * k2 * plane
        };
        let conv: f64 =
            (0..c.layers).map(|l| 2.0 * f(l)).sum::<f64>() + (1..c.layers).map(f).sum::<f64>();
        let d = c.image.dim() as f64;
        let elementwise = 7.0 * d + 2.0 * (c.layers - 1) as f64 * c.channels as f64 * plane;
        let params: usize = self.weights.iter().map(|t| t.len).sum();
        self.samples as f64 * (conv + elementwise) + 12.0 * params as f64 * self.slots.len() as f64
    }
}
