//! 2-D convolution on the GPU (`gpu/conv.wgsl`): stride 1, "same" output size, zero or circular
//! padding, and its gradients with respect to the input and the weights — the layers of the
//! convolutional denoisers (Levine–Weiss §2.1, Kadkhodaie et al. §2).
//!
//! Tensors are flat NCHW slices: the input `X` is batch × in_channels × height × width, the
//! weights `K` out_channels × in_channels × kernel × kernel (kernel odd, `r = ⌊kernel/2⌋`), the
//! output `Y` batch × out_channels × height × width, and
//!
//! `Y[b,o,i,j] = Σ_{c,p,q} K[o,c,p,q] · X[b, c, π(i+p−r), π(j+q−r)]`,
//!
//! with `π` the padding's index map (zero padding drops the terms whose index leaves the image,
//! circular padding wraps it). With `G = ∂L/∂Y`:
//!
//! * `∂L/∂X[b,c,i,j] = Σ_{o,p,q} K[o,c,p,q] · G[b, o, π(i−p+r), π(j−q+r)]`,
//! * `∂L/∂K[o,c,p,q] = Σ_{b,i,j} G[b,o,i,j] · X[b, c, π(i+p−r), π(j+q−r)]`.
//!
//! **f32 error.** Every entry is one dot product of `n` terms (`n ≤ in_channels·kernel²`,
//! `out_channels·kernel²` and `batch·height·width` for the three) of operands rounded to f32,
//! accumulated in order: each term meets at most two input roundings, its product and `n − 1`
//! additions, so `|ŷ − y| ≤ γ_{n+2}·Σ|terms|` ([`mod@reference`] returns that bound per entry, with the
//! f64 reference's own `γ_n` added). The weight gradient of a batch cut into chunks (see below)
//! sums the chunks' f32 results in f64: the bound of the whole sum still holds, each chunk's being
//! smaller.
//!
//! **Limits.** The batch is cut into chunks whose input and output each fit one storage binding;
//! every dispatch's grid (a 2-D grid of 64-wide groups) stays within the per-dimension
//! workgroup limit.
//!
//! The kernels here compute one dot product per invocation, straight from the tensors; [`im2col`]
//! computes the same three maps as im2col + the GEMM family (resident matrices, the GEMM's
//! register-blocked kernels), the route for the U-Net's wide layers.

pub mod im2col;
pub mod reference;

use super::uniforms::ConvParams;
use super::{groups_1d, shaders, Gpu};
use crate::error::{Error, Result};

/// How a convolution treats the pixels beyond the image's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Padding {
    /// Zeros beyond the edge (the term is dropped).
    Zero,
    /// The image wraps around: index `k` reads `k mod side` (Levine–Weiss's circular padding).
    Circular,
}

/// The shape of one convolution layer and its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Images in the batch.
    pub batch: usize,
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output (filters).
    pub out_channels: usize,
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Side of the square kernel (odd).
    pub kernel: usize,
    /// Zero or circular padding.
    pub padding: Padding,
}

impl ConvShape {
    /// Entries of the input `X` (`batch·in_channels·height·width`).
    pub fn input_len(&self) -> usize {
        self.batch * self.in_channels * self.height * self.width
    }

    /// Entries of the output `Y` (`batch·out_channels·height·width`).
    pub fn output_len(&self) -> usize {
        self.batch * self.out_channels * self.height * self.width
    }

    /// Entries of the weights `K` (`out_channels·in_channels·kernel²`).
    pub fn weight_len(&self) -> usize {
        self.out_channels * self.in_channels * self.kernel * self.kernel
    }

    /// The kernel's radius `r = ⌊kernel/2⌋`.
    pub fn radius(&self) -> usize {
        self.kernel / 2
    }

    /// Returns an error naming the first dimension that is 0, or an even kernel, or a shape
    /// whose entries overflow the kernels' 32-bit indices.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("batch", self.batch),
            ("in_channels", self.in_channels),
            ("out_channels", self.out_channels),
            ("height", self.height),
            ("width", self.width),
            ("kernel", self.kernel),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    what: format!("convolution {what}").into(),
                    reason: "must be at least 1, got 0".into(),
                });
            }
        }
        if self.kernel.is_multiple_of(2) {
            return Err(Error::InvalidArgument {
                what: "convolution kernel".into(),
                reason: format!(
                    "the kernel side must be odd (a centred window), got {}",
                    self.kernel
                ),
            });
        }
        let per_image = (self.in_channels.max(self.out_channels) as u128)
            * (self.height as u128)
            * (self.width as u128);
        if per_image > u32::MAX as u128 || self.weight_len() as u128 > u32::MAX as u128 {
            return Err(Error::GpuLimit(format!(
                "convolution of {} channels of {}×{} with {}×{} kernels: an image or the \
                 weights exceed the kernels' 32-bit indices",
                self.in_channels.max(self.out_channels),
                self.height,
                self.width,
                self.kernel,
                self.kernel
            )));
        }
        Ok(())
    }

    fn with_batch(&self, batch: usize) -> Self {
        Self { batch, ..*self }
    }
}

/// Returns an error unless `values` has `expected` entries, all finite and within f32's range
/// (an operand of a kernel that computes in f32).
pub(crate) fn ensure_operand(what: &str, values: &[f64], expected: usize) -> Result<()> {
    crate::error::ensure_len(what, values, expected)?;
    crate::error::ensure_finite(what, values)?;
    if let Some(index) = values.iter().position(|v| v.abs() > f64::from(f32::MAX)) {
        return Err(Error::InvalidArgument {
            what: what.to_string().into(),
            reason: format!(
                "entry {index} is {}, beyond f32's range (the kernels compute in f32)",
                values[index]
            ),
        });
    }
    Ok(())
}

/// Images per chunk so that a chunk's input and output (and gradient) each fit one binding.
fn images_per_chunk(gpu: &Gpu, shape: &ConvShape) -> Result<usize> {
    let words = (gpu.max_binding_bytes() / 4) as usize;
    let per_image = shape.in_channels.max(shape.out_channels) * shape.height * shape.width;
    if per_image > words || shape.weight_len() > words {
        return Err(Error::GpuLimit(format!(
            "convolution: one image ({per_image} words) or the weights ({} words) exceed the \
             adapter's storage binding of {words} words",
            shape.weight_len()
        )));
    }
    Ok((words / per_image).max(1))
}

/// Runs one of the three kernels on `shape`'s batch cut into chunks; `per_chunk(start, len)`
/// returns the chunk's `(first, second)` operands (f32, already rounded) and how many result
/// words it writes; `collect(start, len, result)` takes each chunk's result. A chunk holds at
/// most `most_images` images, fewer where the binding asks.
fn run_chunked(
    gpu: &Gpu,
    shader: &shaders::Shader,
    shape: &ConvShape,
    most_images: usize,
    per_chunk: impl Fn(usize, usize) -> (Vec<f32>, Vec<f32>, usize),
    mut collect: impl FnMut(usize, usize, Vec<f32>),
) -> Result<()> {
    shape.validate()?;
    let images = images_per_chunk(gpu, shape)?.min(most_images.max(1));
    for (start, len) in super::chunks(shape.batch, images) {
        let chunk = shape.with_batch(len);
        let (first, second, out_words) = per_chunk(start, len);
        let groups = groups_1d(gpu, out_words);
        let params = ConvParams {
            batch: chunk.batch as u32,
            in_channels: chunk.in_channels as u32,
            out_channels: chunk.out_channels as u32,
            height: chunk.height as u32,
            width: chunk.width as u32,
            kernel: chunk.kernel as u32,
            circular: u32::from(chunk.padding == Padding::Circular),
            grid_x: groups[0],
        };
        let params = gpu.uniform("conv params", &params);
        let first = gpu.input("conv first operand", &first)?;
        let second = gpu.input("conv second operand", &second)?;
        let out = gpu.output("conv result", out_words)?;
        gpu.dispatch(shader, &[&params, &first, &second, &out], groups)?;
        collect(start, len, gpu.read::<f32>(&out, out_words)?);
    }
    Ok(())
}

fn to_f32(values: &[f64]) -> Vec<f32> {
    values.iter().map(|&v| v as f32).collect()
}

/// `Y = conv(X, K)` on the GPU in f32 (module doc), returned in f64.
/// Errors: a bad shape, operands of the wrong length, non-finite or beyond f32's range.
pub fn conv2d(gpu: &Gpu, shape: &ConvShape, input: &[f64], weight: &[f64]) -> Result<Vec<f64>> {
    conv2d_in_chunks(gpu, shape, input, weight, usize::MAX)
}

/// [`conv2d`] with the batch cut into chunks of at most `most_images` images (fewer where a
/// storage binding asks): the route a batch larger than a binding takes.
pub fn conv2d_in_chunks(
    gpu: &Gpu,
    shape: &ConvShape,
    input: &[f64],
    weight: &[f64],
    most_images: usize,
) -> Result<Vec<f64>> {
    shape.validate()?;
    ensure_operand("convolution input", input, shape.input_len())?;
    ensure_operand("convolution weights", weight, shape.weight_len())?;
    let image_in = shape.in_channels * shape.height * shape.width;
    let image_out = shape.out_channels * shape.height * shape.width;
    let weight = to_f32(weight);
    let mut output = vec![0.0; shape.output_len()];
    run_chunked(
        gpu,
        &shaders::CONV_FORWARD,
        shape,
        most_images,
        |start, len| {
            let x = to_f32(&input[start * image_in..(start + len) * image_in]);
            (x, weight.clone(), len * image_out)
        },
        |start, len, y| {
            for (dst, v) in output[start * image_out..(start + len) * image_out]
                .iter_mut()
                .zip(y)
            {
                *dst = f64::from(v);
            }
        },
    )?;
    Ok(output)
}

/// `∂L/∂X` from `G = ∂L/∂Y` and the weights, on the GPU in f32 (module doc).
/// Errors: as [`conv2d`].
pub fn conv2d_input_grad(
    gpu: &Gpu,
    shape: &ConvShape,
    output_grad: &[f64],
    weight: &[f64],
) -> Result<Vec<f64>> {
    conv2d_input_grad_in_chunks(gpu, shape, output_grad, weight, usize::MAX)
}

/// [`conv2d_input_grad`] in chunks of at most `most_images` images ([`conv2d_in_chunks`]).
pub fn conv2d_input_grad_in_chunks(
    gpu: &Gpu,
    shape: &ConvShape,
    output_grad: &[f64],
    weight: &[f64],
    most_images: usize,
) -> Result<Vec<f64>> {
    shape.validate()?;
    ensure_operand(
        "convolution output gradient",
        output_grad,
        shape.output_len(),
    )?;
    ensure_operand("convolution weights", weight, shape.weight_len())?;
    let image_in = shape.in_channels * shape.height * shape.width;
    let image_out = shape.out_channels * shape.height * shape.width;
    let weight = to_f32(weight);
    let mut input_grad = vec![0.0; shape.input_len()];
    run_chunked(
        gpu,
        &shaders::CONV_INPUT_GRAD,
        shape,
        most_images,
        |start, len| {
            let g = to_f32(&output_grad[start * image_out..(start + len) * image_out]);
            (g, weight.clone(), len * image_in)
        },
        |start, len, dx| {
            for (dst, v) in input_grad[start * image_in..(start + len) * image_in]
                .iter_mut()
                .zip(dx)
            {
                *dst = f64::from(v);
            }
        },
    )?;
    Ok(input_grad)
}

/// `∂L/∂K` from the input `X` and `G = ∂L/∂Y`, on the GPU in f32 (module doc; the chunks' results
/// summed in f64). Errors: as [`conv2d`].
pub fn conv2d_weight_grad(
    gpu: &Gpu,
    shape: &ConvShape,
    input: &[f64],
    output_grad: &[f64],
) -> Result<Vec<f64>> {
    conv2d_weight_grad_in_chunks(gpu, shape, input, output_grad, usize::MAX)
}

/// [`conv2d_weight_grad`] in chunks of at most `most_images` images ([`conv2d_in_chunks`]),
/// the chunks' partial sums added in f64.
pub fn conv2d_weight_grad_in_chunks(
    gpu: &Gpu,
    shape: &ConvShape,
    input: &[f64],
    output_grad: &[f64],
    most_images: usize,
) -> Result<Vec<f64>> {
    shape.validate()?;
    ensure_operand("convolution input", input, shape.input_len())?;
    ensure_operand(
        "convolution output gradient",
        output_grad,
        shape.output_len(),
    )?;
    let image_in = shape.in_channels * shape.height * shape.width;
    let image_out = shape.out_channels * shape.height * shape.width;
    let mut weight_grad = vec![0.0; shape.weight_len()];
    run_chunked(
        gpu,
        &shaders::CONV_WEIGHT_GRAD,
        shape,
        most_images,
        |start, len| {
            let x = to_f32(&input[start * image_in..(start + len) * image_in]);
            let g = to_f32(&output_grad[start * image_out..(start + len) * image_out]);
            (x, g, shape.weight_len())
        },
        |_, _, dk| {
            for (dst, v) in weight_grad.iter_mut().zip(dk) {
                *dst += f64::from(v);
            }
        },
    )?;
    Ok(weight_grad)
}
