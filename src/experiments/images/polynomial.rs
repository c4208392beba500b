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
//! Numerics: the projections `Y Rᵀ` (the heavy part, `2·M·d·w` FLOPs per step) and
//! `B = (Σ_copies Φ̃)ᵀ X` run on the GPU (the clean images are the same in every copy, so the
//! cross term needs one product per step); `H` is accumulated in f64 on the CPU, because for
//! k = 27 its entries reach `|c R y|^{54}`, beyond f32's range; the solve is a Cholesky in f64.
//!
//! The published variant ([`FeatureMap::MaxNormalized`]) divides each sample's features by their
//! largest magnitude, `φ_j/max_i |φ_i|`; that map is homogeneous of degree 0 in y, not a
//! polynomial, so Thm 5 (dependence on the first 2k moments only) does not cover it — the
//! report says so.

use super::{
    ddim, multiply_resident, normals, paper_schedule, Context, ModelSamples, RunFolder,
    StepPredictor, Timing,
};
use crate::diffusion::Schedule;
use crate::error::Result;
use crate::gpu::gemm::GpuMat;
use crate::linalg::{self, Mat};
use crate::rng::PhiloxStream;
use crate::stats::nearest::{summarize, MemorizationSummary};
use serde::Serialize;
use std::time::Instant;

/// How the projected inputs become features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
/// First Philox stream of the training noise; step ℓ, copy c uses `base + ℓ·copies + c`.
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
    /// FLOPs spent so far (projections, Gram, cross term, predictions).
    pub flops: f64,
}

impl<'c, 'g> PolynomialPredictor<'c, 'g> {
    /// A predictor of degree k for the training `images` (also resident as `data`) and the
    /// resident projection.
    pub fn new(
        context: &'c Context<'g>,
        images: &'c Mat,
        data: &'c GpuMat,
        projection: &'c GpuMat,
        degree: usize,
        map: FeatureMap,
    ) -> Self {
        let x = images;
        let mean_square_norm = (0..x.nrows())
            .map(|i| (0..x.ncols()).map(|j| x[(i, j)].powi(2)).sum::<f64>())
            .sum::<f64>()
            / x.nrows() as f64;
        Self {
            context,
            images,
            data,
            projection,
            mean_square_norm,
            degree,
            map,
            fitted: None,
            flops: 0.0,
        }
    }

    /// `φ̃ = (1, φ(z))` for every row of the projections `z = R y`.
    fn features(&self, z: &Mat, scale: f64) -> Mat {
        let k = self.degree as i32;
        let mut f = Mat::from_fn(z.nrows(), z.ncols() + 1, |i, j| {
            if j == 0 {
                1.0
            } else {
                (scale * z[(i, j - 1)]).powi(k)
            }
        });
        if self.map == FeatureMap::MaxNormalized {
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

    fn scale(&self, schedule: &Schedule, step: usize) -> f64 {
        let (a, s) = (schedule.alpha(step), schedule.sigma(step));
        1.0 / (a * a * self.mean_square_norm + s * s * self.context.dim() as f64).sqrt()
    }

    /// Fits the read-out of step ℓ (see the module doc).
    fn fit(&mut self, schedule: &Schedule, step: usize) -> Result<GpuMat> {
        let settings = &self.context.settings;
        let x = self.images;
        let (n, d, w) = (x.nrows(), x.ncols(), self.projection.shape().0);
        let (alpha, sigma) = (schedule.alpha(step), schedule.sigma(step));
        let scale = self.scale(schedule, step);
        let mut gram = Mat::zeros(w + 1, w + 1);
        let mut feature_sum = Mat::zeros(n, w + 1);
        for copy in 0..settings.copies {
            let stream = TRAINING_NOISE_STREAM + (step * settings.copies + copy) as u32;
            let eps = normals(PhiloxStream::new(settings.seed, stream), n, d);
            let y = Mat::from_fn(n, d, |i, j| alpha * x[(i, j)] + sigma * eps[(i, j)]);
            let z = multiply_resident(self.context.gpu, &y, false, self.projection, true)?;
            let f = self.features(&z, scale);
            gram += f.transpose() * &f;
            feature_sum += &f;
        }
        let cross = multiply_resident(self.context.gpu, &feature_sum, true, self.data, false)?;
        let m = (settings.copies * n) as f64;
        self.flops += m * (2.0 * (d * w) as f64 + 2.0 * ((w + 1) * (w + 1)) as f64)
            + 2.0 * (n * (w + 1) * d) as f64;
        let mut regularised = gram;
        for j in 0..=w {
            let diag = regularised[(j, j)];
            // A feature that is 0 on every pair (an f32 underflow of a tiny power) gets a unit
            // diagonal, so its coefficient is 0 instead of the system being singular.
            regularised[(j, j)] = if diag > 0.0 {
                diag * (1.0 + settings.ridge)
            } else {
                1.0
            };
        }
        let readout = linalg::spd_solve(&regularised, &cross)?;
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

/// The random projection R (w × d, Philox stream [`PROJECTION_STREAM`]), resident.
pub fn upload_projection(context: &Context) -> Result<GpuMat> {
    let settings = &context.settings;
    GpuMat::upload(
        context.gpu,
        "random projection",
        &normals(
            PhiloxStream::new(settings.seed, PROJECTION_STREAM),
            settings.width,
            context.dim(),
        ),
    )
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

/// Runs Fig. 7 (both feature maps) into `folder`; returns the metrics and every model's samples.
pub fn run(context: &Context, folder: &RunFolder) -> Result<(Metrics, Vec<ModelSamples>)> {
    let settings = &context.settings;
    let schedule = paper_schedule(settings.steps)?;
    let gpu = context.gpu;
    let d = context.dim();
    let data = GpuMat::upload(gpu, "images", &context.data.images)?;
    let projection = upload_projection(context)?;
    let mut results = Vec::new();
    let mut all = Vec::new();
    for map in [FeatureMap::Polynomial, FeatureMap::MaxNormalized] {
        let mut rows = Vec::new();
        for &k in &settings.degrees {
            let start = Instant::now();
            let mut predictor =
                PolynomialPredictor::new(context, &context.data.images, &data, &projection, k, map);
            let sampled = ddim(&schedule, &mut predictor, &context.noise)?;
            let model = ModelSamples::new(&format!("{} k={k}", map.name()), sampled);
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
            if context.data.images.nrows() >= 2 {
                let columns = settings.columns.min(last.samples.nrows());
                let head = Mat::from_fn(columns, d, |i, j| last.samples[(i, j)]);
                let nearest =
                    crate::stats::nearest::nearest_two_batch(&context.data.images, &head)?;
                // An escaped sample (shown as 0) has no meaningful neighbour: its cell stays 0.
                figure.push(ModelSamples {
                    label: format!("nearest training image to {}", last.label),
                    samples: Mat::from_fn(columns, d, |i, j| {
                        if last.escaped[i] {
                            0.0
                        } else {
                            context.data.images[(nearest[i].first, j)]
                        }
                    }),
                    escaped: last.escaped[..columns].to_vec(),
                });
            }
        }
        folder.write_figure(
            &format!("fig7_{}", map.name().replace('-', "_")),
            context,
            &figure.iter().collect::<Vec<_>>(),
        )?;
        all.extend(rows);
    }
    Ok((
        Metrics {
            width: settings.width,
            pairs_per_step: settings.copies * settings.n,
            models: results,
            note: "max-normalized rows divide each sample's features by their largest magnitude \
                   (the published code): a degree-0 homogeneous map, not a polynomial, so the \
                   moment theorem (Levine–Weiss Thm 5) does not apply to them"
                .into(),
        },
        all,
    ))
}
