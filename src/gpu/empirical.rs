//! The empirical optimal denoiser at image scale (book eq. 3.3.3): for training images
//! `x_1, …, x_N ∈ ℝᵈ` and a noisy `x_t = α x + σ g`,
//!
//! `x̂₀(x_t) = Σ_i softmax_i(−‖x_t − α x_i‖²/(2σ²)) x_i`,
//!
//! the posterior mean `E[x | x_t]` under the empirical law `(1/N)Σ δ_{x_i}` (VE: α = 1; VP: it is
//! the VE posterior mean at `y = x_t/α` with noise `σ/α`). Expanding the square, `‖x_t‖²` is
//! the same for every i and cancels in the softmax, so with `S = Y Xᵀ` (the GEMM)
//!
//! `logit_ij = (2α S_ij − α²‖x_j‖²)/(2σ²)`, `P = rowsoftmax(logits)`, `X̂ = P X` (the GEMM).
//!
//! The N×d images (and their squared norms, computed in f64) stay resident in row blocks that
//! each fit the adapter's storage binding; the batch of queries is processed in tiles of rows
//! sized so that every buffer fits too (`GpuLimit` only for a single image over the limit).
//!
//! ## Error bound (u = 2⁻²⁴, `γ_k = ku/(1 − ku)`; see [`denoise_reference`])
//! * `S_ij` from the GEMM: `|ΔS_ij| ≤ γ_{d+5} Σ_l |y_il||x_jl|` (inputs rounded to f32);
//! * the logit adds `α/σ²·|ΔS_ij|` and the rounding of the factors `α/σ²`, `α²/(2σ²)`, of
//!   `‖x_j‖²` and of the two products and the sum: `δ_ij = (α/σ²)|ΔS_ij| + γ₄((α/σ²)|S_ij| +
//!   (α²/2σ²)‖x_j‖²)`;
//! * a logit error δ perturbs each weight by at most a factor `e^{±2δ}`; with the evaluation
//!   errors of the blocked softmax (`gpu::rowwise` module docs) every weight obeys
//!   `|p̃_ij − p_ij| ≤ b_ij`, and `Σ_j b_ij ≈ e^{2δ} − 1`;
//! * `X̂ = Σ_c P_c X_c` accumulated over the C blocks (β = 1): `γ_{N+5C} Σ_j p̃_ij |x_jl|`.
//!
//! So `|x̂_il − x̂_il^ref| ≤ Σ_j b_ij |x_jl| + γ_{N+5C} Σ_j (p_ij + b_ij)|x_jl|`, which is at most
//! `(e^{2δ} − 1)·max_j|x_jl| + GEMM bound`. The bound is only meaningful while `δ ≪ 1`. Since
//! `δ ≈ (α/σ²)·γ_d·Σ_l|y_l x_jl|`, it becomes vacuous (`δ ≳ 1`) once
//! `σ² ≲ α·γ_d·Σ_l|y_l x_jl|`: for CelebA-scale images (d = 12288, `γ_d ≈ 7.3·10⁻⁴`, pixels
//! in [0, 1], so `Σ_l|y_l x_jl| ≈ 10⁴` near σ = 2) that is everywhere below σ ≈ 2.5 — the
//! memorizing regime and more. The worst case adds the d rounding errors of `S_ij` with one
//! sign; rounding errors that behave like a random walk give `δ` about `√d` times smaller, so
//! the computed weights are typically fine far below that σ, but nothing rigorous in f32 says
//! so: the large terms `2αS` and `α²‖x‖²` cancel in the expanded-norm logits, and at small σ the
//! weights may genuinely be wrong in f32. The parity test therefore uses a small d, where the
//! bound stays below 1% of max|x| down to σ/α ≈ 0.8, a memorizing regime for its data.

use super::gemm::{product, run_products, GpuMat};
use super::rowwise::{self, row_softmax_blocks, ColumnShift};
use super::Gpu;
use crate::error::{ensure_positive_finite, ensure_sigma, Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::targets::{empirical::empirical, ClosedForm};

/// The GEMMs' grid holds at most 65535 tiles of 16 per dimension.
const MAX_GRID_ROWS: usize = 65_535 * 16;

/// One row block of the training images: `x` (r × d) and the squared norms `‖x_j‖²` (1 × r).
#[derive(Debug)]
struct Block {
    x: GpuMat,
    norms: GpuMat,
}

/// The training images resident on the GPU, ready to denoise batches (see the module docs).
#[derive(Debug)]
pub struct GpuEmpirical<'a> {
    gpu: &'a Gpu,
    blocks: Vec<Block>,
    n: usize,
    d: usize,
    block_rows: usize,
    tile_rows: usize,
}

impl<'a> GpuEmpirical<'a> {
    /// Uploads the N×d training images `data` (one per row, N, d ≥ 1, finite) in row blocks as
    /// large as the adapter's storage binding allows.
    pub fn new(gpu: &'a Gpu, data: &Mat) -> Result<Self> {
        Self::with_tiling(gpu, data, usize::MAX, usize::MAX)
    }

    /// As [`GpuEmpirical::new`] with at most `max_block_rows` images per resident block and at
    /// most `max_tile_rows` queries per tile (both ≥ 1; the binding limit may make them
    /// smaller) — to bound memory, or to exercise the tiling on small problems.
    pub fn with_tiling(
        gpu: &'a Gpu,
        data: &Mat,
        max_block_rows: usize,
        max_tile_rows: usize,
    ) -> Result<Self> {
        let (n, d) = (data.nrows(), data.ncols());
        if n == 0 || d == 0 {
            return Err(Error::InvalidArgument {
                what: "training images".into(),
                reason: format!("need N ≥ 1 images of d ≥ 1 pixels, got {n}×{d}"),
            });
        }
        if max_block_rows == 0 || max_tile_rows == 0 {
            return Err(Error::InvalidArgument {
                what: "tiling".into(),
                reason: format!(
                    "block and tile rows must be ≥ 1, got {max_block_rows} and {max_tile_rows}"
                ),
            });
        }
        linalg::ensure_finite_mat("training images", data)?;
        let words = (gpu.max_binding_bytes() / 4) as usize;
        if d > words || d > MAX_GRID_ROWS {
            return Err(Error::GpuLimit(format!(
                "one image of d = {d} pixels exceeds the adapter's storage binding ({words} f32) \
                 or the GEMM grid ({MAX_GRID_ROWS} columns)"
            )));
        }
        let block_rows = max_block_rows.min(n).min(words / d).min(MAX_GRID_ROWS);
        // S of a tile (tile × N in total) within one binding's worth of memory; Y and X̂ tiles
        // (tile × d) within one binding each.
        let tile_rows = max_tile_rows
            .min(words / d)
            .min(words / n.max(block_rows))
            .clamp(1, MAX_GRID_ROWS);
        let mut blocks = Vec::with_capacity(n.div_ceil(block_rows));
        for start in (0..n).step_by(block_rows) {
            let r = block_rows.min(n - start);
            let rows = data.subrows(start, r).to_owned();
            let norms = Mat::from_fn(1, r, |_, j| {
                (0..d).map(|l| rows[(j, l)] * rows[(j, l)]).sum::<f64>()
            });
            blocks.push(Block {
                x: GpuMat::upload(gpu, "empirical images", &rows)?,
                norms: GpuMat::upload(gpu, "empirical squared norms", &norms)?,
            });
        }
        Ok(Self {
            gpu,
            blocks,
            n,
            d,
            block_rows,
            tile_rows,
        })
    }

    /// (N images, d pixels).
    pub fn shape(&self) -> (usize, usize) {
        (self.n, self.d)
    }

    /// Images per resident block (the last block may hold fewer); C = ⌈N/block_rows⌉ blocks.
    pub fn block_rows(&self) -> usize {
        self.block_rows
    }

    /// Queries per tile.
    pub fn tile_rows(&self) -> usize {
        self.tile_rows
    }

    /// `x̂₀` for every row of `y` (B×d noisy `x_t`), at signal scale α > 0 and noise σ > 0.
    pub fn denoise(&self, y: &Mat, alpha: f64, sigma: f64) -> Result<Mat> {
        self.check_query(y.ncols(), alpha, sigma)?;
        linalg::ensure_finite_mat("noisy queries", y)?;
        let b = y.nrows();
        let mut out = Mat::zeros(b, self.d);
        for start in (0..b).step_by(self.tile_rows) {
            let rows = self.tile_rows.min(b - start);
            let yt = GpuMat::upload(
                self.gpu,
                "empirical queries",
                &y.subrows(start, rows).to_owned(),
            )?;
            let ot = GpuMat::poisoned(self.gpu, "empirical denoised", rows, self.d)?;
            self.run_tile(&yt, &ot, alpha, sigma)?;
            let tile = ot.download(self.gpu)?;
            out.subrows_mut(start, rows).copy_from(&tile);
        }
        Ok(out)
    }

    /// `x̂₀` for every row of the resident `y` (B×d) into the resident `out` (B×d, another
    /// matrix), so a sampler can stay on the GPU. Batches larger than a tile are processed
    /// tile by tile through scratch buffers (rows copied on the GPU).
    pub fn denoise_resident(&self, y: &GpuMat, out: &GpuMat, alpha: f64, sigma: f64) -> Result<()> {
        let (b, d) = y.shape();
        self.check_query(d, alpha, sigma)?;
        if out.shape() != (b, d) {
            return Err(Error::InvalidArgument {
                what: "denoised output".into(),
                reason: format!("must be {b}×{d} like the queries, got {:?}", out.shape()),
            });
        }
        if std::ptr::eq(y, out) {
            return Err(Error::InvalidArgument {
                what: "denoised output".into(),
                reason: "must be a different matrix from the queries".into(),
            });
        }
        if b <= self.tile_rows {
            return self.run_tile(y, out, alpha, sigma);
        }
        let row_bytes = (4 * d) as u64;
        for start in (0..b).step_by(self.tile_rows) {
            let rows = self.tile_rows.min(b - start);
            let yt = GpuMat::poisoned(self.gpu, "empirical query tile", rows, d)?;
            let ot = GpuMat::poisoned(self.gpu, "empirical output tile", rows, d)?;
            let bytes = rows as u64 * row_bytes;
            let offset = start as u64 * row_bytes;
            self.copy(y.buffer(), offset, yt.buffer(), 0, bytes);
            self.run_tile(&yt, &ot, alpha, sigma)?;
            self.copy(ot.buffer(), 0, out.buffer(), offset, bytes);
        }
        Ok(())
    }

    fn check_query(&self, cols: usize, alpha: f64, sigma: f64) -> Result<()> {
        ensure_sigma(sigma)?;
        ensure_positive_finite("signal scale α", alpha)?;
        if cols != self.d {
            return Err(Error::DimensionMismatch {
                what: "noisy queries (columns)".into(),
                expected: self.d,
                got: cols,
            });
        }
        Ok(())
    }

    /// Submits a buffer-to-buffer copy (queue order keeps it between the kernels around it).
    fn copy(
        &self,
        src: &wgpu::Buffer,
        src_offset: u64,
        dst: &wgpu::Buffer,
        dst_offset: u64,
        bytes: u64,
    ) {
        let mut encoder =
            self.gpu
                .device()
                .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("empirical tile copy"),
                });
        encoder.copy_buffer_to_buffer(src, src_offset, dst, dst_offset, bytes);
        self.gpu.queue().submit([encoder.finish()]);
    }

    /// One tile: `S_c = Y X_cᵀ` for every block, the blocked row softmax of the logits in place,
    /// then `X̂ = Σ_c P_c X_c` ping-ponging between `out` and a scratch matrix so that the last
    /// product lands in `out`.
    fn run_tile(&self, y: &GpuMat, out: &GpuMat, alpha: f64, sigma: f64) -> Result<()> {
        let gpu = self.gpu;
        let scale = alpha / (sigma * sigma);
        let shift = -alpha * alpha / (2.0 * sigma * sigma);
        let blocks: Vec<SoftmaxBlock> = self
            .blocks
            .iter()
            .map(|blk| SoftmaxBlock {
                keys: &blk.x,
                norms: &blk.norms,
                values: &blk.x,
            })
            .collect();
        softmax_average(gpu, y, &blocks, (scale, shift), out, "empirical")
    }
}

/// One block of a blocked softmax average: its key rows `K_k`, their squared norms, and the
/// value rows `V_k` the weights average.
pub(crate) struct SoftmaxBlock<'a> {
    pub(crate) keys: &'a GpuMat,
    pub(crate) norms: &'a GpuMat,
    pub(crate) values: &'a GpuMat,
}

/// `out = Σ_k softmax(scale·Y K_kᵀ + shift·‖k‖²)·V_k`, the softmax over the keys of every block
/// together: the scores `S_k = Y K_kᵀ` (GEMM per block), the blocked row softmax of
/// `scale·S_k + shift·‖k‖²` in place ([`row_softmax_blocks`]), then [`accumulate_blocks`]. The
/// empirical denoiser (keys = values = the images) and the patch (ELS) denoiser (keys the
/// patches, values their centre pixels) are both this.
pub(crate) fn softmax_average(
    gpu: &Gpu,
    y: &GpuMat,
    blocks: &[SoftmaxBlock],
    (scale, shift): (f64, f64),
    out: &GpuMat,
    label: &str,
) -> Result<()> {
    let b = y.shape().0;
    let scores = blocks
        .iter()
        .map(|blk| GpuMat::poisoned(gpu, &format!("{label} scores"), b, blk.keys.shape().0))
        .collect::<Result<Vec<_>>>()?;
    let products = blocks
        .iter()
        .zip(&scores)
        .map(|(blk, s)| product(gpu, (y, false), (blk.keys, true), 1.0, 0.0, None, s))
        .collect::<Result<Vec<_>>>()?;
    run_products(gpu, &products, 1)?;
    let softmax: Vec<(&GpuMat, ColumnShift)> = blocks
        .iter()
        .zip(&scores)
        .map(|(blk, s)| {
            (
                s,
                ColumnShift {
                    scale,
                    shift,
                    v: Some(blk.norms),
                },
            )
        })
        .collect();
    row_softmax_blocks(gpu, &softmax)?;
    let values: Vec<&GpuMat> = blocks.iter().map(|blk| blk.values).collect();
    accumulate_blocks(gpu, &scores, &values, out, &format!("{label} partial sums"))
}

/// `out = Σ_k S_k·O_k` over the blocks k of a blocked softmax average (the softmax weights `S_k`
/// of block k, `O_k` its rows): one GEMM per block, each adding the previous partial sum
/// (β = 1), alternating between `out` and one scratch matrix so that the last lands in `out`;
/// one submission. Used by the empirical denoiser and the patch (ELS) denoiser.
fn accumulate_blocks(
    gpu: &Gpu,
    scores: &[GpuMat],
    operands: &[&GpuMat],
    out: &GpuMat,
    label: &str,
) -> Result<()> {
    let c = operands.len();
    let (rows, cols) = out.shape();
    let scratch = if c > 1 {
        Some(GpuMat::poisoned(gpu, label, rows, cols)?)
    } else {
        None
    };
    let target = |k: usize| match &scratch {
        Some(s) if (c - 1 - k) % 2 == 1 => s,
        _ => out,
    };
    let products = (0..c)
        .map(|k| {
            let (beta, addend) = if k == 0 {
                (0.0, None)
            } else {
                (1.0, Some(target(k - 1)))
            };
            product(
                gpu,
                (&scores[k], false),
                (operands[k], false),
                1.0,
                beta,
                addend,
                target(k),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    run_products(gpu, &products, 1)
}

/// The f64 route and the kernel's error bound (module docs) for the queries `y` (B×d, rows
/// `x_t`): the posterior mean of the empirical law `crate::targets::empirical` (Bayes' rule on
/// the mixture of point masses) at `x_t/α` with noise `σ/α`, and the elementwise bound for a
/// [`GpuEmpirical`] whose blocks hold `block_rows` images — plus the f64 route's own rounding,
/// `16(N + d)ε(1 + Q)·max|x|` with `Q = ‖y/α − x₍₁₎‖²/(σ/α)²` as in the memorization check.
/// Returns `(x̂, bound)`.
pub fn denoise_reference(
    data: &Mat,
    y: &Mat,
    alpha: f64,
    sigma: f64,
    block_rows: usize,
) -> Result<(Mat, Mat)> {
    ensure_sigma(sigma)?;
    ensure_positive_finite("signal scale α", alpha)?;
    let (n, d) = (data.nrows(), data.ncols());
    if y.ncols() != d {
        return Err(Error::DimensionMismatch {
            what: "noisy queries (columns)".into(),
            expected: d,
            got: y.ncols(),
        });
    }
    if block_rows == 0 {
        return Err(Error::InvalidArgument {
            what: "block_rows".into(),
            reason: "must be ≥ 1, got 0".into(),
        });
    }
    let rows: Vec<Vec<f64>> = (0..n).map(|i| linalg::row(data, i)).collect();
    let target = empirical(&rows)?;
    let blocks: Vec<usize> = (0..n)
        .step_by(block_rows)
        .map(|s| block_rows.min(n - s))
        .collect();
    let c = blocks.len();
    let (scale, shift) = (
        alpha / (sigma * sigma),
        alpha * alpha / (2.0 * sigma * sigma),
    );
    let norms: Vec<f64> = rows.iter().map(|x| linalg::dot(x, x)).collect();
    let g_dot = crate::numerics::gamma_f32(d + 5);
    let g4 = crate::numerics::gamma_f32(4);
    let g_out = crate::numerics::gamma_f32(n + 5 * c);
    let max_abs = rows.iter().map(|x| linalg::max_abs(x)).fold(0.0, f64::max);
    let mut value = Mat::zeros(y.nrows(), d);
    let mut bound = Mat::zeros(y.nrows(), d);
    for i in 0..y.nrows() {
        let yi = linalg::row(y, i);
        let yv: Vec<f64> = yi.iter().map(|v| v / alpha).collect();
        let mean = target.posterior_mean(&yv, sigma / alpha)?;
        let (z, dz): (Vec<f64>, Vec<f64>) = rows
            .iter()
            .zip(&norms)
            .map(|(x, norm)| {
                let s = linalg::dot(&yi, x);
                let abs_s: f64 = yi.iter().zip(x).map(|(a, b)| (a * b).abs()).sum();
                let z = scale * s - shift * norm;
                let dz = scale * g_dot * abs_s + g4 * (scale * s.abs() + shift * norm);
                (z, dz)
            })
            .unzip();
        let (p, pb, _, _) = rowwise::softmax_row_error(&z, &dz, &blocks)?;
        let nearest = rows
            .iter()
            .map(|x| {
                yv.iter()
                    .zip(x)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
            })
            .fold(f64::INFINITY, f64::min);
        let q = nearest * (alpha / sigma).powi(2);
        let f64_route = 16.0 * (n + d) as f64 * EPS * (1.0 + q) * max_abs;
        for l in 0..d {
            value[(i, l)] = mean[l];
            let (mut weight_err, mut mixed) = (0.0, 0.0);
            for j in 0..n {
                let x = rows[j][l].abs();
                weight_err += pb[j] * x;
                mixed += (p[j] + pb[j]) * x;
            }
            bound[(i, l)] = weight_err + g_out * mixed + f64_route;
        }
    }
    Ok((value, bound))
}
