//! `exp unet` — Levine–Weiss Fig. 1: five U-Net variants trained on the same images and sampled
//! from the same noise. From top to bottom, as in the figure:
//!
//! * `pool4` — 4 pooling layers (the paper: mostly memorizes);
//! * `pool3` — 3 pooling layers (the standard configuration);
//! * `pool2` — 2 pooling layers;
//! * `pool3-small` — 3 pooling layers with half the channels ("reduced channel capacity");
//! * `pool3-circular` — 3 pooling layers with circular padding.
//!
//! Every variant is a [`crate::gpu::unet`] network (conv → GroupNorm (2 groups) → σ embedding →
//! ReLU blocks, average pooling, bilinear upsampling, skip connections by concatenation, zero
//! padding unless stated) with level widths `c·min(2^l, 4)` for the base width
//! `c = Settings::unet.channels` (`c/2` for `pool3-small`). The paper does not give its widths,
//! epochs or optimiser settings; these are ours, in `config.json`.
//!
//! **Training.** One σ-conditioned network per variant, trained for `unet.epochs` epochs with
//! Adam: epoch e draws `y = x + σε` at the variance-exploding level of DDIM step
//! `ℓ = (e mod L) + 1` of the paper's schedule, `σ = σ_ℓ/α_ℓ` (so `x_t/α_ℓ = x₀ + σε`), and
//! the network predicts x₀. A checkpoint of the trainer (weights, Adam's moments, epoch count,
//! the losses so far) is written every tenth of the epochs, so an interrupted run resumes bit
//! for bit; a rerun with more epochs (and otherwise the same settings) continues training from
//! it, and one with other settings starts afresh.
//!
//! **Sampling.** DDIM from the shared initial noise with `x̂₀(x_t) = f(x_t/α_ℓ, σ_ℓ/α_ℓ)`,
//! checkpointed after every step like the other experiments. Per variant: the memorization
//! ratio (book eq. 3.3.5) and the nearest-image cosines (eq. 3.3.6) of its samples.

use super::{
    ddim_checkpointed, paper_schedule, Context, ModelSamples, RunFolder, StepPredictor, Timing,
};
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::adam::AdamConfig;
use crate::gpu::conv::Padding;
use crate::gpu::unet::{UNetConfig, UNetState, UNetTrainer, Upsampling};
use crate::linalg::Mat;
use crate::stats::nearest::{summarize, MemorizationSummary};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The settings of `exp unet` (in [`super::Settings::unet`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNetSettings {
    /// The base width c: level l has `c·min(2^l, 4)` channels (a multiple of 4, so that the
    /// small variant's `c/2` splits into GroupNorm's 2 groups).
    pub channels: usize,
    /// Training epochs of each variant (σ cycling through the DDIM steps).
    pub epochs: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Frequencies F of the σ embedding.
    pub frequencies: usize,
}

impl Default for UNetSettings {
    /// Paper scale (ours: the paper gives no widths or epochs): c = 32, 1000 epochs, lr 10⁻³,
    /// F = 8.
    fn default() -> Self {
        Self {
            channels: 32,
            epochs: 1000,
            learning_rate: 1e-3,
            frequencies: 8,
        }
    }
}

impl UNetSettings {
    /// `--quick`: c = 4, 6 epochs, F = 4 (seconds on a software adapter; the samples are not
    /// faces, only the pipeline end to end).
    pub fn quick() -> Self {
        Self {
            channels: 4,
            epochs: 6,
            learning_rate: 1e-3,
            frequencies: 4,
        }
    }

    /// Refuses a base width that is not a positive multiple of 4 and zero epochs or
    /// frequencies, naming the value.
    pub fn validate(&self) -> Result<()> {
        if self.channels == 0 || !self.channels.is_multiple_of(4) {
            return Err(Error::InvalidArgument {
                what: "unet.channels".into(),
                reason: format!("must be a positive multiple of 4, got {}", self.channels),
            });
        }
        for (what, v) in [
            ("unet.epochs", self.epochs),
            ("unet.frequencies", self.frequencies),
        ] {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    what: what.into(),
                    reason: "must be ≥ 1, got 0".into(),
                });
            }
        }
        crate::error::ensure_positive_finite("unet.learning_rate", self.learning_rate)
    }
}

/// One variant of Fig. 1.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// Its label (`pool3-circular`, …).
    pub label: String,
    /// Pooling layers D.
    pub depth: usize,
    /// Base width.
    pub channels: usize,
    /// Padding of every convolution.
    pub padding: Padding,
}

/// The five variants of Fig. 1 in the figure's order (module doc).
pub fn variants(settings: &UNetSettings) -> Vec<Variant> {
    let c = settings.channels;
    let variant = |label: &str, depth, channels, padding| Variant {
        label: label.into(),
        depth,
        channels,
        padding,
    };
    vec![
        variant("pool4", 4, c, Padding::Zero),
        variant("pool3", 3, c, Padding::Zero),
        variant("pool2", 2, c, Padding::Zero),
        variant("pool3-small", 3, c / 2, Padding::Zero),
        variant("pool3-circular", 3, c, Padding::Circular),
    ]
}

impl Variant {
    /// The trainer's configuration for this variant on the run's training images.
    pub fn config(&self, context: &Context) -> UNetConfig {
        self.config_for(context, context.data.images.nrows())
    }

    /// The trainer's configuration for this variant on `images` training images (the batch is
    /// at most `images`).
    pub fn config_for(&self, context: &Context, images: usize) -> UNetConfig {
        let settings = &context.settings;
        UNetConfig {
            image: context.data.shape,
            widths: (0..=self.depth)
                .map(|l| self.channels * (1 << l.min(2)))
                .collect(),
            groups: 2,
            frequencies: settings.unet.frequencies,
            kernel: 3,
            padding: self.padding,
            upsampling: Upsampling::Bilinear,
            batch: settings.batch.min(images),
            adam: AdamConfig {
                lr: settings.unet.learning_rate,
                ..AdamConfig::default()
            },
            seed: settings.seed
                ^ 0x0e7
                ^ ((self.depth as u64) << 8)
                ^ ((self.channels as u64) << 16)
                ^ (u64::from(self.padding == Padding::Circular) << 32),
        }
    }
}

/// A training checkpoint: what it was trained under, the trainer's state, every epoch's loss so
/// far and the training time.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainingCheckpoint {
    /// [`training_key`] of the run that wrote it: a checkpoint of other settings is not resumed.
    key: String,
    state: UNetState,
    losses: Vec<f64>,
    seconds: f64,
}

/// Everything a variant's training depends on besides its epoch count (which a rerun may raise
/// to continue training): the U-Net settings, the seed, N, the batch and the DDIM steps (which
/// set the σ cycle).
fn training_key(context: &Context) -> String {
    let s = &context.settings;
    let unet = UNetSettings {
        epochs: 0,
        ..s.unet.clone()
    };
    format!(
        "{unet:?} seed {} n {} batch {} steps {}",
        s.seed,
        context.data.images.nrows(),
        s.batch,
        s.steps
    )
}

/// The VE noise level `σ_ℓ/α_ℓ` that epoch `epoch` trains at (module doc).
pub fn epoch_sigma(schedule: &Schedule, epoch: u64) -> f64 {
    let step = (epoch % schedule.steps() as u64) as usize + 1;
    schedule.sigma(step) / schedule.alpha(step)
}

/// Trains (or resumes training) one variant, its checkpoint `checkpoint-unet-<label>.json` in
/// `folder`; returns the trainer, the losses and the training time (seconds of every run, the
/// checkpoint's included). Crate-visible so that `exp els` compares the same networks (its
/// checkpoints in the run's `unet/` folder).
pub(crate) fn train<'g>(
    context: &Context<'g>,
    variant: &Variant,
    folder: &RunFolder,
    schedule: &Schedule,
    bar: &indicatif::ProgressBar,
) -> Result<(UNetTrainer<'g>, Vec<f64>, f64)> {
    train_on(
        context,
        &context.data.images,
        variant,
        Some(folder),
        schedule,
        bar,
    )
}

/// Trains one variant on `images` (N × d) for `unet.epochs` epochs (module doc), resuming from
/// and writing `checkpoint-unet-<label>.json` in `checkpoint` when given.
fn train_on<'g>(
    context: &Context<'g>,
    images: &Mat,
    variant: &Variant,
    checkpoint: Option<&RunFolder>,
    schedule: &Schedule,
    bar: &indicatif::ProgressBar,
) -> Result<(UNetTrainer<'g>, Vec<f64>, f64)> {
    let settings = &context.settings;
    let epochs = settings.unet.epochs;
    let mut trainer = UNetTrainer::new(
        context.gpu,
        images,
        variant.config_for(context, images.nrows()),
    )?;
    let name = format!("checkpoint-unet-{}.json", variant.label);
    let (mut losses, mut seconds) = (Vec::new(), 0.0);
    let key = training_key(context);
    if let Some(folder) = checkpoint {
        let path = folder.path(&name);
        if path.exists() {
            let saved: TrainingCheckpoint = crate::io::read_json(&path)?;
            if saved.key == key
                && saved.state.epoch as usize <= epochs
                && trainer.set_state(&saved.state).is_ok()
            {
                losses = saved.losses;
                seconds = saved.seconds;
                bar.inc(saved.state.epoch);
            }
        }
    }
    let every = (epochs / 10).max(1);
    while (trainer.epochs_done() as usize) < epochs {
        let start = Instant::now();
        let todo = every.min(epochs - trainer.epochs_done() as usize);
        for _ in 0..todo {
            let sigma = epoch_sigma(schedule, trainer.epochs_done());
            let loss = trainer.train_epochs(sigma, 1, &mut |_, _| {})?[0];
            if !loss.is_finite() {
                return Err(Error::Numerical(format!(
                    "training U-Net {} diverged at epoch {} (σ = {sigma}, loss {loss}): lower \
                     unet.learning_rate",
                    variant.label,
                    trainer.epochs_done()
                )));
            }
            losses.push(loss);
            bar.inc(1);
            bar.set_message(format!("{} σ {sigma:.3} loss {loss:.4}", variant.label));
        }
        seconds += start.elapsed().as_secs_f64();
        if let Some(folder) = checkpoint {
            folder.write_json(
                &name,
                &TrainingCheckpoint {
                    key: key.clone(),
                    state: trainer.state()?,
                    losses: losses.clone(),
                    seconds,
                },
            )?;
        }
    }
    Ok((trainer, losses, seconds))
}

/// `exp generalization`'s U-Net: the standard variant (`pool3`, [`variants`]) trained on
/// `training` (no checkpoint, like the sweep's other fits) and sampled by DDIM from the shared
/// noise (progress bar `label` counting DDIM steps when `show`); returns the samples and the
/// training FLOPs.
pub(crate) fn sample_trained(
    context: &Context,
    training: &Mat,
    label: &str,
    show: bool,
) -> Result<(super::Sampled, f64)> {
    let settings = &context.settings;
    settings.unet.validate()?;
    let schedule = paper_schedule(settings.steps)?;
    let variant = variants(&settings.unet)
        .into_iter()
        .find(|v| v.label == "pool3")
        .ok_or_else(|| Error::Numerical("the standard U-Net variant pool3 is missing".into()))?;
    let hidden = indicatif::ProgressBar::hidden();
    let (trainer, _, _) = train_on(context, training, &variant, None, &schedule, &hidden)?;
    let flops = trainer.flops_per_epoch() * settings.unet.epochs as f64;
    let mut predictor = UNetPredictor { trainer: &trainer };
    let sampled =
        super::ddim_with_progress(&schedule, &mut predictor, &context.noise, label, show)?;
    Ok((sampled, flops))
}

/// `x̂₀(x_t) = f(x_t/α_ℓ, σ_ℓ/α_ℓ)` with a trained U-Net.
struct UNetPredictor<'t, 'g> {
    trainer: &'t UNetTrainer<'g>,
}

impl StepPredictor for UNetPredictor<'_, '_> {
    fn predict(&mut self, schedule: &Schedule, step: usize, x_t: &Mat) -> Result<Mat> {
        let alpha = schedule.alpha(step);
        let y = Mat::from_fn(x_t.nrows(), x_t.ncols(), |i, j| x_t[(i, j)] / alpha);
        self.trainer.predict(&y, schedule.sigma(step) / alpha)
    }
}

/// One variant's results.
#[derive(Debug, Clone, Serialize)]
pub struct VariantResult {
    /// The variant.
    pub variant: Variant,
    /// Its level widths.
    pub widths: Vec<usize>,
    /// Trainable parameters.
    pub parameters: usize,
    /// The mean training loss `‖x̂₀ − x₀‖²` per image of the last L epochs (one per DDIM step's
    /// σ).
    pub final_loss: f64,
    /// Samples that escaped.
    pub escaped: usize,
    /// Memorization statistics of the finite samples (eq. 3.3.5's ratio, eq. 3.3.6's cosines).
    pub memorization: Option<MemorizationSummary>,
    /// Training: wall time, FLOPs counted by the trainer, achieved rate.
    pub training: Timing,
}

/// `metrics.json` of `exp unet`.
#[derive(Debug, Clone, Serialize)]
pub struct Metrics {
    /// Every variant, in the figure's order.
    pub variants: Vec<VariantResult>,
    /// Total training FLOPs.
    pub total_training_flops: f64,
}

/// Runs Fig. 1 into `folder`.
pub fn run(
    context: &Context,
    folder: &RunFolder,
    show_progress: bool,
) -> Result<(Metrics, Vec<ModelSamples>)> {
    let settings = &context.settings;
    settings.unet.validate()?;
    let schedule = paper_schedule(settings.steps)?;
    let mut results = Vec::new();
    let mut models = Vec::new();
    for variant in variants(&settings.unet) {
        let bar = super::progress_bar(
            settings.unet.epochs as u64,
            &format!("unet {} epochs", variant.label),
            show_progress,
        );
        let (trainer, losses, seconds) = train(context, &variant, folder, &schedule, &bar)?;
        bar.finish_and_clear();
        let flops = trainer.flops_per_epoch() * settings.unet.epochs as f64;
        let mut predictor = UNetPredictor { trainer: &trainer };
        // keyed by the epochs too: a rerun that trains further samples afresh
        let checkpoint = folder.path(&format!(
            "checkpoint-sampling-{}-{}epochs",
            variant.label, settings.unet.epochs
        ));
        let sampled =
            ddim_checkpointed(&schedule, &mut predictor, &context.noise, Some(&checkpoint))?;
        let model = ModelSamples::new(&format!("U-Net {}", variant.label), sampled);
        let finite = model.finite_rows();
        let tail = losses.len().min(settings.steps).max(1);
        let config = trainer.config().clone();
        results.push(VariantResult {
            widths: config.widths.clone(),
            parameters: config.tensor_lengths().iter().sum(),
            final_loss: losses[losses.len().saturating_sub(tail)..]
                .iter()
                .sum::<f64>()
                / tail as f64,
            escaped: model.escaped_count(),
            memorization: if finite.nrows() > 0 {
                Some(summarize(&context.data.images, &finite)?.0)
            } else {
                None
            },
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
            variant,
        });
        models.push(model);
    }
    folder.write_figure(
        "fig1_unet",
        "Fig. 1: U-Net variants from the same noise (Levine-Weiss)",
        context,
        &models.iter().collect::<Vec<_>>(),
    )?;
    let metrics = Metrics {
        total_training_flops: results.iter().map(|r| r.training.flops).sum(),
        variants: results,
    };
    Ok((metrics, models))
}

/// Levine–Weiss Fig. 1 (U-Net variants).
pub struct UNet;

impl super::ImageExperiment for UNet {
    fn name(&self) -> &'static str {
        "unet"
    }

    fn about(&self) -> &'static str {
        "Levine–Weiss Fig. 1: five U-Nets (4, 3, 2 pooling layers; small channels; circular padding) trained on the GPU on the same images, sampled from the same noise; MemRatio and nearest-image cosines per variant; checkpointed (a rerun with the same --out resumes)."
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
