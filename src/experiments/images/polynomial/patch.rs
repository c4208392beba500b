//! `exp polynomial --patch` — Levine–Weiss §3.2, Fig. 8: the random-feature polynomial
//! denoiser of [`super`] made *local*, with a patch size that shrinks with the noise level.
//!
//! At DDIM step ℓ the x̂₀ value of pixel p (all C channels) is read from the C·P_ℓ² values of
//! the P_ℓ × P_ℓ patch of y centred on p, `y_{[p]}`, through one read-out shared by every pixel
//! (a convolution with a polynomial inside):
//!
//! `x̂₀(y)_{:,p} = A_ℓᵀ φ̃(y_{[p]})`, `φ̃ = (1, φ)`, `φ_j(u) = (c_ℓ R_{ℓ,j}·u)^k`,
//!
//! with `R_ℓ` a w_ℓ × C·P_ℓ² standard normal projection (drawn once per patch side P, Philox
//! stream [`PATCH_PROJECTION_STREAM`] + P) and `A_ℓ` a (w_ℓ+1) × C ridge read-out fitted in
//! closed form exactly as Fig. 7's (`(H + λ·diag H)A = B`, Jacobi-scaled ridge, H accumulated
//! in f64, Cholesky in f64: `polynomial::ridge_solve`), here over patch–centre pairs:
//! `H = Σ φ̃(y_{[p]})φ̃(y_{[p]})ᵀ`, `B = Σ φ̃(y_{[p]}) x₀[:, p]ᵀ`.
//!
//! **The patch schedule is ours** (the paper says only "from larger patches in the high-noise
//! regime to progressively smaller patches as the noise level decreased", following Kamb &
//! Ganguli, with "the dimensions of the random matrix adjusted" to the patch): the patch radius
//! `r = (P−1)/2` goes linearly, rounded half up, from `r_max` at ℓ = L to `r_min` at ℓ = 1:
//! `r_ℓ = r_min + ⌊((r_max − r_min)(ℓ−1) + (L−1)/2) / (L−1)⌋` ([`patch_side`]; `r_max` alone
//! for L = 1), and the width is `w_ℓ = min(w, f·C·P_ℓ²)` with f
//! [`PatchSettings::features_per_input`] ([`patch_width`]). At paper scale P goes from 33 (half
//! the 64-pixel image) to 3 and w from 1024 to 108; with `--quick` from 7 to 3 on 16×16, w = 64
//! throughout.
//!
//! Padding ([`PatchSettings::padding`]): a patch that crosses the image edge reads zeros
//! ([`Padding::Zero`]) or wraps around ([`Padding::Circular`], the default: the read-out is
//! then exactly translation-equivariant — a cyclic shift of y shifts x̂₀ — which
//! `tests/experiments.rs::circular_patch_polynomial_commutes_with_cyclic_shifts` checks).
//!
//! **Subsampling (ours, to bound the cost):** each step's fit draws, as Fig. 7, `copies` noisy
//! copies `Y = α_ℓ X + σ_ℓ E` of the N training images (the same GPU Philox noise as Fig. 7's
//! fit, `polynomial::TrainingNoise`) and takes from each noisy image
//! [`PatchSettings::pixels_per_image`] distinct centre pixels drawn uniformly (partial
//! Fisher–Yates on Philox stream [`PATCH_PIXEL_STREAM`] + ℓ, images in order, copies in order;
//! every pixel when that is ≥ H·W), so a step fits on `copies·N·min(p, H·W)` patches. The H
//! accumulation costs `2·(w_ℓ+1)²` FLOPs per patch in f64 on the CPU (for k = 27 its entries
//! leave f32's range), the projections `2·C·P_ℓ²·w_ℓ` per patch on the GPU.
//!
//! Feature scale: `c_ℓ = 1/√(α_ℓ² m₂·C·P²/d + σ_ℓ² C·P²)`, with `m₂` the mean of `‖x_i‖²`:
//! `m₂·C·P²/d` is the mean squared norm of a clean patch over all positions under circular
//! padding (an upper bound under zero padding), so `c_ℓ R_j·u` has about unit variance (a
//! conditioning choice, absorbed into A for the pure polynomial).
//!
//! Prediction runs every pixel of every sample (`samples·H·W` patches a step) in row chunks of
//! at most [`CHUNK_ELEMENTS`] values, each a GPU product `U R_ℓᵀ`, features on the CPU and a GPU
//! product `Φ̃ A_ℓ`.
//!
//! The degrees are Fig. 7's ([`super::super::Settings::degrees`]): Fig. 8's caption and text do
//! not state them.

use super::super::sweep::{keeps, write_shard};
use super::super::{
    ddim, multiply_resident, normals, paper_schedule, progress_bar, Context, ModelSamples,
    RunFolder, StepPredictor, Timing,
};
use super::TrainingNoise;
use super::{features, mean_square_norm, nearest_row, ridge_solve, FeatureMap, ModelResult};
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::conv::Padding;
use crate::gpu::gemm::GpuMat;
use crate::io::grid::ImageShape;
use crate::linalg::Mat;
use crate::rng::{PhiloxStream, Rng};
use crate::stats::nearest::summarize;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// First Philox stream of the patch projections: patch side P uses `base + P`.
pub const PATCH_PROJECTION_STREAM: u32 = 400;
/// First Philox stream of the training centre pixels: step ℓ uses `base + ℓ` (apart from the
/// training noise streams [`super::TRAINING_NOISE_STREAM`] + ℓ for any step count under 10⁶).
pub const PATCH_PIXEL_STREAM: u32 = 2_000_000;
/// The most values (rows × columns) of one chunk of patches, features or products.
pub const CHUNK_ELEMENTS: usize = 1 << 22;

/// The settings of `exp polynomial --patch` ([`super::super::Settings::patch_polynomial`]);
/// the defaults are ours (module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchSettings {
    /// Patch side at ℓ = L, the highest noise (odd).
    pub largest: usize,
    /// Patch side at ℓ = 1, the lowest noise (odd, ≤ `largest`).
    pub smallest: usize,
    /// Cap on the random-feature width: `w_ℓ = min(width, features_per_input·C·P_ℓ²)`.
    pub width: usize,
    /// Features per patch value f below the cap.
    pub features_per_input: usize,
    /// Training centre pixels per noisy image (every pixel when ≥ H·W).
    pub pixels_per_image: usize,
    /// How a patch reads beyond the image edge.
    pub padding: Padding,
    /// The feature maps, one figure each (Fig. 7's two by default).
    pub maps: Vec<FeatureMap>,
}

impl Default for PatchSettings {
    /// Paper scale (ours: the paper gives no schedule): P from 33 to 3 on 64×64 images, w ≤ 1024
    /// (Fig. 7's width) with 4 features per patch value, 8 centre pixels per noisy image
    /// (copies·N·8 = 160 000 patches a step with 20 copies of 1000 images), circular padding,
    /// both feature maps.
    fn default() -> Self {
        Self {
            largest: 33,
            smallest: 3,
            width: 1024,
            features_per_input: 4,
            pixels_per_image: 8,
            padding: Padding::Circular,
            maps: vec![FeatureMap::Polynomial, FeatureMap::MaxNormalized],
        }
    }
}

impl PatchSettings {
    /// `--quick`: P from 7 to 3 (16×16 images), w ≤ 64 (Fig. 7's quick width). Every pixel of
    /// every sample goes through the projection at each step, so the patch model's products are
    /// `H·W` times taller than Fig. 7's; measured on llvmpipe (CPU seconds of the whole quick
    /// run): P up to 9 with w = 64, 15 s; P up to 7 with w = 64, 9.7 s; with w = 32, 14 s (fewer
    /// than 64 output columns fall to the GEMM family's 16×16-tiled kernel, slower there than
    /// the 64×64 register-blocked one).
    pub fn quick() -> Self {
        Self {
            largest: 7,
            width: 64,
            ..Self::default()
        }
    }

    /// Checks the settings for images of side `size`; a bad value is a typed error naming it.
    /// Exporting patch models is not implemented, so `export_models` is refused.
    pub fn validate(&self, size: usize, export_models: bool) -> Result<()> {
        let bad = |what: &'static str, reason: String| {
            Err(Error::InvalidArgument {
                what: what.into(),
                reason,
            })
        };
        for (what, side) in [
            ("patch_polynomial.largest", self.largest),
            ("patch_polynomial.smallest", self.smallest),
        ] {
            if side % 2 == 0 {
                return bad(
                    what,
                    format!("a patch side must be odd (centred), got {side}"),
                );
            }
        }
        if self.smallest > self.largest {
            return bad(
                "patch_polynomial.smallest",
                format!(
                    "the patch shrinks with the noise: need smallest ≤ largest, got {} > {}",
                    self.smallest, self.largest
                ),
            );
        }
        if self.largest > 2 * size.max(1) - 1 {
            return bad(
                "patch_polynomial.largest",
                format!(
                    "a patch of side {} is wider than 2·{size} − 1 (it would see the image twice)",
                    self.largest
                ),
            );
        }
        for (what, v) in [
            ("patch_polynomial.width", self.width),
            (
                "patch_polynomial.features_per_input",
                self.features_per_input,
            ),
            ("patch_polynomial.pixels_per_image", self.pixels_per_image),
        ] {
            if v == 0 {
                return bad(what, "must be at least 1, got 0".into());
            }
        }
        if self.maps.is_empty() {
            return bad(
                "patch_polynomial.maps",
                "needs at least one feature map, got an empty list".into(),
            );
        }
        if export_models {
            return bad(
                "export_models",
                "exporting the patch polynomial models (--patch) is not implemented".into(),
            );
        }
        Ok(())
    }
}

/// The patch side of step ℓ of L: `2r_ℓ + 1` with
/// `r_ℓ = r_min + ⌊((r_max − r_min)(ℓ−1) + ⌊(L−1)/2⌋) / (L−1)⌋` (linear in ℓ, rounded half up;
/// `r_max` for L = 1), `r = (side − 1)/2` of `largest` and `smallest`: `largest` at ℓ = L,
/// `smallest` at ℓ = 1, never increasing as ℓ falls.
pub fn patch_side(patch: &PatchSettings, steps: usize, step: usize) -> usize {
    let (r_max, r_min) = ((patch.largest - 1) / 2, (patch.smallest - 1) / 2);
    if steps <= 1 {
        return 2 * r_max + 1;
    }
    let span = steps - 1;
    let r = r_min + ((r_max - r_min) * (step.clamp(1, steps) - 1) + span / 2) / span;
    2 * r + 1
}

/// The random-feature width of patch side P: `w = min(width, features_per_input·C·P²)`.
pub fn patch_width(patch: &PatchSettings, channels: usize, side: usize) -> usize {
    patch.width.min(
        patch
            .features_per_input
            .saturating_mul(channels * side * side),
    )
}

/// The projection `R_P` of patch side P (w × C·P² standard normals, Philox stream
/// [`PATCH_PROJECTION_STREAM`] + P).
pub fn patch_projection(context: &Context, patch: &PatchSettings, side: usize) -> Result<Mat> {
    let channels = context.data.shape.channels;
    let stream = u32::try_from(side)
        .ok()
        .and_then(|s| PATCH_PROJECTION_STREAM.checked_add(s))
        .ok_or_else(|| Error::InvalidArgument {
            what: "patch side".into(),
            reason: format!("side {side} is past the last one with its own Philox stream"),
        })?;
    Ok(normals(
        PhiloxStream::new(context.settings.seed, stream),
        patch_width(patch, channels, side),
        channels * side * side,
    ))
}

/// The patches of side P of `images` (rows × d, CHW) centred at `centres` (image row, pixel
/// `h·W + w`): one row each, column `c·P² + a·P + b` holding channel c at row `h + a − r`,
/// column `w + b − r` (r = (P−1)/2), read through `padding` beyond the edge.
pub fn patches(
    images: &Mat,
    shape: ImageShape,
    side: usize,
    padding: Padding,
    centres: &[(usize, usize)],
) -> Mat {
    let (c_n, h_n, w_n) = (shape.channels, shape.height, shape.width);
    let r = (side - 1) / 2;
    let area = side * side;
    // offset a of a patch around centre h: Some(row) or None (a zero-padded read)
    let wrap = |centre: usize, offset: usize, n: usize| -> Option<usize> {
        let at = centre as isize + offset as isize - r as isize;
        match padding {
            Padding::Zero => (0..n as isize).contains(&at).then_some(at as usize),
            Padding::Circular => Some(at.rem_euclid(n as isize) as usize),
        }
    };
    Mat::from_fn(centres.len(), c_n * area, |i, col| {
        let (image, pixel) = centres[i];
        let (c, a, b) = (col / area, (col % area) / side, col % side);
        match (wrap(pixel / w_n, a, h_n), wrap(pixel % w_n, b, w_n)) {
            (Some(h), Some(w)) => images[(image, c * h_n * w_n + h * w_n + w)],
            _ => 0.0,
        }
    })
}

/// The patch polynomial predictor of one (map, degree): per step ℓ it fits `A_ℓ` on the
/// training patches (module docs) and predicts every pixel of x_t from its patch.
pub struct PatchPolynomialPredictor<'c, 'g> {
    context: &'c Context<'g>,
    data: &'c GpuMat,
    patch: PatchSettings,
    degree: usize,
    map: FeatureMap,
    mean_square_norm: f64,
    noise: TrainingNoise,
    /// The projection of the current patch side, resident.
    projection: Option<(usize, GpuMat)>,
    /// The read-out of the last step fitted ((w+1) × C, resident).
    fitted: Option<(usize, GpuMat)>,
    progress: Option<indicatif::ProgressBar>,
    /// FLOPs spent so far (projections, Gram, cross term, predictions).
    pub flops: f64,
}

impl<'c, 'g> PatchPolynomialPredictor<'c, 'g> {
    /// A predictor of degree k with feature map `map` for the context's training images
    /// (resident as `data`) and the patch settings `patch` (checked for the images' side).
    pub fn new(
        context: &'c Context<'g>,
        data: &'c GpuMat,
        patch: &PatchSettings,
        degree: usize,
        map: FeatureMap,
    ) -> Result<Self> {
        patch.validate(
            context.data.shape.height.max(context.data.shape.width),
            false,
        )?;
        if degree == 0 {
            return Err(Error::InvalidArgument {
                what: "degree".into(),
                reason: "a polynomial degree must be ≥ 1, got 0".into(),
            });
        }
        let images = &context.data.images;
        Ok(Self {
            context,
            data,
            patch: patch.clone(),
            degree,
            map,
            mean_square_norm: mean_square_norm(images),
            noise: TrainingNoise::new(context.gpu, images.nrows(), images.ncols())?,
            projection: None,
            fitted: None,
            progress: None,
            flops: 0.0,
        })
    }

    /// Advances `bar` by one per noise copy fitted (`steps·copies` in a sampling run).
    pub(crate) fn with_progress(mut self, bar: indicatif::ProgressBar) -> Self {
        self.progress = Some(bar);
        self
    }

    /// `c_ℓ = 1/√(α_ℓ² m₂·C·P²/d + σ_ℓ² C·P²)` (module docs).
    pub fn scale(&self, schedule: &Schedule, step: usize, side: usize) -> f64 {
        let (a, s) = (schedule.alpha(step), schedule.sigma(step));
        let inputs = (self.context.data.shape.channels * side * side) as f64;
        let d = self.context.dim() as f64;
        1.0 / (a * a * self.mean_square_norm * inputs / d + s * s * inputs).sqrt()
    }

    /// Makes the projection of patch side P resident (drawing it when the side changed).
    fn ensure_projection(&mut self, side: usize) -> Result<()> {
        if self.projection.as_ref().map(|(s, _)| *s) != Some(side) {
            let host = patch_projection(self.context, &self.patch, side)?;
            let resident = GpuMat::upload(self.context.gpu, "patch projection", &host)?;
            self.projection = Some((side, resident));
        }
        Ok(())
    }

    /// Rows per chunk for patches of C·P² values and w+1 features.
    fn chunk_rows(&self, inputs: usize, width: usize) -> usize {
        (CHUNK_ELEMENTS / inputs.max(width + 1)).max(1)
    }

    /// The features `φ̃` (rows × (w+1)) of the patches `u` (rows × C·P²) of side P.
    fn patch_features(&mut self, u: &Mat, scale: f64) -> Result<Mat> {
        let (_, projection) = self.projection.as_ref().expect("ensured by the caller");
        let z = multiply_resident(self.context.gpu, u, false, projection, true)?;
        self.flops += 2.0 * (u.nrows() * u.ncols() * projection.shape().0) as f64;
        Ok(features(&z, scale, self.degree, self.map))
    }

    /// Fits `A_ℓ` (module docs); returns it resident.
    fn fit(&mut self, schedule: &Schedule, step: usize) -> Result<GpuMat> {
        let context = self.context;
        let settings = &context.settings;
        let shape = context.data.shape;
        let x = &context.data.images;
        let (n, pixels) = (x.nrows(), shape.height * shape.width);
        let side = patch_side(&self.patch, schedule.steps(), step);
        self.ensure_projection(side)?;
        let width = patch_width(&self.patch, shape.channels, side);
        let inputs = shape.channels * side * side;
        let scale = self.scale(schedule, step, side);
        let chunk = self.chunk_rows(inputs, width);
        let stream = u32::try_from(step)
            .ok()
            .and_then(|l| PATCH_PIXEL_STREAM.checked_add(l))
            .ok_or_else(|| Error::InvalidArgument {
                what: "steps".into(),
                reason: format!("step {step} is past the last one with its own Philox stream"),
            })?;
        let mut rng = Rng::new(settings.seed, stream);
        let per_image = self.patch.pixels_per_image.min(pixels);
        let mut gram = Mat::zeros(width + 1, width + 1);
        let mut cross = Mat::zeros(width + 1, shape.channels);
        for copy in 0..settings.copies {
            let noisy = self
                .noise
                .draw(context, self.data, schedule, step, copy)?
                .download(context.gpu)?;
            let mut centres = Vec::with_capacity(n * per_image);
            let mut order: Vec<usize> = (0..pixels).collect();
            for image in 0..n {
                // partial Fisher–Yates: the first `per_image` entries of a uniform permutation
                for i in 0..per_image {
                    let j = i + (rng.next_u32() as usize) % (pixels - i);
                    order.swap(i, j);
                    centres.push((image, order[i]));
                }
            }
            for part in centres.chunks(chunk) {
                let u = patches(&noisy, shape, side, self.patch.padding, part);
                let f = self.patch_features(&u, scale)?;
                let target = Mat::from_fn(part.len(), shape.channels, |i, c| {
                    let (image, pixel) = part[i];
                    x[(image, c * pixels + pixel)]
                });
                gram += f.transpose() * &f;
                cross += f.transpose() * &target;
                let rows = part.len() as f64;
                self.flops += rows * 2.0 * ((width + 1) * (width + 1 + shape.channels)) as f64;
            }
            if let Some(bar) = &self.progress {
                bar.inc(1);
                bar.set_message(format!("step {step}, P = {side}"));
            }
        }
        let readout = ridge_solve(gram, &cross, settings.ridge)?;
        GpuMat::upload(context.gpu, "patch polynomial read-out", &readout)
    }
}

impl StepPredictor for PatchPolynomialPredictor<'_, '_> {
    /// `x̂₀(x_t)_{:,p} = A_ℓᵀ φ̃((x_t)_{[p]})` for every pixel p of every row (module docs),
    /// fitting `A_ℓ` first when ℓ is not the step fitted last.
    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat> {
        if self.fitted.as_ref().map(|(s, _)| *s) != Some(step) {
            self.fitted = None;
            let readout = self.fit(schedule, step)?;
            self.fitted = Some((step, readout));
        }
        let shape = self.context.data.shape;
        let pixels = shape.height * shape.width;
        if x_t.ncols() != shape.dim() {
            return Err(Error::InvalidArgument {
                what: "x_t".into(),
                reason: format!(
                    "rows of {} values, the images have d = {}",
                    x_t.ncols(),
                    shape.dim()
                ),
            });
        }
        let side = patch_side(&self.patch, schedule.steps(), step);
        self.ensure_projection(side)?;
        let width = patch_width(&self.patch, shape.channels, side);
        let inputs = shape.channels * side * side;
        let scale = self.scale(schedule, step, side);
        let centres: Vec<(usize, usize)> = (0..x_t.nrows())
            .flat_map(|b| (0..pixels).map(move |p| (b, p)))
            .collect();
        let mut x0 = Mat::zeros(x_t.nrows(), x_t.ncols());
        for part in centres.chunks(self.chunk_rows(inputs, width)) {
            let u = patches(x_t, shape, side, self.patch.padding, part);
            let f = self.patch_features(&u, scale)?;
            let (_, readout) = self.fitted.as_ref().expect("fitted just above");
            let out = multiply_resident(self.context.gpu, &f, false, readout, false)?;
            self.flops += 2.0 * (part.len() * (width + 1) * shape.channels) as f64;
            for (i, &(b, p)) in part.iter().enumerate() {
                for c in 0..shape.channels {
                    x0[(b, c * pixels + p)] = out[(i, c)];
                }
            }
        }
        Ok(x0)
    }
}

/// One DDIM step's patch side and width.
#[derive(Debug, Clone, Serialize)]
pub struct PatchStep {
    /// DDIM step ℓ.
    pub step: usize,
    /// Patch side P_ℓ.
    pub side: usize,
    /// Random-feature width w_ℓ.
    pub width: usize,
}

/// `metrics.json` of `exp polynomial --patch`.
#[derive(Debug, Clone, Serialize)]
pub struct PatchMetrics {
    /// The settings of the patch model.
    pub patch: PatchSettings,
    /// Patch side and width of every step, ℓ = L … 1.
    pub schedule: Vec<PatchStep>,
    /// Training patches per step, `copies·N·min(pixels_per_image, H·W)`.
    pub patches_per_step: usize,
    /// Every model.
    pub models: Vec<ModelResult>,
    /// What is ours and what the max-normalised rows are.
    pub note: String,
}

/// The sweep label of the patch model (`patch polynomial k=9`).
fn label(map: FeatureMap, k: usize) -> String {
    format!("patch {} k={k}", map.name())
}

const NOTE: &str = "patch schedule (side linear in the step from largest at ℓ = L to smallest \
    at ℓ = 1), width min(width, features_per_input·C·P²), centre-pixel subsampling and padding \
    are ours (the paper states none of them); the degrees are Fig. 7's (Fig. 8 does not state \
    them); max-normalized rows divide each patch's features by their largest magnitude, a \
    degree-0 homogeneous map, not a polynomial";

/// Runs Fig. 8 (every map of the patch settings × Fig. 7's degrees) into `folder`; returns the
/// metrics and every model's samples. With a sweep shard only its models run (labels
/// `patch polynomial k=3`, …) and are written as JSON lines for `merge`.
pub fn run(
    context: &Context,
    folder: &RunFolder,
    show_progress: bool,
) -> Result<(PatchMetrics, Vec<ModelSamples>)> {
    let settings = &context.settings;
    // `exp polynomial --patch` sets them; `exp polynomial-patch` and `exp all` take the
    // defaults of the run's scale when they are not set
    let patch = settings.patch_polynomial.clone().unwrap_or_else(|| {
        if settings.quick {
            PatchSettings::quick()
        } else {
            PatchSettings::default()
        }
    });
    patch.validate(settings.size, settings.export_models)?;
    let schedule = paper_schedule(settings.steps)?;
    let shape = context.data.shape;
    let data = GpuMat::upload(context.gpu, "images", &context.data.images)?;
    let sweep: Vec<String> = patch
        .maps
        .iter()
        .flat_map(|map| settings.degrees.iter().map(move |&k| label(*map, k)))
        .collect();
    let mut results = Vec::new();
    let mut all = Vec::new();
    let mut position = 0;
    for &map in &patch.maps {
        let mut rows = Vec::new();
        for &k in &settings.degrees {
            position += 1;
            if !keeps(settings.sweep_shard, position - 1) {
                continue;
            }
            let start = Instant::now();
            let label = label(map, k);
            let bar = progress_bar(
                (settings.steps * settings.copies) as u64,
                &format!("{label} fit copies"),
                show_progress,
            );
            let mut predictor = PatchPolynomialPredictor::new(context, &data, &patch, k, map)?
                .with_progress(bar.clone());
            let sampled = ddim(&schedule, &mut predictor, &context.noise)?;
            bar.finish_and_clear();
            let model = ModelSamples::new(&label, sampled);
            let finite = model.finite_rows();
            let memorization = if finite.nrows() > 0 && context.data.images.nrows() >= 2 {
                Some(summarize(&context.data.images, &finite)?.0)
            } else {
                None
            };
            results.push(ModelResult {
                map,
                degree: k,
                is_polynomial: map == FeatureMap::Polynomial,
                escaped: model.escaped_count(),
                memorization,
                timing: Timing::since(&model.label, start, predictor.flops),
            });
            rows.push(model);
        }
        let mut figure: Vec<ModelSamples> = rows.clone();
        if let Some(last) = rows.last() {
            figure.extend(nearest_row(context, last)?);
        }
        if figure.is_empty() {
            continue;
        }
        folder.write_figure(
            &format!("fig8_patch_{}", map.name().replace('-', "_")),
            &format!(
                "Fig. 8: patch polynomial denoisers ({} map, P {} to {})",
                map.name(),
                patch.largest,
                patch.smallest
            ),
            context,
            &figure.iter().collect::<Vec<_>>(),
        )?;
        all.extend(rows);
    }
    let per_image = patch.pixels_per_image.min(shape.height * shape.width);
    let metrics = PatchMetrics {
        schedule: (1..=settings.steps)
            .rev()
            .map(|step| {
                let side = patch_side(&patch, settings.steps, step);
                PatchStep {
                    step,
                    side,
                    width: patch_width(&patch, shape.channels, side),
                }
            })
            .collect(),
        patches_per_step: settings.copies * context.data.images.nrows() * per_image,
        patch,
        models: results,
        note: NOTE.into(),
    };
    if let Some(shard) = settings.sweep_shard {
        let results = metrics
            .models
            .iter()
            .map(|m| Ok((label(m.map, m.degree), super::super::to_value(m)?)))
            .collect::<Result<Vec<_>>>()?;
        let run = serde_json::json!({
            "patch": metrics.patch,
            "schedule": metrics.schedule,
            "patches_per_step": metrics.patches_per_step,
            "note": metrics.note,
        });
        write_shard(
            folder,
            "polynomial",
            shard,
            (&sweep, settings.seed),
            &run,
            &results,
        )?;
    }
    Ok((metrics, all))
}
