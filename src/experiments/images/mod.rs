//! Paper-scale image experiments (Levine–Weiss §3, Fig. 5–9 and App. B; Kadkhodaie et al.
//! Fig. 2; book §3.3): every architecture fitted to N images of 64×64×3 = 12288 dimensions
//! scaled to [−1, 1], sampled by DDIM from shared initial noise, compared with the training set.
//!
//! The settings of the paper's public `models.py`: the VP process
//! `x_t = √(1−β_t)·x₀ + √β_t·ε` with the cosine schedule `β(t) = 1 − cos²(t/1.008·π/2)` on
//! `t_i = i/n`, i.e. `α_t = cos(π t/(2·1.008))`, `σ_t = sin(π t/(2·1.008))`
//! ([`paper_schedule`]); every denoiser predicts x₀; DDIM with 10 steps for the linear models
//! and 50 for the others.
//!
//! * [`linear`] — Fig. 5 (rank K ∈ {10, 100, full}) and Fig. 6 (refit on its own samples);
//! * [`polynomial`] — Fig. 7: random-feature polynomials of degree 3, 9, 27 (and the published
//!   max-normalised variant, which is not a polynomial);
//! * [`bottleneck`] — Fig. 9: per-step MLPs with hidden width h ∈ {1000, 500, 100};
//! * [`memorization`] — book eq. 3.3.3–3.3.5: the memorization ratio of every architecture and of
//!   the empirical optimal denoiser;
//! * [`generalization`] — Kadkhodaie et al. Fig. 2: models fitted on disjoint halves;
//! * [`unet`] — Levine–Weiss Fig. 1: five U-Net variants (pooling depth, channels, padding);
//! * [`els`] — Kamb & Ganguli's ELS machine: its samples, and its r² against the U-Nets.
//!
//! Every run writes a folder: `config.json` (the exact settings), `metrics.json`, PNG grids laid
//! out like the paper's figures (rows = configurations, columns = the same initial noise) and
//! `.npy` exports of the samples; with [`Settings::export_models`], every fitted denoiser too
//! (`<experiment>/models/`, described by the `README.md` written beside the arrays, see
//! [`export`]).

pub mod bottleneck;
pub mod els;
pub mod export;
pub mod generalization;
pub mod linear;
pub mod memorization;
pub mod polynomial;
pub mod sweep;
pub mod unet;

use crate::diffusion::samplers::step_coefficients;
use crate::diffusion::Schedule;
use crate::error::{Error, Result};
use crate::gpu::gemm::{product, run_products, GpuMat};
use crate::gpu::Gpu;
use crate::io::grid::write_grid;
use crate::io::npy;
use crate::io::plot::Labels;
use crate::linalg::Mat;
use crate::rng::PhiloxStream;
use crate::targets::images::{load, DataSource, ImageSet, LoadOptions};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod output;
mod sampling;

pub use output::*;
pub use sampling::*;

/// Everything that determines a run; written to `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The data source (`calpha[:α]`, `disks`, `celeba:<dir>`, `npy:<path>`).
    pub data: String,
    /// Number of training images N.
    pub n: usize,
    /// Image side (64 at paper scale, 16 with `--quick`).
    pub size: usize,
    /// Skip unreadable image files instead of failing.
    pub skip_bad: bool,
    /// Seed of every random draw of the run.
    pub seed: u64,
    /// Samples drawn from each model (for the memorization statistics); the first `columns`
    /// are the figure's columns.
    pub samples: usize,
    /// Columns of the figures.
    pub columns: usize,
    /// DDIM steps of the linear models (10 in the paper).
    pub linear_steps: usize,
    /// DDIM steps of the other models (50 in the paper).
    pub steps: usize,
    /// Ranks K of the linear experiment; `None` stands for full rank.
    pub ranks: Vec<Option<usize>>,
    /// Random-feature width w.
    pub width: usize,
    /// Polynomial degrees k.
    pub degrees: Vec<usize>,
    /// Noise draws per training image when fitting a polynomial read-out (M = copies·N pairs).
    pub copies: usize,
    /// Jacobi-scaled ridge λ of the polynomial read-out: `(H + λ·diag H)A = B`.
    pub ridge: f64,
    /// Hidden widths h of the bottleneck MLPs.
    pub hidden: Vec<usize>,
    /// Training epochs of each per-step MLP (500 in the paper).
    pub epochs: usize,
    /// Adam learning rate (1e-4 in the paper).
    pub learning_rate: f64,
    /// Minibatch size of the MLP training.
    pub batch: usize,
    /// Training-set sizes of the generalization experiment (each ≤ N/2).
    pub generalization_sizes: Vec<usize>,
    /// Architectures of the generalization experiment.
    pub generalization_architectures: Vec<String>,
    /// Run one shard of a sweep ([`sweep`]: generalization's (architecture, N), bottleneck's
    /// widths, polynomial's (map, degree)): `(index, count)` runs the configurations at
    /// positions ≡ index (mod count) and writes them as JSONL for `merge` (`None`: all of them).
    #[serde(default, alias = "generalization_shard")]
    pub sweep_shard: Option<(usize, usize)>,
    /// The shrunken settings of `--quick`.
    pub quick: bool,
    /// Write every fitted denoiser as `.npy` under `<experiment>/models/` (see [`export`];
    /// about 23 GB at paper scale, so off unless asked for).
    #[serde(default)]
    pub export_models: bool,
    /// Where the empirical optimal denoiser (book eq. 3.3.3) runs.
    #[serde(default)]
    pub empirical_route: EmpiricalRoute,
    /// The memory limit in GiB ([`crate::experiments::memory::limit`]; `None`: the machine's
    /// physical memory).
    #[serde(default)]
    pub max_memory_gib: Option<f64>,
    /// `exp unet`'s widths, epochs, learning rate and embedding frequencies.
    #[serde(default)]
    pub unet: unet::UNetSettings,
    /// `exp polynomial --patch` (Levine–Weiss Fig. 8, [`polynomial::patch`]): when set, the
    /// polynomial experiment fits the patch polynomial denoisers with these settings instead of
    /// Fig. 7's global ones (`None`: Fig. 7).
    #[serde(default)]
    pub patch_polynomial: Option<polynomial::patch::PatchSettings>,
    /// `exp els`'s sample count, patch schedule, bank cap and r² comparison.
    #[serde(default)]
    pub els: els::ElsSettings,
}

/// The two implementations of the empirical optimal denoiser `x̂₀(x_t) = Σ_i softmax_i(−‖x_t −
/// α x_i‖²/(2σ²)) x_i` (book eq. 3.3.3) used by `exp memorization` and `exp generalization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmpiricalRoute {
    /// [`crate::gpu::empirical::GpuEmpirical`]: the images resident, f32 GEMMs and a blocked
    /// row softmax; its rigorous f32 error bound is vacuous at small σ for large d (see that
    /// module), which the memorization test covers by comparing with [`EmpiricalRoute::Cpu`].
    #[default]
    Gpu,
    /// [`memorization::EmpiricalPredictor`]: f64 on the CPU, the reference.
    Cpu,
}

impl std::str::FromStr for EmpiricalRoute {
    type Err = Error;

    /// `gpu` or `cpu`; anything else is an error naming it.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(Error::InvalidArgument {
                what: "empirical route".into(),
                reason: format!("expected gpu or cpu, got {other:?}"),
            }),
        }
    }
}

impl EmpiricalRoute {
    /// A description for metrics.json.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Gpu => "gpu: f32 GEMMs + blocked row softmax (gpu::empirical::GpuEmpirical)",
            Self::Cpu => {
                "cpu: f64 reference (experiments::images::memorization::EmpiricalPredictor)"
            }
        }
    }
}

impl Settings {
    /// The paper's settings (Levine–Weiss App. B; Kadkhodaie et al. Fig. 2).
    pub fn paper(data: &DataSource) -> Self {
        Self {
            data: data.to_string(),
            n: 1000,
            size: 64,
            skip_bad: false,
            seed: 0,
            samples: 100,
            columns: 8,
            linear_steps: 10,
            steps: 50,
            ranks: vec![Some(10), Some(100), None],
            width: 1024,
            degrees: vec![3, 9, 27],
            copies: 20,
            ridge: 1e-6,
            hidden: vec![1000, 500, 100],
            epochs: 500,
            learning_rate: 1e-4,
            batch: 128,
            generalization_sizes: Self::generalization_sizes(1000, 10),
            generalization_architectures: vec![
                "empirical".into(),
                "linear".into(),
                "polynomial".into(),
            ],
            sweep_shard: None,
            quick: false,
            export_models: false,
            empirical_route: EmpiricalRoute::Gpu,
            max_memory_gib: None,
            unet: unet::UNetSettings::default(),
            patch_polynomial: None,
            els: els::ElsSettings::default(),
        }
    }

    /// The generalization experiment's training-set sizes for N images: the powers
    /// `1, base, base², …` (the paper's 1, 10, 100, 1000 for base 10) that two disjoint halves
    /// allow (≤ N/2), then N/2 itself when it is not one of them ("and more when the data
    /// allow"). N = 1000 gives {1, 10, 100, 500}; `--n 2000` the paper's {1, 10, 100, 1000}.
    pub fn generalization_sizes(n: usize, base: usize) -> Vec<usize> {
        let half = n / 2;
        let mut sizes: Vec<usize> =
            std::iter::successors(Some(1usize), |&s| s.checked_mul(base.max(2)))
                .take_while(|&s| s <= half)
                .collect();
        if half >= 1 && sizes.last() != Some(&half) {
            sizes.push(half);
        }
        sizes
    }

    /// The same settings for N images, with the generalization sizes recomputed for N
    /// ([`Settings::generalization_sizes`], base 4 in quick mode, 10 otherwise).
    pub fn with_n(self, n: usize) -> Self {
        let base = if self.quick { 4 } else { 10 };
        Self {
            n,
            generalization_sizes: Self::generalization_sizes(n, base),
            ..self
        }
    }

    /// `--quick`: every experiment end to end in seconds on a software adapter (16×16 images,
    /// N = 64, few steps and epochs).
    pub fn quick(data: &DataSource) -> Self {
        Self {
            n: 64,
            size: 16,
            samples: 16,
            columns: 8,
            linear_steps: 10,
            steps: 10,
            ranks: vec![Some(4), Some(16), None],
            width: 64,
            copies: 4,
            hidden: vec![64, 32, 8],
            epochs: 4,
            learning_rate: 1e-3,
            batch: 16,
            generalization_sizes: Self::generalization_sizes(64, 4),
            quick: true,
            unet: unet::UNetSettings::quick(),
            els: els::ElsSettings::quick(),
            ..Self::paper(data)
        }
    }

    /// A lower bound on the run's memory in bytes: the N training images and the drawn samples,
    /// `3·size²` f64 values each (`None` when that overflows).
    pub fn minimum_bytes(&self) -> Option<u128> {
        let images = self.n.checked_add(self.samples)?;
        crate::experiments::memory::bytes(&[images, 3, self.size, self.size, 8])
    }

    /// Checks the settings, the memory estimate against the limit included; a bad value is a
    /// typed error naming it.
    pub fn validate(&self) -> Result<()> {
        let limit = crate::experiments::memory::limit(self.max_memory_gib)?;
        crate::experiments::memory::ensure_fits(
            &format!(
                "{} training images and {} samples of 3×{}×{}",
                self.n, self.samples, self.size, self.size
            ),
            self.minimum_bytes(),
            limit,
        )?;
        if self.n < 2 {
            return Err(Error::InvalidArgument {
                what: "n".into(),
                reason: format!(
                    "nearest and second-nearest training images need N ≥ 2, got {}",
                    self.n
                ),
            });
        }
        let positive = [
            ("n", self.n),
            ("size", self.size),
            ("samples", self.samples),
            ("columns", self.columns),
            ("linear_steps", self.linear_steps),
            ("steps", self.steps),
            ("width", self.width),
            ("copies", self.copies),
            ("epochs", self.epochs),
            ("batch", self.batch),
        ];
        for (what, v) in positive {
            if v == 0 {
                return Err(Error::InvalidArgument {
                    what: what.into(),
                    reason: "must be at least 1, got 0".into(),
                });
            }
        }
        self.unet.validate()?;
        if let Some(patch) = &self.patch_polynomial {
            patch.validate(self.size, self.export_models)?;
        }
        self.els.validate()?;
        if self.columns > self.samples {
            return Err(Error::InvalidArgument {
                what: "columns".into(),
                reason: format!(
                    "the figure's {} columns are taken from the {} samples; need columns ≤ samples",
                    self.columns, self.samples
                ),
            });
        }
        for (what, empty) in [
            ("ranks", self.ranks.is_empty()),
            ("degrees", self.degrees.is_empty()),
            ("hidden", self.hidden.is_empty()),
            ("generalization_sizes", self.generalization_sizes.is_empty()),
            (
                "generalization_architectures",
                self.generalization_architectures.is_empty(),
            ),
        ] {
            if empty {
                return Err(Error::InvalidArgument {
                    what: what.into(),
                    reason: "needs at least one entry, got an empty list".into(),
                });
            }
        }
        if let Some(&k) = self.degrees.iter().find(|&&k| k == 0) {
            return Err(Error::InvalidArgument {
                what: "degree".into(),
                reason: format!("a polynomial degree must be ≥ 1, got {k}"),
            });
        }
        // features (c·R_j·y)^k of unit-variance projections reach 8^k (|c R_j y| > 8 has
        // probability 1.2e-15 per draw were the projection normal; for images it is only
        // near-normal, so the cap is calibrated, not proved — the GPU upload still refuses a
        // non-finite feature) and go to the GPU in f32: 8^k < f32::MAX = 3.4e38 needs k ≤ 42
        if let Some(&k) = self.degrees.iter().find(|&&k| k > MAX_POLYNOMIAL_DEGREE) {
            return Err(Error::InvalidArgument {
                what: "degrees".into(),
                reason: format!(
                    "a random-feature degree must be ≤ {MAX_POLYNOMIAL_DEGREE} (its features \
                     reach 8^k, which must stay below f32's 3.4e38), got {k}"
                ),
            });
        }
        if let Some((index, count)) = self.sweep_shard {
            if index >= count {
                return Err(Error::InvalidArgument {
                    what: "sweep_shard".into(),
                    reason: format!("shard {index} of {count}: need 0 ≤ index < count"),
                });
            }
        }
        if let Some(name) = self
            .generalization_architectures
            .iter()
            .find(|n| !GENERALIZATION_ARCHITECTURES.contains(&n.as_str()))
        {
            return Err(Error::InvalidArgument {
                what: "generalization_architectures".into(),
                reason: format!(
                    "unknown architecture {name:?}; choose from {}",
                    GENERALIZATION_ARCHITECTURES.join(", ")
                ),
            });
        }
        if self.ranks.contains(&Some(0)) {
            return Err(Error::InvalidArgument {
                what: "ranks".into(),
                reason: "a rank K must be ≥ 1 (null stands for full rank), got 0".into(),
            });
        }
        if let Some(&h) = self.hidden.iter().find(|&&h| h == 0) {
            return Err(Error::InvalidArgument {
                what: "hidden".into(),
                reason: format!("a hidden width must be ≥ 1, got {h}"),
            });
        }
        if let Some(&n) = self
            .generalization_sizes
            .iter()
            .find(|&&s| s == 0 || s.checked_mul(2).is_none_or(|both| both > self.n))
        {
            return Err(Error::InvalidArgument {
                what: "generalization size".into(),
                reason: format!(
                    "two disjoint halves of size {n} need 1 ≤ 2·{n} ≤ N = {}",
                    self.n
                ),
            });
        }
        for (what, v) in [("ridge", self.ridge), ("learning_rate", self.learning_rate)] {
            crate::error::ensure_positive_finite(what, v)?;
        }
        Ok(())
    }
}

/// The architectures `exp generalization` can fit (`generalization_architectures`).
pub const GENERALIZATION_ARCHITECTURES: [&str; 5] =
    ["empirical", "linear", "polynomial", "bottleneck", "unet"];

/// The largest random-feature polynomial degree k: `⌊log 3.4e38 / log 8⌋` (features of a
/// unit-variance projection reach 8^k, eight standard deviations, and are uploaded in f32; a
/// calibrated cap, see [`Settings::validate`]).
pub const MAX_POLYNOMIAL_DEGREE: usize = 42;

/// The data, the shared initial noise and the GPU of a run.
pub struct Context<'g> {
    /// The GPU context.
    pub gpu: &'g Gpu,
    /// The settings.
    pub settings: Settings,
    /// The training images (N × d, CHW, values in [−1, 1]).
    pub data: ImageSet,
    /// Files skipped by `--skip-bad`, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// The initial noise of every sampler (samples × d standard normals, Philox stream
    /// [`NOISE_STREAM`]): row p starts the p-th sample of every model, so figures compare
    /// models on identical noise.
    pub noise: Mat,
}

/// Philox stream of the shared initial noise.
pub const NOISE_STREAM: u32 = 100;

impl<'g> Context<'g> {
    /// Loads the data and draws the shared initial noise.
    pub fn new(gpu: &'g Gpu, settings: Settings) -> Result<Self> {
        settings.validate()?;
        let source: DataSource = settings.data.parse()?;
        let (data, report) = load(
            &source,
            &LoadOptions {
                n: settings.n,
                size: settings.size,
                seed: settings.seed,
                skip_bad: settings.skip_bad,
            },
        )?;
        let noise = normals(
            PhiloxStream::new(settings.seed, NOISE_STREAM),
            settings.samples,
            data.shape.dim(),
        );
        Ok(Self {
            gpu,
            settings,
            data,
            skipped: report.skipped,
            noise,
        })
    }

    /// Image dimension d.
    pub fn dim(&self) -> usize {
        self.data.shape.dim()
    }
}

/// A rows×cols matrix of standard normals; row i is block range `[i·⌈cols/4⌉, …)` of `stream`,
/// so any row can be regenerated alone (and in parallel).
pub fn normals(stream: PhiloxStream, rows: usize, cols: usize) -> Mat {
    let blocks = cols.div_ceil(4) as u64;
    let data: Vec<Vec<f64>> = (0..rows)
        .into_par_iter()
        .map(|i| {
            (0..cols)
                .map(|j| stream.normals(i as u64 * blocks + (j / 4) as u64)[j % 4])
                .collect()
        })
        .collect();
    Mat::from_fn(rows, cols, |i, j| data[i][j])
}

/// The paper's cosine schedule with `steps` DDIM steps: `Schedule::vp_cosine(1/1.008, steps)`
/// gives `α_ℓ = cos(π t_ℓ/(2·1.008))`, `σ_ℓ = sin(π t_ℓ/(2·1.008))`, `t_ℓ = ℓ/steps`, which is
/// `√(1−β(t))`, `√β(t)` for `β(t) = 1 − cos²(t/1.008·π/2)`.
pub fn paper_schedule(steps: usize) -> Result<Schedule> {
    Schedule::vp_cosine(1.0 / 1.008, steps)
}

/// What one image experiment hands back to the run: its metrics (also written to its folder's
/// `metrics.json`), the FLOPs it counted, and the samples of the models it trained (the
/// memorization experiment reads those of the experiments before it).
pub struct Outcome {
    /// The experiment's metrics.
    pub metrics: serde_json::Value,
    /// FLOPs counted in it.
    pub flops: f64,
    /// Samples of every model it trained.
    pub samples: Vec<ModelSamples>,
}

/// One image experiment of `diffusion-theorems exp`: adding one is its file under
/// `experiments/images/` and one line in [`EXPERIMENTS`]; the command line makes its
/// subcommand `exp <name>` (with the shared image arguments) from the table.
pub trait ImageExperiment: Sync {
    /// Its name: the folder it writes, the key of its metrics and its `exp` subcommand.
    fn name(&self) -> &'static str;
    /// One line for `exp --help`: the figure or equation it reproduces and what it runs.
    fn about(&self) -> &'static str;
    /// The experiments whose models it reads (run first when it is asked for alone).
    fn needs(&self) -> &'static [&'static str] {
        &[]
    }
    /// Runs it on the loaded data into `folder`; `earlier` holds the samples of the models of
    /// the experiments run before it.
    fn run(
        &self,
        context: &Context,
        folder: &RunFolder,
        earlier: &[ModelSamples],
        show_progress: bool,
    ) -> Result<Outcome>;
}

/// Every image experiment, in the order a run takes them.
pub const EXPERIMENTS: [&dyn ImageExperiment; 8] = [
    &linear::Linear,
    &polynomial::Polynomial,
    &polynomial::PolynomialPatch,
    &bottleneck::Bottleneck,
    &memorization::Memorization,
    &generalization::Generalization,
    &unet::UNet,
    &els::Els,
];

/// The experiments a run of `which` (a name of [`EXPERIMENTS`], or `all`) takes, with the ones
/// they need, in table order; an unknown name is an error listing the known ones.
pub(crate) fn selection(which: &str) -> Result<Vec<&'static dyn ImageExperiment>> {
    let known = || {
        EXPERIMENTS
            .iter()
            .map(|e| e.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if which == "all" {
        return Ok(EXPERIMENTS.to_vec());
    }
    let asked = EXPERIMENTS
        .iter()
        .find(|e| e.name() == which)
        .ok_or_else(|| Error::InvalidArgument {
            what: "experiment".into(),
            reason: format!("no image experiment '{which}'; known: {}, all", known()),
        })?;
    Ok(EXPERIMENTS
        .iter()
        .copied()
        .filter(|e| e.name() == asked.name() || asked.needs().contains(&e.name()))
        .collect())
}

/// Wall time of one experiment of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ExperimentTime {
    /// The experiment.
    pub experiment: String,
    /// Wall seconds.
    pub seconds: f64,
    /// FLOPs counted in it.
    pub flops: f64,
    /// Achieved rate over its wall time.
    pub tflops_per_second: f64,
}

/// The top-level `metrics.json` of a run: what ran where, how long it took, and each
/// experiment's own metrics (also in its folder).
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// The adapter.
    pub adapter: String,
    /// Crate version.
    pub version: &'static str,
    /// The data source.
    pub data: String,
    /// Images loaded.
    pub images: usize,
    /// Image files skipped (`--skip-bad`), with the reason.
    pub skipped: Vec<(String, String)>,
    /// Seconds to load the data.
    pub load_seconds: f64,
    /// Per-experiment wall time and rate.
    pub experiments: Vec<ExperimentTime>,
    /// The experiments' metrics, by name.
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// Total wall seconds.
    pub total_seconds: f64,
}

/// `value` as the JSON value of an experiment's metrics.
pub(crate) fn to_value<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::json("metrics", e))
}

/// Runs the image experiment `which` (a name of [`EXPERIMENTS`] with the ones it needs, or
/// `all`) with `settings` into the run folder `out` (one sub-folder per experiment), writing
/// `config.json` and the summary `metrics.json` there.
pub fn run(
    gpu: &Gpu,
    settings: Settings,
    which: &str,
    out: &Path,
    show_progress: bool,
) -> Result<RunSummary> {
    let experiments = selection(which)?;
    let total = Instant::now();
    let root = RunFolder::create(out)?;
    // held until the run returns: a second run on the same folder is refused
    let _lock = crate::io::FolderLock::acquire(out)?;
    root.write_json("config.json", &settings)?;
    let start = Instant::now();
    let context = Context::new(gpu, settings)?;
    let load_seconds = start.elapsed().as_secs_f64();
    let mut summary = RunSummary {
        adapter: gpu.backend_name(),
        version: env!("CARGO_PKG_VERSION"),
        data: context.settings.data.clone(),
        images: context.data.len(),
        skipped: context
            .skipped
            .iter()
            .map(|(p, r)| (p.display().to_string(), r.clone()))
            .collect(),
        load_seconds,
        experiments: Vec::new(),
        metrics: serde_json::Map::new(),
        total_seconds: 0.0,
    };
    let mut models = Vec::new();
    for experiment in experiments {
        let name = experiment.name();
        let start = Instant::now();
        let folder = root.child(name)?;
        let outcome = experiment.run(&context, &folder, &models, show_progress)?;
        let seconds = start.elapsed().as_secs_f64();
        folder.write_json("metrics.json", &outcome.metrics)?;
        summary.experiments.push(ExperimentTime {
            experiment: name.into(),
            seconds,
            flops: outcome.flops,
            tflops_per_second: if seconds > 0.0 {
                outcome.flops / seconds / 1e12
            } else {
                0.0
            },
        });
        summary.metrics.insert(name.into(), outcome.metrics);
        models.extend(outcome.samples);
    }
    summary.total_seconds = total.elapsed().as_secs_f64();
    root.write_json("metrics.json", &summary)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::{selection, EXPERIMENTS};

    fn names(which: &str) -> Vec<&'static str> {
        selection(which).unwrap().iter().map(|e| e.name()).collect()
    }

    /// A run takes what was asked and what it needs, in table order; names are unique; an
    /// unknown name is an error naming the known ones.
    #[test]
    fn selection_adds_what_an_experiment_needs() {
        assert_eq!(names("linear"), ["linear"]);
        assert_eq!(
            names("memorization"),
            ["linear", "polynomial", "bottleneck", "memorization"]
        );
        assert_eq!(names("all").len(), EXPERIMENTS.len());
        let mut all = names("all");
        all.dedup();
        assert_eq!(all.len(), EXPERIMENTS.len());
        let e = selection("fig99").err().unwrap().to_string();
        assert!(e.contains("fig99") && e.contains("generalization"), "{e}");
    }
}
