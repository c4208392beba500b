//! `exp bottleneck` — Levine–Weiss §3.3, Fig. 9: one σ-blind MLP per DDIM step,
//! `x̂₀ = W₂ φ(W₁ x_t + b₁) + b₂` with hidden width h ∈ {1000, 500, 100} (a bottleneck when
//! h < d, Thm 6: the Jacobian has rank ≤ h), each trained for the paper's 500 epochs with Adam
//! (lr 10⁻⁴) on `x_t = α_ℓ x₀ + σ_ℓ ε` with fresh noise every epoch, on the GPU
//! ([`crate::gpu::dense::DenseTrainer`]: GEMM forward and backward with fused epilogues).
//!
//! Models are trained lazily, step ℓ = L … 1, each used at once to advance the samples and
//! then dropped, so one model is in memory at a time; the samples are checkpointed after every
//! step (`ddim_checkpointed`), so an interrupted run resumes at the step it was in.
//!
//! The widths are a sweep ([`super::sweep`], labels `h=<h>`): with `--shard i/n` a run trains
//! only its widths (and draws Fig. 9 for them) and writes their results as JSON lines that
//! `merge` joins into the whole sweep's metrics ([`merged_metrics`]).

use super::export::{bottleneck_readme, models_folder, write_dense};
use super::sweep::{keeps, write_shard, Merged};
use super::{
    ddim_checkpointed, paper_schedule, Context, ModelSamples, RunFolder, StepPredictor, StepRecord,
    Timing,
};
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::adam::AdamConfig;
use crate::gpu::dense::{DenseConfig, DenseTrainer};
use crate::gpu::gemm::GpuMat;
use crate::linalg::Mat;
use crate::numerics::activation::Activation;
use crate::stats::nearest::{summarize, MemorizationSummary};
use serde::Serialize;
use std::time::Instant;

/// The per-step MLP predictor: trains step ℓ's network when first asked for step ℓ.
pub struct BottleneckPredictor<'c, 'g> {
    context: &'c Context<'g>,
    data: GpuMat,
    hidden: usize,
    progress: Option<indicatif::ProgressBar>,
    export: Option<RunFolder>,
    /// Final-epoch training loss of each step's network, by step.
    pub losses: Vec<(usize, f64)>,
    train_flops: f64,
    predict_flops: f64,
    /// Seconds spent training.
    pub train_seconds: f64,
    /// The record of the last step trained.
    last: Option<StepRecord>,
}

impl<'c, 'g> BottleneckPredictor<'c, 'g> {
    /// A predictor of hidden width `hidden` trained on `training` (N × d), with an optional
    /// progress bar counting epochs.
    pub fn new(
        context: &'c Context<'g>,
        training: &Mat,
        hidden: usize,
        progress: Option<indicatif::ProgressBar>,
    ) -> Result<Self> {
        Ok(Self {
            context,
            data: GpuMat::upload(context.gpu, "training images", training)?,
            hidden,
            progress,
            export: None,
            losses: Vec::new(),
            last: None,
            train_flops: 0.0,
            predict_flops: 0.0,
            train_seconds: 0.0,
        })
    }

    /// Writes each step's trained network into `folder/step-<ℓ>/` (see
    /// `export::write_dense`) before it is used.
    pub fn exporting_to(mut self, folder: RunFolder) -> Self {
        self.export = Some(folder);
        self
    }

    /// FLOPs of training and prediction so far.
    pub fn flops(&self) -> f64 {
        self.train_flops + self.predict_flops
    }
}

impl StepPredictor for BottleneckPredictor<'_, '_> {
    fn last_step_record(&self) -> Option<StepRecord> {
        self.last
    }

    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat> {
        let settings = &self.context.settings;
        let gpu = self.context.gpu;
        let start = Instant::now();
        let mut trainer = DenseTrainer::new(
            gpu,
            &self.data,
            DenseConfig {
                hidden: self.hidden,
                activation: Activation::Relu,
                // A training set smaller than one batch (generalization at N = 1, 10) is one
                // full batch.
                batch: settings.batch.min(self.data.shape().0),
                adam: AdamConfig {
                    lr: settings.learning_rate,
                    ..AdamConfig::default()
                },
                seed: settings.seed ^ ((step as u64) << 32) ^ self.hidden as u64,
            },
        )?;
        let bar = self.progress.clone();
        let losses = trainer.train_epochs(
            schedule.alpha(step),
            schedule.sigma(step),
            settings.epochs,
            &mut |_, loss| {
                if let Some(bar) = &bar {
                    bar.inc(1);
                    bar.set_message(format!("step {step} loss {loss:.4}"));
                }
            },
        )?;
        let flops = trainer.flops_per_epoch() * settings.epochs as f64;
        let seconds = start.elapsed().as_secs_f64();
        self.train_flops += flops;
        self.train_seconds += seconds;
        let loss = losses.last().copied().unwrap_or(f64::NAN);
        if !loss.is_finite() {
            return Err(Error::Numerical(format!(
                "training the h = {} network of step {step} diverged (final loss {loss}) with \
                 learning rate {}: lower learning_rate",
                self.hidden, settings.learning_rate
            )));
        }
        self.losses.push((step, loss));
        self.last = Some(StepRecord {
            step,
            loss,
            flops,
            seconds,
        });
        if let Some(folder) = &self.export {
            write_dense(
                &folder.child(&format!("step-{step}"))?,
                &trainer.parameters()?,
            )?;
        }
        let y = GpuMat::upload(gpu, "x_t", x_t)?;
        let out = GpuMat::poisoned(gpu, "x0 prediction", x_t.nrows(), x_t.ncols())?;
        trainer.predict(&y, &out)?;
        self.predict_flops += 4.0 * (x_t.nrows() * x_t.ncols() * self.hidden) as f64;
        out.download(gpu)
    }
}

/// One hidden width.
#[derive(Debug, Clone, Serialize)]
pub struct WidthResult {
    /// Hidden width h.
    pub hidden: usize,
    /// Final-epoch training loss (mean ‖x̂₀ − x₀‖² per image) of each step's network, by step.
    pub final_losses: Vec<(usize, f64)>,
    /// Samples that escaped.
    pub escaped: usize,
    /// Memorization statistics of the finite samples.
    pub memorization: Option<MemorizationSummary>,
    /// Training: wall time, FLOPs counted by the trainer, achieved rate.
    pub training: Timing,
}

/// `metrics.json` of `exp bottleneck`.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Every width.
    pub widths: Vec<WidthResult>,
    /// Total training FLOPs.
    pub total_training_flops: f64,
}

/// Runs Fig. 9 into `folder` (checkpoints under `folder/checkpoint-h<h>/`; every network under
/// `folder/models/h<h>/step-<ℓ>/` with [`super::Settings::export_models`]).
pub fn run(
    context: &Context,
    folder: &RunFolder,
    show_progress: bool,
) -> Result<(Metrics, Vec<ModelSamples>)> {
    let settings = &context.settings;
    let schedule = paper_schedule(settings.steps)?;
    let models_folder = models_folder(settings.export_models, folder, &schedule)?;
    if let Some(models) = &models_folder {
        models.write_text(
            "README.md",
            &bottleneck_readme(context.dim(), &settings.hidden, settings.steps),
        )?;
    }
    let mut widths = Vec::new();
    let mut models = Vec::new();
    let sweep: Vec<String> = settings.hidden.iter().map(|h| format!("h={h}")).collect();
    let kept: Vec<usize> = settings
        .hidden
        .iter()
        .enumerate()
        .filter(|&(position, _)| keeps(settings.sweep_shard, position))
        .map(|(_, &h)| h)
        .collect();
    for &h in &kept {
        let bar = super::progress_bar(
            (settings.steps * settings.epochs) as u64,
            &format!("bottleneck h={h} epochs"),
            show_progress,
        );
        let mut predictor =
            BottleneckPredictor::new(context, &context.data.images, h, Some(bar.clone()))?;
        if let Some(models) = &models_folder {
            predictor = predictor.exporting_to(models.child(&format!("h{h}"))?);
        }
        let checkpoint = folder.path(&format!("checkpoint-h{h}"));
        let sampled =
            ddim_checkpointed(&schedule, &mut predictor, &context.noise, Some(&checkpoint))?;
        bar.finish_and_clear();
        // every step's record, this process's and those of earlier runs kept in the checkpoint
        let records = sampled.records.clone();
        let model = ModelSamples::new(&format!("bottleneck h={h}"), sampled);
        let finite = model.finite_rows();
        let (flops, seconds): (f64, f64) = records
            .iter()
            .fold((0.0, 0.0), |(f, s), r| (f + r.flops, s + r.seconds));
        widths.push(WidthResult {
            hidden: h,
            final_losses: records.iter().map(|r| (r.step, r.loss)).collect(),
            escaped: model.escaped_count(),
            memorization: if finite.nrows() > 0 {
                Some(summarize(&context.data.images, &finite)?.0)
            } else {
                None
            },
            training: Timing {
                phase: format!(
                    "train h={h} ({} steps, {} of them trained by this run)",
                    records.len(),
                    predictor.losses.len()
                ),
                seconds,
                flops,
                tflops_per_second: if seconds > 0.0 {
                    flops / seconds / 1e12
                } else {
                    0.0
                },
            },
        });
        models.push(model);
    }
    folder.write_figure(
        "fig9_bottleneck",
        "Fig. 9: DDIM with bottleneck denoisers",
        context,
        &models.iter().collect::<Vec<_>>(),
    )?;
    let metrics = Metrics {
        total_training_flops: widths.iter().map(|w| w.training.flops).sum(),
        widths,
    };
    if let Some(shard) = settings.sweep_shard {
        let results = metrics
            .widths
            .iter()
            .map(|w| Ok((format!("h={}", w.hidden), super::to_value(w)?)))
            .collect::<Result<Vec<_>>>()?;
        let run = serde_json::json!({});
        write_shard(
            folder,
            "bottleneck",
            shard,
            (&sweep, settings.seed),
            &run,
            &results,
        )?;
    }
    Ok((metrics, models))
}

/// The metrics of a merged width sweep ([`super::sweep::merge`]): every width's result in the
/// sweep's order and the total training FLOPs over them. Errors: a result without its
/// training FLOPs.
pub fn merged_metrics(merged: &Merged) -> Result<serde_json::Value> {
    let mut total = 0.0;
    for (configuration, result) in &merged.results {
        total += result["training"]["flops"]
            .as_f64()
            .ok_or_else(|| Error::InvalidArgument {
                what: format!("bottleneck shard line {configuration}").into(),
                reason: "its result has no training FLOPs".into(),
            })?;
    }
    let widths: Vec<&serde_json::Value> = merged.results.iter().map(|(_, r)| r).collect();
    Ok(serde_json::json!({ "widths": widths, "total_training_flops": total }))
}

/// Levine–Weiss Fig. 9 (per-step bottleneck networks).
pub struct Bottleneck;

impl super::ImageExperiment for Bottleneck {
    fn name(&self) -> &'static str {
        "bottleneck"
    }

    fn about(&self) -> &'static str {
        "Levine–Weiss Fig. 9: per-step MLPs with h ∈ {1000, 500, 100}, trained on the GPU; checkpointed after every step (a rerun with the same --out resumes)."
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
            flops: metrics.total_training_flops,
            metrics: super::to_value(&metrics)?,
            samples,
        })
    }
}
