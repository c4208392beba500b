//! `exp polynomial` — Levine–Weiss §3.2, Fig. 7: random-feature polynomial x₀-predictors.
//!
//! A fixed random projection R (w × d, standard normal entries, shared by every step and
//! degree), features `φ_j(y) = (c_ℓ·R_j·y)^k` and, per DDIM step ℓ, a read-out A_ℓ fitted in
//! closed form: `x̂₀(y) = A_ℓ φ̃(y)`, `φ̃ = (1, φ)`, minimising the mean of `‖A φ̃(y) − x₀‖²` over
//! M = copies·N pairs `y = α_ℓ x₀ + σ_ℓ ε` by the ridge normal equations
//! `(H + λ·diag H) A_ℓᵀ = B`, `H = Σ φ̃φ̃ᵀ`, `B = Σ φ̃ x₀ᵀ` (Jacobi-scaled ridge, so features of
//! very different sizes — `k = 27` — are regularised alike).
//!
//! `c_ℓ = 1/√(α_ℓ² m₂ + σ_ℓ² d)` with `m₂` the mean of `‖x_i‖²` makes `c_ℓ R_j·y` of unit
//! variance; for the pure polynomial it is absorbed into A (a conditioning choice only).
//!
//! The (feature map, degree) pairs are a sweep ([`super::sweep`], labels `polynomial k=9`,
//! `max-normalized k=9`): with `--shard i/n` a run fits only its models (and draws Fig. 7 for
//! them) and writes their results as JSON lines that `merge` joins ([`merged_metrics`]).
//!
//! Numerics: the noisy inputs `Y = α_ℓ X + σ_ℓ E` are drawn on the GPU (the `dense_gather` kernel
//! of `gpu/dense.wgsl`, Philox as in [`crate::gpu::dense`]: at paper scale a step needs
//! copies·N·d = 2.5·10⁸ normals, 7·10¹⁰ for the six models of Fig. 7 — minutes of CPU time
//! against about a second of GEMMs on an H100, and a host-to-device copy of every Y); the
//! projections `Y Rᵀ` (the heavy part, `2·M·d·w` FLOPs per step) and
//! `B = (Σ_copies Φ̃)ᵀ X` run on the GPU (the clean images are the same in every copy, so the
//! cross term needs one product per step); `H` is accumulated in f64 on the CPU, because for
//! k = 27 its entries reach `|c R y|^{54}`, beyond f32's range; the solve is a Cholesky in f64.
//!
//! The training noise of step ℓ is Philox stream `(seed, TRAINING_NOISE_STREAM + ℓ)`: in copy c,
//! element `e = r·d + j` of E (image r, pixel j) is normal `e mod 4` of block `c·2³² + ⌊e/4⌋`
//! (the gather kernel's numbering with the copy as its batch index), so a run is reproducible
//! from the seed; the GPU's f32 Box–Muller normals are within
//! [`crate::gpu::philox::NORMAL_ABS_ERROR_F32`] of the f64 ones of [`crate::rng`].
//!
//! The published variant ([`FeatureMap::MaxNormalized`]) divides each sample's features by their
//! largest magnitude, `φ_j/max_i |φ_i|`; that map is homogeneous of degree 0 in y, not a
//! polynomial, so Thm 5 (dependence on the first 2k moments only) does not cover it — the
//! report says so.

use super::export::{models_folder, polynomial_readme, write_f32, write_vector};
use super::sweep::{keeps, write_shard, Merged};
use super::{
    ddim, multiply_on_gpu, multiply_resident, normals, paper_schedule, progress_bar, Context,
    ModelSamples, RunFolder, StepPredictor, Timing,
};
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::dense::gather_noisy;
use crate::gpu::gemm::GpuMat;
use crate::gpu::uniforms::GatherParams;
use crate::gpu::{grid_for, WORKGROUP_SIZE};
use crate::linalg::{self, Mat};
use crate::rng::PhiloxStream;
use crate::stats::nearest::{summarize, MemorizationSummary};
use serde::{Deserialize, Serialize};
use std::time::Instant;

pub mod patch;

/// How the projected inputs become features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureMap {
    /// `(c·R_j·y)^k` — a polynomial of degree k in y.
    Polynomial,
    /// `(R_j·y)^k / max_i |(R_i·y)^k|` — the published variant; not a polynomial.
    MaxNormalized,
}

impl FeatureMap {
    /// A short name for labels and files.
    pub fn name(self) -> &'static str {
        match self {
            Self::Polynomial => "polynomial",
            Self::MaxNormalized => "max-normalized",
        }
    }
}

/// Philox stream of the projection R.
pub const PROJECTION_STREAM: u32 = 300;
/// First Philox stream of the training noise; step ℓ uses `base + ℓ` (copies are its counter's
/// high word, see the module docs).
pub const TRAINING_NOISE_STREAM: u32 = 1_000_000;

/// The per-step random-feature predictor (one read-out in memory at a time).
pub struct PolynomialPredictor<'c, 'g> {
    context: &'c Context<'g>,
    images: &'c Mat,
    data: &'c GpuMat,
    projection: &'c GpuMat,
    mean_square_norm: f64,
    degree: usize,
    map: FeatureMap,
    fitted: Option<(usize, GpuMat)>,
    /// One copy's noisy inputs, drawn on the GPU.
    noise: TrainingNoise,
    /// Advanced by one per noise copy fitted.
    progress: Option<indicatif::ProgressBar>,
    /// Where `readout-<ℓ>.npy` goes as each step is fitted.
    export: Option<RunFolder>,
    /// FLOPs spent so far (projections, Gram, cross term, predictions).
    pub flops: f64,
}

impl<'c, 'g> PolynomialPredictor<'c, 'g> {
    /// A predictor of degree k for the training `images` (also resident as `data`) and the
    /// resident projection. N·d must stay below 2³² (the gather kernel's u32 indices).
    pub fn new(
        context: &'c Context<'g>,
        images: &'c Mat,
        data: &'c GpuMat,
        projection: &'c GpuMat,
        degree: usize,
        map: FeatureMap,
    ) -> Result<Self> {
        let noise = TrainingNoise::new(context.gpu, images.nrows(), images.ncols())?;
        let mean_square_norm = mean_square_norm(images);
        Ok(Self {
            context,
            images,
            data,
            projection,
            mean_square_norm,
            degree,
            map,
            fitted: None,
            noise,
            progress: None,
            export: None,
            flops: 0.0,
        })
    }

    /// Advances `bar` by one per noise copy fitted (`steps·copies` in a sampling run).
    pub(crate) fn with_progress(mut self, bar: indicatif::ProgressBar) -> Self {
        self.progress = Some(bar);
        self
    }

    /// Writes each step's read-out `A_ℓ` as `folder/readout-<ℓ>.npy` ((w+1)×d, f32: the values
    /// the GPU multiplies with) when it is fitted.
    pub fn exporting_to(mut self, folder: RunFolder) -> Self {
        self.export = Some(folder);
        self
    }

    /// The feature scales `c_ℓ = 1/√(α_ℓ² m₂ + σ_ℓ² d)` for ℓ = 0 … L.
    pub fn scales(&self, schedule: &Schedule) -> Vec<f64> {
        (0..=schedule.steps())
            .map(|l| self.scale(schedule, l))
            .collect()
    }

    /// Copy `copy` of step ℓ's noisy inputs `Y = α X + σ E`, drawn on the GPU (module docs),
    /// and their projections `Y Rᵀ` (N × w), downloaded.
    fn noisy_projections(&self, schedule: &Schedule, step: usize, copy: usize) -> Result<Mat> {
        let noisy = self
            .noise
            .draw(self.context, self.data, schedule, step, copy)?;
        multiply_on_gpu(self.context.gpu, noisy, false, self.projection, true)
    }

    /// `φ̃ = (1, φ(z))` for every row of the projections `z = R y`.
    fn features(&self, z: &Mat, scale: f64) -> Mat {
        features(z, scale, self.degree, self.map)
    }

    fn scale(&self, schedule: &Schedule, step: usize) -> f64 {
        let (a, s) = (schedule.alpha(step), schedule.sigma(step));
        1.0 / (a * a * self.mean_square_norm + s * s * self.context.dim() as f64).sqrt()
    }

    /// Fits the read-out of step ℓ (see the module doc).
    fn fit(&mut self, schedule: &Schedule, step: usize) -> Result<GpuMat> {
        let settings = &self.context.settings;
        let x = self.images;
        let (n, d, w) = (x.nrows(), x.ncols(), self.projection.shape().0);
        let scale = self.scale(schedule, step);
        let mut gram = Mat::zeros(w + 1, w + 1);
        let mut feature_sum = Mat::zeros(n, w + 1);
        for copy in 0..settings.copies {
            let z = self.noisy_projections(schedule, step, copy)?;
            let f = self.features(&z, scale);
            gram += f.transpose() * &f;
            feature_sum += &f;
            if let Some(bar) = &self.progress {
                bar.inc(1);
                bar.set_message(format!("step {step}"));
            }
        }
        let cross = multiply_resident(self.context.gpu, &feature_sum, true, self.data, false)?;
        let m = (settings.copies * n) as f64;
        self.flops += m * (2.0 * (d * w) as f64 + 2.0 * ((w + 1) * (w + 1)) as f64)
            + 2.0 * (n * (w + 1) * d) as f64;
        let readout = ridge_solve(gram, &cross, settings.ridge)?;
        if let Some(folder) = &self.export {
            write_f32(folder, &format!("readout-{step}.npy"), &readout)?;
        }
        GpuMat::upload(self.context.gpu, "polynomial read-out", &readout)
    }
}

impl StepPredictor for PolynomialPredictor<'_, '_> {
    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat> {
        if self.fitted.as_ref().map(|(s, _)| *s) != Some(step) {
            let readout = self.fit(schedule, step)?;
            self.fitted = Some((step, readout));
        }
        let z = multiply_resident(self.context.gpu, x_t, false, self.projection, true)?;
        let f = self.features(&z, self.scale(schedule, step));
        let (_, readout) = self.fitted.as_ref().expect("fitted just above");
        let (b, d, w) = (x_t.nrows(), x_t.ncols(), self.projection.shape().0);
        self.flops += 2.0 * (b * d * w) as f64 + 2.0 * (b * (w + 1) * d) as f64;
        multiply_resident(self.context.gpu, &f, false, readout, false)
    }
}

/// `φ̃ = (1, φ(z))` for every row of the projections `z = R y`: `φ_j = (c·z_j)^k` for
/// [`FeatureMap::Polynomial`], and those divided by `max_i |φ_i|` (when it is positive) for
/// [`FeatureMap::MaxNormalized`]; the leading 1 is never normalised.
pub(crate) fn features(z: &Mat, scale: f64, degree: usize, map: FeatureMap) -> Mat {
    let k = degree as i32;
    let mut f = Mat::from_fn(z.nrows(), z.ncols() + 1, |i, j| {
        if j == 0 {
            1.0
        } else {
            (scale * z[(i, j - 1)]).powi(k)
        }
    });
    if map == FeatureMap::MaxNormalized {
        for i in 0..f.nrows() {
            let top = (1..f.ncols()).map(|j| f[(i, j)].abs()).fold(0.0, f64::max);
            if top > 0.0 {
                for j in 1..f.ncols() {
                    f[(i, j)] /= top;
                }
            }
        }
    }
    f
}

/// The Jacobi-scaled ridge read-out `A = (H + λ·diag H)⁻¹ B` (module docs) in f64 by
/// Cholesky, for the Gram matrix `H = Σ φ̃φ̃ᵀ` and the cross term `B = Σ φ̃ x₀ᵀ`.
pub(crate) fn ridge_solve(gram: Mat, cross: &Mat, ridge: f64) -> Result<Mat> {
    let mut regularised = gram;
    for j in 0..regularised.nrows() {
        let diag = regularised[(j, j)];
        // A feature that is 0 on every pair (an f32 underflow of a tiny power) gets a unit
        // diagonal, so its coefficient is 0 instead of the system being singular.
        regularised[(j, j)] = if diag > 0.0 {
            diag * (1.0 + ridge)
        } else {
            1.0
        };
    }
    linalg::spd_solve(&regularised, cross)
}

/// The mean squared norm `m₂ = (1/N) Σ_i ‖x_i‖²` of the rows of `images`.
pub(crate) fn mean_square_norm(images: &Mat) -> f64 {
    let (n, d) = (images.nrows(), images.ncols());
    (0..n)
        .map(|i| (0..d).map(|j| images[(i, j)].powi(2)).sum::<f64>())
        .sum::<f64>()
        / n as f64
}

/// The GPU buffers that draw one noise copy of a step's training inputs
/// `Y = α_ℓ X + σ_ℓ E` (N × d) with the `dense_gather` kernel (module docs: Philox stream
/// `TRAINING_NOISE_STREAM + ℓ`, the copy as the counter's high word).
pub(crate) struct TrainingNoise {
    /// The identity permutation `0..N` the gather kernel reads rows through.
    rows: wgpu::Buffer,
    /// The gather kernel's copy of the clean rows (written, unused).
    clean: wgpu::Buffer,
    /// One copy's noisy inputs Y (N × d).
    noisy: GpuMat,
}

impl TrainingNoise {
    /// Buffers for N images of d pixels; N·d must stay below 2³² (the gather kernel's u32
    /// indices), else a [`Error::GpuLimit`].
    pub(crate) fn new(gpu: &crate::gpu::Gpu, n: usize, d: usize) -> Result<Self> {
        if n.checked_mul(d).is_none_or(|e| e >= u32::MAX as usize) {
            return Err(Error::GpuLimit(format!(
                "polynomial training noise: N·d = {n}·{d} elements exceed the gather kernel's \
                 u32 indices"
            )));
        }
        let identity: Vec<u32> = (0..n as u32).collect();
        Ok(Self {
            rows: gpu.input("polynomial rows", &identity)?,
            clean: gpu.output("polynomial clean rows", n * d)?,
            noisy: GpuMat::poisoned(gpu, "polynomial noisy inputs", n, d)?,
        })
    }

    /// Draws copy `copy` of step ℓ's noisy inputs of the resident clean images `data` and
    /// returns them (resident, N × d).
    pub(crate) fn draw(
        &self,
        context: &Context,
        data: &GpuMat,
        schedule: &Schedule,
        step: usize,
        copy: usize,
    ) -> Result<&GpuMat> {
        let gpu = context.gpu;
        let seed = context.settings.seed;
        let (n, d) = self.noisy.shape();
        let groups = grid_for(
            ((n * d).div_ceil(4) as u32).div_ceil(WORKGROUP_SIZE),
            gpu.limits().max_compute_workgroups_per_dimension,
        );
        let stream = stream_of(step)?;
        let copy = u32::try_from(copy).map_err(|_| Error::InvalidArgument {
            what: "copies".into(),
            reason: format!("copy {copy} is past the u32 counter range"),
        })?;
        let params = GatherParams {
            rows: n as u32,
            dim: d as u32,
            start: 0,
            batch: copy,
            stream,
            seed_lo: seed as u32,
            seed_hi: (seed >> 32) as u32,
            grid_x: groups[0],
            alpha: schedule.alpha(step) as f32,
            sigma: schedule.sigma(step) as f32,
            ..GatherParams::default()
        };
        gather_noisy(
            gpu,
            &params,
            &self.rows,
            data.buffer(),
            &self.clean,
            self.noisy.buffer(),
            groups,
        )?;
        Ok(&self.noisy)
    }
}

/// The Philox stream of step ℓ's training noise, `TRAINING_NOISE_STREAM + ℓ`, or an error past
/// the u32 range.
fn stream_of(step: usize) -> Result<u32> {
    u32::try_from(step)
        .ok()
        .and_then(|l| TRAINING_NOISE_STREAM.checked_add(l))
        .ok_or_else(|| Error::InvalidArgument {
            what: "steps".into(),
            reason: format!("step {step} is past the last one with its own Philox stream"),
        })
}

/// The random projection R (w × d, Philox stream [`PROJECTION_STREAM`]).
pub fn projection(context: &Context) -> Mat {
    let settings = &context.settings;
    normals(
        PhiloxStream::new(settings.seed, PROJECTION_STREAM),
        settings.width,
        context.dim(),
    )
}

/// The random projection R (w × d, Philox stream [`PROJECTION_STREAM`]), resident.
pub fn upload_projection(context: &Context) -> Result<GpuMat> {
    GpuMat::upload(context.gpu, "random projection", &projection(context))
}

/// One (map, degree) model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelResult {
    /// The feature map.
    pub map: FeatureMap,
    /// Degree k.
    pub degree: usize,
    /// Whether the model is a polynomial in y (Thm 5 applies).
    pub is_polynomial: bool,
    /// Samples whose trajectory escaped (left ±10³ or became non-finite).
    pub escaped: usize,
    /// Memorization statistics of the samples that did not escape (`None` if all escaped).
    pub memorization: Option<MemorizationSummary>,
    /// Fit-and-sample wall time and FLOP rate.
    pub timing: Timing,
}

/// `metrics.json` of `exp polynomial`.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Random-feature width w.
    pub width: usize,
    /// Training pairs per step, M = copies·N.
    pub pairs_per_step: usize,
    /// Every model.
    pub models: Vec<ModelResult>,
    /// What the max-normalised rows are.
    pub note: String,
}

/// Runs Fig. 7 (both feature maps) into `folder` (progress bars when `show_progress`; every
/// model under `folder/models/` with [`super::Settings::export_models`]); returns the metrics
/// and every model's samples.
pub fn run(
    context: &Context,
    folder: &RunFolder,
    show_progress: bool,
) -> Result<(Metrics, Vec<ModelSamples>)> {
    let settings = &context.settings;
    let schedule = paper_schedule(settings.steps)?;
    let gpu = context.gpu;
    let d = context.dim();
    let data = GpuMat::upload(gpu, "images", &context.data.images)?;
    let projection_host = projection(context);
    let projection = GpuMat::upload(gpu, "random projection", &projection_host)?;
    let models_folder = models_folder(settings.export_models, folder, &schedule)?;
    if let Some(models) = &models_folder {
        write_f32(models, "projection.npy", &projection_host)?;
    }
    drop(projection_host);
    let mut exported = Vec::new();
    let mut results = Vec::new();
    let mut all = Vec::new();
    let maps = [FeatureMap::Polynomial, FeatureMap::MaxNormalized];
    let sweep: Vec<String> = maps
        .iter()
        .flat_map(|map| settings.degrees.iter().map(move |&k| label(*map, k)))
        .collect();
    let mut position = 0;
    for map in maps {
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
            let mut predictor = PolynomialPredictor::new(
                context,
                &context.data.images,
                &data,
                &projection,
                k,
                map,
            )?
            .with_progress(bar.clone());
            if let Some(models) = &models_folder {
                let name = format!("{}-k{k}", map.name());
                let model_folder = models.child(&name)?;
                write_vector(&model_folder, "scale.npy", &predictor.scales(&schedule))?;
                predictor = predictor.exporting_to(model_folder);
                exported.push((name, k, map == FeatureMap::MaxNormalized));
            }
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
        // Fig. 7's last row: the nearest training image of each sample of the highest degree.
        let mut figure: Vec<ModelSamples> = rows.clone();
        if let Some(last) = rows.last() {
            figure.extend(nearest_row(context, last)?);
        }
        if figure.is_empty() {
            continue;
        }
        folder.write_figure(
            &format!("fig7_{}", map.name().replace('-', "_")),
            &format!("Fig. 7: polynomial denoisers on the {} map", map.name()),
            context,
            &figure.iter().collect::<Vec<_>>(),
        )?;
        all.extend(rows);
    }
    if let Some(models) = &models_folder {
        models.write_text(
            "README.md",
            &polynomial_readme(d, settings.width, &exported, settings.steps),
        )?;
    }
    let metrics = Metrics {
        width: settings.width,
        pairs_per_step: settings.copies * settings.n,
        models: results,
        note: "max-normalized rows divide each sample's features by their largest magnitude \
               (the published code): a degree-0 homogeneous map, not a polynomial, so the \
               moment theorem (Levine–Weiss Thm 5) does not apply to them"
            .into(),
    };
    if let Some(shard) = settings.sweep_shard {
        let results = metrics
            .models
            .iter()
            .map(|m| Ok((label(m.map, m.degree), super::to_value(m)?)))
            .collect::<Result<Vec<_>>>()?;
        let run = serde_json::json!({
            "width": metrics.width,
            "pairs_per_step": metrics.pairs_per_step,
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

/// The figure row under `last`: the nearest training image (Euclidean) of each of its first
/// `columns` samples, an escaped sample's cell left 0 (`None` with fewer than 2 images).
pub(crate) fn nearest_row(context: &Context, last: &ModelSamples) -> Result<Option<ModelSamples>> {
    if context.data.images.nrows() < 2 {
        return Ok(None);
    }
    let d = context.dim();
    let columns = context.settings.columns.min(last.samples.nrows());
    let head = Mat::from_fn(columns, d, |i, j| last.samples[(i, j)]);
    let nearest = crate::stats::nearest::nearest_two_batch(&context.data.images, &head)?;
    // An escaped sample (shown as 0) has no meaningful neighbour: its cell stays 0.
    Ok(Some(ModelSamples {
        label: format!("nearest training image to {}", last.label),
        samples: Mat::from_fn(columns, d, |i, j| {
            if last.escaped[i] {
                0.0
            } else {
                context.data.images[(nearest[i].first, j)]
            }
        }),
        escaped: last.escaped[..columns].to_vec(),
    }))
}

/// The sweep label of the feature map at degree k (`polynomial k=9`).
fn label(map: FeatureMap, k: usize) -> String {
    format!("{} k={k}", map.name())
}

/// The metrics of a merged (map, degree) sweep ([`super::sweep::merge`]): the run's width,
/// pairs per step and note, and every model's result in the sweep's order.
pub fn merged_metrics(merged: &Merged) -> serde_json::Value {
    let mut metrics = merged.run.clone();
    let models: Vec<&serde_json::Value> = merged.results.iter().map(|(_, r)| r).collect();
    metrics["models"] = serde_json::json!(models);
    metrics
}

/// Levine–Weiss Fig. 7 (random-feature polynomial denoisers), or Fig. 8 ([`patch`]) when
/// [`super::Settings::patch_polynomial`] is set.
pub struct Polynomial;

/// Levine–Weiss Fig. 8 (the patch polynomial denoiser) as an experiment of its own, so that
/// `exp all` runs it: [`patch::run`] with [`super::Settings::patch_polynomial`], or the
/// defaults of the run's scale when unset (`exp polynomial --patch` runs the same).
pub struct PolynomialPatch;

impl super::ImageExperiment for PolynomialPatch {
    fn name(&self) -> &'static str {
        "polynomial-patch"
    }

    fn about(&self) -> &'static str {
        "Levine–Weiss Fig. 8: the random-feature polynomial read-out on image patches whose side shrinks with the noise (the same as exp polynomial --patch)."
    }

    fn run(
        &self,
        context: &Context,
        folder: &RunFolder,
        _earlier: &[ModelSamples],
        show_progress: bool,
    ) -> Result<super::Outcome> {
        let (metrics, samples) = patch::run(context, folder, show_progress)?;
        Ok(super::Outcome {
            flops: metrics.models.iter().map(|m| m.timing.flops).sum(),
            metrics: super::to_value(&metrics)?,
            samples,
        })
    }
}

impl super::ImageExperiment for Polynomial {
    fn name(&self) -> &'static str {
        "polynomial"
    }

    fn about(&self) -> &'static str {
        "Levine–Weiss Fig. 7: random-feature polynomials of degree 3, 9, 27 (and the max-normalised variant of the published code); with --patch, Fig. 8: the same read-out on image patches that shrink with the noise."
    }

    fn run(
        &self,
        context: &Context,
        folder: &RunFolder,
        _earlier: &[ModelSamples],
        show_progress: bool,
    ) -> Result<super::Outcome> {
        if context.settings.patch_polynomial.is_some() {
            let (metrics, samples) = patch::run(context, folder, show_progress)?;
            return Ok(super::Outcome {
                flops: metrics.models.iter().map(|m| m.timing.flops).sum(),
                metrics: super::to_value(&metrics)?,
                samples,
            });
        }
        let (metrics, samples) = run(context, folder, show_progress)?;
        Ok(super::Outcome {
            flops: metrics.models.iter().map(|m| m.timing.flops).sum(),
            metrics: super::to_value(&metrics)?,
            samples,
        })
    }
}
