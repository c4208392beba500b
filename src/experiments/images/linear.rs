//! `exp linear` — Levine–Weiss Fig. 5 and Fig. 6: linear x₀-predictors of rank K.
//!
//! The optimal linear denoiser of rank K for the training images (Thm 4 with the PCA of the
//! centred data, `Σ = (1/N)Σ_i (x_i − μ)(x_i − μ)ᵀ = Σ_i λ_i u_i u_iᵀ`) predicts, at step ℓ of the
//! VP process `x_t = α x₀ + σ ε`,
//!
//! `x̂₀(x_t) = μ + Σ_{i ≤ K} (α λ_i/(α² λ_i + σ²)) u_i u_iᵀ (x_t − α μ)`,
//!
//! Wiener shrinkage in the K leading principal directions. "Full" is every direction with
//! λ_i > 0 (at most N − 1 of them). Fig. 5: the samples of K = 10, 100 and full from the same
//! noise. Fig. 6: the full model's own samples (N of them, from other noise) are a new training
//! set with the same mean and covariance in the limit of many DDIM steps (Thm 3); a linear model
//! refitted on them regenerates nearly the same images from the same noise — the per-sample
//! cosine similarity measures how nearly.

use super::export::{linear_readme, models_folder, write_f32, write_vector};
use super::{
    ddim_with_progress, multiply_resident, normals, paper_schedule, progress_bar, Context,
    ModelSamples, RunFolder, StepPredictor, Timing,
};
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::gemm::GpuMat;
use crate::gpu::Gpu;
use crate::linalg::{self, Mat, EPS};
use crate::rng::PhiloxStream;
use crate::stats::nearest::{cosine_similarity, median};
use serde::Serialize;
use std::time::Instant;

/// The PCA of a set of images: mean, principal directions (columns, orthonormal) and the
/// eigenvalues of the (1/N) covariance, descending, all strictly positive.
#[derive(Debug, Clone)]
pub struct Pca {
    /// μ.
    pub mean: Vec<f64>,
    /// U: d × r.
    pub basis: Mat,
    /// λ_1 ≥ … ≥ λ_r > 0.
    pub eigenvalues: Vec<f64>,
}

impl Pca {
    /// Through the N×N Gram matrix `G = X_c X_cᵀ/N` (N ≪ d): `G v = λ v` gives
    /// `u = X_cᵀ v/√(Nλ)`. Eigenvalues below `λ_max·N·ε·8` (the rounding level of the Gram
    /// matrix) count as 0. N = 1 gives rank 0.
    pub fn fit(images: &Mat) -> Result<Self> {
        let (n, d) = (images.nrows(), images.ncols());
        if n == 0 {
            return Err(Error::InvalidArgument {
                what: "images".into(),
                reason: "the PCA needs at least one image, got 0".into(),
            });
        }
        linalg::ensure_finite_mat("images", images)?;
        let mean: Vec<f64> = (0..d)
            .map(|j| (0..n).map(|i| images[(i, j)]).sum::<f64>() / n as f64)
            .collect();
        let centred = Mat::from_fn(n, d, |i, j| images[(i, j)] - mean[j]);
        let gram = (&centred * centred.transpose()) * faer::Scale(1.0 / n as f64);
        let (values, vectors) = linalg::sym_eigen(&gram)?;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let top = values[order[0]].max(0.0);
        let floor = top * n as f64 * EPS * 8.0;
        let kept: Vec<usize> = order
            .into_iter()
            .filter(|&i| values[i] > floor && values[i] > 0.0)
            .collect();
        let v = Mat::from_fn(n, kept.len(), |i, c| vectors[(i, kept[c])]);
        let mut basis = centred.transpose() * &v;
        for (c, &i) in kept.iter().enumerate() {
            let norm = (n as f64 * values[i]).sqrt();
            for r in 0..d {
                basis[(r, c)] /= norm;
            }
        }
        Ok(Self {
            mean,
            basis,
            eigenvalues: kept.iter().map(|&i| values[i]).collect(),
        })
    }

    /// The number of principal directions.
    pub fn rank(&self) -> usize {
        self.eigenvalues.len()
    }

    /// Writes `mean.npy` (d, f64), `basis.npy` (d×K, f32: the values the GPU multiplies with)
    /// and `eigenvalues.npy` (K, f64) into `folder` (layout in [`super::export`]).
    pub fn export(&self, folder: &RunFolder) -> Result<()> {
        write_vector(folder, "mean.npy", &self.mean)?;
        write_f32(folder, "basis.npy", &self.basis)?;
        write_vector(folder, "eigenvalues.npy", &self.eigenvalues)
    }

    /// The K leading directions (all of them when K ≥ rank or K is `None`).
    pub fn truncated(&self, k: Option<usize>) -> Self {
        let k = k.unwrap_or(self.rank()).min(self.rank());
        Self {
            mean: self.mean.clone(),
            basis: Mat::from_fn(self.basis.nrows(), k, |i, j| self.basis[(i, j)]),
            eigenvalues: self.eigenvalues[..k].to_vec(),
        }
    }
}

/// The rank-K Wiener x₀-predictor of a [`Pca`], its basis resident on the GPU.
pub struct LinearPredictor<'g> {
    gpu: &'g Gpu,
    pca: Pca,
    basis: Option<GpuMat>,
}

impl<'g> LinearPredictor<'g> {
    /// Uploads the basis.
    pub fn new(gpu: &'g Gpu, pca: Pca) -> Result<Self> {
        let basis = (pca.rank() > 0)
            .then(|| GpuMat::upload(gpu, "pca basis", &pca.basis))
            .transpose()?;
        Ok(Self { gpu, pca, basis })
    }

    /// FLOPs of one prediction for `rows` inputs: two products `(B×d)(d×K)` and `(B×K)(K×d)`.
    pub fn flops(&self, rows: usize) -> f64 {
        4.0 * rows as f64 * self.pca.basis.nrows() as f64 * self.pca.rank() as f64
    }
}

impl StepPredictor for LinearPredictor<'_> {
    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat> {
        let (alpha, sigma) = (schedule.alpha(step), schedule.sigma(step));
        let mean = &self.pca.mean;
        let Some(basis) = &self.basis else {
            return Ok(Mat::from_fn(x_t.nrows(), x_t.ncols(), |_, j| mean[j]));
        };
        let centred = Mat::from_fn(x_t.nrows(), x_t.ncols(), |i, j| {
            x_t[(i, j)] - alpha * mean[j]
        });
        let coefficients = multiply_resident(self.gpu, &centred, false, basis, false)?;
        let shrunk = Mat::from_fn(coefficients.nrows(), coefficients.ncols(), |i, c| {
            let l = self.pca.eigenvalues[c];
            coefficients[(i, c)] * alpha * l / (alpha * alpha * l + sigma * sigma)
        });
        let back = multiply_resident(self.gpu, &shrunk, false, basis, true)?;
        Ok(Mat::from_fn(back.nrows(), back.ncols(), |i, j| {
            back[(i, j)] + mean[j]
        }))
    }
}

/// One row of Fig. 5.
#[derive(Debug, Clone, Serialize)]
pub struct RankResult {
    /// The requested K (`None` = full).
    pub requested: Option<usize>,
    /// The rank used (≤ the data's rank).
    pub rank: usize,
    /// Fraction of the total variance kept, `Σ_{i≤K} λ_i / Σ_i λ_i`.
    pub variance_kept: f64,
}

/// Fig. 6: the refitted model against the original on the same noise.
#[derive(Debug, Clone, Serialize)]
pub struct RefitResult {
    /// Size of the generated training set.
    pub generated: usize,
    /// Rank of the refitted PCA.
    pub refit_rank: usize,
    /// `‖μ' − μ‖/‖μ‖`.
    pub mean_relative_change: f64,
    /// `|Σλ' − Σλ|/Σλ`, the relative change of the total variance.
    pub total_variance_relative_change: f64,
    /// Per-sample cosine similarity between the two models' samples: mean, median, minimum.
    pub cosine_mean: f64,
    /// Median of the same.
    pub cosine_median: f64,
    /// Minimum of the same.
    pub cosine_min: f64,
    /// The same for the centred samples `x − μ` (the part the models must agree on).
    pub centred_cosine_mean: f64,
}

/// `metrics.json` of `exp linear`.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Rank of the data's PCA (≤ N − 1).
    pub data_rank: usize,
    /// Fig. 5 rows.
    pub ranks: Vec<RankResult>,
    /// Fig. 6.
    pub refit: RefitResult,
    /// Wall times and FLOP rates.
    pub timings: Vec<Timing>,
}

/// Philox stream of the noise that generates the refit's training set.
pub const REFIT_STREAM: u32 = 200;

/// Runs Fig. 5 and Fig. 6 into `folder` (progress bars when `show_progress`; every model under
/// `folder/models/` with [`super::Settings::export_models`]); returns the metrics and every
/// model's samples.
pub fn run(
    context: &Context,
    folder: &RunFolder,
    show_progress: bool,
) -> Result<(Metrics, Vec<ModelSamples>)> {
    let settings = &context.settings;
    let schedule = paper_schedule(settings.linear_steps)?;
    let models_folder = models_folder(settings.export_models, folder, &schedule)?;
    let mut exported = Vec::new();
    let mut timings = Vec::new();
    let start = Instant::now();
    let images = &context.data.images;
    let bar = progress_bar(1, "linear PCA", show_progress);
    let pca = Pca::fit(images)?;
    bar.finish_and_clear();
    let (n, d) = (images.nrows() as f64, images.ncols() as f64);
    timings.push(Timing::since(
        "pca",
        start,
        2.0 * n * n * d + 2.0 * n * n * d,
    ));
    let total: f64 = pca.eigenvalues.iter().sum();
    let mut ranks = Vec::new();
    let mut models = Vec::new();
    for &k in &settings.ranks {
        let start = Instant::now();
        let mut predictor = LinearPredictor::new(context.gpu, pca.truncated(k))?;
        let label = k.map_or("full".to_string(), |k| k.to_string());
        let sampled = ddim_with_progress(
            &schedule,
            &mut predictor,
            &context.noise,
            &format!("linear K={label} DDIM"),
            show_progress,
        )?;
        let flops = predictor.flops(sampled.samples.nrows()) * schedule.steps() as f64;
        let rank = predictor.pca.rank();
        if let Some(models) = &models_folder {
            let name = format!("K{label}");
            predictor.pca.export(&models.child(&name)?)?;
            exported.push((name, rank));
        }
        timings.push(Timing::since(&format!("sample K={label}"), start, flops));
        ranks.push(RankResult {
            requested: k,
            rank,
            variance_kept: if total > 0.0 {
                predictor.pca.eigenvalues.iter().sum::<f64>() / total
            } else {
                1.0
            },
        });
        models.push(ModelSamples::new(&format!("linear K={label}"), sampled));
    }
    folder.write_figure(
        "fig5_linear_ranks",
        "Fig. 5: DDIM with the optimal rank-K linear denoiser",
        context,
        &models.iter().collect::<Vec<_>>(),
    )?;

    let start = Instant::now();
    let mut full = LinearPredictor::new(context.gpu, pca.clone())?;
    let generated_noise = normals(
        PhiloxStream::new(settings.seed, REFIT_STREAM),
        images.nrows(),
        images.ncols(),
    );
    let sample = |predictor: &mut LinearPredictor, noise: &Mat, label: &str| {
        ddim_with_progress(&schedule, predictor, noise, label, show_progress)
            .map(|sampled| sampled.samples)
    };
    let generated = sample(&mut full, &generated_noise, "linear refit: generate N")?;
    let refit_pca = Pca::fit(&generated)?;
    let original = sample(&mut full, &context.noise, "linear refit: original")?;
    let mut refit = LinearPredictor::new(context.gpu, refit_pca.clone())?;
    let regenerated = sample(&mut refit, &context.noise, "linear refit: regenerate")?;
    if let Some(models) = &models_folder {
        refit_pca.export(&models.child("refit")?)?;
        exported.push(("refit".into(), refit_pca.rank()));
        models.write_text("README.md", &linear_readme(images.ncols(), &exported))?;
    }
    timings.push(Timing::since(
        "refit (generate N, PCA, regenerate)",
        start,
        full.flops(images.nrows() + original.nrows()) * schedule.steps() as f64
            + refit.flops(original.nrows()) * schedule.steps() as f64,
    ));
    let cosines: Vec<f64> = (0..original.nrows())
        .map(|i| cosine_similarity(&linalg::row(&original, i), &linalg::row(&regenerated, i)))
        .collect();
    let centred = |m: &Mat, i: usize| -> Vec<f64> {
        (0..m.ncols()).map(|j| m[(i, j)] - pca.mean[j]).collect()
    };
    let centred_cosines: Vec<f64> = (0..original.nrows())
        .map(|i| cosine_similarity(&centred(&original, i), &centred(&regenerated, i)))
        .collect();
    let mean_norm = linalg::dot(&pca.mean, &pca.mean).sqrt();
    let mean_change = pca
        .mean
        .iter()
        .zip(&refit_pca.mean)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f64>()
        .sqrt();
    let refit_total: f64 = refit_pca.eigenvalues.iter().sum();
    let refit_result = RefitResult {
        generated: generated.nrows(),
        refit_rank: refit_pca.rank(),
        mean_relative_change: if mean_norm > 0.0 {
            mean_change / mean_norm
        } else {
            mean_change
        },
        total_variance_relative_change: if total > 0.0 {
            (refit_total - total).abs() / total
        } else {
            refit_total
        },
        cosine_mean: cosines.iter().sum::<f64>() / cosines.len() as f64,
        cosine_median: median(&cosines),
        cosine_min: cosines.iter().copied().fold(f64::INFINITY, f64::min),
        centred_cosine_mean: centred_cosines.iter().sum::<f64>() / centred_cosines.len() as f64,
    };
    folder.write_figure(
        "fig6_linear_refit",
        "Fig. 6: the linear denoiser fitted on the data and on its own samples",
        context,
        &[
            &ModelSamples {
                label: "linear full, fitted on the data".into(),
                escaped: vec![false; original.nrows()],
                samples: original,
            },
            &ModelSamples {
                label: "linear full, refitted on its own samples".into(),
                escaped: vec![false; regenerated.nrows()],
                samples: regenerated,
            },
        ],
    )?;
    Ok((
        Metrics {
            data_rank: pca.rank(),
            ranks,
            refit: refit_result,
            timings,
        },
        models,
    ))
}

/// Levine–Weiss Fig. 5–6 (linear denoisers of rank K; refit on own samples).
pub struct Linear;

impl super::ImageExperiment for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn about(&self) -> &'static str {
        "Levine–Weiss Fig. 5–6: linear denoisers of rank K ∈ {10, 100, full}; refit on own samples."
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
            flops: metrics.timings.iter().map(|t| t.flops).sum(),
            metrics: super::to_value(&metrics)?,
            samples,
        })
    }
}
