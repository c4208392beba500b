//! The `diffusion-theorems` command line: `verify` (the default) runs every theorem's default
//! checks and prints the table; `eval` evaluates closed forms of a target for scripts; `exp`
//! runs a paper-scale experiment; `bench` times the GPU workloads against measured peaks.

use clap::{Parser, Subcommand, ValueEnum};
use diffusion_theorems::denoisers::linear::OptimalAffine;
use diffusion_theorems::denoisers::polynomial::optimal_polynomial;
use diffusion_theorems::denoisers::RankK;
use diffusion_theorems::error::{Error, Result};
use diffusion_theorems::experiments;
use diffusion_theorems::experiments::images::{
    self, bottleneck, generalization, polynomial, sweep, Settings,
};
use diffusion_theorems::gpu::gaussian::GpuNoisyGaussian;
use diffusion_theorems::gpu::Gpu;
use diffusion_theorems::io::{json_text, read_json, write_json};
use diffusion_theorems::linalg::{self, Mat};
use diffusion_theorems::report::{self, Report};
use diffusion_theorems::targets::gaussian::DenseGaussian;
use diffusion_theorems::targets::images::DataSource;
use diffusion_theorems::targets::{ClosedForm, GaussianMixture, Target, TargetSpec};
use diffusion_theorems::theorems;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "diffusion-theorems",
    version,
    about = "Executable theorems about denoisers and diffusion models"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the theorems' default checks (all, or the ids given), print them, write
    /// target/verify/report.json. Exit 0 when every claim passed, 1 when a claim failed, 2 on
    /// bad input, 3 when the CPU claims passed but GPU claims could not run (no adapter).
    Verify {
        /// Theorem ids to verify (default: every theorem; `--list` shows them).
        theorems: Vec<String>,
        /// List every claim with its id (`<theorem>.<k>`) without running anything.
        #[arg(long)]
        list: bool,
        /// What to print: the table, the JSON report, or JUnit XML for CI dashboards (with
        /// json and junit, the other messages go to stderr).
        #[arg(long, value_enum, default_value_t = VerifyFormat::Table)]
        format: VerifyFormat,
        /// Where to write the JSON report.
        #[arg(long, default_value = "target/verify/report.json")]
        report: PathBuf,
        /// Run one shard of the selection: `i/n` (0 ≤ i < n) runs the theorems at positions
        /// ≡ i mod n; `env` takes i and n from a Slurm array task (SLURM_ARRAY_TASK_ID,
        /// SLURM_ARRAY_TASK_COUNT) or a Kubernetes indexed Job (JOB_COMPLETION_INDEX,
        /// JOB_COMPLETIONS). The shard's rows also go to `<shard-dir>/shard-<i>-of-<n>.jsonl`,
        /// which `merge` joins.
        #[arg(long)]
        shard: Option<String>,
        /// Where a shard writes its JSONL.
        #[arg(long, default_value = "target/verify/shards")]
        shard_dir: PathBuf,
        /// Seconds, for an editor loop: about a quarter of the default cases (every claim still
        /// runs, with its planted variant and its false-failure probability).
        #[arg(long, conflicts_with = "thorough")]
        quick: bool,
        /// Many more cases and samples (four random families per row, four times the Monte
        /// Carlo draws): meant for a real GPU or a cluster (`--shard`).
        #[arg(long)]
        thorough: bool,
    },
    /// Join the JSONL of `verify --shard` runs into one report (which `appendix` reads): one
    /// commit, one outcome per claim; exits 1 when a claim failed or none of the shards ran it.
    /// Shards of `exp generalization|bottleneck|polynomial --shard` are joined into that
    /// experiment's metrics.json in `--out` instead (and generalization's figure; each
    /// bottleneck or polynomial shard draws its own configurations' figures in its folder); exit
    /// 2 when the sweep is not whole.
    Merge {
        /// The shards' `.jsonl` files.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Where to write the joined report.
        #[arg(long, default_value = "target/verify/report.json")]
        report: PathBuf,
        /// Where joined experiment shards go (metrics.json; generalization.png for
        /// generalization).
        #[arg(long, default_value = "target/exp/generalization/generalization")]
        out: PathBuf,
    },
    /// Evaluate a closed-form quantity of a target's noisy density at points; prints
    /// {"values": [...]} (one entry per point).
    Eval {
        /// Target JSON file (see README: gmm, gaussian, empirical, lowrank_gmm, two_point).
        #[arg(long)]
        target: PathBuf,
        /// Noise level σ > 0.
        #[arg(long)]
        sigma: f64,
        /// Points (required for the pointwise quantities): a JSON file [[y_1, ..., y_d], ...],
        /// or a `.npy` file of shape (n, d), float32 or float64.
        #[arg(long)]
        points: Option<PathBuf>,
        /// Write the values to this `.npy` file (float64: shape (n,) for log-density, (n, d)
        /// for score and posterior-mean, (n, d, d) for the matrices) instead of printing JSON.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Memory limit in GiB (default: the machine's physical memory): an evaluation whose
        /// estimated memory is above it is refused before its results are allocated.
        #[arg(long)]
        max_memory: Option<f64>,
        /// The quantity.
        #[arg(long, value_enum)]
        quantity: Quantity,
        /// K for `optimal-rank-k-denoiser` (1 ≤ K ≤ d).
        #[arg(long)]
        rank: Option<usize>,
        /// d for `optimal-polynomial-denoiser` (1-D targets).
        #[arg(long)]
        degree: Option<usize>,
        /// Where the pointwise closed forms run: `cpu` (f64) or `gpu` (f32, a tiled Cholesky on
        /// the GEMM family; Gaussian targets, log-density / score / posterior-mean).
        #[arg(long, value_enum, default_value_t = Backend::Cpu)]
        backend: Backend,
        /// Tile edge of the GPU route's factorisation.
        #[arg(long, default_value_t = diffusion_theorems::gpu::gaussian::DEFAULT_TILE)]
        tile: usize,
        /// Print the wall time of each phase (reading and validating the target, factoring at
        /// σ, the points) to stderr.
        #[arg(long)]
        timings: bool,
        /// Points per block when `.npy` points stream to a `.npy` `--out` (log-density, score,
        /// posterior-mean): the points are read, evaluated and written a block at a time.
        #[arg(long, default_value_t = 1024)]
        chunk_rows: usize,
    },
    /// Print the citable appendix: one row per theorem (statement, source, status, tests), plus
    /// the claims of target/verify/report.json when it exists.
    Appendix {
        /// latex or markdown.
        #[arg(long, value_enum, default_value_t = AppendixFormat::Markdown)]
        format: AppendixFormat,
        /// The verify report to include (default: target/verify/report.json when it exists; a
        /// path given here must exist).
        #[arg(long)]
        report: Option<PathBuf>,
    },
    /// Run a paper experiment: writes its figures (PNG) and prints a JSON summary.
    Exp {
        #[command(subcommand)]
        experiment: Experiment,
    },
    /// Time the GPU workloads (GEMM n³, covariance XᵀX, GMM posterior, empirical denoiser,
    /// polynomial features, DDIM) on random inputs with timestamp queries (or the wall clock),
    /// against the copy bandwidth and GEMM rate measured on this adapter.
    Bench {
        /// Shrink every size (automatic on a software adapter such as llvmpipe).
        #[arg(long)]
        quick: bool,
        /// Also write the results as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Timed runs per workload (the median is reported).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Untimed warm-up runs per workload.
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        /// Only workloads whose "name/size" contains this string.
        #[arg(long)]
        filter: Option<String>,
    },
}

/// `diffusion-theorems bench`: prints the table, writes the JSON when asked.
fn bench(
    quick: bool,
    json: Option<&std::path::Path>,
    (runs, warmup): (usize, usize),
    filter: Option<String>,
) -> Result<bool> {
    use diffusion_theorems::bench;
    let gpu = Gpu::shared()?;
    let scale = bench::Scale::for_adapter(gpu, quick);
    let settings = bench::Settings {
        scale,
        warmup,
        runs,
        filter,
    };
    let mut workloads = bench::standard_workloads(scale);
    if gpu.has_tensor_cores() {
        workloads.extend(bench::workloads::tensor_core_workloads(scale));
    }
    let report = bench::run(gpu, &settings, &workloads)?;
    say_raw(format_args!("{}", bench::table(&report)))?;
    if let Some(path) = json {
        write_json(path, &report)?;
        say(format_args!("JSON written to {}", path.display()))?;
    }
    Ok(report.results.iter().all(|m| m.error.is_none()))
}

#[derive(Subcommand)]
enum Experiment {
    /// Levine–Weiss Fig. 3: DDIM with the optimal polynomial denoisers of degree 1, 3, 5 for a
    /// 2-D three-component GMM.
    #[command(name = "polynomial-2d")]
    Polynomial2d {
        /// Output folder for the PNGs.
        #[arg(long, default_value = "target/exp/polynomial-2d")]
        out: PathBuf,
        /// Samples per panel.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        /// DDIM steps (VP cosine schedule). A few degree-5 trajectories blow up at any step
        /// count (the quintic flow escapes in finite time); they are dropped and counted.
        #[arg(long, default_value_t = 200)]
        steps: usize,
        /// Seed of the target samples and the initial noise.
        #[arg(long, default_value_t = 3)]
        seed: u64,
    },
    /// Levine–Weiss Fig. 4: the 2-D bottleneck network (h = 1 and 2, width 64) trained on the
    /// three-component GMM; intrinsic dimension, two-sample test, scatter PNG.
    #[command(name = "bottleneck-2d")]
    Bottleneck2d {
        /// Output folder (PNG, JSON report, checkpoints; a rerun resumes from them).
        #[arg(long, default_value = "target/exp/bottleneck_2d")]
        out: PathBuf,
        /// Adam steps per network.
        #[arg(long, default_value_t = 4000)]
        steps: u64,
        /// Adam steps between checkpoints (a resumed run must use the same value).
        #[arg(long, default_value_t = 100)]
        checkpoint_every: usize,
        /// Generated samples.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        /// Seed.
        #[arg(long, default_value_t = 4)]
        seed: u64,
        /// Weight the loss per σ as EDM does, (σ² + σ_d²)/(σσ_d)² (default: unweighted).
        #[arg(long)]
        edm: bool,
        /// Train the paper's own form: one σ-blind network per sampling step (50 networks,
        /// --steps each; no checkpoints).
        #[arg(long)]
        per_step: bool,
    },
    // The image experiments (`exp linear`, ..., `exp all`) are added to this command from
    // `images::EXPERIMENTS` at start-up (`with_image_experiments`), not listed here.
}

/// The arguments shared by the image experiments.
#[derive(clap::Args)]
struct ImageArgs {
    /// Data: `calpha[:α]` (generated geometric C^α images, the default), `disks` (the
    /// 5-parameter disk manifold), `celeba:<img_align_celeba dir>`, `npy:<file (N, C, H, W)>`.
    data: Option<String>,
    /// Training images N (default 1000; 64 with --quick).
    #[arg(long)]
    n: Option<usize>,
    /// Shrink everything (16×16 images, N = 64, few steps and epochs) to run end to end on a
    /// software adapter in seconds.
    #[arg(long)]
    quick: bool,
    /// Skip unreadable image files (they are reported) instead of failing.
    #[arg(long)]
    skip_bad: bool,
    /// Seed of every draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Samples per model (default 100; 16 with --quick).
    #[arg(long)]
    samples: Option<usize>,
    /// Epochs of each per-step MLP (default 500; 4 with --quick).
    #[arg(long)]
    epochs: Option<usize>,
    /// Run folder (default target/exp/<experiment>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Take every setting from a run's config.json instead (reproduces that run exactly).
    #[arg(long, conflicts_with_all = ["data", "n", "quick", "skip_bad", "samples", "epochs"])]
    config: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    no_progress: bool,
    /// Also write every fitted denoiser as .npy under <experiment>/models/ (≈ 23 GB at paper
    /// scale; each folder's README.md gives the shapes and formulas).
    #[arg(long)]
    export_models: bool,
    /// Where the empirical optimal denoiser runs: `gpu` (f32, the default) or `cpu` (the f64
    /// reference).
    #[arg(long)]
    empirical_route: Option<images::EmpiricalRoute>,
    /// Memory limit in GiB (default: the machine's physical memory): a run whose estimated
    /// memory is above it is refused before it allocates.
    #[arg(long)]
    max_memory: Option<f64>,
    /// `exp generalization`, `bottleneck` and `polynomial` only: run one shard of the sweep
    /// (generalization's (architecture, N), bottleneck's widths, polynomial's (map, degree)),
    /// `i/n` or `env` (a Slurm array task or Kubernetes indexed Job, as `verify --shard`); it
    /// writes `<out>/<experiment>/shards/shard-<i>-of-<n>.jsonl`, which `merge` joins.
    #[arg(long)]
    shard: Option<String>,
    /// `exp generalization` only: the training-set sizes of its sweep, comma-separated (default
    /// the powers of 10 up to N/2, then N/2; each needs 2·size ≤ N). Book Fig. 3.10's sweep is
    /// `--n 100000 --sizes 1000,5000,10000,50000`.
    #[arg(long, value_delimiter = ',', conflicts_with = "config")]
    sizes: Option<Vec<usize>>,
    /// `exp generalization` only: its architectures, comma-separated, from `empirical`, `linear`,
    /// `polynomial`, `bottleneck`, `unet` (default the first three; `bottleneck` and `unet` are
    /// trained networks, `unet` the standard 3-pooling variant of `exp unet`). Also `--arch`.
    #[arg(long, alias = "arch", value_delimiter = ',', conflicts_with = "config")]
    architectures: Option<Vec<String>>,
    /// `exp polynomial` only: Levine–Weiss Fig. 8, the patch polynomial denoiser (a local
    /// read-out of P×P patches, P shrinking with the noise; default out
    /// target/exp/polynomial-patch) instead of Fig. 7.
    #[arg(long, conflicts_with = "config")]
    patch: bool,
}

fn image_experiment(which: &str, args: ImageArgs) -> Result<bool> {
    let settings = match &args.config {
        Some(path) => read_json(path)?,
        None => {
            let source: DataSource = args.data.as_deref().unwrap_or("calpha").parse()?;
            let mut settings = if args.quick {
                Settings::quick(&source)
            } else {
                Settings::paper(&source)
            };
            settings.seed = args.seed;
            settings.skip_bad = args.skip_bad;
            if let Some(n) = args.n {
                settings = settings.with_n(n);
            }
            if let Some(samples) = args.samples {
                settings.samples = samples;
                settings.columns = settings.columns.min(samples);
            }
            if let Some(epochs) = args.epochs {
                settings.epochs = epochs;
            }
            settings
        }
    };
    let mut settings = settings;
    if let Some(sizes) = &args.sizes {
        if which != "generalization" {
            return Err(Error::InvalidArgument {
                what: "--sizes".into(),
                reason: format!(
                    "only exp generalization sweeps training-set sizes, not exp {which}"
                ),
            });
        }
        settings.generalization_sizes = sizes.clone();
    }
    if let Some(architectures) = &args.architectures {
        if which != "generalization" {
            return Err(Error::InvalidArgument {
                what: "--architectures".into(),
                reason: format!("only exp generalization takes architectures, not exp {which}"),
            });
        }
        settings.generalization_architectures = architectures.clone();
    }
    if args.patch {
        if which != "polynomial" {
            return Err(Error::InvalidArgument {
                what: "--patch".into(),
                reason: format!(
                    "only exp polynomial has a patch variant (Fig. 8), not exp {which}"
                ),
            });
        }
        settings.patch_polynomial = Some(if settings.quick {
            images::polynomial::patch::PatchSettings::quick()
        } else {
            images::polynomial::patch::PatchSettings::default()
        });
    }
    if let Some(spec) = &args.shard {
        if !["generalization", "bottleneck", "polynomial"].contains(&which) {
            return Err(Error::InvalidArgument {
                what: "--shard".into(),
                reason: format!(
                    "only exp generalization, bottleneck and polynomial have a sweep to shard, \
                     not exp {which}"
                ),
            });
        }
        let shard = report::shards::Shard::parse(spec, |v| std::env::var(v).ok())?;
        settings.sweep_shard = Some((shard.index, shard.count));
    }
    settings.export_models |= args.export_models;
    if let Some(route) = args.empirical_route {
        settings.empirical_route = route;
    }
    if args.max_memory.is_some() {
        settings.max_memory_gib = args.max_memory;
    }
    let out = args.out.unwrap_or_else(|| {
        let patch = which == "polynomial" && settings.patch_polynomial.is_some();
        PathBuf::from("target/exp").join(if patch { "polynomial-patch" } else { which })
    });
    let gpu = Gpu::shared()?;
    let summary = images::run(gpu, settings, which, &out, !args.no_progress)?;
    for (file, reason) in &summary.skipped {
        eprintln!("skipped {file}: {reason}");
    }
    if !summary.skipped.is_empty() {
        eprintln!(
            "--skip-bad skipped {} unreadable image files (listed in {})",
            summary.skipped.len(),
            out.join("metrics.json").display()
        );
    }
    say(format_args!(
        "{}",
        json_text(&summary.experiments, "<stdout>")?
    ))?;
    eprintln!(
        "wrote {} (total {:.1} s on {})",
        out.display(),
        summary.total_seconds,
        summary.adapter
    );
    Ok(true)
}

fn exp(experiment: Experiment) -> Result<bool> {
    match experiment {
        Experiment::Polynomial2d {
            out,
            samples,
            steps,
            seed,
        } => {
            let summary = experiments::polynomial_2d::run(&out, samples, steps, seed)?;
            say(format_args!("{}", json_text(&summary, "<stdout>")?))?;
            Ok(true)
        }
        Experiment::Bottleneck2d {
            out,
            steps,
            checkpoint_every,
            samples,
            seed,
            edm,
            per_step,
        } => {
            let gpu = Gpu::shared()?;
            let settings = diffusion_theorems::experiments::bottleneck_2d::Settings {
                steps,
                checkpoint_every,
                samples,
                seed,
                out,
                progress: true,
                edm,
                per_step,
            };
            let report = diffusion_theorems::experiments::bottleneck_2d::run(gpu, &settings)?;
            say(format_args!("{}", json_text(&report, "<stdout>")?))?;
            Ok(true)
        }
    }
}

/// How `verify` prints its outcome.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum VerifyFormat {
    Table,
    Json,
    Junit,
}

#[derive(Clone, Copy, ValueEnum)]
enum AppendixFormat {
    Latex,
    Markdown,
}

/// Where `eval` runs the pointwise closed forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Backend {
    /// f64 on the CPU.
    Cpu,
    /// f32 on the GPU (Gaussian targets).
    Gpu,
}

/// How `eval` runs: the backend, the GPU route's tile edge, and whether to print phase times.
#[derive(Clone, Copy, Debug)]
struct EvalRoute {
    backend: Backend,
    tile: usize,
    timings: bool,
    chunk_rows: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum Quantity {
    LogDensity,
    Score,
    ScoreHessian,
    PosteriorMean,
    PosteriorCovariance,
    /// {"W", "b"} of the MSE-optimal affine denoiser μ + Σ(Σ+σ²I)⁻¹(y−μ).
    OptimalAffineDenoiser,
    /// {"W", "b" = 0} of the MSE-optimal bias-free denoiser M(M+σ²I)⁻¹, M = Σ + μμᵀ.
    OptimalBiasFreeDenoiser,
    /// {"W", "b"} of the MSE-optimal rank-K denoiser (needs --rank K).
    OptimalRankKDenoiser,
    /// {"coefficients", "basis", "intercept"} of the MSE-optimal degree-d polynomial denoiser
    /// of a 1-D target (needs --degree d).
    OptimalPolynomialDenoiser,
}

impl Quantity {
    /// The quantity's command-line name.
    fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_string())
            .unwrap_or_default()
    }
}

fn rows(m: &Mat) -> serde_json::Value {
    (0..m.nrows())
        .map(|i| (0..m.ncols()).map(|j| m[(i, j)]).collect::<Vec<_>>())
        .collect::<Vec<_>>()
        .into()
}

/// Prints {"W": rows, "b": [...]} of the optimal linear denoisers at σ.
fn eval_linear(t: &dyn Target, sigma: f64, quantity: Quantity, rank: Option<usize>) -> Result<()> {
    let (mean, cov) = (t.mean(), t.covariance());
    let (w, b) = match quantity {
        Quantity::OptimalAffineDenoiser => {
            let f = OptimalAffine::from_moments(&mean, &cov)?;
            (f.weight(sigma)?, f.bias(sigma)?)
        }
        Quantity::OptimalBiasFreeDenoiser => {
            let f = OptimalAffine::bias_free_from_moments(&mean, &cov)?;
            (f.weight(sigma)?, vec![0.0; mean.len()])
        }
        _ => {
            let k = rank.ok_or_else(|| Error::InvalidArgument {
                what: "--rank".into(),
                reason: "optimal-rank-k-denoiser needs --rank K".into(),
            })?;
            let f = RankK::optimal(&mean, &cov, k)?;
            (f.weight(sigma)?, f.bias(sigma)?)
        }
    };
    say(format_args!(
        "{}",
        serde_json::json!({ "W": rows(&w), "b": b })
    ))?;
    Ok(())
}

/// Prints the optimal degree-d polynomial denoiser of a 1-D target in the monomials y¹…yᵈ:
/// the fit works in u = y/s, so the coefficient of yᵏ is c_k/sᵏ.
fn eval_polynomial(t: &GaussianMixture, sigma: f64, degree: Option<usize>) -> Result<()> {
    let degree = degree.ok_or_else(|| Error::InvalidArgument {
        what: "--degree".into(),
        reason: "optimal-polynomial-denoiser needs --degree d".into(),
    })?;
    if t.dim() != 1 {
        return Err(Error::DimensionMismatch {
            what: "target dimension (optimal-polynomial-denoiser is 1-D)".into(),
            expected: 1,
            got: t.dim(),
        });
    }
    let fit = optimal_polynomial(t, sigma, degree)?;
    let coefficients: Vec<f64> = (1..=degree)
        .map(|k| fit.coefficients[(0, k)] / fit.scale.powi(k as i32))
        .collect();
    say(format_args!(
        "{}",
        serde_json::json!({
            "coefficients": coefficients,
            "basis": format!("monomial y^1..y^{degree}"),
            "intercept": fit.coefficients[(0, 0)],
            "condition_number": fit.condition,
        })
    ))?;
    Ok(())
}

/// The points of `eval --points` as a row-major n×d array: a `.npy` array of shape (n, d), or
/// JSON rows (which must all have the target's length `d`).
struct Points {
    n: usize,
    d: usize,
    /// Point p is `data[p·d .. (p+1)·d]`.
    data: Vec<f64>,
}

impl Points {
    /// Reads `path` and checks every point has length `d`.
    fn read(path: &std::path::Path, d: usize) -> Result<Self> {
        if is_npy(path) {
            let array = diffusion_theorems::io::npy::read(path)?;
            let &[n, width] = array.shape.as_slice() else {
                return Err(Error::InvalidArgument {
                    what: format!("points {}", path.display()).into(),
                    reason: format!("need a 2-D array (n, d), got shape {:?}", array.shape),
                });
            };
            if width != d {
                return Err(Error::DimensionMismatch {
                    what: format!("points of {} (columns)", path.display()).into(),
                    expected: d,
                    got: width,
                });
            }
            return Ok(Self {
                n,
                d,
                data: array.data,
            });
        }
        let rows: Vec<Vec<f64>> = read_json(path)?;
        if let Some((p, y)) = rows.iter().enumerate().find(|(_, y)| y.len() != d) {
            return Err(Error::DimensionMismatch {
                what: format!("point {p} of {}", path.display()).into(),
                expected: d,
                got: y.len(),
            });
        }
        Ok(Self {
            n: rows.len(),
            d,
            data: rows.concat(),
        })
    }

    /// The points as the rows of an n×d matrix.
    fn rows(&self) -> Mat {
        Mat::from_fn(self.n, self.d, |i, j| self.data[i * self.d + j])
    }

    /// The points as the columns of a d×n matrix (the same memory order as the array).
    fn columns(&self) -> Mat {
        Mat::from_fn(self.d, self.n, |j, i| self.data[i * self.d + j])
    }
}

/// Row-major values of a column-per-point d×n matrix.
fn from_columns(m: &Mat) -> Vec<f64> {
    let mut values = Vec::with_capacity(m.nrows() * m.ncols());
    for i in 0..m.ncols() {
        values.extend(m.col(i).iter());
    }
    values
}

/// Row-major values of a row-per-point n×w matrix.
fn from_rows(m: &Mat) -> Vec<f64> {
    (0..m.nrows()).flat_map(|i| linalg::row(m, i)).collect()
}

fn eval(
    target: &std::path::Path,
    sigma: f64,
    (points, out, max_memory): (Option<&PathBuf>, Option<&std::path::Path>, Option<f64>),
    quantity: Quantity,
    (rank, degree): (Option<usize>, Option<usize>),
    route: EvalRoute,
) -> Result<()> {
    let clock = std::time::Instant::now();
    let spec = TargetSpec::read(target)?;
    let pointwise = matches!(
        quantity,
        Quantity::LogDensity
            | Quantity::Score
            | Quantity::ScoreHessian
            | Quantity::PosteriorMean
            | Quantity::PosteriorCovariance
    );
    if !pointwise {
        let t = spec.build()?;
        if matches!(quantity, Quantity::OptimalPolynomialDenoiser) {
            return eval_polynomial(&t, sigma, degree);
        }
        diffusion_theorems::error::ensure_sigma(sigma)?;
        return eval_linear(&t, sigma, quantity, rank);
    }
    let points = points.ok_or_else(|| Error::InvalidArgument {
        what: "--points".into(),
        reason: "this quantity is evaluated at points: pass --points P.json".into(),
    })?;
    if let Some(path) = out {
        diffusion_theorems::io::ensure_writable(path)?;
    }
    let streamable = matches!(
        quantity,
        Quantity::LogDensity | Quantity::Score | Quantity::PosteriorMean
    );
    if let (Some(out), true, true) = (out, is_npy(points), streamable) {
        return eval_streamed(&spec, sigma, (points, out), max_memory, quantity, route);
    }
    // a Gaussian goes through one Cholesky factor of Σ + σ²I (no eigen-decomposition); the
    // other kinds through the mixture's spectral factors
    let (values, pts) = match spec.dense_gaussian() {
        Some(dense) => {
            let dense = dense?;
            let pts = Points::read(points, dense.dim())?;
            if route.timings {
                eprintln!(
                    "timing: read and validate {:.3} s",
                    clock.elapsed().as_secs_f64()
                );
            }
            let values = match route.backend {
                Backend::Cpu => {
                    eval_dense_gaussian(&dense, sigma, &pts, max_memory, quantity, route)?
                }
                Backend::Gpu => eval_dense_gaussian_gpu(&dense, sigma, &pts, quantity, route)?,
            };
            (values, pts)
        }
        None if route.backend == Backend::Gpu => return Err(gpu_route_needs_a_gaussian()),
        None => {
            let t = spec.build()?;
            let pts = Points::read(points, t.dim())?;
            (eval_mixture(&t, sigma, &pts, max_memory, quantity)?, pts)
        }
    };
    // JSON has no NaN or ∞ (serde_json would write null): refuse instead.
    let width = values.len() / pts.n.max(1);
    if let Some((k, bad)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(Error::Numerical(format!(
            "the {} at point {} with σ = {sigma:e} is {bad}: beyond f64 here (an extreme σ or \
             point)",
            quantity.name(),
            k / width.max(1)
        )));
    }
    let written = std::time::Instant::now();
    write_values(&values, quantity, (pts.n, pts.d), out)?;
    if route.timings {
        eprintln!(
            "timing: write {:.3} s; total {:.3} s",
            written.elapsed().as_secs_f64(),
            clock.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// Prints `timing: <what> <seconds>` to stderr when asked.
fn phase_time(route: EvalRoute, what: &str, since: std::time::Instant) {
    if route.timings {
        eprintln!("timing: {what} {:.3} s", since.elapsed().as_secs_f64());
    }
}

/// Log-density, score or posterior mean of a Gaussian by the f32 tiled route on the GPU
/// ([`diffusion_theorems::gpu::gaussian`]), row-major as in [`eval_mixture`].
fn eval_dense_gaussian_gpu(
    t: &DenseGaussian,
    sigma: f64,
    pts: &Points,
    quantity: Quantity,
    route: EvalRoute,
) -> Result<Vec<f64>> {
    if !matches!(
        quantity,
        Quantity::LogDensity | Quantity::Score | Quantity::PosteriorMean
    ) {
        return Err(Error::InvalidArgument {
            what: "--backend gpu".into(),
            reason: format!(
                "the GPU route computes log-density, score and posterior-mean, not {}",
                quantity.name()
            ),
        });
    }
    let start = std::time::Instant::now();
    let gpu = Gpu::shared()?;
    phase_time(route, "adapter start-up", start);
    let noisy = gpu_factor(gpu, t, sigma, route)?;
    let start = std::time::Instant::now();
    let values = match quantity {
        Quantity::LogDensity => noisy.log_density_rows(&pts.data, pts.n)?,
        Quantity::Score => noisy.score_rows(&pts.data, pts.n)?,
        _ => noisy.posterior_mean_rows(&pts.data, pts.n)?,
    };
    phase_time(route, "points", start);
    solve_time(route, &noisy);
    Ok(values)
}

/// The f32 tiled factorisation of `Σ + σ²I` on the GPU, its phases timed when asked.
fn gpu_factor<'g>(
    gpu: &'g Gpu,
    t: &DenseGaussian,
    sigma: f64,
    route: EvalRoute,
) -> Result<GpuNoisyGaussian<'g>> {
    if !route.timings {
        return GpuNoisyGaussian::factor(gpu, t, sigma, route.tile);
    }
    // timed: the GPU's own timestamps too, where the adapter has them (one small readback per
    // submission)
    let start = std::time::Instant::now();
    let (noisy, kernels) = gpu.time(|| GpuNoisyGaussian::factor(gpu, t, sigma, route.tile))?;
    {
        let phases = noisy.factor_seconds();
        eprintln!(
            "timing: factor {:.3} s (upload {:.3} s, tile steps {:.3} s: products prepared \
             {:.3} s, kernels run {:.3} s, diagonals read back {:.3} s)",
            start.elapsed().as_secs_f64(),
            phases.upload,
            phases.tiles,
            phases.prepare,
            phases.run,
            phases.read_back
        );
        eprintln!(
            "timing: of the factor, GPU kernels {:.3} s ({:?})",
            kernels.seconds, kernels.clock
        );
    }
    Ok(noisy)
}

/// Prints where the GPU route's point evaluations spent their time, when asked.
fn solve_time(route: EvalRoute, noisy: &GpuNoisyGaussian) {
    if route.timings {
        let s = noisy.solve_seconds();
        eprintln!(
            "timing: of the points, GPU upload {:.3} s, substitutions {:.3} s, read back {:.3} s",
            s.upload, s.solves, s.read_back
        );
    }
}

/// The error of `--backend gpu` on a target that is not a Gaussian.
fn gpu_route_needs_a_gaussian() -> Error {
    Error::InvalidArgument {
        what: "--backend gpu".into(),
        reason: "the GPU route covers Gaussian targets (kind \"gaussian\") only; use --backend \
                 cpu for the others"
            .into(),
    }
}

/// Whether `path` names a `.npy` file.
fn is_npy(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "npy")
}

/// The target of a streamed evaluation, by its route.
enum StreamTarget {
    /// A Gaussian: the Cholesky routes.
    Dense(DenseGaussian),
    /// Any other kind: the mixture's batched spectral routes.
    Mixture(GaussianMixture),
}

/// `.npy` points to `.npy` values a block of rows at a time (log-density, score, posterior
/// mean): the target is factored once, then each block of `route.chunk_rows` points is read,
/// evaluated and appended, so the points are never held whole (`io::npy::RowReader`,
/// `io::npy::RowWriter`; the values land under their name only when all are written).
fn eval_streamed(
    spec: &TargetSpec,
    sigma: f64,
    (points, out): (&std::path::Path, &std::path::Path),
    max_memory: Option<f64>,
    quantity: Quantity,
    route: EvalRoute,
) -> Result<()> {
    use diffusion_theorems::io::npy::{RowReader, RowWriter};
    let clock = std::time::Instant::now();
    let mut reader = RowReader::open(points)?;
    let (n, width) = reader.shape();
    let target = match spec.dense_gaussian().transpose()? {
        Some(t) => StreamTarget::Dense(t),
        None if route.backend == Backend::Gpu => return Err(gpu_route_needs_a_gaussian()),
        None => StreamTarget::Mixture(spec.build()?),
    };
    let (d, k) = match &target {
        StreamTarget::Dense(t) => (t.dim(), 1),
        StreamTarget::Mixture(t) => (t.dim(), t.components().len()),
    };
    if width != d {
        return Err(Error::DimensionMismatch {
            what: format!("points of {} (columns)", points.display()).into(),
            expected: d,
            got: width,
        });
    }
    let rows = route.chunk_rows.max(1);
    // in f64: the target's factors (three d×d for the Cholesky route, the spectral factors'
    // d×d per component), and per block the points, their centred copies, the results and
    // each component's projections
    let needed = experiments::memory::bytes(&[3 * k, d, d, 8])
        .zip(experiments::memory::bytes(&[
            rows.min(n.max(1)),
            d,
            2 * k + 4,
            8,
        ]))
        .and_then(|(a, b)| a.checked_add(b));
    check_memory(quantity, (n, d), needed, max_memory)?;
    phase_time(route, "read and validate", clock);
    let mut shape = vec![n];
    if !matches!(quantity, Quantity::LogDensity) {
        shape.push(d);
    }
    let mut writer = RowWriter::create(out, &shape)?;
    let mut done = 0usize;
    let mut stream = |evaluate: &dyn Fn(&Points) -> Result<Vec<f64>>| -> Result<()> {
        let start = std::time::Instant::now();
        while let Some(block) = reader.next_rows(rows)? {
            let pts = Points {
                n: block.len() / d,
                d,
                data: block,
            };
            let values = evaluate(&pts)?;
            let per_point = values.len() / pts.n.max(1);
            if let Some((i, bad)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::Numerical(format!(
                    "the {} at point {} with σ = {sigma:e} is {bad}: beyond f64 here (an \
                     extreme σ or point)",
                    quantity.name(),
                    done + i / per_point.max(1)
                )));
            }
            writer.write(&values)?;
            done += pts.n;
        }
        phase_time(route, "points", start);
        Ok(())
    };
    match (&target, route.backend) {
        (StreamTarget::Dense(t), Backend::Gpu) => {
            let start = std::time::Instant::now();
            let gpu = Gpu::shared()?;
            phase_time(route, "adapter start-up", start);
            let noisy = gpu_factor(gpu, t, sigma, route)?;
            stream(&|p: &Points| match quantity {
                Quantity::LogDensity => noisy.log_density_rows(&p.data, p.n),
                Quantity::Score => noisy.score_rows(&p.data, p.n),
                _ => noisy.posterior_mean_rows(&p.data, p.n),
            })?;
            solve_time(route, &noisy);
        }
        (StreamTarget::Dense(t), Backend::Cpu) => {
            let factored = std::time::Instant::now();
            let noisy = t.noisy(sigma)?;
            phase_time(route, "factor", factored);
            stream(&|p: &Points| {
                Ok(match quantity {
                    Quantity::LogDensity => noisy.log_density_columns(&p.columns())?,
                    Quantity::Score => from_columns(&noisy.score_columns(&p.columns())?),
                    _ => from_columns(&noisy.posterior_mean_columns(&p.columns())?),
                })
            })?;
        }
        (StreamTarget::Mixture(t), _) => stream(&|p: &Points| {
            Ok(match quantity {
                Quantity::LogDensity => t.log_density_batch(&p.rows(), sigma)?,
                Quantity::Score => from_rows(&t.score_batch(&p.rows(), sigma)?),
                _ => from_rows(&t.posterior_mean_batch(&p.rows(), sigma)?),
            })
        })?,
    }
    writer.finish()?;
    eprintln!("wrote {n} values of shape {shape:?} to {}", out.display());
    phase_time(route, "total", clock);
    Ok(())
}

/// Refuses an evaluation whose estimated memory `needed` is above `--max-memory`.
fn check_memory(
    quantity: Quantity,
    (n, d): (usize, usize),
    needed: Option<u128>,
    max_memory: Option<f64>,
) -> Result<()> {
    experiments::memory::ensure_fits(
        &format!("eval of {} at {n} points in d = {d}", quantity.name()),
        needed,
        experiments::memory::limit(max_memory)?,
    )
}

/// The pointwise quantity of a mixture at every point, row-major (the d×d matrices flattened
/// row-major): log-density, score and posterior mean through the batched routes (each
/// component's factor formed once for all points), the d×d quantities per point.
fn eval_mixture(
    t: &GaussianMixture,
    sigma: f64,
    pts: &Points,
    max_memory: Option<f64>,
    quantity: Quantity,
) -> Result<Vec<f64>> {
    let (n, d) = (pts.n, pts.d);
    // what the evaluation holds at once, in f64: the points, and per point either d×d
    // matrices (twice: the values and their flat copies) or, batched, the centred points, the
    // results and each component's projections
    let k = t.components().len();
    let needed = match quantity {
        Quantity::ScoreHessian | Quantity::PosteriorCovariance => {
            experiments::memory::bytes(&[n, d, d + 1, 2 * 8])
        }
        _ => experiments::memory::bytes(&[n, d, 2 * k + 4, 8]),
    };
    check_memory(quantity, (n, d), needed, max_memory)?;
    Ok(match quantity {
        Quantity::LogDensity => t.log_density_batch(&pts.rows(), sigma)?,
        Quantity::Score => from_rows(&t.score_batch(&pts.rows(), sigma)?),
        Quantity::PosteriorMean => from_rows(&t.posterior_mean_batch(&pts.rows(), sigma)?),
        _ => {
            let mut values = Vec::with_capacity(n * d * d);
            for y in pts.data.chunks(d) {
                let m = if matches!(quantity, Quantity::ScoreHessian) {
                    t.score_hessian(y, sigma)?
                } else {
                    t.posterior_covariance(y, sigma)?
                };
                values.extend(from_rows(&m));
            }
            values
        }
    })
}

/// The pointwise quantity of a Gaussian by its Cholesky route ([`DenseGaussian`]), row-major
/// as in [`eval_mixture`] (the d×d quantities are the same at every point).
fn eval_dense_gaussian(
    t: &DenseGaussian,
    sigma: f64,
    pts: &Points,
    max_memory: Option<f64>,
    quantity: Quantity,
    route: EvalRoute,
) -> Result<Vec<f64>> {
    let (n, d) = (pts.n, pts.d);
    // in f64: the covariance, its shifted copy and its factor (d×d each), the points, their
    // centred columns and the results (n×d each), and the n×d×d output of the matrices
    let matrices = match quantity {
        Quantity::ScoreHessian | Quantity::PosteriorCovariance => n + 1,
        _ => 0,
    };
    let needed = experiments::memory::bytes(&[3 + matrices, d, d, 8])
        .zip(experiments::memory::bytes(&[3, n, d, 8]))
        .and_then(|(a, b)| a.checked_add(b));
    check_memory(quantity, (n, d), needed, max_memory)?;
    let start = std::time::Instant::now();
    let noisy = t.noisy(sigma)?;
    phase_time(route, "factor", start);
    let start = std::time::Instant::now();
    let values = match quantity {
        Quantity::LogDensity => noisy.log_density_columns(&pts.columns())?,
        Quantity::Score => from_columns(&noisy.score_columns(&pts.columns())?),
        Quantity::PosteriorMean => from_columns(&noisy.posterior_mean_columns(&pts.columns())?),
        _ => {
            let m = if matches!(quantity, Quantity::ScoreHessian) {
                noisy.score_hessian()
            } else {
                noisy.posterior_covariance()
            };
            // symmetric, so its columns are its rows
            let flat = from_columns(&m);
            let mut values = Vec::with_capacity(n * d * d);
            for _ in 0..n {
                values.extend_from_slice(&flat);
            }
            values
        }
    };
    phase_time(route, "points", start);
    Ok(values)
}

/// Writes the row-major values of n points as `.npy` (shape (n,), (n, d) or (n, d, d)) or
/// prints them as JSON.
fn write_values(
    values: &[f64],
    quantity: Quantity,
    (n, d): (usize, usize),
    out: Option<&std::path::Path>,
) -> Result<()> {
    let mut shape = vec![n];
    match quantity {
        Quantity::LogDensity => {}
        Quantity::ScoreHessian | Quantity::PosteriorCovariance => shape.extend([d, d]),
        _ => shape.push(d),
    }
    match out {
        Some(path) => {
            diffusion_theorems::io::npy::write_f64(path, &shape, values)?;
            eprintln!("wrote {n} values of shape {shape:?} to {}", path.display());
            Ok(())
        }
        None => {
            let width = values.len() / n.max(1);
            let values: Vec<serde_json::Value> = values
                .chunks(width.max(1))
                .map(|r| match quantity {
                    Quantity::LogDensity => r[0].into(),
                    Quantity::ScoreHessian | Quantity::PosteriorCovariance => {
                        r.chunks(d).map(|c| c.to_vec()).collect::<Vec<_>>().into()
                    }
                    _ => r.to_vec().into(),
                })
                .collect();
            say(format_args!("{}", serde_json::json!({ "values": values })))
        }
    }
}

/// Prints the appendix of the registry in the current directory, which must be the crate root
/// (it holds `theorems/`), with the claims of `--report` (which must exist) or of
/// `target/verify/report.json` when that exists.
fn print_appendix(format: AppendixFormat, report_path: Option<&std::path::Path>) -> Result<()> {
    use diffusion_theorems::report::appendix::{appendix, read_report, Format};
    let root = std::path::Path::new(".");
    if !root.join("theorems").is_dir() {
        let here = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|_| ".".into());
        return Err(Error::InvalidArgument {
            what: "working directory".into(),
            reason: format!(
                "appendix reads theorems/*.md from the crate root, and {here} has no theorems/: \
                 run it there"
            ),
        });
    }
    let default = std::path::Path::new("target/verify/report.json");
    let report = match report_path {
        Some(path) => Some(read_report(path)?),
        None if default.exists() => Some(read_report(default)?),
        None => None,
    };
    let format = match format {
        AppendixFormat::Latex => Format::Latex,
        AppendixFormat::Markdown => Format::Markdown,
    };
    say_raw(format_args!("{}", appendix(root, report.as_ref(), format)?))
}

/// Exit status of `verify` when every CPU claim passed but GPU claims could not run.
const NO_ADAPTER_EXIT: u8 = 3;

/// The theorems of `ids` (every theorem when empty), in table order; an unknown id is an error
/// naming it and the known ones.
fn selected_theorems(ids: &[String]) -> Result<Vec<&'static theorems::Theorem>> {
    for id in ids {
        if theorems::theorem(id).is_none() {
            let known: Vec<&str> = theorems::THEOREMS.iter().map(|t| t.id).collect();
            return Err(Error::InvalidArgument {
                what: "theorem id".into(),
                reason: format!("no theorem '{id}'; known: {}", known.join(", ")),
            });
        }
    }
    Ok(theorems::THEOREMS
        .iter()
        .filter(|t| ids.is_empty() || ids.iter().any(|id| id == t.id))
        .collect())
}

/// `verify --list`: every claim of the selected theorems with its id, planted variant and
/// tolerance label, as a table or JSON.
fn list_claims(selected: &[&theorems::Theorem], format: VerifyFormat) -> Result<()> {
    let claims: Vec<serde_json::Value> = selected
        .iter()
        .flat_map(|t| {
            t.claims.iter().enumerate().map(|(k, c)| {
                serde_json::json!({
                    "id": format!("{}.{}", t.id, k + 1),
                    "theorem": t.id,
                    "statement": c.statement,
                    "tolerance_kind": c.tolerance_kind.label(),
                    "planted_variant": c.planted_variant,
                })
            })
        })
        .collect();
    if format == VerifyFormat::Json {
        return say(format_args!("{}", json_text(&claims, "<stdout>")?));
    }
    for c in &claims {
        say(format_args!(
            "{:<24} {}\n{:<24} tolerance {}; planted: {}",
            c["id"].as_str().unwrap_or_default(),
            c["statement"].as_str().unwrap_or_default(),
            "",
            c["tolerance_kind"].as_str().unwrap_or_default(),
            c["planted_variant"].as_str().unwrap_or_default()
        ))?;
    }
    Ok(())
}

fn verify(
    ids: &[String],
    list: bool,
    format: VerifyFormat,
    report_path: &std::path::Path,
    shard: Option<(report::shards::Shard, PathBuf)>,
    depth: theorems::Depth,
) -> Result<ExitCode> {
    let mut selected = selected_theorems(ids)?;
    if let Some((s, _)) = &shard {
        selected = s.pick(&selected);
    }
    if list {
        list_claims(&selected, format)?;
        return Ok(ExitCode::SUCCESS);
    }
    diffusion_theorems::io::ensure_writable(report_path)?;
    // with json or junit, stdout carries only that document
    let note = |text: std::fmt::Arguments| -> Result<()> {
        if format == VerifyFormat::Table {
            say(text)
        } else {
            eprintln!("{text}");
            Ok(())
        }
    };
    let gpu = Gpu::shared();
    let adapter = match &gpu {
        Ok(g) => g.backend_name(),
        Err(e) => e.to_string(),
    };
    note(format_args!("adapter: {adapter}"))?;
    let bar = indicatif::ProgressBar::new(selected.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let verdicts = run_theorems(&selected, &gpu, &bar, depth)?;
    bar.finish_and_clear();
    note(format_args!("{}", report::depth_header(depth, &verdicts)))?;
    let passed = verdicts.iter().all(|v| v.passed);
    let commit = Some(diffusion_theorems::io::git_commit()).filter(|c| c != "unknown");
    if let Some((s, dir)) = &shard {
        let lines = report::shards::lines(&verdicts, &adapter, commit.as_deref())?;
        let path = report::shards::write(dir, *s, &lines)?;
        note(format_args!(
            "shard {} of {}: {} theorems, {} rows written to {}",
            s.index,
            s.count,
            selected.len(),
            verdicts.len(),
            path.display()
        ))?;
    }
    let rep = Report {
        version: env!("CARGO_PKG_VERSION"),
        commit,
        adapter,
        depth,
        false_failure: report::family_false_failure(&verdicts),
        verdicts: &verdicts,
        passed,
    };
    match format {
        VerifyFormat::Table => say_raw(format_args!("{}", report::table(&verdicts)))?,
        VerifyFormat::Json => say(format_args!("{}", json_text(&rep, "<stdout>")?))?,
        VerifyFormat::Junit => say_raw(format_args!("{}", report::junit(&verdicts)))?,
    }
    write_json(report_path, &rep)?;
    note(format_args!(
        "{} of {} claims passed; report written to {}",
        verdicts.iter().filter(|v| v.passed).count(),
        verdicts.len(),
        report_path.display()
    ))?;
    // GPU claims that could not run for want of an adapter, while every CPU claim passed
    let cpu_passed = verdicts
        .iter()
        .filter(|v| v.backend == theorems::CPU_BACKEND)
        .all(|v| v.passed);
    Ok(if passed {
        ExitCode::SUCCESS
    } else if gpu.is_err() && cpu_passed {
        ExitCode::from(NO_ADAPTER_EXIT)
    } else {
        ExitCode::FAILURE
    })
}

/// Runs the theorems' rows on two plain threads that each take the next theorem not yet
/// started (a theorem's rows stay together and keep their order; each row's cases are seeded in
/// its code, so no row depends on which thread ran it or when), and returns the rows in the
/// order of `selected`. GPU work takes turns on the one queue (`Gpu::turn`). Plain threads, not
/// rayon tasks: the rows' own rayon and faer parallelism, nested inside rayon tasks, slowed the
/// score_matching row about sixfold on the 2-core box.
fn run_theorems(
    selected: &[&theorems::Theorem],
    gpu: &Result<&'static Gpu>,
    bar: &indicatif::ProgressBar,
    depth: theorems::Depth,
) -> Result<Vec<theorems::Verdict>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        while let Some(t) = selected.get(next.fetch_add(1, Ordering::SeqCst)) {
            bar.set_message(t.id);
            done.push((t.id, (t.verdicts)(gpu.clone(), depth)));
            bar.inc(1);
        }
        done
    };
    let mut finished: Vec<(&str, Vec<theorems::Verdict>)> = Vec::new();
    std::thread::scope(|scope| -> Result<()> {
        let threads: Vec<_> = (0..2).map(|_| scope.spawn(worker)).collect();
        for thread in threads {
            finished.extend(thread.join().map_err(|_| {
                Error::Numerical("a theorem's rows panicked (see the message above)".into())
            })?);
        }
        Ok(())
    })?;
    let mut rows = Vec::new();
    for t in selected {
        let (_, verdicts) = finished
            .iter_mut()
            .find(|(id, _)| *id == t.id)
            .ok_or_else(|| Error::Numerical(format!("theorem {} did not run", t.id)))?;
        rows.append(verdicts);
    }
    Ok(rows)
}

/// `merge`: joins shard files ([`report::shards::merge`]), writes the report, prints the table
/// and names the claims no shard ran.
fn merge_shards(
    files: &[PathBuf],
    report_path: &std::path::Path,
    out: &std::path::Path,
) -> Result<ExitCode> {
    let texts = files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .map(|text| (f.display().to_string(), text))
                .map_err(|e| Error::Io {
                    path: f.display().to_string(),
                    reason: e.to_string(),
                    source: Some(e),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    if let Some(experiment) = sweep::experiment_of(&texts) {
        let merged = sweep::merge(&texts)?;
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let figure = match experiment.as_str() {
            "generalization" => {
                let metrics = generalization::merged_metrics(&merged)?;
                generalization::write_figure(&out.join("generalization.png"), &metrics.results)?;
                diffusion_theorems::io::write_json(&out.join("metrics.json"), &metrics)?;
                " and generalization.png"
            }
            "bottleneck" => {
                let metrics = bottleneck::merged_metrics(&merged)?;
                diffusion_theorems::io::write_json(&out.join("metrics.json"), &metrics)?;
                ""
            }
            "polynomial" => {
                let metrics = polynomial::merged_metrics(&merged);
                diffusion_theorems::io::write_json(&out.join("metrics.json"), &metrics)?;
                ""
            }
            other => {
                return Err(Error::InvalidArgument {
                    what: "shard files".into(),
                    reason: format!("lines of exp {other}, which has no sweep to merge"),
                })
            }
        };
        say(format_args!(
            "{} {experiment} shard files: {} configurations; metrics.json{figure} written to {}",
            files.len(),
            merged.results.len(),
            out.display()
        ))?;
        return Ok(ExitCode::SUCCESS);
    }
    diffusion_theorems::io::ensure_writable(report_path)?;
    let merged = report::shards::merge(&texts)?;
    let passed = merged.missing.is_empty() && merged.verdicts.iter().all(|v| v.passed);
    let rep = Report {
        version: env!("CARGO_PKG_VERSION"),
        commit: Some(merged.commit.clone()),
        adapter: merged.adapter.clone(),
        depth: merged.depth,
        false_failure: report::family_false_failure(&merged.verdicts),
        verdicts: &merged.verdicts,
        passed,
    };
    say(format_args!(
        "{}",
        report::depth_header(merged.depth, &merged.verdicts)
    ))?;
    say_raw(format_args!("{}", report::table(&merged.verdicts)))?;
    write_json(report_path, &rep)?;
    if !merged.missing.is_empty() {
        say(format_args!(
            "no shard ran {} claims: {}",
            merged.missing.len(),
            merged.missing.join(", ")
        ))?;
    }
    say(format_args!(
        "{} shard files, commit {}: {} of {} claims passed; report written to {}",
        files.len(),
        merged.commit,
        merged.verdicts.iter().filter(|v| v.passed).count(),
        merged.verdicts.len() + merged.missing.len(),
        report_path.display()
    ))?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The name of the `exp` subcommand that runs every image experiment.
const ALL_IMAGE_EXPERIMENTS: &str = "all";

/// The command line with one `exp <name>` subcommand per entry of `images::EXPERIMENTS` (its
/// help from [`images::ImageExperiment::about`], the shared [`ImageArgs`]) and `exp all`.
fn with_image_experiments(command: clap::Command) -> clap::Command {
    use clap::Args;
    command.mut_subcommand("exp", |exp| {
        let mut exp = exp;
        for e in images::EXPERIMENTS {
            exp = exp
                .subcommand(ImageArgs::augment_args(clap::Command::new(e.name())).about(e.about()));
        }
        exp.subcommand(
            ImageArgs::augment_args(clap::Command::new(ALL_IMAGE_EXPERIMENTS))
                .about("Every image experiment, each model trained once."),
        )
    })
}

/// The image experiment asked for (`exp <name> ...` with a name of `images::EXPERIMENTS` or
/// `all`) and its arguments, if that is what the command line asks.
fn image_experiment_asked(matches: &clap::ArgMatches) -> Option<(String, ImageArgs)> {
    use clap::FromArgMatches;
    let (name, sub) = matches.subcommand_matches("exp")?.subcommand()?;
    let known =
        name == ALL_IMAGE_EXPERIMENTS || images::EXPERIMENTS.iter().any(|e| e.name() == name);
    if !known {
        return None;
    }
    let args = ImageArgs::from_arg_matches(sub).unwrap_or_else(|e| e.exit());
    Some((name.to_string(), args))
}

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = with_image_experiments(Cli::command()).get_matches();
    let outcome = if let Some((name, args)) = image_experiment_asked(&matches) {
        image_experiment(&name, args).map(exit_code)
    } else {
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        run(cli)
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("{}", error_report(&e));
        ExitCode::from(2)
    })
}

/// 0 for a command that succeeded, 1 for one whose checks failed.
fn exit_code(passed: bool) -> ExitCode {
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs every command but the image experiments.
fn run(cli: Cli) -> Result<ExitCode> {
    let outcome = match cli.command.unwrap_or(Command::Verify {
        theorems: vec![],
        list: false,
        format: VerifyFormat::Table,
        report: PathBuf::from("target/verify/report.json"),
        shard: None,
        shard_dir: PathBuf::from("target/verify/shards"),
        quick: false,
        thorough: false,
    }) {
        Command::Verify {
            theorems,
            list,
            format,
            report,
            shard,
            shard_dir,
            quick,
            thorough,
        } => {
            let shard = shard
                .map(|spec| report::shards::Shard::parse(&spec, |v| std::env::var(v).ok()))
                .transpose()?;
            let depth = match (quick, thorough) {
                (true, _) => theorems::Depth::Quick,
                (_, true) => theorems::Depth::Thorough,
                _ => theorems::Depth::Default,
            };
            return verify(
                &theorems,
                list,
                format,
                &report,
                shard.map(|s| (s, shard_dir)),
                depth,
            );
        }
        Command::Merge {
            shards,
            report,
            out,
        } => return merge_shards(&shards, &report, &out),
        Command::Eval {
            target,
            sigma,
            points,
            out,
            max_memory,
            quantity,
            rank,
            degree,
            backend,
            tile,
            timings,
            chunk_rows,
        } => eval(
            &target,
            sigma,
            (points.as_ref(), out.as_deref(), max_memory),
            quantity,
            (rank, degree),
            EvalRoute {
                backend,
                tile,
                timings,
                chunk_rows,
            },
        )
        .map(|()| true),
        Command::Exp { experiment } => exp(experiment),
        Command::Appendix { format, report } => {
            print_appendix(format, report.as_deref()).map(|()| true)
        }
        Command::Bench {
            quick,
            json,
            runs,
            warmup,
            filter,
        } => bench(quick, json.as_deref(), (runs, warmup), filter),
    };
    outcome.map(exit_code)
}

/// `error: <message>` and, under it, each cause in the error's source chain that the message
/// does not already quote (`caused by: …`).
fn error_report(e: &Error) -> String {
    let top = e.to_string();
    let mut out = format!("error: {top}");
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !top.contains(&text) {
            out.push_str(&format!("\n  caused by: {text}"));
        }
        cause = c.source();
    }
    out
}

/// Writes `text` and a newline to standard output. A closed pipe (`… | head`) or a full disk is
/// an I/O error on `<stdout>` (exit 2), not a panic.
fn say(text: std::fmt::Arguments) -> Result<()> {
    say_raw(format_args!("{text}\n"))
}

/// Writes `text` to standard output and flushes it, as [`say`] without the newline.
fn say_raw(text: std::fmt::Arguments) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_fmt(text)
        .and_then(|()| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}
