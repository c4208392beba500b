//! `exp memorization` — book §3.3: the memorization ratio (eq. 3.3.4 with the criterion
//! `d₁/d₂ < 1/3` of eq. 3.3.5) and the cosine similarity to the nearest training image, for every
//! architecture's samples and for the empirical optimal denoiser (eq. 3.3.3), the memorizing
//! baseline: with the VP process,
//!
//! `x̂₀(x_t) = Σ_i softmax_i(−‖x_t − α x_i‖²/(2σ²)) x_i`.
//!
//! Its logits are computed as `(2α x_t·x_i − α²‖x_i‖²)/(2σ²)` (the common `‖x_t‖²` cancels in the
//! softmax) from one f64 product per step, the softmax max-shifted.

use super::{ddim, paper_schedule, Context, ModelSamples, RunFolder, StepPredictor, Timing};
use crate::diffusion::Schedule;
use crate::error::Result;
use crate::linalg::{self, Mat};
use crate::stats::nearest::{nearest_two_batch, summarize, MemorizationSummary};
use serde::Serialize;
use std::time::Instant;

/// The empirical optimal x₀-predictor of a training set (eq. 3.3.3), in f64.
pub struct EmpiricalPredictor<'a> {
    training: &'a Mat,
    square_norms: Vec<f64>,
    /// FLOPs spent so far (`4·B·N·d` per prediction).
    pub flops: f64,
}

impl<'a> EmpiricalPredictor<'a> {
    /// The predictor of `training` (N × d).
    pub fn new(training: &'a Mat) -> Self {
        Self {
            square_norms: (0..training.nrows())
                .map(|i| {
                    (0..training.ncols())
                        .map(|j| training[(i, j)].powi(2))
                        .sum()
                })
                .collect(),
            training,
            flops: 0.0,
        }
    }
}

impl StepPredictor for EmpiricalPredictor<'_> {
    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat> {
        let (alpha, sigma) = (schedule.alpha(step), schedule.sigma(step));
        let inner = x_t * self.training.transpose();
        let mut weights = Mat::zeros(x_t.nrows(), self.training.nrows());
        for b in 0..x_t.nrows() {
            let logits: Vec<f64> = (0..self.training.nrows())
                .map(|i| {
                    (2.0 * alpha * inner[(b, i)] - alpha * alpha * self.square_norms[i])
                        / (2.0 * sigma * sigma)
                })
                .collect();
            for (i, w) in linalg::softmax(&logits).into_iter().enumerate() {
                weights[(b, i)] = w;
            }
        }
        let (b, n, d) = (x_t.nrows(), self.training.nrows(), self.training.ncols());
        self.flops += 4.0 * (b * n * d) as f64;
        Ok(&weights * self.training)
    }
}

/// The statistics of one architecture.
#[derive(Debug, Clone, Serialize)]
pub struct ArchitectureResult {
    /// The model.
    pub label: String,
    /// Samples whose trajectory escaped (excluded from the statistics).
    pub escaped: usize,
    /// Memorization ratio and cosine statistics (`None` when every sample escaped).
    pub summary: Option<MemorizationSummary>,
}

/// `metrics.json` of `exp memorization`.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Training-set size N.
    pub training_images: usize,
    /// Every architecture, the empirical optimal denoiser first.
    pub architectures: Vec<ArchitectureResult>,
    /// Sampling time of the empirical denoiser.
    pub timings: Vec<Timing>,
}

/// Samples the empirical optimal denoiser, then summarises it and every model in `models`.
pub fn run(context: &Context, folder: &RunFolder, models: &[ModelSamples]) -> Result<Metrics> {
    let training = &context.data.images;
    let schedule = paper_schedule(context.settings.steps)?;
    let start = Instant::now();
    let mut predictor = EmpiricalPredictor::new(training);
    let empirical = ModelSamples::new(
        "empirical optimal (eq. 3.3.3)",
        ddim(&schedule, &mut predictor, &context.noise)?,
    );
    let timings = vec![Timing::since(
        "empirical denoiser sampling",
        start,
        predictor.flops,
    )];
    let columns = context.settings.columns.min(empirical.samples.nrows());
    let head = Mat::from_fn(columns, training.ncols(), |i, j| empirical.samples[(i, j)]);
    let nearest = nearest_two_batch(training, &head)?;
    let nearest_images = ModelSamples {
        label: "nearest training image".into(),
        samples: Mat::from_fn(columns, training.ncols(), |i, j| {
            training[(nearest[i].first, j)]
        }),
        escaped: vec![false; columns],
    };
    folder.write_figure(
        "memorization_empirical",
        context,
        &[&empirical, &nearest_images],
    )?;
    let architectures = std::iter::once(&empirical)
        .chain(models)
        .map(|model| {
            let finite = model.finite_rows();
            Ok(ArchitectureResult {
                label: model.label.clone(),
                escaped: model.escaped_count(),
                summary: if finite.nrows() > 0 {
                    Some(summarize(training, &finite)?.0)
                } else {
                    None
                },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Metrics {
        training_images: training.nrows(),
        architectures,
        timings,
    })
}
