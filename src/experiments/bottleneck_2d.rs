//! Levine–Weiss Fig. 4: train the 2-D bottleneck network `2 → 64 → h → 64 → 2` (σ entering
//! the encoder) on the three-component GMM on the GPU, sample with DDIM, and measure
//!
//! * the local-PCA intrinsic dimension of the samples (k = 20 neighbours, explained-variance
//!   threshold τ = 0.95; [`crate::stats::intrinsic_dimension`]), against the target's;
//! * a two-sample test of `P_gen = P_target`: Kolmogorov–Smirnov on F = 16 projections
//!   (angles kπ/16), each at α/F, with the distribution-free DKW bound
//!   `ε = ε_n(α/2F) + ε_m(α/2F)` — under `P_gen = P_target` the test rejects with probability
//!   ≤ α = 10⁻⁶ (union bound over directions). The statistic reported is `max_dir D/ε`:
//!   > 1 rejects, and larger means a stronger rejection;
//! * every sample's distance to the last step's decoder curve (h = 1).
//!
//! for h = 1 and h = 2, and writes the scatter plot (target, h = 1, h = 2 side by side) as a PNG.
//! With `per_step` the paper's own form is trained instead: 50 σ-blind networks, one per step.

use crate::denoisers::bottleneck::{Architecture, BottleneckNet, SigmaInput};
use crate::denoisers::training::{train, train_per_step, LossWeighting, RunOptions, TrainConfig};
use crate::denoisers::Denoiser;
use crate::diffusion::{Ddim, Sampler, Schedule};
use crate::error::{Error, Result};
use crate::experiments::memory;
use crate::gpu::adam::AdamConfig;
use crate::gpu::Gpu;
use crate::io::plot::{scatter_panels_png, Labels, View};
use crate::linalg::{self, Mat};
use crate::rng::Rng;
use crate::stats::intrinsic_dimension::{local_pca, LocalPca};
use crate::stats::two_sample::{ks_two_sample, two_sample_epsilon};
use crate::targets::Target;
use crate::theorems::bottleneck_manifold::DecoderCurve;
use crate::theorems::linear_gaussian::fig2_pair;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Settings of the experiment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Adam steps per network.
    pub steps: u64,
    /// Adam steps between checkpoints (also the steps recorded into one GPU submission); a
    /// resumed run must use the value the checkpoint was written with.
    pub checkpoint_every: usize,
    /// Generated (and fresh target) samples.
    pub samples: usize,
    /// Seed of training data, initial weights and sampling noise.
    pub seed: u64,
    /// Output folder (PNG, JSON, checkpoints).
    pub out: PathBuf,
    /// Show progress bars.
    pub progress: bool,
    /// Weight the loss by EDM's `w(σ) = (σ² + σ_d²)/(σσ_d)²` with `σ_d² = tr Cov(x)/2`
    /// (otherwise the plain unweighted x₀ loss).
    pub edm: bool,
    /// The paper's own form: one σ-blind network per sampling step, each trained `steps` steps
    /// on its own σ (no checkpoints); otherwise one network with ln σ into the encoder.
    pub per_step: bool,
}

/// Results for one bottleneck width.
#[derive(Debug, Clone, Serialize)]
pub struct WidthResult {
    /// h.
    pub h: usize,
    /// Mean training loss over the last 5% of steps (averaged over the per-step networks).
    pub final_loss: f64,
    /// Training wall-clock seconds (GPU).
    pub train_seconds: f64,
    /// Local PCA of the generated samples.
    pub intrinsic_dimension: LocalPca,
    /// `max_dir D/ε` of the projected KS test (> 1 rejects at α = 1e-6).
    pub ks_ratio: f64,
    /// Largest sample distance to the last step's decoder curve (h = 1 only).
    pub max_curve_distance: Option<f64>,
}

/// The whole experiment's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Adapter used for training.
    pub adapter: String,
    /// Local PCA of fresh target samples (reference).
    pub target_intrinsic_dimension: LocalPca,
    /// KS ratio of two independent target samples (should be < 1).
    pub target_vs_target_ks_ratio: f64,
    /// Per width.
    pub widths: Vec<WidthResult>,
    /// Error rate α of the two-sample test.
    pub alpha: f64,
    /// The PNG written.
    pub png: String,
}

/// Directions of the projected KS test.
pub const DIRECTIONS: usize = 16;
/// False-rejection probability of the two-sample test.
pub const ALPHA: f64 = 1e-6;

/// `max_dir D/ε` of the projected two-sample KS test of `a` vs `b` (module doc).
pub(crate) fn projected_ks_ratio(a: &Mat, b: &Mat) -> Result<f64> {
    let eps = two_sample_epsilon(a.nrows(), b.nrows(), ALPHA / DIRECTIONS as f64)?;
    let mut worst: f64 = 0.0;
    for k in 0..DIRECTIONS {
        let t = std::f64::consts::PI * k as f64 / DIRECTIONS as f64;
        let proj = |m: &Mat| -> Vec<f64> {
            (0..m.nrows())
                .map(|i| t.cos() * m[(i, 0)] + t.sin() * m[(i, 1)])
                .collect()
        };
        worst = worst.max(ks_two_sample(&proj(a), &proj(b))? / eps);
    }
    Ok(worst)
}

/// The VE exponential schedule of the experiment: `t_ℓ = 0.05(e^{0.12ℓ} − 1)`, L = 50
/// (σ from 0.0064 to 20).
pub fn schedule() -> Result<Schedule> {
    Schedule::ve_exponential(0.05, 0.12, 50)
}

/// Runs the experiment (module doc) and writes `bottleneck_2d.png` and `bottleneck_2d.json`
/// into `settings.out`.
pub fn run(gpu: &Gpu, settings: &Settings) -> Result<Report> {
    if settings.samples < 100 || settings.steps == 0 || settings.checkpoint_every == 0 {
        return Err(Error::InvalidArgument {
            what: "samples, steps, checkpoint-every".into(),
            reason: format!(
                "need ≥ 100 samples, ≥ 1 step and ≥ 1 step between checkpoints, got {}, {} and {}",
                settings.samples, settings.steps, settings.checkpoint_every
            ),
        });
    }
    // fresh target samples, the noise and a generated set per width, samples×2 f64 each
    memory::ensure_fits(
        &format!("exp bottleneck-2d with {} samples", settings.samples),
        memory::bytes(&[settings.samples, 2, 8, 4]),
        memory::limit(None)?,
    )?;
    std::fs::create_dir_all(&settings.out).map_err(|e| Error::io(&settings.out, e))?;
    // held until the run returns: a second run on the same folder is refused
    let _lock = crate::io::FolderLock::acquire(&settings.out)?;
    let (target, _) = fig2_pair()?;
    let schedule = schedule()?;
    let sigmas: Vec<f64> = (1..=schedule.steps())
        .map(|l| schedule.denoiser_noise(l))
        .collect();
    let mut rng = Rng::new(settings.seed, 1);
    let reference = target.sample(&mut rng, settings.samples);
    let fresh = target.sample(&mut Rng::new(settings.seed, 2), settings.samples);
    let noise = Mat::from_fn(settings.samples, 2, |_, _| rng.normal());
    let stride = (settings.samples / 250).max(1);
    let cov = target.covariance();
    let weighting = if settings.edm {
        LossWeighting::Edm {
            sigma_data: ((cov[(0, 0)] + cov[(1, 1)]) / 2.0).sqrt(),
        }
    } else {
        LossWeighting::Uniform
    };
    let mut widths = vec![];
    let mut generated = vec![];
    for h in [1usize, 2] {
        let config = TrainConfig {
            batch: 512,
            steps: settings.steps,
            chunk: settings.checkpoint_every,
            adam: AdamConfig::default(),
            seed: settings.seed + h as u64,
            sigmas: sigmas.clone(),
            weighting,
        };
        let start = std::time::Instant::now();
        let mut init_rng = Rng::new(settings.seed, 10 + h as u32);
        let (denoiser, last, losses): (Box<dyn Denoiser>, BottleneckNet, Vec<Vec<f64>>) =
            if settings.per_step {
                let init: Vec<BottleneckNet> = sigmas
                    .iter()
                    .map(|_| {
                        BottleneckNet::random(
                            Architecture::paper_2d(h, 64, SigmaInput::None),
                            &mut init_rng,
                        )
                    })
                    .collect::<Result<_>>()?;
                let (per_step, losses) =
                    train_per_step(gpu, &init, &target, &config, settings.progress)?;
                let last = per_step.net_for(sigmas[0])?.clone();
                (Box::new(per_step), last, losses)
            } else {
                let arch = Architecture::paper_2d(h, 64, SigmaInput::Encoder);
                let init = BottleneckNet::random(arch, &mut init_rng)?;
                let options = RunOptions {
                    checkpoint: Some(settings.out.join(format!("bottleneck_2d_h{h}.ckpt.json"))),
                    progress: settings.progress,
                };
                let ck = train(gpu, &init, &target, &config, &options)?;
                let net = ck.network()?;
                (Box::new(net.clone()), net, vec![ck.losses])
            };
        let train_seconds = start.elapsed().as_secs_f64();
        let samples = Ddim {
            schedule: schedule.clone(),
        }
        .sample(denoiser.as_ref(), &noise)?;
        // mean over networks of the mean loss over each one's last 5% of steps
        let final_loss = losses
            .iter()
            .map(|l| {
                let tail = (l.len() / 20).max(1);
                l[l.len() - tail..].iter().sum::<f64>() / tail as f64
            })
            .sum::<f64>()
            / losses.len() as f64;
        let max_curve_distance = if h == 1 {
            let mut worst: f64 = 0.0;
            let curve = DecoderCurve::new(&last, sigmas[0], 50.0, 4001)?;
            for p in (0..samples.nrows()).step_by(stride) {
                let x = linalg::row(&samples, p);
                let (upper, _) = curve.distance(&x)?;
                worst = worst.max(upper);
            }
            Some(worst)
        } else {
            None
        };
        widths.push(WidthResult {
            h,
            final_loss,
            train_seconds,
            intrinsic_dimension: local_pca(&samples, 20, stride, 0.95)?,
            ks_ratio: projected_ks_ratio(&samples, &reference)?,
            max_curve_distance,
        });
        generated.push(samples);
    }
    let png = settings.out.join("bottleneck_2d.png");
    write_scatter_png(
        &png,
        &[&reference, &generated[0], &generated[1]],
        &[
            "target (two moons)",
            "DDIM, code width h = 1",
            "DDIM, code width h = 2",
        ],
    )?;
    let report = Report {
        adapter: gpu.backend_name(),
        target_intrinsic_dimension: local_pca(&reference, 20, stride, 0.95)?,
        target_vs_target_ks_ratio: projected_ks_ratio(&fresh, &reference)?,
        widths,
        alpha: ALPHA,
        png: png.display().to_string(),
    };
    let json_path = settings.out.join("bottleneck_2d.json");
    crate::io::write_json(&json_path, &report)?;
    Ok(report)
}

/// Writes point clouds as side-by-side 400×400 panels (target grey, then red, blue), sharing
/// one view: the bounding box of all points plus 5%; each panel titled by `names`, the axes
/// x₁ and x₂.
pub(crate) fn write_scatter_png(path: &Path, panels: &[&Mat], names: &[&str]) -> Result<()> {
    let colours = [[90u8, 90, 90], [200, 30, 30], [30, 60, 200]];
    let coloured: Vec<(&Mat, [u8; 3])> = panels
        .iter()
        .enumerate()
        .map(|(k, m)| (*m, colours[k % colours.len()]))
        .collect();
    let labels = Labels {
        title: "Bottleneck denoisers: DDIM samples against the target".into(),
        x_axis: "x1".into(),
        y_axis: "x2".into(),
        columns: names.iter().map(|n| n.to_string()).collect(),
        ..Labels::default()
    };
    scatter_panels_png(path, &coloured, View::covering(panels), 400, &labels)
}
