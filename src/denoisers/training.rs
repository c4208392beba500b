//! Training bottleneck denoisers on the GPU ([`crate::gpu::mlp::GpuTrainer`]) on the denoising
//! loss `E_{x, σ, g}‖f(x + σg, σ) − x‖²`, σ drawn uniformly from the sampler's noise levels,
//! with Adam, seeds, JSON checkpoints (architecture + weights + Adam state + step) that a resumed
//! run continues from, and a progress bar showing the loss.
//!
//! Batch k is a pure function of `(seed, k)`: its draws come from Philox stream `(seed, k)`, so
//! a run resumed from a checkpoint at step s sees exactly the batches s+1, s+2, … of an
//! uninterrupted run.

use super::bottleneck::{
    sigma_feature, Activation, Architecture, BottleneckNet, PerStep, SigmaInput,
};
use crate::error::{Error, Result};
use crate::gpu::adam::AdamConfig;
use crate::gpu::dense::DenseParams;
use crate::gpu::mlp::{Batch, GpuTrainer, MlpLayer, OptimizerState};
use crate::gpu::Gpu;
use crate::linalg::Mat;
use crate::rng::Rng;
use crate::targets::Target;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Settings of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Rows per batch.
    pub batch: usize,
    /// Total Adam steps (a resumed run stops here too).
    pub steps: u64,
    /// Steps recorded into one GPU submission (also the checkpoint and progress granularity).
    pub chunk: usize,
    /// Adam hyper-parameters.
    pub adam: AdamConfig,
    /// Seed of the data stream.
    pub seed: u64,
    /// The noise levels σ are drawn from (uniformly over the list).
    pub sigmas: Vec<f64>,
    /// Per-σ weight of the loss.
    pub weighting: LossWeighting,
}

/// The weight `w(σ)` of a noise level in the loss `E w(σ)‖f(x + σg, σ) − x‖²`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LossWeighting {
    /// `w = 1`: the plain x₀ loss (dominated by large σ, where its minimum ≈ Var x).
    Uniform,
    /// `w = (σ² + σ_d²)/(σ σ_d)²` (Karras et al. 2022): the reciprocal of the per-coordinate MSE
    /// of the optimal denoiser for data of variance σ_d², so every level contributes O(1).
    Edm {
        /// σ_d, the data's standard deviation per coordinate.
        sigma_data: f64,
    },
}

impl LossWeighting {
    /// `w(σ)`.
    pub fn weight(self, sigma: f64) -> f64 {
        match self {
            Self::Uniform => 1.0,
            Self::Edm { sigma_data } => {
                (sigma * sigma + sigma_data * sigma_data) / (sigma * sigma_data).powi(2)
            }
        }
    }
}

impl TrainConfig {
    /// Refuses empty or invalid settings, naming the value.
    pub fn validate(&self) -> Result<()> {
        self.adam.validate()?;
        if self.batch == 0 || self.chunk == 0 || self.sigmas.is_empty() {
            return Err(Error::InvalidArgument {
                what: "training config".into(),
                reason: format!(
                    "need batch ≥ 1, chunk ≥ 1 and at least one σ, got batch {}, chunk {}, {} σ",
                    self.batch,
                    self.chunk,
                    self.sigmas.len()
                ),
            });
        }
        for &s in &self.sigmas {
            crate::error::ensure_sigma(s)?;
        }
        if let LossWeighting::Edm { sigma_data } = self.weighting {
            crate::error::ensure_positive_finite("sigma_data", sigma_data)?;
        }
        Ok(())
    }
}

/// What a checkpoint file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The network's shape.
    pub architecture: Architecture,
    /// The run's settings.
    pub config: TrainConfig,
    /// Weights, Adam moments and step.
    pub state: OptimizerState,
    /// Loss of every step taken so far.
    pub losses: Vec<f64>,
}

impl Checkpoint {
    /// Reads a checkpoint written by [`train`].
    pub fn load(path: &Path) -> Result<Self> {
        crate::io::read_json(path)
    }

    /// Writes it atomically (to `<path>.tmp`, then renamed; [`crate::io::write_json`]).
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_json(path, self)
    }

    /// The network with the checkpoint's weights.
    pub fn network(&self) -> Result<BottleneckNet> {
        BottleneckNet::from_parameters(self.architecture.clone(), &self.state.theta)
    }
}

/// The layers of `net` as the GPU trainer takes them: matrices, biases, activations, and which
/// layers read the noise-level feature `s = ln σ` ([`sigma_feature`]) as their last input. Its
/// flat parameter layout is [`BottleneckNet::parameters`]'s.
pub fn gpu_layers(net: &BottleneckNet) -> Vec<MlpLayer> {
    let arch = net.architecture();
    net.layers()
        .iter()
        .enumerate()
        .map(|(l, layer)| MlpLayer {
            weight: layer.weight.clone(),
            bias: layer.bias.clone(),
            activation: arch.activation(l),
            sigma: arch.takes_sigma(l),
        })
        .collect()
}

/// The dense trainer's network `x̂ = W₂·φ(W₁·y + b₁) + b₂` ([`crate::gpu::dense`]) as a
/// [`BottleneckNet`] (encoder = the hidden layer with φ, linear decoder, σ-blind), to denoise or
/// sample with on the CPU.
pub fn dense_network(params: &DenseParams, activation: Activation) -> Result<BottleneckNet> {
    let (h, d) = (params.w1.nrows(), params.w1.ncols());
    let arch = Architecture {
        dim: d,
        encoder: vec![],
        bottleneck: h,
        decoder: vec![],
        hidden: activation,
        code: activation,
        output: Activation::Identity,
        sigma: SigmaInput::None,
    };
    let mut theta = Vec::with_capacity(arch.parameter_count());
    for (w, b) in [(&params.w1, &params.b1), (&params.w2, &params.b2)] {
        for i in 0..w.nrows() {
            theta.extend((0..w.ncols()).map(|j| w[(i, j)]));
        }
        theta.extend(b);
    }
    BottleneckNet::from_parameters(arch, &theta)
}

/// Batch k of a run: `rows` draws x from `target` and σ from the config's levels, `y = x + σg`,
/// all from Philox stream `(seed, k)`, the feature `ln σ` per row, weighted by the config's
/// `w(σ)`.
pub fn batch(target: &dyn Target, config: &TrainConfig, k: u64) -> Batch {
    let (sigmas, rows) = (&config.sigmas, config.batch);
    let mut rng = Rng::new(config.seed, k as u32);
    let x = target.sample(&mut rng, rows);
    let sigma: Vec<f64> = (0..rows)
        .map(|_| sigmas[((rng.uniform() * sigmas.len() as f64) as usize).min(sigmas.len() - 1)])
        .collect();
    let y = Mat::from_fn(rows, x.ncols(), |i, j| x[(i, j)] + sigma[i] * rng.normal());
    let weight = sigma.iter().map(|&s| config.weighting.weight(s)).collect();
    Batch {
        y,
        feature: sigma.iter().map(|&s| sigma_feature(s)).collect(),
        x,
        weight,
    }
}

/// Options of [`train`] that do not change the result.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Where to write the checkpoint after every chunk (and to resume from, if it exists).
    pub checkpoint: Option<PathBuf>,
    /// Show a progress bar with the loss on stderr.
    pub progress: bool,
}

/// Trains `init` (or, when `options.checkpoint` names an existing file, the checkpoint's state,
/// which must have the same architecture and config up to `steps`) up to `config.steps` Adam steps on the
/// GPU. Returns the final checkpoint (network weights, Adam state, every step's loss). A
/// non-finite loss stops the run with [`Error::Numerical`] naming the step and the learning
/// rate; the checkpoint file then holds the last chunk whose losses were all finite.
pub fn train(
    gpu: &Gpu,
    init: &BottleneckNet,
    target: &dyn Target,
    config: &TrainConfig,
    options: &RunOptions,
) -> Result<Checkpoint> {
    config.validate()?;
    if target.dim() != init.architecture().dim {
        return Err(Error::DimensionMismatch {
            what: "target dimension vs network".into(),
            expected: init.architecture().dim,
            got: target.dim(),
        });
    }
    let mut trainer = GpuTrainer::new(gpu, &gpu_layers(init), config.batch, config.adam)?;
    let mut losses = vec![];
    if let Some(path) = options.checkpoint.as_ref().filter(|p| p.exists()) {
        let ck = Checkpoint::load(path)?;
        // A resumed run may extend `steps`; everything else must match.
        let same_run = TrainConfig {
            steps: config.steps,
            ..ck.config.clone()
        } == *config;
        if &ck.architecture != init.architecture() || !same_run {
            return Err(Error::InvalidArgument {
                what: format!("checkpoint {}", path.display()).into(),
                reason: "was written for a different architecture or training config".into(),
            });
        }
        trainer.set_state(&ck.state)?;
        losses = ck.losses;
    }
    let start = trainer.state()?.step;
    let bar = options.progress.then(|| {
        let bar = indicatif::ProgressBar::new(config.steps);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:40}] {pos}/{len} steps  loss {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_position(start);
        bar
    });
    let mut step = start;
    while step < config.steps {
        let n = (config.steps - step).min(config.chunk as u64);
        let batches: Vec<Batch> = (step + 1..=step + n)
            .map(|k| batch(target, config, k))
            .collect();
        let chunk_losses = trainer.train(&batches)?;
        if let Some(k) = chunk_losses.iter().position(|l| !l.is_finite()) {
            return Err(Error::Numerical(format!(
                "training diverged: the loss of step {} is {} with Adam learning rate {} — \
                 lower the learning rate (the last finite state is step {step}{})",
                step + 1 + k as u64,
                chunk_losses[k],
                config.adam.lr,
                if options.checkpoint.is_some() {
                    ", kept in the checkpoint"
                } else {
                    ""
                }
            )));
        }
        step += n;
        if let Some(bar) = &bar {
            let mean = chunk_losses.iter().sum::<f64>() / chunk_losses.len() as f64;
            bar.set_message(format!("{mean:.5}"));
            bar.set_position(step);
        }
        losses.extend(chunk_losses);
        if let Some(path) = &options.checkpoint {
            Checkpoint {
                architecture: init.architecture().clone(),
                config: config.clone(),
                state: trainer.state()?,
                losses: losses.clone(),
            }
            .save(path)?;
        }
    }
    if let Some(bar) = bar {
        bar.finish();
    }
    Ok(Checkpoint {
        architecture: init.architecture().clone(),
        config: config.clone(),
        state: trainer.state()?,
        losses,
    })
}

/// The paper's form (a): one σ-blind network per noise level, network ℓ trained on σ_ℓ only
/// (config's `sigmas` is the list of levels; each run uses seed `seed + ℓ`; no checkpoints).
/// Returns the per-step denoiser and every network's per-step losses.
pub fn train_per_step(
    gpu: &Gpu,
    init: &[BottleneckNet],
    target: &dyn Target,
    config: &TrainConfig,
    progress: bool,
) -> Result<(PerStep, Vec<Vec<f64>>)> {
    config.validate()?;
    if init.len() != config.sigmas.len() {
        return Err(Error::DimensionMismatch {
            what: "per-step initial networks".into(),
            expected: config.sigmas.len(),
            got: init.len(),
        });
    }
    let mut nets = Vec::with_capacity(init.len());
    let mut losses = Vec::with_capacity(init.len());
    for (l, (net, &s)) in init.iter().zip(&config.sigmas).enumerate() {
        if net.architecture().sigma != SigmaInput::None {
            return Err(Error::InvalidArgument {
                what: format!("per-step network {l}").into(),
                reason: "must be σ-blind (SigmaInput::None)".into(),
            });
        }
        let cfg = TrainConfig {
            sigmas: vec![s],
            seed: config.seed + l as u64,
            ..config.clone()
        };
        let options = RunOptions {
            checkpoint: None,
            progress,
        };
        let ck = train(gpu, net, target, &cfg, &options)?;
        nets.push(ck.network()?);
        losses.push(ck.losses);
    }
    Ok((PerStep::new(config.sigmas.clone(), nets)?, losses))
}
