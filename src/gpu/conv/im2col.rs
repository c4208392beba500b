//! The convolution of [`super`] (stride 1, "same" size, odd kernel side `s`, `r = ⌊s/2⌋`, zero or
//! circular padding, NCHW) computed as **im2col + the GEMM family** (`gpu/im2col.wgsl` and
//! [`crate::gpu::gemm`]), forward and backward, every intermediate resident on the GPU.
//!
//! **Layout.** The batch is cut into chunks of `b_c` images (below). A chunk's `P = b_c·H·W`
//! output pixels `n = (b, i, j)` are the rows of
//!
//! * `Colᵀ` (P × K, `K = C_in·s²`): `Colᵀ[n, (c,p,q)] = X[b, c, π(i+p−r), π(j+q−r)]`, 0 where zero
//!   padding drops the term ([`shaders::IM2COL`]);
//! * `Yᵀ` (P × C_out): `Yᵀ[n, o] = Y[b, o, i, j]`.
//!
//! With the weights as the C_out × K matrix `W[o, (c,p,q)] = K[o,c,p,q]` (the NCHW weight tensor
//! read row-major, no copy):
//!
//! * forward: `Yᵀ = Colᵀ·Wᵀ` (GEMM m = P, n = C_out, k = K), then [`shaders::IM2COL_ROWS_TO_NCHW`]
//!   writes Y;
//! * weight gradient: `dW = (dYᵀ)ᵀ·Colᵀ` (m = C_out, n = K, k = P), dYᵀ laid out from dY by
//!   [`shaders::IM2COL_NCHW_TO_ROWS`]; the chunks' products are chained on the GPU
//!   (`dW ← (dYᵀ)ᵀ·Colᵀ + 1·dW_prev`, alternating between two buffers so that the last lands in
//!   the caller's dW);
//! * input gradient: `dColᵀ = dYᵀ·W` (m = P, n = K, k = C_out), written over Colᵀ once dW's
//!   product has read it, then [`shaders::IM2COL_COL2IM`], a gather:
//!   `dX[b,c,i',j'] = Σ_{p,q} dColᵀ[(b, π(i'−p+r), π(j'−q+r)), (c,p,q)]` (each input pixel sums the
//!   `s²` column entries that read it; no atomics).
//!
//! Why rows per pixel (Colᵀ, not Col): a shorter last chunk is the leading rows of the same
//! workspaces, and the weights need no layout pass in either direction. The pixel-major
//! intermediate costs one layout pass of Y (forward) and of dY (backward), memory-bound and
//! small beside the products' `2·P·C_out·K` FLOPs each when `K` and `C_out` are large.
//!
//! **f32 error** (Higham, *Accuracy and Stability*, §3.1: a sum in any order in which each term
//! meets at most `m` roundings errs by at most `γ_m·Σ|terms|`). im2col and the layouts copy f32
//! words exactly and write exact zeros; the GEMMs here run with α = 1 (exact) and β ∈ {0, 1}.
//! * Forward: one GEMM dot product of `K = C_in·s²` terms (dropped ones are exact zeros): two
//!   input roundings, the product and at most `K − 1` additions (split-K keeps the count: module
//!   doc of [`crate::gpu::gemm`]), `m ≤ K + 2` — the direct kernel's `γ_{n+2}` with
//!   `n = C_in·s²`, [`super::reference::conv2d_reference`]'s bound.
//! * Input gradient: a GEMM sum of `C_out` products (`C_out + 2` roundings; split-K, which
//!   applies only from k = 512 on, keeps the count), stored in f32 exactly, then at most `s² − 1`
//!   additions in the gather (the first adds to an exact 0):
//!   `m ≤ C_out + s² + 1` ([`Im2colConv::input_grad_roundings`]), never more than the direct
//!   kernel's `C_out·s² + 2` (`(C_out − 1)(s² − 1) ≥ 0`), so
//!   [`super::reference::conv2d_input_grad_reference`]'s bound holds and a tighter one too.
//! * Weight gradient: `P_total = B·H·W` terms over `J` chunks of `P_L ≥ 1`: a term of chunk L meets
//!   two input roundings, its product, at most `P_L − 1` additions inside its chunk (split-K
//!   included), one addition of the previous chunks' partial (L ≥ 2) and one per later chunk:
//!   `m ≤ 3 + P_L − 1 + J − 1 ≤ P_total + 2`, since each other chunk holds at least one term —
//!   [`super::reference::conv2d_weight_grad_reference`]'s `γ_{n+2}` with `n = B·H·W`.
//!
//! **Limits.** `X`, `Y`, `dY`, `dX` and the weights are [`GpuMat`]s, each within one storage
//! binding by construction (B × C·H·W, row-major = NCHW). A chunk holds the most images whose
//! `Colᵀ` (`b_c·H·W·K` words) and `Yᵀ` fit one binding and whose `b_c·H·W` GEMM rows need at
//! most the adapter's workgroups per dimension (65535) of the smallest GEMM tile (16 rows); the
//! 1-D kernels of `gpu/im2col.wgsl` run on 2-D grids within the same limit. An image whose `Colᵀ`
//! alone exceeds a binding is an [`Error::GpuLimit`] naming it. A whole forward, or a whole
//! backward, is one submission.

use super::{ensure_operand, ConvShape, Padding};
use crate::error::{Error, Result};
use crate::gpu::gemm::{GpuMat, PreparedProduct, Product};
use crate::gpu::shaders::{self, Shader};
use crate::gpu::uniforms::Im2colParams;
use crate::gpu::{groups_1d, Dispatch, Gpu};

/// A convolution shape prepared for im2col + GEMM on one adapter: its chunking and the resident
/// workspaces `Colᵀ` (b_c·H·W × K), `Yᵀ` (b_c·H·W × C_out) and a second C_out × K buffer for the
/// chained weight gradient (module doc). Reusable for any number of forward and backward passes
/// of the same shape, from any thread: a call touches the workspaces only inside its one
/// submission, which completes before another thread gets its turn ([`Gpu::turn`]).
#[derive(Debug)]
pub struct Im2colConv {
    shape: ConvShape,
    images: usize,
    col: GpuMat,
    rows: GpuMat,
    partial: GpuMat,
}

/// One chunk's parameters and its views of the workspaces.
struct Chunk {
    params: wgpu::Buffer,
    images: usize,
    col: GpuMat,
    rows: GpuMat,
}

impl Im2colConv {
    /// The plan with the largest chunks the adapter allows (module doc). Errors: a bad shape
    /// ([`ConvShape::validate`]), or one image's `Colᵀ` beyond a storage binding or the grid.
    pub fn new(gpu: &Gpu, shape: &ConvShape) -> Result<Self> {
        Self::with_chunk(gpu, shape, usize::MAX)
    }

    /// [`Im2colConv::new`] with at most `most_images` images per chunk (≥ 1; tests force several
    /// chunks on small batches).
    pub fn with_chunk(gpu: &Gpu, shape: &ConvShape, most_images: usize) -> Result<Self> {
        shape.validate()?;
        if most_images == 0 {
            return Err(Error::InvalidArgument {
                what: "im2col images per chunk".into(),
                reason: "must be at least 1, got 0".into(),
            });
        }
        let images = Self::largest_chunk(gpu, shape)?
            .min(most_images)
            .min(shape.batch);
        let pixels = images * shape.height * shape.width;
        let k = shape.in_channels * shape.kernel * shape.kernel;
        Ok(Self {
            shape: *shape,
            images,
            col: GpuMat::poisoned(gpu, "im2col Colᵀ", pixels, k)?,
            rows: GpuMat::poisoned(gpu, "im2col Yᵀ", pixels, shape.out_channels)?,
            partial: GpuMat::poisoned(gpu, "im2col dW partial", shape.out_channels, k)?,
        })
    }

    /// The most images per chunk on `gpu`: `Colᵀ` and `Yᵀ` within one binding, the GEMM rows
    /// within `16·max_groups`.
    fn largest_chunk(gpu: &Gpu, shape: &ConvShape) -> Result<usize> {
        let words = usize::try_from(gpu.max_binding_bytes() / 4).unwrap_or(usize::MAX);
        let plane = shape.height * shape.width;
        let k = shape.in_channels * shape.kernel * shape.kernel;
        let widest = k.max(shape.out_channels);
        let by_binding = words / (plane * widest);
        let max_rows = 16 * gpu.limits().max_compute_workgroups_per_dimension as usize;
        let by_grid = max_rows / plane;
        if by_binding == 0 || by_grid == 0 {
            return Err(Error::GpuLimit(format!(
                "im2col convolution: one {}×{} image's column matrix ({plane} rows × {widest} \
                 columns = {} words) exceeds the adapter's storage binding of {words} words or \
                 its {max_rows} GEMM rows",
                shape.height,
                shape.width,
                plane * widest
            )));
        }
        Ok(by_binding.min(by_grid))
    }

    /// The shape.
    pub fn shape(&self) -> &ConvShape {
        &self.shape
    }

    /// Images per chunk `b_c`.
    pub fn images_per_chunk(&self) -> usize {
        self.images
    }

    /// The chunks as `(first image, images)`.
    pub fn chunks(&self) -> Vec<(usize, usize)> {
        crate::gpu::chunks(self.shape.batch, self.images)
    }

    /// `(m, n, k, trans_a, trans_b)` of the three GEMMs of a chunk of `images` images: forward
    /// `Colᵀ·Wᵀ`, weight gradient `(dYᵀ)ᵀ·Colᵀ`, input gradient `dYᵀ·W` (module doc).
    pub fn gemm_shapes(&self, images: usize) -> [(usize, usize, usize, bool, bool); 3] {
        let s = &self.shape;
        let p = images * s.height * s.width;
        let k = s.in_channels * s.kernel * s.kernel;
        [
            (p, s.out_channels, k, false, true),
            (s.out_channels, k, p, true, false),
            (p, k, s.out_channels, false, false),
        ]
    }

    /// The most roundings a term of an input-gradient entry meets, `C_out + s² + 1` (module
    /// doc): the f32 error is at most `γ_m·Σ|terms|` with this `m`.
    pub fn input_grad_roundings(&self) -> usize {
        self.shape.out_channels + self.shape.kernel * self.shape.kernel + 1
    }

    /// Checks that `m` is `rows × cols`, naming it.
    fn check(what: &str, m: &GpuMat, rows: usize, cols: usize) -> Result<()> {
        if m.shape() == (rows, cols) {
            Ok(())
        } else {
            let (r, c) = m.shape();
            Err(Error::InvalidArgument {
                what: format!("im2col convolution {what}").into(),
                reason: format!("must be {rows}×{cols}, got {r}×{c}"),
            })
        }
    }

    /// The parameters and workspace views of every chunk.
    fn chunk_views(&self, gpu: &Gpu) -> Result<Vec<Chunk>> {
        let s = &self.shape;
        self.chunks()
            .into_iter()
            .map(|(first, images)| {
                let params = Im2colParams {
                    images: images as u32,
                    first_image: first as u32,
                    in_channels: s.in_channels as u32,
                    out_channels: s.out_channels as u32,
                    height: s.height as u32,
                    width: s.width as u32,
                    kernel: s.kernel as u32,
                    circular: u32::from(s.padding == Padding::Circular),
                };
                let pixels = images * s.height * s.width;
                Ok(Chunk {
                    params: gpu.shared_uniform("im2col params", &params)?,
                    images,
                    col: self.col.leading_rows(pixels)?,
                    rows: self.rows.leading_rows(pixels)?,
                })
            })
            .collect()
    }

    /// `Y = conv(X, W)` (module doc): `x` is B × C_in·H·W, `weight` C_out × C_in·s², `y`
    /// B × C_out·H·W (each row an image in NCHW order); one submission. Errors: a wrong shape,
    /// `y` sharing `x`'s buffer, the GEMM's limits.
    pub fn forward(&self, gpu: &Gpu, x: &GpuMat, weight: &GpuMat, y: &GpuMat) -> Result<()> {
        let s = &self.shape;
        let plane = s.height * s.width;
        Self::check("input X", x, s.batch, s.in_channels * plane)?;
        Self::check(
            "weights W",
            weight,
            s.out_channels,
            s.weight_len() / s.out_channels,
        )?;
        Self::check("output Y", y, s.batch, s.out_channels * plane)?;
        if x.buffer() == y.buffer() {
            return Err(Error::InvalidArgument {
                what: "im2col convolution output Y".into(),
                reason: "shares its buffer with the input X".into(),
            });
        }
        let chunks = self.chunk_views(gpu)?;
        let products = chunks
            .iter()
            .map(|c| Product::new((&c.col, false), (weight, true), &c.rows).prepare(gpu))
            .collect::<Result<Vec<_>>>()?;
        let mut dispatches: Vec<Dispatch> = Vec::new();
        for (c, product) in chunks.iter().zip(&products) {
            let pixels = c.images * plane;
            let k = s.in_channels * s.kernel * s.kernel;
            dispatches.push(kernel(gpu, &shaders::IM2COL, c, x, &c.col, pixels * k));
            dispatches.extend(product.dispatches());
            let out = pixels * s.out_channels;
            dispatches.push(kernel(
                gpu,
                &shaders::IM2COL_ROWS_TO_NCHW,
                c,
                &c.rows,
                y,
                out,
            ));
        }
        gpu.run_dispatches(&dispatches, 1)
    }

    /// The gradients from `dy = ∂L/∂Y` (B × C_out·H·W): `dW = ∂L/∂W` into `dw`
    /// (C_out × C_in·s²) and `dX = ∂L/∂X` into `dx` (B × C_in·H·W), each where given; `x` is the
    /// forward input (read again by im2col, chunk by chunk). One submission. Errors: a wrong
    /// shape, `dx` sharing `dy`'s buffer, the GEMM's limits.
    pub fn backward(
        &self,
        gpu: &Gpu,
        x: &GpuMat,
        weight: &GpuMat,
        dy: &GpuMat,
        dx: Option<&GpuMat>,
        dw: Option<&GpuMat>,
    ) -> Result<()> {
        let s = &self.shape;
        let plane = s.height * s.width;
        let k = s.in_channels * s.kernel * s.kernel;
        Self::check("input X", x, s.batch, s.in_channels * plane)?;
        Self::check("weights W", weight, s.out_channels, k)?;
        Self::check("output gradient dY", dy, s.batch, s.out_channels * plane)?;
        if let Some(dx) = dx {
            Self::check("input gradient dX", dx, s.batch, s.in_channels * plane)?;
            if dx.buffer() == dy.buffer() {
                return Err(Error::InvalidArgument {
                    what: "im2col convolution input gradient dX".into(),
                    reason: "shares its buffer with the output gradient dY".into(),
                });
            }
        }
        if let Some(dw) = dw {
            Self::check("weight gradient dW", dw, s.out_channels, k)?;
        }
        let chunks = self.chunk_views(gpu)?;
        let last = chunks.len() - 1;
        // chunk L of dW's chain writes targets[(last − L) % 2], so the last lands in dw.
        let targets = dw.map(|dw| [dw, &self.partial]);
        let mut weight_products: Vec<Option<PreparedProduct>> = Vec::new();
        let mut input_products: Vec<Option<PreparedProduct>> = Vec::new();
        for (l, c) in chunks.iter().enumerate() {
            weight_products.push(
                targets
                    .map(|t| {
                        let p = Product::new((&c.rows, true), (&c.col, false), t[(last - l) % 2]);
                        let p = if l == 0 {
                            p
                        } else {
                            p.plus(1.0, t[(last - l + 1) % 2])
                        };
                        p.prepare(gpu)
                    })
                    .transpose()?,
            );
            input_products.push(
                dx.map(|_| Product::new((&c.rows, false), (weight, false), &c.col).prepare(gpu))
                    .transpose()?,
            );
        }
        let mut dispatches: Vec<Dispatch> = Vec::new();
        for ((c, wp), ip) in chunks.iter().zip(&weight_products).zip(&input_products) {
            let pixels = c.images * plane;
            let rows = pixels * s.out_channels;
            dispatches.push(kernel(
                gpu,
                &shaders::IM2COL_NCHW_TO_ROWS,
                c,
                dy,
                &c.rows,
                rows,
            ));
            if let Some(wp) = wp {
                dispatches.push(kernel(gpu, &shaders::IM2COL, c, x, &c.col, pixels * k));
                dispatches.extend(wp.dispatches());
            }
            if let (Some(ip), Some(dx)) = (ip, dx) {
                // dColᵀ over Colᵀ: dW's product (recorded before) has read it
                dispatches.extend(ip.dispatches());
                let out = c.images * s.in_channels * plane;
                dispatches.push(kernel(gpu, &shaders::IM2COL_COL2IM, c, &c.col, dx, out));
            }
        }
        gpu.run_dispatches(&dispatches, 1)
    }
}

/// One dispatch of a `gpu/im2col.wgsl` kernel over `written` entries: bindings parameters,
/// source, target.
fn kernel<'b>(
    gpu: &Gpu,
    shader: &'static Shader,
    chunk: &'b Chunk,
    source: &'b GpuMat,
    target: &'b GpuMat,
    written: usize,
) -> Dispatch<'b> {
    (
        shader,
        vec![&chunk.params, source.buffer(), target.buffer()],
        groups_1d(gpu, written),
    )
}

/// `rows × cols` resident matrix of the f32 rounding of `values` (checked by the caller).
fn upload(gpu: &Gpu, label: &str, values: &[f64], rows: usize, cols: usize) -> Result<GpuMat> {
    let flat: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    GpuMat::from_f32_rows(gpu, label, (rows, cols), &flat)
}

fn download(gpu: &Gpu, m: &GpuMat) -> Result<Vec<f64>> {
    let (rows, cols) = m.shape();
    let words: Vec<f32> = gpu.read(m.buffer(), rows * cols)?;
    Ok(words.into_iter().map(f64::from).collect())
}

/// [`super::conv2d`] through im2col + GEMM: `Y = conv(X, K)` for host NCHW slices (uploaded
/// rounded to f32; the result returned in f64), chunks of at most `most_images` images
/// (`usize::MAX`: as large as the adapter allows). Errors: as [`super::conv2d`], and operands
/// beyond one storage binding (use [`Im2colConv`] on resident matrices).
pub fn conv2d_im2col(
    gpu: &Gpu,
    shape: &ConvShape,
    input: &[f64],
    weight: &[f64],
    most_images: usize,
) -> Result<Vec<f64>> {
    shape.validate()?;
    ensure_operand("convolution input", input, shape.input_len())?;
    ensure_operand("convolution weights", weight, shape.weight_len())?;
    let plan = Im2colConv::with_chunk(gpu, shape, most_images)?;
    let (x, w) = upload_xw(gpu, shape, input, weight)?;
    let plane = shape.height * shape.width;
    let y = GpuMat::poisoned(gpu, "im2col Y", shape.batch, shape.out_channels * plane)?;
    plan.forward(gpu, &x, &w, &y)?;
    download(gpu, &y)
}

fn upload_xw(gpu: &Gpu, s: &ConvShape, input: &[f64], weight: &[f64]) -> Result<(GpuMat, GpuMat)> {
    let plane = s.height * s.width;
    Ok((
        upload(gpu, "im2col X", input, s.batch, s.in_channels * plane)?,
        upload(
            gpu,
            "im2col W",
            weight,
            s.out_channels,
            s.weight_len() / s.out_channels,
        )?,
    ))
}

/// `(∂L/∂X, ∂L/∂K)` through im2col + GEMM from the input and `G = ∂L/∂Y` (host NCHW slices, as
/// [`super::conv2d_input_grad`] and [`super::conv2d_weight_grad`]), in one submission; chunks
/// as [`conv2d_im2col`]. Errors: as [`conv2d_im2col`].
pub fn conv2d_im2col_grads(
    gpu: &Gpu,
    shape: &ConvShape,
    input: &[f64],
    weight: &[f64],
    output_grad: &[f64],
    most_images: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    shape.validate()?;
    ensure_operand("convolution input", input, shape.input_len())?;
    ensure_operand("convolution weights", weight, shape.weight_len())?;
    ensure_operand(
        "convolution output gradient",
        output_grad,
        shape.output_len(),
    )?;
    let plan = Im2colConv::with_chunk(gpu, shape, most_images)?;
    let (x, w) = upload_xw(gpu, shape, input, weight)?;
    let plane = shape.height * shape.width;
    let dy = upload(
        gpu,
        "im2col dY",
        output_grad,
        shape.batch,
        shape.out_channels * plane,
    )?;
    let dx = GpuMat::poisoned(gpu, "im2col dX", shape.batch, shape.in_channels * plane)?;
    let (rows, cols) = w.shape();
    let dw = GpuMat::poisoned(gpu, "im2col dW", rows, cols)?;
    plan.backward(gpu, &x, &w, &dy, Some(&dx), Some(&dw))?;
    Ok((download(gpu, &dx)?, download(gpu, &dw)?))
}
