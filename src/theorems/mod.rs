//! One module per theorem id (see `theorems/<id>.md`): each claim as code, comparing two
//! independent routes and returning [`Check`]s for single cases and [`Verdict`]s for the
//! default case sets that `diffusion-theorems verify` runs.

pub mod bottleneck_manifold;
pub mod entropy;
pub mod jacobian_geometry;
pub mod kl_bound;
pub mod linear_gaussian;
pub mod locality;
pub mod memorization;
pub mod miyasawa_covariance;
pub mod oracle_rate;
pub mod polynomial_moments;
pub mod rank_k;
pub mod score_matching;
pub mod shuffled_pixels;
pub mod sure;
pub mod tweedie;

use crate::error::Result;
use crate::gpu::Gpu;
use crate::io::nan_if_null;
use crate::linalg;
use crate::rng::Rng;
use crate::targets::{random_gmm, Component, GaussianMixture, Target};
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// One case of a claim: the residual between two routes and the tolerance it must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Check {
    /// `max |route A − route B|` (or a standardised residual, as the claim documents).
    pub residual: f64,
    /// The derived tolerance (float error bound, or z·SE for Monte Carlo).
    pub tolerance: f64,
}

impl Check {
    /// `residual ≤ tolerance` (and both finite).
    pub fn passed(&self) -> bool {
        self.residual.is_finite() && self.tolerance.is_finite() && self.residual <= self.tolerance
    }

    /// `residual / tolerance`, the figure the worst case is chosen by.
    pub fn ratio(&self) -> f64 {
        if self.tolerance > 0.0 {
            self.residual / self.tolerance
        } else if self.residual == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    }
}

/// Where a tolerance comes from, printed beside every verify row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToleranceKind {
    /// A proved bound: a floating-point error bound, or `z·SE` at a stated false-failure
    /// probability. The basis names the bound and where its derivation is written.
    Derived,
    /// Set on observed values because no bound is known: the basis says on what it was
    /// calibrated and why no bound exists.
    Calibrated,
}

impl ToleranceKind {
    /// `"derived"` or `"calibrated"`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Derived => "derived",
            Self::Calibrated => "calibrated",
        }
    }
}

/// How deep `verify` checks. Every row runs at every depth with the same statement, the same
/// planted variant and the same false-failure probability ([`FalseFailure`]); what changes is
/// how many cases it draws and how many samples its Monte Carlo routes use, and every tolerance
/// is re-derived from the sizes it ran with (a z·SE from the sample's SE, a DKW band from n, a
/// Bonferroni split over the cases there are), never copied from the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Depth {
    /// Seconds, for an editor loop: about a quarter of the default cases, and quarter-size
    /// samples where the row keeps its power (> 1 against its planted variant) at that size.
    Quick,
    /// The default: ≤ 15 s on a 2-core box with a software adapter.
    #[default]
    Default,
    /// Four times the cases (random families drawn from four seeds) and four times the samples:
    /// meant for a real GPU or a cluster (`--shard`).
    Thorough,
}

impl Depth {
    /// Every depth, shallowest first.
    pub const ALL: [Depth; 3] = [Depth::Quick, Depth::Default, Depth::Thorough];

    /// `"quick"`, `"default"` or `"thorough"`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Quick => "quick",
            Self::Default => "default",
            Self::Thorough => "thorough",
        }
    }

    /// How many independent random families a row draws: 1, 1, 4 (thorough adds three more
    /// seeds, [`Depth::seeds`]).
    pub fn replicates(self) -> u64 {
        match self {
            Self::Quick | Self::Default => 1,
            Self::Thorough => 4,
        }
    }

    /// The seeds of a row's random families at this depth: `seed` itself, and at thorough also
    /// `seed + r·2³²` for r = 1, 2, 3 (streams no default seed uses).
    pub fn seeds(self, seed: u64) -> Vec<u64> {
        (0..self.replicates())
            .map(|r| seed.wrapping_add(r << 32))
            .collect()
    }

    /// A Monte Carlo sample size whose default is `n`: ⌈n/4⌉ at quick, n, 4n at thorough.
    pub fn samples(self, n: usize) -> usize {
        match self {
            Self::Quick => n.div_ceil(4),
            Self::Default => n,
            Self::Thorough => 4 * n,
        }
    }

    /// The cases of a grid at this depth: every `stride`-th item (the first always) at quick,
    /// all of them otherwise (thorough enlarges the random families around a grid, not the
    /// grid).
    pub fn thin<T>(self, stride: usize, items: impl IntoIterator<Item = T>) -> Vec<T> {
        let keep = if self == Self::Quick {
            stride.max(1)
        } else {
            1
        };
        items.into_iter().step_by(keep).collect()
    }
}

/// The false-failure probability of a row: the chance that a correct implementation fails it
/// by bad luck of its (fixed-seed) random draws, before the seed is fixed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FalseFailure {
    /// Deterministic: the tolerance is a proved bound (or a calibration), no sampling is tested.
    None,
    /// The whole row at family-wise level α, at every depth (its cases share α by Bonferroni).
    PerRow(f64),
    /// Each case at level α, so the row's level is `cases·α` (union bound).
    PerCase(f64),
}

impl FalseFailure {
    /// The row's family-wise false-failure probability over `cases` cases (union bound).
    pub fn of_row(self, cases: usize) -> f64 {
        match self {
            Self::None => 0.0,
            Self::PerRow(alpha) => alpha,
            Self::PerCase(alpha) => alpha * cases as f64,
        }
    }
}

/// The fixed description of one verify row: the statement checked, where its tolerance comes
/// from, and the planted wrong variant of the statement that the same check must reject (the
/// negative control that gives the row its power).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claim {
    /// Theorem id (`tweedie`, `miyasawa_covariance`, ...).
    pub theorem: &'static str,
    /// The claim checked, in words.
    pub statement: &'static str,
    /// Derived or calibrated.
    pub tolerance_kind: ToleranceKind,
    /// The bound's name and where it is derived, or what the calibration was done on.
    pub tolerance_basis: &'static str,
    /// The planted wrong variant, in words (e.g. "σ for σ² in the score term").
    pub planted_variant: &'static str,
    /// The chance that a correct implementation fails the row by bad luck of its draws.
    pub false_failure: FalseFailure,
}

/// One case of a claim with its negative control: the check of the true statement, and the same
/// residual/tolerance computed for a planted wrong variant of the statement, which a check with
/// power must reject.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Controlled {
    /// The check of the claim as stated.
    pub check: Check,
    /// The same check with the planted wrong variant in place of one route.
    pub planted: Check,
}

/// The outcome of one claim over its default cases: the worst case's residual and tolerance,
/// and the power against its planted variant. `verify` writes it to `report.json` and the
/// appendix reads it back (a NaN is written as `null` and read back as NaN).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Theorem id (`tweedie`, `miyasawa_covariance`, ...).
    pub theorem: String,
    /// The claim checked, in words.
    pub claim: String,
    /// Number of cases.
    pub cases: usize,
    /// Residual of the worst case (largest residual/tolerance).
    #[serde(deserialize_with = "nan_if_null")]
    pub max_residual: f64,
    /// Tolerance of that case.
    #[serde(deserialize_with = "nan_if_null")]
    pub tolerance: f64,
    /// Derived or calibrated.
    pub tolerance_kind: ToleranceKind,
    /// The bound behind the tolerance, or what it was calibrated on.
    #[serde(default)]
    pub tolerance_basis: String,
    /// The planted wrong variant the same check ran on.
    pub planted_variant: String,
    /// The power: `max over cases of residual/tolerance` of the planted variant. The check
    /// rejects the variant (as it would a wrong implementation) when this exceeds 1.
    #[serde(deserialize_with = "nan_if_null")]
    pub power: f64,
    /// `"cpu-f64"` or the GPU adapter that ran it.
    pub backend: String,
    /// Every case passed, none errored, and the planted variant was rejected (power > 1).
    pub passed: bool,
    /// Wall-clock seconds.
    #[serde(default)]
    pub seconds: f64,
    /// The first error, if a case could not be evaluated.
    #[serde(default)]
    pub error: Option<String>,
    /// Mean over all cases of `ln tolerance` (the log of their geometric mean): a fingerprint
    /// of every case's allowance, not only the worst case's, so that a rerun can be compared
    /// with a recorded one number for number (the reproducibility pins of `tests/common/pins/`).
    #[serde(default = "not_recorded", deserialize_with = "nan_if_null")]
    pub tolerance_log_mean: f64,
    /// Mean over all cases of `ln residual` of the planted variant: the same fingerprint of
    /// the negative controls.
    #[serde(default = "not_recorded", deserialize_with = "nan_if_null")]
    pub planted_log_mean: f64,
    /// The depth the row ran at.
    #[serde(default)]
    pub depth: Depth,
    /// The row's family-wise false-failure probability over the cases it ran (0 for
    /// deterministic rows; see [`FalseFailure`]).
    #[serde(default)]
    pub false_failure: f64,
}

/// NaN: a figure an older report did not record.
fn not_recorded() -> f64 {
    f64::NAN
}

/// Mean of `ln v` over the positive finite values (NaN when there are none).
fn log_mean(values: impl Iterator<Item = f64>) -> f64 {
    let logs: Vec<f64> = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(f64::ln)
        .collect();
    if logs.is_empty() {
        f64::NAN
    } else {
        logs.iter().sum::<f64>() / logs.len() as f64
    }
}

/// `max_i residual_i / tolerance_i` over the checks (NaN when there are none).
fn worst(checks: impl Iterator<Item = Check>) -> Check {
    checks
        .max_by(|a, b| a.ratio().total_cmp(&b.ratio()))
        .unwrap_or(Check {
            residual: f64::NAN,
            tolerance: f64::NAN,
        })
}

impl Verdict {
    /// Runs `cases` at `depth` and folds their checks into a verdict: it passes when every case
    /// passes and the planted variant is rejected in at least one case (power > 1).
    pub fn collect(
        claim: &Claim,
        backend: &str,
        depth: Depth,
        cases: impl FnOnce() -> Result<Vec<Controlled>>,
    ) -> Self {
        let start = Instant::now();
        let outcome = cases();
        let seconds = start.elapsed().as_secs_f64();
        let mut verdict = Self {
            theorem: claim.theorem.into(),
            claim: claim.statement.into(),
            cases: 0,
            max_residual: f64::NAN,
            tolerance: f64::NAN,
            tolerance_kind: claim.tolerance_kind,
            tolerance_basis: claim.tolerance_basis.into(),
            planted_variant: claim.planted_variant.into(),
            power: f64::NAN,
            backend: backend.into(),
            passed: false,
            seconds,
            error: None,
            tolerance_log_mean: f64::NAN,
            planted_log_mean: f64::NAN,
            depth,
            false_failure: claim.false_failure.of_row(0),
        };
        match outcome {
            Ok(cases) => {
                let checked = worst(cases.iter().map(|c| c.check));
                verdict.cases = cases.len();
                verdict.false_failure = claim.false_failure.of_row(cases.len());
                verdict.max_residual = checked.residual;
                verdict.tolerance = checked.tolerance;
                verdict.power = worst(cases.iter().map(|c| c.planted)).ratio();
                verdict.tolerance_log_mean = log_mean(cases.iter().map(|c| c.check.tolerance));
                verdict.planted_log_mean = log_mean(cases.iter().map(|c| c.planted.residual));
                verdict.passed = !cases.is_empty()
                    && cases.iter().all(|c| c.check.passed())
                    && verdict.power > 1.0;
            }
            Err(e) => verdict.error = Some(e.to_string()),
        }
        verdict
    }
}

/// `max over cases of residual/tolerance` of the planted variants: above 1 when the check
/// rejects the planted variant in at least one case (tests assert this for headline checks).
pub fn power(cases: &[Controlled]) -> f64 {
    worst(cases.iter().map(|c| c.planted)).ratio()
}

/// The result of a scoped thread that computed a row's case: a panic in it becomes a
/// [`crate::error::Error::Numerical`] naming it, so the row reports an error instead of taking
/// verify down.
pub(crate) fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    handle.join().unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(crate::error::Error::Numerical(format!(
            "a case's thread panicked: {what}"
        )))
    })
}

/// The backend label of CPU-only checks.
pub const CPU_BACKEND: &str = "cpu-f64";

/// The backend label of GPU checks: the adapter's name, or "no adapter".
pub(crate) fn backend_label(gpu: &Result<&Gpu>) -> String {
    gpu.as_ref()
        .map(|g| g.backend_name())
        .unwrap_or_else(|_| "no adapter".into())
}

/// One registered theorem: the id that names its module, `tests/<id>.rs` and
/// `theorems/<id>.md`, its title (the same as the file's `title:`), and the function that runs
/// its verify rows at a depth (GPU rows run on the given adapter and fail with its error when
/// there is none; CPU-only theorems ignore it).
#[derive(Debug, Clone, Copy)]
pub struct Theorem {
    /// The theorem id.
    pub id: &'static str,
    /// One line saying what is claimed.
    pub title: &'static str,
    /// The verify rows at a depth.
    pub verdicts: fn(Result<&Gpu>, Depth) -> Vec<Verdict>,
    /// Its claims, in the order of its verify rows (`verify --list` prints them without running
    /// anything; each theorem's reproducibility test checks the order against the rows).
    pub claims: &'static [&'static Claim],
}

/// The one table of theorems, in the order `verify` prints them: `verify`, the appendix and the
/// registry test all iterate it. Adding a theorem is its module, `theorems/<id>.md`,
/// `tests/<id>.rs` and one line here; `tests/theorem_registry.rs` fails when one is missing.
pub const THEOREMS: [Theorem; 15] = [
    Theorem {
        id: tweedie::THEOREM,
        title: "Tweedie's formula (first-order Miyasawa relation)",
        verdicts: tweedie::default_verdicts,
        claims: &[
            &tweedie::ANALYTIC_SCORE,
            &tweedie::FINITE_DIFFERENCE_SCORE,
            &tweedie::VP_FORM,
            &tweedie::TWO_POINT_TANH,
            &tweedie::UNIFORM_QUADRATURE,
            &tweedie::GPU_MONTE_CARLO,
        ],
    },
    Theorem {
        id: miyasawa_covariance::THEOREM,
        title: "Second-order Miyasawa relation (posterior covariance and the denoiser's Jacobian)",
        verdicts: miyasawa_covariance::default_verdicts,
        claims: &[
            &miyasawa_covariance::COVARIANCE_HESSIAN,
            &miyasawa_covariance::JACOBIAN_COVARIANCE,
            &miyasawa_covariance::MSE_TRACE,
        ],
    },
    Theorem {
        id: sure::THEOREM,
        title: "Stein's unbiased risk estimate (SURE) and the MSE-optimality of the posterior mean",
        verdicts: sure::default_verdicts,
        claims: &[
            &sure::AFFINE,
            &sure::OPTIMALITY,
            &sure::THRESHOLD,
            &sure::GPU_NONLINEAR,
        ],
    },
    Theorem {
        id: kl_bound::THEOREM,
        title: "The denoising bound on the KL divergence (equality for Bayes denoisers of a model)",
        verdicts: kl_bound::default_verdicts,
        claims: &[
            &kl_bound::GAUSSIAN_CLAIM,
            &kl_bound::MIXTURE_GAUSSIAN_CLAIM,
            &kl_bound::MIXTURE_PAIR_CLAIM,
            &kl_bound::ODE_CLAIM,
        ],
    },
    Theorem {
        id: polynomial_moments::THEOREM,
        title: "The polynomial denoiser depends only on the first 2d moments; what it generates",
        verdicts: polynomial_moments::default_verdicts,
        claims: &[
            &polynomial_moments::GAUSS_RULE_CLAIM,
            &polynomial_moments::PRODUCT_CLAIM,
            &polynomial_moments::DEGREE_ONE_CLAIM,
            &polynomial_moments::DDIM_CLAIM,
        ],
    },
    Theorem {
        id: memorization::THEOREM,
        title: "The optimal denoiser of a finite training set reproduces the training set",
        verdicts: memorization::default_verdicts,
        claims: &[
            &memorization::SOFTMAX_EQUALS_BAYES,
            &memorization::STOPPED_DDIM_LAW,
            &memorization::COPIES_UNIFORM,
        ],
    },
    Theorem {
        id: linear_gaussian::THEOREM,
        title: "Linear denoisers see only the first two moments; DDIM with the optimal affine \
                denoiser generates a Gaussian",
        verdicts: linear_gaussian::default_verdicts,
        claims: &[
            &linear_gaussian::AFFINE_ROUTES,
            &linear_gaussian::FIG2_PAIR,
            &linear_gaussian::GENERATED_LAW,
            &linear_gaussian::CONVERGENCE,
            &linear_gaussian::BIAS_FREE,
            &linear_gaussian::GPU_GD,
        ],
    },
    Theorem {
        id: rank_k::THEOREM,
        title: "The optimal rank-K linear denoiser (Eckart–Young) and the law it generates",
        verdicts: rank_k::default_verdicts,
        claims: &[
            &rank_k::OPTIMUM,
            &rank_k::GENERATED_LAW,
            &rank_k::CONVERGENCE,
            &rank_k::GPU_GD,
        ],
    },
    Theorem {
        id: score_matching::THEOREM,
        title: "Sampling with the Bayes-optimal denoiser reproduces the data law",
        verdicts: score_matching::default_verdicts,
        claims: &[&score_matching::REPRODUCES_TARGET],
    },
    Theorem {
        id: bottleneck_manifold::THEOREM,
        title: "A denoiser through an h-dimensional bottleneck has Jacobian rank ≤ h; its samples \
                lie on an h-dimensional set",
        verdicts: bottleneck_manifold::default_verdicts,
        claims: &[
            &bottleneck_manifold::BLACK_BOX_RANK,
            &bottleneck_manifold::BLACK_BOX_JOINT_RANK,
            &bottleneck_manifold::SAMPLES_ON_CURVE,
        ],
    },
    Theorem {
        id: oracle_rate::THEOREM,
        title: "The oracle denoiser's error decays as σ^(2α/(α+1)) when sorted squared \
                coefficients decay as k^-(α+1)",
        verdicts: oracle_rate::default_verdicts,
        claims: &[
            &oracle_rate::SANDWICH,
            &oracle_rate::RATE_CONSTANTS,
            &oracle_rate::POWER_LAW_SLOPE,
            &oracle_rate::TEXTURE_SLOPE,
        ],
    },
    Theorem {
        id: shuffled_pixels::THEOREM,
        title: "A fixed pixel permutation leaves the optimal and the optimal affine denoiser's \
                error unchanged and changes a local denoiser's",
        verdicts: shuffled_pixels::default_verdicts,
        claims: &[
            &shuffled_pixels::EMPIRICAL_INVARIANT,
            &shuffled_pixels::AFFINE_INVARIANT,
            &shuffled_pixels::LOCAL_CHANGES,
        ],
    },
    Theorem {
        id: entropy::THEOREM,
        title: "The entropy of x + t·g increases with t at the I-MMSE rate d/t − mmse/t³; a \
                denoising step lowers it",
        verdicts: entropy::default_verdicts,
        claims: &[
            &entropy::DE_BRUIJN_GAUSSIAN,
            &entropy::FISHER_IMMSE,
            &entropy::DENOISED_ENTROPY,
            &entropy::DE_BRUIJN_MIXTURE,
            &entropy::DENOISED_ENTROPY_MIXTURE,
        ],
    },
    Theorem {
        id: jacobian_geometry::THEOREM,
        title: "The optimal denoiser's Jacobian is σ⁻²Cov[x|y]: its spectrum, the tangent \
                space of the disk manifold, the rescaled-image MSE, and f = ∇f·y when bias-free",
        verdicts: jacobian_geometry::default_verdicts,
        claims: &[
            &jacobian_geometry::GRAM_SPECTRUM,
            &jacobian_geometry::DISK_TANGENT,
            &jacobian_geometry::DISK_TRACE,
            &jacobian_geometry::RESCALED_MSE,
            &jacobian_geometry::BIAS_FREE,
        ],
    },
    Theorem {
        id: locality::THEOREM,
        title: "A conv denoiser sees only its receptive field; the optimal equivariant local \
                denoiser depends on the data only through its patches",
        verdicts: locality::default_verdicts,
        claims: &[
            &locality::RECEPTIVE_FIELD,
            &locality::ELS_ROUTES,
            &locality::SHIFT_INVARIANT,
        ],
    },
];

/// The registered theorem with this id.
pub fn theorem(id: &str) -> Option<&'static Theorem> {
    THEOREMS.iter().find(|t| t.id == id)
}

/// Every theorem's checks at `depth` (the `verify` command), in table order. GPU checks run
/// on `gpu` when given and fail with the adapter error otherwise.
pub fn verify_all(gpu: Result<&Gpu>, depth: Depth) -> Vec<Verdict> {
    THEOREMS
        .iter()
        .flat_map(|t| (t.verdicts)(gpu.clone(), depth))
        .collect()
}

/// The fixed family of default targets the `verify` command runs on: random GMMs drawn from a
/// Philox stream (d ∈ {1, 2, 4, 8}, K ∈ {1, 3, 5}, full, singular and point-mass components).
pub fn default_targets(seed: u64) -> Result<Vec<GaussianMixture>> {
    let mut rng = Rng::new(seed, 0);
    let mut out = Vec::new();
    for &d in &[1usize, 2, 4, 8] {
        for &k in &[1usize, 3, 5] {
            out.push(random_gmm(&mut rng, d, k)?);
        }
    }
    Ok(out)
}

/// The default targets at a depth: at quick every fifth of [`default_targets`]`(seed)`, i.e.
/// (d, K) = (1, 1), (2, 5), (8, 3); all 12 by default; at thorough the families of
/// [`Depth::seeds`]`(seed)` one after another (48 targets).
pub fn targets_at(depth: Depth, seed: u64) -> Result<Vec<GaussianMixture>> {
    let mut out = Vec::new();
    for s in depth.seeds(seed) {
        out.extend(depth.thin(5, default_targets(s)?));
    }
    Ok(out)
}

/// The point `μ_k + reach·(√λ_max,k + σ)·dir/‖dir‖`: `reach` noisy standard deviations from
/// component k's mean in direction `dir` (near points for small reach, far ones for large).
pub fn point_near_component(c: &Component, sigma: f64, reach: f64, dir: &[f64]) -> Vec<f64> {
    let spread = c
        .factor
        .eigenvalues
        .iter()
        .cloned()
        .fold(0.0, f64::max)
        .sqrt()
        + sigma;
    let norm = linalg::dot(dir, dir).sqrt().max(1e-12);
    c.mean
        .iter()
        .zip(dir)
        .map(|(m, u)| m + reach * spread * u / norm)
        .collect()
}

/// Query points for a target: one near each mode and one far (5 noisy standard deviations out).
pub fn default_points(rng: &mut Rng, target: &GaussianMixture, sigma: f64) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for c in target.components() {
        for reach in [0.3, 5.0] {
            let dir = rng.normals(c.mean.len());
            out.push(point_near_component(c, sigma, reach, &dir));
        }
    }
    out
}

/// `∫ g(v) p_σ(v) dv` for a 1-D mixture's noisy density by double-exponential quadrature, split
/// at `breaks` (kinks of g) and at each component's mean, ± 2 and ± 8 noisy standard deviations
/// (`quadrature_cuts`), over
/// `[−L, L]` with L = 12 times the largest noisy scale beyond the farthest mean (the mass outside
/// is below 10⁻³⁰ of the total and g grows at most polynomially). Returns (value, the summed
/// error estimates of the quadrature).
pub(crate) fn noisy_expectation_1d(
    target: &GaussianMixture,
    sigma: f64,
    breaks: &[f64],
    g: impl Fn(f64) -> f64,
) -> Result<(f64, f64)> {
    if target.dim() != 1 {
        return Err(crate::error::Error::DimensionMismatch {
            what: "mixture dimension (1-D quadrature)".into(),
            expected: 1,
            got: target.dim(),
        });
    }
    let spreads: Vec<(f64, f64)> = target
        .components()
        .iter()
        .map(|c| {
            let var = c.factor.eigenvalues.iter().sum::<f64>();
            (c.mean[0], (var + sigma * sigma).sqrt())
        })
        .collect();
    let cuts = quadrature_cuts(&spreads, breaks);
    let noisy = target.density_at(sigma)?;
    let density = |v: f64| noisy.log_density(&[v]).map(f64::exp);
    let (mut value, mut error) = (0.0, 0.0);
    let failure = std::cell::RefCell::new(None);
    for w in cuts.windows(2) {
        let q = quadrature::double_exponential::integrate(
            |v| match density(v) {
                Ok(p) => g(v) * p,
                Err(e) => {
                    failure.borrow_mut().get_or_insert(e);
                    0.0
                }
            },
            w[0],
            w[1],
            1e-13,
        );
        value += q.integral;
        error += q.error_estimate;
    }
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    Ok((value, error))
}

/// The cut points of [`noisy_expectation_1d`], sorted and distinct: `±L` with
/// `L = max_k(|m_k| + 12 s_k)`, the `breaks` inside `(−L, L)`, and `m_k + j·s_k` for
/// j ∈ {−8, −2, 0, 2, 8} inside it, for each component's mean and noisy scale `(m_k, s_k)`.
fn quadrature_cuts(spreads: &[(f64, f64)], breaks: &[f64]) -> Vec<f64> {
    let far = spreads
        .iter()
        .map(|(m, s)| m.abs() + 12.0 * s)
        .fold(0.0, f64::max);
    let mut cuts = vec![-far, far];
    cuts.extend(breaks.iter().copied().filter(|b| b.abs() < far));
    for (m, s) in spreads {
        for k in [-8.0, -2.0, 0.0, 2.0, 8.0] {
            let c = m + k * s;
            if c.abs() < far {
                cuts.push(c);
            }
        }
    }
    cuts.sort_by(f64::total_cmp);
    cuts.dedup();
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cuts by hand for one component at m = 1, s = 0.5 (L = 7) and a break at 3 and one at 9
    /// (outside): ±7, 3, and 1 + j·0.5 for j = −8, −2, 0, 2, 8.
    #[test]
    fn quadrature_cuts_by_hand() {
        let cuts = quadrature_cuts(&[(1.0, 0.5)], &[3.0, 9.0]);
        assert_eq!(cuts, vec![-7.0, -3.0, 0.0, 1.0, 2.0, 3.0, 5.0, 7.0]);
    }

    /// The depths' sizes: a quarter and four times the samples, four seeds at thorough (the
    /// first the default's), every stride-th grid point at quick only, and the quick targets
    /// one of each size d = 1, 2, 8 with K = 1, 5, 3 components.
    #[test]
    fn depths_scale_samples_seeds_and_grids() {
        assert_eq!(
            Depth::ALL.map(|d| d.samples(20_000)),
            [5000, 20_000, 80_000]
        );
        assert_eq!(Depth::Quick.samples(3), 1);
        assert_eq!(Depth::Default.seeds(7), vec![7]);
        assert_eq!(
            Depth::Thorough.seeds(7),
            vec![7, 7 + (1 << 32), 7 + (2 << 32), 7 + (3 << 32)]
        );
        assert_eq!(Depth::Quick.thin(2, 1..=5), vec![1, 3, 5]);
        assert_eq!(Depth::Thorough.thin(2, 1..=5), vec![1, 2, 3, 4, 5]);
        let shape = |t: &GaussianMixture| (t.dim(), t.components().len());
        let quick: Vec<_> = targets_at(Depth::Quick, 2024)
            .unwrap()
            .iter()
            .map(shape)
            .collect();
        assert_eq!(quick, vec![(1, 1), (2, 5), (8, 3)]);
        let default = default_targets(2024).unwrap();
        let thorough = targets_at(Depth::Thorough, 2024).unwrap();
        assert_eq!(thorough.len(), 48);
        for (a, b) in default.iter().zip(&thorough) {
            assert_eq!(a.mean(), b.mean());
        }
        assert_ne!(thorough[0].mean(), thorough[12].mean());
    }

    /// A row's false-failure probability: 0 when deterministic, α for the whole row, or α per
    /// case summed (union bound).
    #[test]
    fn false_failure_of_a_row_is_its_union_bound() {
        assert_eq!(FalseFailure::None.of_row(9), 0.0);
        assert_eq!(FalseFailure::PerRow(1e-6).of_row(9), 1e-6);
        assert!((FalseFailure::PerCase(1e-6).of_row(9) - 9e-6).abs() < 1e-20);
    }

    /// A verify row survives report.json: NaN residuals (written as `null`) come back as NaN.
    #[test]
    fn verdict_round_trips_through_json_with_nan() {
        let v = Verdict::collect(
            &Claim {
                theorem: "x",
                statement: "s",
                tolerance_kind: ToleranceKind::Calibrated,
                tolerance_basis: "b",
                planted_variant: "p",
                false_failure: FalseFailure::PerCase(0.1),
            },
            CPU_BACKEND,
            Depth::Quick,
            || Err(crate::error::Error::Gpu("none".into())),
        );
        let json = serde_json::to_string(&v).unwrap();
        let back: Verdict = serde_json::from_str(&json).unwrap();
        assert!(back.max_residual.is_nan() && back.power.is_nan() && !back.passed);
        assert_eq!((back.depth, back.false_failure), (Depth::Quick, 0.0));
        assert_eq!(back.tolerance_kind, ToleranceKind::Calibrated);
        assert_eq!(back.error, v.error);
    }

    /// The table lists each theorem once and `theorem` finds every line by its id.
    #[test]
    fn table_ids_are_unique_and_found() {
        for t in &THEOREMS {
            assert_eq!(theorem(t.id).map(|f| f.title), Some(t.title));
        }
        assert!(theorem("no_such_theorem").is_none());
    }
}
