//! `exp els` — the equivariant local score (ELS) machine of Kamb & Ganguli at image scale:
//! ELS samples at a shrinking patch schedule, and the r² between trained convolutional
//! denoisers and the ELS denoiser per noise level.
//!
//! **The ELS denoiser.** For training images `x_1, …, x_N` (C×H×W), an odd patch side P
//! (radius ρ = (P−1)/2) and `y_Ω(p)` the C×P×P patch of y centred at pixel p under circular
//! padding, the ELS denoiser is the posterior mean of the centre pixel given the patch under
//! the law of the training patches `x_k` of the bank (every location of every image: N·H·W
//! patches):
//!
//! `f_P(y, σ)_{c,p} = Σ_k softmax_k(−‖y_Ω(p) − x_k‖²/(2σ²)) · x_k[c, centre]`,
//!
//! computed on the GPU like the empirical denoiser (book eq. 3.3.3) with patches for images:
//! `S = Y Xᵀ` (GEMM, the query patches against the bank), the logits `(S_qk − ‖x_k‖²/2)/σ²`
//! (`‖y_q‖²` cancels in the softmax), a blocked row softmax, and `X̂ = softmax · centres` (GEMM
//! against the bank's M×C centre pixels) — [`GpuPatchDenoiser`]. Its f32 error bound is that of
//! [`crate::gpu::empirical`] with the patch dimension CP² for d, so it stays meaningful to far
//! smaller σ than the whole-image denoiser's; [`els_reference`] computes the f64 value and that
//! bound, and the tests check the kernel against it and against the f64 ELS of
//! [`crate::theorems::locality`] (grey images; three channels through grey images replicated
//! over the channels, which is the grey ELS at σ/√3).
//!
//! **Patch bank cap.** The exact bank at paper scale (N = 1000, 64×64: 4.1·10⁶ patches) costs
//! `2·H·W·M·(CP² + C)` FLOPs per image per step: 10¹² at P = 3, 2.3·10¹³ at P = 15,
//! 9.7·10¹³ at P = 31. The
//! setting [`ElsSettings::max_patches`] caps the bank at M patches drawn by a seeded uniform
//! subsample without replacement of the N·H·W (image, location) pairs (Philox stream
//! [`BANK_STREAM`]; the same locations at every P): the denoiser is then the ELS of that
//! random sub-bank, an unbiased subsample of the patch law but a coarser one (fewer nearby
//! patches at small σ). `None` keeps every patch (exact ELS). metrics.json states M.
//!
//! **Patch schedule (ours).** Levine–Weiss (§3) say only that they used "a dynamic patch-size
//! strategy, transitioning from larger patches in the high-noise regime to progressively
//! smaller patches as the noise level decreased". Ours: at DDIM step ℓ of L,
//!
//! `P_ℓ = 2·round((p(ℓ) − 1)/2) + 1`, `p(ℓ) = P_min + (P_max − P_min)·(ℓ − 1)/(L − 1)`,
//!
//! the odd side nearest a linear interpolation from `P_max` at ℓ = L (most noise) to `P_min` at
//! ℓ = 1 (`P_max` when L = 1), each capped at the largest odd side ≤ min(H, W) (a larger patch
//! would wrap onto itself). Defaults: `P_max = 31`, `P_min = 3` at 64×64; `--quick` 7 → 3.
//! The per-step sides are in metrics.json.
//!
//! **Sampling.** DDIM from the first [`ElsSettings::samples`] rows of the shared initial noise
//! with `x̂₀(x_t) = f_{P_ℓ}(x_t/α_ℓ, σ_ℓ/α_ℓ)`, checkpointed after every step; the memorization
//! ratio and nearest-image cosines of the samples, and a PNG grid.
//!
//! **r².** The networks are `exp unet`'s variants named in [`ElsSettings::networks`] (by
//! default all five, among them `pool3-circular`, equivariant like the ELS), trained exactly as
//! there; their training checkpoints are kept in the sibling `unet/` folder of the run, so after
//! `exp unet` (or within `exp all`) nothing is retrained, and `exp els` alone trains them there.
//! At [`ElsSettings::r2_levels`] DDIM levels ℓ spread evenly over 1..L (VE noise
//! `σ = σ_ℓ/α_ℓ`), `y = x + σε` for the first [`ElsSettings::r2_images`] training images (ε
//! from Philox stream [`R2_STREAM`], the same ε at every level), and for each patch side P of
//! [`ElsSettings::r2_patches`] and the schedule's `P_ℓ`:
//!
//! `r² = 1 − Σ‖f_net(y, σ) − f_P(y, σ)‖² / Σ‖f_net(y, σ) − mean(f_net)‖²`,
//!
//! the sums over every pixel, channel and image, the mean the scalar mean of the network's
//! outputs. Per level: r² per P, the best P (Kamb & Ganguli calibrate P per noise level) and
//! the r² at the schedule's `P_ℓ`; per network: the median over levels of the best-P r². Kamb
//! & Ganguli report median r² ≈ 0.94–0.96 (CelebA, CIFAR-10, MNIST; ResNets and U-Nets, the
//! median over time steps); the README puts our figure beside theirs.

use super::unet::{self, Variant};
use super::{
    ddim_checkpointed, paper_schedule, Context, ModelSamples, RunFolder, StepPredictor, Timing,
};
use crate::diffusion::Schedule;
use crate::error::{ensure_sigma, Error, Result};
use crate::gpu::empirical::{softmax_average, SoftmaxBlock};
use crate::gpu::gemm::GpuMat;
use crate::gpu::Gpu;
use crate::io::grid::ImageShape;
use crate::linalg::{self, Mat};
use crate::rng::{PhiloxStream, Rng};
use crate::stats::nearest::{summarize, MemorizationSummary};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// Philox stream of the patch-bank subsample.
pub const BANK_STREAM: u32 = 500;

/// Philox stream of the noise ε of the r² comparison.
pub const R2_STREAM: u32 = 501;

/// The settings of `exp els` (in [`super::Settings::els`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElsSettings {
    /// ELS samples drawn (the first rows of the shared noise; at most `Settings::samples`).
    pub samples: usize,
    /// Patch side at the noisiest DDIM step ℓ = L (odd).
    pub patch_max: usize,
    /// Patch side at the last DDIM step ℓ = 1 (odd, ≤ `patch_max`).
    pub patch_min: usize,
    /// Cap M on the patch bank (a seeded subsample, module doc); `None`: all N·H·W patches.
    pub max_patches: Option<usize>,
    /// DDIM levels at which the r² is measured (spread evenly over 1..L).
    pub r2_levels: usize,
    /// Training images noised for the r² (the first ones; at most N).
    pub r2_images: usize,
    /// Patch sides P of the r² comparison (odd; the schedule's side at each level is added).
    pub r2_patches: Vec<usize>,
    /// The `exp unet` variants compared with the ELS (labels of [`unet::variants`]).
    pub networks: Vec<String>,
}

impl Default for ElsSettings {
    /// Paper scale (the schedule and caps are ours, module doc): 16 samples, P 31 → 3, M = 2¹⁶
    /// patches, r² at 5 levels on 8 images for P ∈ {3, 5, 7, 11, 15, 23, 31}, all five U-Nets.
    /// About 6·10¹⁴ ELS FLOPs at 64×64×3 (4.6·10¹⁴ sampling, 1.4·10¹⁴ r²), the U-Nets' training
    /// aside.
    fn default() -> Self {
        Self {
            samples: 16,
            patch_max: 31,
            patch_min: 3,
            max_patches: Some(1 << 16),
            r2_levels: 5,
            r2_images: 8,
            r2_patches: vec![3, 5, 7, 11, 15, 23, 31],
            networks: all_networks(),
        }
    }
}

/// The labels of every `exp unet` variant.
fn all_networks() -> Vec<String> {
    unet::variants(&unet::UNetSettings::default())
        .into_iter()
        .map(|v| v.label)
        .collect()
}

impl ElsSettings {
    /// `--quick`: 4 samples, P 7 → 3, M = 1024, r² at 3 levels on 2 images for P ∈ {3, 5, 7},
    /// all five U-Nets (at `--quick` scale their training takes seconds and is shared with
    /// `exp unet`): about 3·10⁹ ELS FLOPs, seconds on a software adapter.
    pub fn quick() -> Self {
        Self {
            samples: 4,
            patch_max: 7,
            patch_min: 3,
            max_patches: Some(1024),
            r2_levels: 3,
            r2_images: 2,
            r2_patches: vec![3, 5, 7],
            networks: all_networks(),
        }
    }

    /// Refuses zero counts, even or zero patch sides, `patch_min > patch_max`, an empty patch
    /// or network list and an unknown network, naming the value.
    pub fn validate(&self) -> Result<()> {
        let count = |what: &'static str, v: usize| -> Result<()> {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    what: what.into(),
                    reason: "must be ≥ 1, got 0".into(),
                });
            }
            Ok(())
        };
        count("els.samples", self.samples)?;
        count("els.r2_levels", self.r2_levels)?;
        count("els.r2_images", self.r2_images)?;
        if let Some(m) = self.max_patches {
            count("els.max_patches", m)?;
        }
        let odd = |what: &'static str, p: usize| -> Result<()> {
            if p.is_multiple_of(2) {
                return Err(Error::InvalidArgument {
                    what: what.into(),
                    reason: format!("a patch side must be odd (≥ 1), got {p}"),
                });
            }
            Ok(())
        };
        odd("els.patch_max", self.patch_max)?;
        odd("els.patch_min", self.patch_min)?;
        if self.patch_min > self.patch_max {
            return Err(Error::InvalidArgument {
                what: "els.patch_min".into(),
                reason: format!(
                    "must be ≤ els.patch_max = {}, got {}",
                    self.patch_max, self.patch_min
                ),
            });
        }
        if self.r2_patches.is_empty() {
            return Err(Error::InvalidArgument {
                what: "els.r2_patches".into(),
                reason: "needs at least one patch side, got an empty list".into(),
            });
        }
        for &p in &self.r2_patches {
            odd("els.r2_patches", p)?;
        }
        if self.networks.is_empty() {
            return Err(Error::InvalidArgument {
                what: "els.networks".into(),
                reason: "needs at least one network, got an empty list".into(),
            });
        }
        let known = all_networks();
        if let Some(name) = self.networks.iter().find(|n| !known.contains(n)) {
            return Err(Error::InvalidArgument {
                what: "els.networks".into(),
                reason: format!("unknown network {name:?}; choose from {}", known.join(", ")),
            });
        }
        Ok(())
    }
}

/// The largest odd patch side that fits the image: `min(H, W)` rounded down to odd.
pub fn largest_patch(shape: ImageShape) -> usize {
    let side = shape.height.min(shape.width).max(1);
    side - 1 + side % 2
}

/// The odd side nearest `value` (≥ 1).
fn nearest_odd(value: f64) -> usize {
    2 * ((value - 1.0) / 2.0).round().max(0.0) as usize + 1
}

/// The patch side at DDIM steps ℓ = 1..=L (entry ℓ−1; module doc): the odd side nearest the
/// linear interpolation from `patch_max` at ℓ = L to `patch_min` at ℓ = 1, capped at
/// [`largest_patch`].
pub fn patch_schedule(settings: &ElsSettings, steps: usize, shape: ImageShape) -> Vec<usize> {
    let cap = largest_patch(shape);
    let (lo, hi) = (settings.patch_min as f64, settings.patch_max as f64);
    (1..=steps)
        .map(|l| {
            let p = if steps == 1 {
                hi
            } else {
                lo + (hi - lo) * (l - 1) as f64 / (steps - 1) as f64
            };
            nearest_odd(p).min(cap)
        })
        .collect()
}

/// The DDIM levels of the r² comparison: `count` levels `round(1 + (L − 1)·k/(count − 1))`,
/// k = 0..count (the middle level ⌈L/2⌉ when count = 1), without repeats, ascending.
pub fn r2_levels(count: usize, steps: usize) -> Vec<usize> {
    let mut levels: Vec<usize> = if count <= 1 {
        vec![steps.div_ceil(2)]
    } else {
        (0..count)
            .map(|k| 1 + ((steps - 1) as f64 * k as f64 / (count - 1) as f64).round() as usize)
            .collect()
    };
    levels.dedup();
    levels
}

/// The (image, pixel) locations of the patch bank: all `n·pixels` of them in order when `max`
/// is `None` or at least that many, otherwise `max` distinct ones drawn uniformly without
/// replacement (a partial Fisher–Yates shuffle driven by Philox stream [`BANK_STREAM`] of
/// `seed`), sorted.
pub fn bank_locations(
    n: usize,
    pixels: usize,
    max: Option<usize>,
    seed: u64,
) -> Vec<(usize, usize)> {
    let total = n * pixels;
    let mut chosen: Vec<usize> = (0..total).collect();
    if let Some(m) = max.filter(|&m| m < total) {
        let mut rng = Rng::new(seed, BANK_STREAM);
        for i in 0..m {
            let j = i + ((rng.uniform() * (total - i) as f64) as usize).min(total - i - 1);
            chosen.swap(i, j);
        }
        chosen.truncate(m);
        chosen.sort_unstable();
    }
    chosen
        .into_iter()
        .map(|k| (k / pixels, k % pixels))
        .collect()
}

/// For every pixel p of an H×W image and every offset m = a·P + b of a P×P patch, the pixel
/// read: `((p_i + a − ρ) mod H)·W + (p_j + b − ρ) mod W` (circular padding), at `p·P² + m`.
fn patch_offsets(shape: ImageShape, patch: usize) -> Vec<usize> {
    let (h, w) = (shape.height as isize, shape.width as isize);
    let rho = (patch / 2) as isize;
    let mut table = Vec::with_capacity(shape.height * shape.width * patch * patch);
    for p in 0..h * w {
        let (pi, pj) = (p / w, p % w);
        for a in 0..patch as isize {
            for b in 0..patch as isize {
                let i = (pi + a - rho).rem_euclid(h);
                let j = (pj + b - rho).rem_euclid(w);
                table.push((i * w + j) as usize);
            }
        }
    }
    table
}

/// The patches (rows, C·P² columns in (channel, row, column) order) of `images` (rows CHW) at
/// `locations` (image row, pixel), circular padding.
fn extract_patches(
    images: &Mat,
    shape: ImageShape,
    patch: usize,
    locations: &[(usize, usize)],
) -> Mat {
    let table = patch_offsets(shape, patch);
    let (p2, hw) = (patch * patch, shape.height * shape.width);
    Mat::from_fn(locations.len(), shape.channels * p2, |r, col| {
        let (image, pixel) = locations[r];
        let (c, m) = (col / p2, col % p2);
        images[(image, c * hw + table[pixel * p2 + m])]
    })
}

/// Checks the images (rows of `shape.dim()` entries, finite, at least one) and an odd patch
/// side ≤ [`largest_patch`].
fn check_setup(images: &Mat, shape: ImageShape, patch: usize) -> Result<()> {
    if images.nrows() == 0 || images.ncols() != shape.dim() {
        return Err(Error::InvalidArgument {
            what: "ELS training images".into(),
            reason: format!(
                "need N ≥ 1 rows of {} pixels, got {}×{}",
                shape.dim(),
                images.nrows(),
                images.ncols()
            ),
        });
    }
    if patch.is_multiple_of(2) || patch > largest_patch(shape) {
        return Err(Error::InvalidArgument {
            what: "ELS patch side".into(),
            reason: format!(
                "must be odd and at most {} for {}×{} images, got {patch}",
                largest_patch(shape),
                shape.height,
                shape.width
            ),
        });
    }
    linalg::ensure_finite_mat("ELS training images", images)
}

/// The GEMMs' grid holds at most 65535 tiles of 16 per dimension.
const MAX_GRID_ROWS: usize = 65_535 * 16;

/// One row block of the bank: patches (r × CP²), squared norms (1 × r), centres (r × C).
#[derive(Debug)]
struct Block {
    keys: GpuMat,
    norms: GpuMat,
    centres: GpuMat,
}

/// The ELS denoiser `f_P` (module doc) of a patch bank resident on the GPU.
#[derive(Debug)]
pub struct GpuPatchDenoiser<'g> {
    gpu: &'g Gpu,
    shape: ImageShape,
    patch: usize,
    blocks: Vec<Block>,
    m: usize,
    block_rows: usize,
    tile_rows: usize,
}

impl<'g> GpuPatchDenoiser<'g> {
    /// Uploads the bank of `images` (N × CHW) at `locations` (image, pixel) for patch side
    /// `patch`, in row blocks as large as the adapter allows.
    pub fn new(
        gpu: &'g Gpu,
        images: &Mat,
        shape: ImageShape,
        patch: usize,
        locations: &[(usize, usize)],
    ) -> Result<Self> {
        Self::with_tiling(gpu, images, shape, patch, locations, usize::MAX, usize::MAX)
    }

    /// As [`GpuPatchDenoiser::new`] with at most `max_block_rows` patches per block and
    /// `max_tile_rows` query pixels per tile (≥ 1; the adapter's limits may make them smaller).
    /// Errors: bad images or patch side, no or out-of-range locations, zero tiling.
    pub fn with_tiling(
        gpu: &'g Gpu,
        images: &Mat,
        shape: ImageShape,
        patch: usize,
        locations: &[(usize, usize)],
        max_block_rows: usize,
        max_tile_rows: usize,
    ) -> Result<Self> {
        check_setup(images, shape, patch)?;
        let pixels = shape.height * shape.width;
        if locations.is_empty() {
            return Err(Error::InvalidArgument {
                what: "ELS patch bank".into(),
                reason: "needs at least one location, got 0".into(),
            });
        }
        if let Some(&(i, p)) = locations
            .iter()
            .find(|&&(i, p)| i >= images.nrows() || p >= pixels)
        {
            return Err(Error::InvalidArgument {
                what: "ELS patch bank".into(),
                reason: format!(
                    "location (image {i}, pixel {p}) outside {} images of {pixels} pixels",
                    images.nrows()
                ),
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
        let width = shape.channels * patch * patch;
        let words = (gpu.max_binding_bytes() / 4) as usize;
        if width > words {
            return Err(Error::GpuLimit(format!(
                "one patch of {width} values exceeds the adapter's storage binding ({words} f32)"
            )));
        }
        let m = locations.len();
        let block_rows = max_block_rows.min(m).min(words / width).min(MAX_GRID_ROWS);
        // a tile's scores (tile × M in all) within one binding's worth of memory, and a tile's
        // query patches within one binding
        let tile_rows = max_tile_rows
            .min(words / width)
            .min(words / m)
            .clamp(1, MAX_GRID_ROWS);
        let centre = (patch * patch) / 2;
        let mut blocks = Vec::with_capacity(m.div_ceil(block_rows));
        for start in (0..m).step_by(block_rows) {
            let chunk = &locations[start..(start + block_rows).min(m)];
            let keys = extract_patches(images, shape, patch, chunk);
            let norms = Mat::from_fn(1, chunk.len(), |_, j| {
                (0..width).map(|l| keys[(j, l)] * keys[(j, l)]).sum::<f64>()
            });
            let centres = Mat::from_fn(chunk.len(), shape.channels, |j, c| {
                keys[(j, c * patch * patch + centre)]
            });
            blocks.push(Block {
                keys: GpuMat::upload(gpu, "ELS patch bank", &keys)?,
                norms: GpuMat::upload(gpu, "ELS patch norms", &norms)?,
                centres: GpuMat::upload(gpu, "ELS patch centres", &centres)?,
            });
        }
        Ok(Self {
            gpu,
            shape,
            patch,
            blocks,
            m,
            block_rows,
            tile_rows,
        })
    }

    /// The patch side P.
    pub fn patch(&self) -> usize {
        self.patch
    }

    /// Patches M in the bank.
    pub fn bank_size(&self) -> usize {
        self.m
    }

    /// Patches per resident block (the last may hold fewer).
    pub fn block_rows(&self) -> usize {
        self.block_rows
    }

    /// FLOPs of denoising `images` images: `2·Q·M·(CP² + C)` for the two GEMMs over the
    /// `Q = images·H·W` query patches.
    pub fn flops(&self, images: usize) -> f64 {
        let q = (images * self.shape.height * self.shape.width) as f64;
        let c = self.shape.channels as f64;
        2.0 * q * self.m as f64 * (c * (self.patch * self.patch) as f64 + c)
    }

    /// `f_P(y, σ)` for every row of `y` (B × CHW, VE noise σ > 0; module doc).
    /// Errors: a wrong width, entries not finite, a bad σ.
    pub fn denoise(&self, y: &Mat, sigma: f64) -> Result<Mat> {
        ensure_sigma(sigma)?;
        if y.ncols() != self.shape.dim() {
            return Err(Error::DimensionMismatch {
                what: "ELS noisy images (columns)".into(),
                expected: self.shape.dim(),
                got: y.ncols(),
            });
        }
        linalg::ensure_finite_mat("ELS noisy images", y)?;
        let hw = self.shape.height * self.shape.width;
        let queries = y.nrows() * hw;
        let mut out = Mat::zeros(y.nrows(), self.shape.dim());
        for start in (0..queries).step_by(self.tile_rows) {
            let rows = self.tile_rows.min(queries - start);
            let locations: Vec<(usize, usize)> =
                (start..start + rows).map(|q| (q / hw, q % hw)).collect();
            let patches = extract_patches(y, self.shape, self.patch, &locations);
            let yt = GpuMat::upload(self.gpu, "ELS query patches", &patches)?;
            let ot = GpuMat::poisoned(self.gpu, "ELS denoised", rows, self.shape.channels)?;
            self.run_tile(&yt, &ot, sigma)?;
            let tile = ot.download(self.gpu)?;
            for (r, &(image, pixel)) in locations.iter().enumerate() {
                for c in 0..self.shape.channels {
                    out[(image, c * hw + pixel)] = tile[(r, c)];
                }
            }
        }
        Ok(out)
    }

    /// One tile: `S_b = Y X_bᵀ` per block, the blocked row softmax of
    /// `S_b/σ² − ‖x‖²/(2σ²)` in place, then `X̂ = Σ_b P_b centres_b`, ping-ponging between
    /// `out` and a scratch matrix so that the last product lands in `out`.
    fn run_tile(&self, y: &GpuMat, out: &GpuMat, sigma: f64) -> Result<()> {
        let gpu = self.gpu;
        let scale = 1.0 / (sigma * sigma);
        let blocks: Vec<SoftmaxBlock> = self
            .blocks
            .iter()
            .map(|blk| SoftmaxBlock {
                keys: &blk.keys,
                norms: &blk.norms,
                values: &blk.centres,
            })
            .collect();
        softmax_average(gpu, y, &blocks, (scale, -0.5 * scale), out, "ELS")
    }
}

/// `(f_P(y, σ), bound)` in f64 for the bank of `images` at `locations` (module doc): the
/// posterior mean of the patch mixture ([`crate::gpu::empirical::denoise_reference`] on the
/// extracted patches, whose centre entries are the ELS) and the elementwise bound on a
/// [`GpuPatchDenoiser`] with `block_rows` patches per block (the empirical kernel's bound with
/// CP² for d: the ELS kernel runs the same GEMM, softmax and blocked accumulation, its second
/// GEMM against the centre columns only). Errors: as [`GpuPatchDenoiser::with_tiling`].
pub fn els_reference(
    images: &Mat,
    shape: ImageShape,
    patch: usize,
    locations: &[(usize, usize)],
    y: &Mat,
    sigma: f64,
    block_rows: usize,
) -> Result<(Mat, Mat)> {
    check_setup(images, shape, patch)?;
    if y.ncols() != shape.dim() {
        return Err(Error::DimensionMismatch {
            what: "ELS noisy images (columns)".into(),
            expected: shape.dim(),
            got: y.ncols(),
        });
    }
    let hw = shape.height * shape.width;
    let bank = extract_patches(images, shape, patch, locations);
    let queries: Vec<(usize, usize)> = (0..y.nrows() * hw).map(|q| (q / hw, q % hw)).collect();
    let patches = extract_patches(y, shape, patch, &queries);
    let (value, bound) =
        crate::gpu::empirical::denoise_reference(&bank, &patches, 1.0, sigma, block_rows)?;
    let centre = (patch * patch) / 2;
    let mut out = Mat::zeros(y.nrows(), shape.dim());
    let mut out_bound = Mat::zeros(y.nrows(), shape.dim());
    for (q, &(image, pixel)) in queries.iter().enumerate() {
        for c in 0..shape.channels {
            out[(image, c * hw + pixel)] = value[(q, c * patch * patch + centre)];
            out_bound[(image, c * hw + pixel)] = bound[(q, c * patch * patch + centre)];
        }
    }
    Ok((out, out_bound))
}

/// DDIM's `x̂₀(x_t) = f_{P_ℓ}(x_t/α_ℓ, σ_ℓ/α_ℓ)` with the bank rebuilt when the side changes.
struct ElsPredictor<'c, 'g> {
    context: &'c Context<'g>,
    locations: &'c [(usize, usize)],
    schedule: &'c [usize],
    current: Option<GpuPatchDenoiser<'g>>,
    flops: f64,
}

impl StepPredictor for ElsPredictor<'_, '_> {
    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat> {
        let patch = self.schedule[step - 1];
        if self.current.as_ref().map(GpuPatchDenoiser::patch) != Some(patch) {
            self.current = None; // free the previous bank first
            self.current = Some(GpuPatchDenoiser::new(
                self.context.gpu,
                &self.context.data.images,
                self.context.data.shape,
                patch,
                self.locations,
            )?);
        }
        let els = self
            .current
            .as_ref()
            .ok_or_else(|| Error::Numerical("the ELS bank was not built (unreachable)".into()))?;
        let alpha = schedule.alpha(step);
        let y = Mat::from_fn(x_t.nrows(), x_t.ncols(), |i, j| x_t[(i, j)] / alpha);
        self.flops += els.flops(x_t.nrows());
        els.denoise(&y, schedule.sigma(step) / alpha)
    }
}

/// `1 − Σ(a − b)²/Σ(a − mean a)²` over every entry (the r² of b as a predictor of a); NaN
/// when a is constant.
pub fn r_squared(a: &Mat, b: &Mat) -> f64 {
    let count = (a.nrows() * a.ncols()) as f64;
    let entries = || (0..a.nrows()).flat_map(|i| (0..a.ncols()).map(move |j| (i, j)));
    let mean = entries().map(|(i, j)| a[(i, j)]).sum::<f64>() / count;
    let residual: f64 = entries()
        .map(|(i, j)| (a[(i, j)] - b[(i, j)]).powi(2))
        .sum();
    let total: f64 = entries().map(|(i, j)| (a[(i, j)] - mean).powi(2)).sum();
    if total > 0.0 {
        1.0 - residual / total
    } else {
        f64::NAN
    }
}

/// The median of the finite values (NaN when there are none).
fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// The r² of one patch side at one level.
#[derive(Debug, Clone, Serialize)]
pub struct PatchR2 {
    /// Patch side P.
    pub patch: usize,
    /// r² of the ELS output as a predictor of the network's (module doc).
    pub r2: f64,
}

/// The ELS denoiser itself at one noise level: for the reader to judge the r² against the
/// networks by.
#[derive(Debug, Clone, Serialize)]
pub struct ElsLevel {
    /// DDIM step ℓ.
    pub step: usize,
    /// VE noise `σ_ℓ/α_ℓ`.
    pub sigma: f64,
    /// Per patch side, the r² of the ELS output as a predictor of the clean images x.
    pub clean_r2: Vec<PatchR2>,
}

/// One network at one noise level.
#[derive(Debug, Clone, Serialize)]
pub struct LevelR2 {
    /// DDIM step ℓ.
    pub step: usize,
    /// VE noise `σ_ℓ/α_ℓ`.
    pub sigma: f64,
    /// The schedule's patch side `P_ℓ`.
    pub schedule_patch: usize,
    /// r² per patch side, ascending.
    pub by_patch: Vec<PatchR2>,
    /// The side of the largest r².
    pub best_patch: usize,
    /// The largest r².
    pub best_r2: f64,
    /// r² at the schedule's side.
    pub schedule_r2: f64,
    /// The r² of the network's output as a predictor of the clean images x (how well it
    /// denoises at this σ).
    pub clean_r2: f64,
}

/// One network's comparison with the ELS.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkR2 {
    /// The `exp unet` variant.
    pub variant: Variant,
    /// Training: wall time (0 when resumed from a finished checkpoint), FLOPs.
    pub training: Timing,
    /// Per level, ascending ℓ.
    pub levels: Vec<LevelR2>,
    /// Median over levels of the best-P r² (the figure beside Kamb & Ganguli's 0.94–0.96).
    pub median_best_r2: f64,
    /// Median over levels of the r² at the schedule's side.
    pub median_schedule_r2: f64,
}

/// `metrics.json` of `exp els`.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Patches M in the bank.
    pub bank_patches: usize,
    /// All N·H·W patches (the exact ELS bank).
    pub all_patches: usize,
    /// Whether the bank is a subsample (M < N·H·W).
    pub subsampled: bool,
    /// The patch side at DDIM steps ℓ = 1..L (entry ℓ−1).
    pub patch_schedule: Vec<usize>,
    /// ELS samples drawn.
    pub samples: usize,
    /// Samples that escaped.
    pub escaped: usize,
    /// Memorization statistics of the finite samples (eq. 3.3.5, 3.3.6).
    pub memorization: Option<MemorizationSummary>,
    /// ELS sampling: wall time, FLOPs (`2·Q·M·(CP² + C)` per step).
    pub sampling: Timing,
    /// The r² comparison's ELS evaluations: wall time, FLOPs.
    pub r2_els: Timing,
    /// Training images noised for the r².
    pub r2_images: usize,
    /// The ELS against the clean images per level and patch side.
    pub els_levels: Vec<ElsLevel>,
    /// Every network's r² per level.
    pub networks: Vec<NetworkR2>,
    /// Kamb & Ganguli's reported median r² range, for the reader's comparison.
    pub kamb_ganguli_median_r2: (f64, f64),
}

/// Runs `exp els` into `folder` (module doc).
pub fn run(
    context: &Context,
    folder: &RunFolder,
    show_progress: bool,
) -> Result<(Metrics, ModelSamples)> {
    let settings = &context.settings;
    let els = &settings.els;
    els.validate()?;
    settings.unet.validate()?;
    let shape = context.data.shape;
    let n = context.data.images.nrows();
    let pixels = shape.height * shape.width;
    let steps = settings.steps;
    let schedule = paper_schedule(steps)?;
    let patches = patch_schedule(els, steps, shape);
    let locations = bank_locations(n, pixels, els.max_patches, settings.seed);

    // ELS samples
    let count = els.samples.min(context.noise.nrows());
    let noise = context.noise.subrows(0, count).to_owned();
    let start = Instant::now();
    let mut predictor = ElsPredictor {
        context,
        locations: &locations,
        schedule: &patches,
        current: None,
        flops: 0.0,
    };
    let checkpoint = folder.path(&format!(
        "checkpoint-sampling-els-p{}-{}-m{}-seed{}",
        els.patch_max,
        els.patch_min,
        locations.len(),
        settings.seed
    ));
    let bar = super::progress_bar(steps as u64, "els sampling", show_progress);
    let sampled = {
        let mut counted = ProgressPredictor {
            inner: &mut predictor,
            bar: &bar,
        };
        ddim_checkpointed(&schedule, &mut counted, &noise, Some(&checkpoint))?
    };
    bar.finish_and_clear();
    let flops = predictor.flops;
    drop(predictor);
    let sampling = Timing::since("ELS DDIM sampling", start, flops);
    let model = ModelSamples::new(
        &format!(
            "ELS P {}->{}",
            patches.last().copied().unwrap_or(0),
            patches[0]
        ),
        sampled,
    );
    let finite = model.finite_rows();
    let memorization = if finite.nrows() > 0 {
        Some(summarize(&context.data.images, &finite)?.0)
    } else {
        None
    };
    folder.write_figure(
        "els_samples",
        "ELS machine samples (Kamb-Ganguli), patch side shrinking with the noise",
        context,
        &[&model],
    )?;

    // the ELS outputs of the r² comparison, per level and patch side
    let start = Instant::now();
    let levels = r2_levels(els.r2_levels, steps);
    let r2_count = els.r2_images.min(n);
    let clean = context.data.images.subrows(0, r2_count).to_owned();
    let eps = super::normals(
        PhiloxStream::new(settings.seed, R2_STREAM),
        r2_count,
        shape.dim(),
    );
    let cap = largest_patch(shape);
    let mut r2_flops = 0.0;
    let bar = super::progress_bar(levels.len() as u64, "els r² levels", show_progress);
    let mut level_outputs = Vec::new();
    let mut sides_built: Vec<(usize, GpuPatchDenoiser)> = Vec::new();
    for &l in &levels {
        let sigma = schedule.sigma(l) / schedule.alpha(l);
        let y = Mat::from_fn(r2_count, shape.dim(), |i, j| {
            clean[(i, j)] + sigma * eps[(i, j)]
        });
        let mut sides: Vec<usize> = els
            .r2_patches
            .iter()
            .map(|&p| p.min(cap))
            .chain([patches[l - 1]])
            .collect();
        sides.sort_unstable();
        sides.dedup();
        let mut outputs = Vec::new();
        for &p in &sides {
            // one bank per side, built once for every level
            let built = match sides_built.iter().position(|(q, _)| *q == p) {
                Some(i) => i,
                None => {
                    sides_built.push((
                        p,
                        GpuPatchDenoiser::new(
                            context.gpu,
                            &context.data.images,
                            shape,
                            p,
                            &locations,
                        )?,
                    ));
                    sides_built.len() - 1
                }
            };
            let denoiser = &sides_built[built].1;
            r2_flops += denoiser.flops(r2_count);
            outputs.push((p, denoiser.denoise(&y, sigma)?));
        }
        level_outputs.push((l, sigma, y, outputs));
        bar.inc(1);
    }
    drop(sides_built);
    bar.finish_and_clear();
    let r2_els = Timing::since("ELS outputs of the r² comparison", start, r2_flops);

    // the networks
    let unet_folder = RunFolder::create(&folder.path("..").join("unet"))?;
    let mut networks = Vec::new();
    for variant in unet::variants(&settings.unet)
        .into_iter()
        .filter(|v| els.networks.contains(&v.label))
    {
        let bar = super::progress_bar(
            settings.unet.epochs as u64,
            &format!("els: unet {} epochs", variant.label),
            show_progress,
        );
        let (trainer, _, seconds) = unet::train(context, &variant, &unet_folder, &schedule, &bar)?;
        bar.finish_and_clear();
        let flops = trainer.flops_per_epoch() * settings.unet.epochs as f64;
        let mut per_level = Vec::new();
        for (l, sigma, y, outputs) in &level_outputs {
            let net = trainer.predict(y, *sigma)?;
            let by_patch: Vec<PatchR2> = outputs
                .iter()
                .map(|(p, f)| PatchR2 {
                    patch: *p,
                    r2: r_squared(&net, f),
                })
                .collect();
            let best = by_patch
                .iter()
                .filter(|r| r.r2.is_finite())
                .max_by(|a, b| a.r2.total_cmp(&b.r2));
            let schedule_patch = patches[l - 1];
            per_level.push(LevelR2 {
                step: *l,
                sigma: *sigma,
                schedule_patch,
                best_patch: best.map_or(0, |r| r.patch),
                best_r2: best.map_or(f64::NAN, |r| r.r2),
                schedule_r2: by_patch
                    .iter()
                    .find(|r| r.patch == schedule_patch)
                    .map_or(f64::NAN, |r| r.r2),
                clean_r2: r_squared(&clean, &net),
                by_patch,
            });
        }
        networks.push(NetworkR2 {
            median_best_r2: median(&per_level.iter().map(|l| l.best_r2).collect::<Vec<_>>()),
            median_schedule_r2: median(
                &per_level.iter().map(|l| l.schedule_r2).collect::<Vec<_>>(),
            ),
            training: Timing {
                phase: format!("train U-Net {}", variant.label),
                seconds,
                flops,
                tflops_per_second: if seconds > 0.0 {
                    flops / seconds / 1e12
                } else {
                    0.0
                },
            },
            levels: per_level,
            variant,
        });
    }
    let els_levels = level_outputs
        .iter()
        .map(|(l, sigma, _, outputs)| ElsLevel {
            step: *l,
            sigma: *sigma,
            clean_r2: outputs
                .iter()
                .map(|(p, f)| PatchR2 {
                    patch: *p,
                    r2: r_squared(&clean, f),
                })
                .collect(),
        })
        .collect();
    let metrics = Metrics {
        els_levels,
        bank_patches: locations.len(),
        all_patches: n * pixels,
        subsampled: locations.len() < n * pixels,
        patch_schedule: patches,
        samples: count,
        escaped: model.escaped_count(),
        memorization,
        sampling,
        r2_els,
        r2_images: r2_count,
        networks,
        kamb_ganguli_median_r2: (0.94, 0.96),
    };
    Ok((metrics, model))
}

/// A [`StepPredictor`] that advances a progress bar (with the step's patch side) per step.
struct ProgressPredictor<'p, 'c, 'g> {
    inner: &'p mut ElsPredictor<'c, 'g>,
    bar: &'p indicatif::ProgressBar,
}

impl StepPredictor for ProgressPredictor<'_, '_, '_> {
    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat> {
        self.bar
            .set_message(format!("P {}", self.inner.schedule[step - 1]));
        let x0 = self.inner.predict(schedule, step, x_t)?;
        self.bar.inc(1);
        Ok(x0)
    }
}

/// Kamb & Ganguli's ELS machine beside the trained U-Nets.
pub struct Els;

impl super::ImageExperiment for Els {
    fn name(&self) -> &'static str {
        "els"
    }

    fn about(&self) -> &'static str {
        "Kamb–Ganguli ELS machine: DDIM samples of the equivariant local score denoiser (circular patches, side shrinking with the noise, a seeded cap on the patch bank) and the r² between each trained U-Net's denoiser and the ELS per noise level and patch side (U-Nets shared with exp unet's checkpoints)."
    }

    fn run(
        &self,
        context: &Context,
        folder: &RunFolder,
        _earlier: &[ModelSamples],
        show_progress: bool,
    ) -> Result<super::Outcome> {
        let (metrics, samples) = run(context, folder, show_progress)?;
        Ok(super::Outcome {
            // the ELS work only: the U-Nets' training is shared with exp unet (and counted there
            // when it runs)
            flops: metrics.sampling.flops + metrics.r2_els.flops,
            metrics: super::to_value(&metrics)?,
            samples: vec![samples],
        })
    }
}
