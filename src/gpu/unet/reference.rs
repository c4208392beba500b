//! The f64 reference of the U-Net ([`super::UNetTrainer`]): its forward map and one batch's
//! loss and gradient, with first-order running bounds on the f32 kernels' error. Every
//! intermediate is a value and a bound on the distance of the GPU's f32 value from it; each
//! kernel's rounding is added on its (perturbed) inputs and the inputs' uncertainty carried
//! through:
//!
//! * the convolutions and their gradients: [`conv2d_bounded`], [`conv2d_input_grad_bounded`],
//!   [`conv2d_weight_grad_bounded`] (γ bounds on Σ|terms|, order-free);
//! * pooling, upsampling and their adjoints: [`resample_bounded`];
//! * GroupNorm and its gradients: [`group_norm_bounded`], [`group_norm_backward_bounded`] (the
//!   kernels' operations one by one on [`Bounded`] values, division and square root included);
//! * the σ embedding `E = N + Σ_k P[c,k]ẽ_k` and its gradient `∇P[c,k] = Σ_b ẽ_k·Σ_p G[b,c,p]`:
//!   [`Bounded`] operations in the kernels' order (the features rounded to f32 on upload, the
//!   constant 1 and the trainer's f32 tensors exact);
//! * ReLU is exact in f32 and 1-Lipschitz; its mask `[E > 0]` is certain where `|E| > δE`, and
//!   elsewhere the bound of `∂L/∂E` becomes `|∂L/∂A| + δ(∂L/∂A)` (either outcome);
//! * the concatenation is a copy; the skip's slice added to the pooled path's gradient one
//!   correctly rounded addition;
//! * the residual and the per-image squared error: the BF-CNN's
//!   ([`crate::gpu::bfcnn::bfcnn_batch_reference`]).
//!
//! The f64 values' own rounding is added by the convolution and resampling references
//! (`γ_n(f64)`) and neglected in the [`Bounded`] chains (relative 2⁻⁵³ per operation, 2²⁹ times
//! below each f32 term there).

use super::{BlockInput, UNetConfig, Upsampling, GROUP_NORM_EPS};
use crate::error::{Error, Result};
use crate::gpu::bfcnn::{residual_bounded, Residual};
use crate::gpu::conv::reference::{
    conv2d_bounded, conv2d_input_grad_bounded, conv2d_weight_grad_bounded, Bounds,
};
use crate::gpu::embedding::sigma_features;
use crate::gpu::group_norm::{
    group_norm_backward_bounded, group_norm_bounded, Bounded, GroupNormShape,
};
use crate::gpu::resample::{resample_bounded, Resample, ResampleShape};

/// One block's intermediates in the forward pass.
#[derive(Debug, Clone)]
struct BlockTrace {
    /// The convolution's input (the image, pooled or concatenated).
    input: Bounds,
    /// The convolution's output Z (GroupNorm's input).
    z: Vec<Bounded>,
    /// `E = N + Pẽ`, ReLU's argument.
    e: Vec<Bounded>,
    /// `A = ReLU(E)`.
    a: Bounds,
}

/// The f64 forward pass of a U-Net with per-entry bounds.
#[derive(Debug, Clone)]
pub struct UNetForward {
    blocks: Vec<BlockTrace>,
    /// `x̂ = f(y, σ)`, image by image.
    pub output: Vec<f64>,
    /// Bound on the kernels' `|x̂_f32 − x̂|`.
    pub bound: Vec<f64>,
}

fn bounded((v, e): (&[f64], &[f64])) -> Vec<Bounded> {
    v.iter().zip(e).map(|(&v, &e)| Bounded { v, e }).collect()
}

fn unbounded(b: &[Bounded]) -> Bounds {
    b.iter().map(|b| (b.v, b.e)).unzip()
}

fn exact(v: &[f64]) -> Vec<Bounded> {
    v.iter().map(|&v| Bounded::exact(v)).collect()
}

/// `ẽ(σ)` as the kernels see it: the 2F features rounded to f32, then the exact 1.
fn features(config: &UNetConfig, sigma: f64) -> Result<Vec<Bounded>> {
    let mut e: Vec<Bounded> = sigma_features(sigma, config.frequencies)?
        .into_iter()
        .map(Bounded::input)
        .collect();
    e.push(Bounded::exact(1.0));
    Ok(e)
}

fn check_tensors(config: &UNetConfig, tensors: &[Vec<f64>]) -> Result<()> {
    config.validate()?;
    let lengths = config.tensor_lengths();
    if tensors.len() != lengths.len() {
        return Err(Error::DimensionMismatch {
            what: "U-Net tensors".into(),
            expected: lengths.len(),
            got: tensors.len(),
        });
    }
    for (t, (v, &len)) in tensors.iter().zip(&lengths).enumerate() {
        crate::gpu::conv::ensure_operand(&format!("U-Net {}", config.tensor_name(t)), v, len)?;
    }
    Ok(())
}

fn norm_shape(config: &UNetConfig, images: usize, level: usize, channels: usize) -> GroupNormShape {
    let (height, width) = config.side(level);
    GroupNormShape {
        batch: images,
        channels,
        groups: config.groups,
        height,
        width,
        eps: GROUP_NORM_EPS,
    }
}

/// `[first | second]` along channels of `images` NCHW tensors of `plane` pixels (a copy).
fn concat(
    images: usize,
    plane: usize,
    first: (&Bounds, usize),
    second: (&Bounds, usize),
) -> Bounds {
    let ((a, ca), (b, cb)) = (first, second);
    let mut out = (Vec::new(), Vec::new());
    for i in 0..images {
        for (t, c) in [(a, ca), (b, cb)] {
            let range = i * c * plane..(i + 1) * c * plane;
            out.0.extend_from_slice(&t.0[range.clone()]);
            out.1.extend_from_slice(&t.1[range]);
        }
    }
    out
}

/// Channels `offset..offset + count` of `images` NCHW tensors of `total` channels (a copy).
fn take(
    t: &Bounds,
    images: usize,
    plane: usize,
    (total, offset, count): (usize, usize, usize),
) -> Bounds {
    let mut out = (Vec::new(), Vec::new());
    for i in 0..images {
        let range = (i * total + offset) * plane..(i * total + offset + count) * plane;
        out.0.extend_from_slice(&t.0[range.clone()]);
        out.1.extend_from_slice(&t.1[range]);
    }
    out
}

/// `x̂ = f(y, σ)` in f64 for `images` images `input` (flat, each C₀·H·W in CHW order) known to
/// within `input_bound` (0 for f32 values the kernels read exactly; the Philox normal's bound
/// for the CPU's regenerated noise), with per-entry bounds on the f32 kernels' result (module
/// doc). `tensors` are the trainer's, in its order. Errors: a bad configuration, tensors or
/// input of the wrong length or non-finite, a bad σ.
pub fn unet_forward_reference(
    config: &UNetConfig,
    tensors: &[Vec<f64>],
    images: usize,
    input: &[f64],
    input_bound: &[f64],
    sigma: f64,
) -> Result<UNetForward> {
    check_tensors(config, tensors)?;
    let len = images * config.image.dim();
    crate::gpu::conv::ensure_operand("U-Net input", input, len)?;
    crate::error::ensure_len("U-Net input bound", input_bound, len)?;
    let e_sigma = features(config, sigma)?;
    let blocks = config.blocks();
    let mut trace: Vec<BlockTrace> = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let (h, w) = config.side(b.level);
        let plane = h * w;
        let input = match b.input {
            BlockInput::Image => (input.to_vec(), input_bound.to_vec()),
            BlockInput::Pooled { source } => {
                let a = &trace[source].a;
                let shape = ResampleShape {
                    planes: images * b.in_channels,
                    height: 2 * h,
                    width: 2 * w,
                    factor: 2,
                };
                resample_bounded(&shape, Resample::AveragePool, (&a.0, &a.1))?
            }
            BlockInput::Concat { up, skip } => {
                let below = config.widths[b.level + 1];
                let map = match config.upsampling {
                    Upsampling::Nearest => Resample::UpsampleNearest,
                    Upsampling::Bilinear => Resample::UpsampleBilinear,
                };
                let shape = ResampleShape {
                    planes: images * below,
                    height: h / 2,
                    width: w / 2,
                    factor: 2,
                };
                let a = &trace[up].a;
                let upsampled = resample_bounded(&shape, map, (&a.0, &a.1))?;
                let skip_channels = b.in_channels - below;
                concat(
                    images,
                    plane,
                    (&upsampled, below),
                    (&trace[skip].a, skip_channels),
                )
            }
        };
        let (z, ez) = conv2d_bounded(
            &config.block_conv(b, images),
            (&input.0, &input.1),
            &tensors[3 * i],
        )?;
        let z = bounded((&z, &ez));
        let out = b.out_channels;
        let affine = exact(&tensors[3 * i + 1]);
        let n = group_norm_bounded(
            &norm_shape(config, images, b.level, out),
            &z,
            &affine[..out],
            &affine[out..],
        )?;
        // the embedding's value per channel, accumulated in the kernel's order
        let p = exact(&tensors[3 * i + 2]);
        let k = e_sigma.len();
        let shift: Vec<Bounded> = (0..out)
            .map(|c| {
                (0..k).fold(Bounded::exact(0.0), |acc, kk| {
                    acc.plus(p[c * k + kk].times(e_sigma[kk]))
                })
            })
            .collect();
        let e: Vec<Bounded> = n
            .iter()
            .enumerate()
            .map(|(idx, v)| v.plus(shift[(idx / plane) % out]))
            .collect();
        let a = (
            e.iter().map(|v| v.v.max(0.0)).collect(),
            e.iter().map(|v| v.e).collect(),
        );
        trace.push(BlockTrace { input, z, e, a });
    }
    let last = &trace[blocks.len() - 1].a;
    let (output, bound) = conv2d_bounded(
        &config.output_conv(images),
        (&last.0, &last.1),
        &tensors[3 * blocks.len()],
    )?;
    Ok(UNetForward {
        blocks: trace,
        output,
        bound,
    })
}

/// One batch's loss and gradient in f64, with bounds on the GPU's.
#[derive(Debug, Clone)]
pub struct UNetBatchReference {
    /// `‖x̂_r − x_r‖²` per image.
    pub row_sq: Vec<f64>,
    /// Bounds on the GPU's error in each.
    pub row_sq_bound: Vec<f64>,
    /// The gradient of `L = (1/B)Σ_r‖x̂_r − x_r‖²` for every tensor, in the trainer's order.
    pub gradient: Vec<Vec<f64>>,
    /// Per-entry bounds on the GPU's gradient error.
    pub gradient_bound: Vec<Vec<f64>>,
}

/// `∂L/∂E` from `∂L/∂A` through ReLU's mask, uncertain where `|E| ≤ δE` (module doc).
fn relu_mask(da: &Bounds, e: &[Bounded]) -> Vec<Bounded> {
    e.iter()
        .enumerate()
        .map(|(i, e)| {
            let (g, eg) = (da.0[i], da.1[i]);
            if e.v > e.e {
                Bounded { v: g, e: eg }
            } else if e.v > -e.e {
                Bounded {
                    v: if e.v > 0.0 { g } else { 0.0 },
                    e: g.abs() + eg,
                }
            } else {
                Bounded::exact(0.0)
            }
        })
        .collect()
}

/// The f64 forward and backward pass of one batch of `rows` images: clean `x`, noisy `y` known
/// to within `y_bound` (from [`crate::gpu::dense::batch_inputs_reference`] with α = 1), the
/// tensors as the GPU holds them, with the running bounds of the module doc. Errors: as
/// [`unet_forward_reference`], and `x` of the wrong length.
pub fn unet_batch_reference(
    config: &UNetConfig,
    tensors: &[Vec<f64>],
    rows: usize,
    (x, y, y_bound): (&[f64], &[f64], &[f64]),
    sigma: f64,
) -> Result<UNetBatchReference> {
    let fwd = unet_forward_reference(config, tensors, rows, y, y_bound, sigma)?;
    let d = config.image.dim();
    crate::gpu::conv::ensure_operand("U-Net clean batch", x, rows * d)?;
    let Residual {
        g,
        eg,
        row_sq,
        row_sq_bound,
    } = residual_bounded((&fwd.output, &fwd.bound), x, rows, d);
    let blocks = config.blocks();
    let nb = blocks.len();
    let mut gradient = vec![Vec::new(); 3 * nb + 1];
    let mut gradient_bound = vec![Vec::new(); 3 * nb + 1];
    let out_shape = config.output_conv(rows);
    let last = &fwd.blocks[nb - 1].a;
    (gradient[3 * nb], gradient_bound[3 * nb]) =
        conv2d_weight_grad_bounded(&out_shape, (&last.0, &last.1), (&g, &eg))?;
    let mut da: Vec<Option<Bounds>> = vec![None; nb];
    let mut gin: Vec<Option<Bounds>> = vec![None; nb];
    da[nb - 1] = Some(conv2d_input_grad_bounded(
        &out_shape,
        (&g, &eg),
        &tensors[3 * nb],
    )?);
    let e_sigma = features(config, sigma)?;
    let k = e_sigma.len();
    let missing = |i: usize| {
        Error::Numerical(format!(
            "U-Net reference: block {i} has no gradient (a block order the reference cannot walk)"
        ))
    };
    for i in (0..nb).rev() {
        let (b, tr) = (&blocks[i], &fwd.blocks[i]);
        let (h, w) = config.side(b.level);
        let plane = h * w;
        let out = b.out_channels;
        let ge = relu_mask(da[i].as_ref().ok_or_else(|| missing(i))?, &tr.e);
        // the embedding: per (image, channel) plane sums, then Σ_b S·ẽ_k
        let sums: Vec<Bounded> = (0..rows * out)
            .map(|bc| {
                ge[bc * plane..(bc + 1) * plane]
                    .iter()
                    .fold(Bounded::exact(0.0), |acc, &v| acc.plus(v))
            })
            .collect();
        let dp: Vec<Bounded> = (0..out * k)
            .map(|ck| {
                let (c, kk) = (ck / k, ck % k);
                (0..rows).fold(Bounded::exact(0.0), |acc, r| {
                    acc.plus(sums[r * out + c].times(e_sigma[kk]))
                })
            })
            .collect();
        (gradient[3 * i + 2], gradient_bound[3 * i + 2]) = unbounded(&dp);
        let gamma = exact(&tensors[3 * i + 1][..out]);
        let (dz, dgamma, dbeta) = group_norm_backward_bounded(
            &norm_shape(config, rows, b.level, out),
            &tr.z,
            &gamma,
            &ge,
        )?;
        let affine: Vec<Bounded> = dgamma.into_iter().chain(dbeta).collect();
        (gradient[3 * i + 1], gradient_bound[3 * i + 1]) = unbounded(&affine);
        let dz = unbounded(&dz);
        let shape = config.block_conv(b, rows);
        (gradient[3 * i], gradient_bound[3 * i]) =
            conv2d_weight_grad_bounded(&shape, (&tr.input.0, &tr.input.1), (&dz.0, &dz.1))?;
        if b.input == BlockInput::Image {
            continue;
        }
        let gi = conv2d_input_grad_bounded(&shape, (&dz.0, &dz.1), &tensors[3 * i])?;
        match b.input {
            BlockInput::Image => {}
            BlockInput::Pooled { source } => {
                let decoder = blocks
                    .iter()
                    .position(
                        |d| matches!(d.input, BlockInput::Concat { skip, .. } if skip == source),
                    )
                    .ok_or_else(|| missing(source))?;
                let pooled = resample_bounded(
                    &ResampleShape {
                        planes: rows * b.in_channels,
                        height: h,
                        width: w,
                        factor: 2,
                    },
                    Resample::AveragePoolGrad,
                    (&gi.0, &gi.1),
                )?;
                let decoder_gin = gin[decoder].as_ref().ok_or_else(|| missing(decoder))?;
                let skip = take(
                    decoder_gin,
                    rows,
                    4 * plane,
                    (blocks[decoder].in_channels, out, b.in_channels),
                );
                let sum: Vec<Bounded> = bounded((&skip.0, &skip.1))
                    .into_iter()
                    .zip(bounded((&pooled.0, &pooled.1)))
                    .map(|(s, p)| s.plus(p))
                    .collect();
                da[source] = Some(unbounded(&sum));
            }
            BlockInput::Concat { up, .. } => {
                let below = config.widths[b.level + 1];
                let slice = take(&gi, rows, plane, (b.in_channels, 0, below));
                let map = match config.upsampling {
                    Upsampling::Nearest => Resample::UpsampleNearestGrad,
                    Upsampling::Bilinear => Resample::UpsampleBilinearGrad,
                };
                da[up] = Some(resample_bounded(
                    &ResampleShape {
                        planes: rows * below,
                        height: h,
                        width: w,
                        factor: 2,
                    },
                    map,
                    (&slice.0, &slice.1),
                )?);
                gin[i] = Some(gi);
            }
        }
    }
    Ok(UNetBatchReference {
        row_sq,
        row_sq_bound,
        gradient,
        gradient_bound,
    })
}
