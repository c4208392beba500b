//! `memorization` — the optimal denoiser of a finite training set reproduces the training set
//! (book §3.3, eq. 3.3.3–3.3.5): the Bayes denoiser of the empirical law
//! `(1/N)Σ δ_{x⁽ⁱ⁾}` is the softmax-weighted average
//! `x̄*(y) = Σ_i softmax_i(−‖y − x⁽ⁱ⁾‖²/2σ²) x⁽ⁱ⁾` (eq. 3.3.3), and DDIM with it ends on (copies of)
//! training points: the memorization ratio (eq. 3.3.4) with the criterion
//! `‖x̂ − x₍₁₎‖/‖x̂ − x₍₂₎‖ < 1/3` (eq. 3.3.5) tends to 1 as the final noise level goes to 0.
//!
//! **True by construction (not a route).** DDIM's last step returns the denoiser's output at
//! `σ₁/α₁` (its coefficient of `x₁` is `σ₀/σ₁ = 0`); at `σ₁/α₁ = tan(0.999π/200) ≈ 1.6·10⁻²` (L = 100) the softmax puts all its
//! weight on one point in f64, so *any* trajectory — right or wrong — ends on a training point
//! and MemRatio = 1 whatever the sampler did before. That observation is reported, never counted
//! as evidence that the sampler memorizes for the stated reason.
//!
//! Evidence that can fail:
//! * eq. 3.3.3 written out (its own log-sum-exp, not `linalg::softmax`) against the mixture
//!   engine's Bayes posterior mean (Woodbury with rank-0 components) — [`softmax_equals_bayes`];
//! * DDIM *stopped* at an intermediate level s (the denoiser replaced by the identity below it,
//!   [`StopBelow`], so the last step is not a denoiser call): the probability-flow ODE of the
//!   empirical law carries N(0, I) to the noisy training law `(1/N)Σ N(x⁽ⁱ⁾, s²I)`, so the
//!   stopped samples' `d₁/d₂` (whose CDF at 1/3 is MemRatio(s)) must match direct draws of that
//!   law, nearest neighbours computed by a different code path on each side —
//!   [`stopped_ddim_matches_noisy_law`];
//! * the full DDIM's copies land on *distinct* training points in proportion: the pushforward of
//!   the flow is the empirical law, so the counts per training point are Multinomial(n, 1/N) —
//!   [`ddim_copies_are_uniform`] (χ² at a stated α).
//!
//! This is the small-scale CPU statement; the CelebA-scale runs are experiments.

use super::{Check, Claim, Controlled, Depth, FalseFailure, ToleranceKind, Verdict, CPU_BACKEND};
use crate::denoisers::{check_input, Bayes, Denoiser};
use crate::diffusion::{Ddim, Sampler, Schedule};
use crate::error::{ensure_sigma, Error, Result};
use crate::linalg::{self, Mat, EPS};
use crate::rng::Rng;
use crate::stats::nearest::{nearest_two_batch, nearest_two_scan, NearestTwo, MEMORIZED_BELOW};
use crate::stats::two_sample::{ks_two_sample, two_sample_epsilon};
use crate::targets::{empirical::empirical, ClosedForm, GaussianMixture};
use statrs::distribution::{ChiSquared, ContinuousCDF};

/// The theorem id.
pub const THEOREM: &str = "memorization";

/// The scale `c(σ)` dividing the squared distances in the logits `−‖y − x⁽ⁱ⁾‖²/c(σ)` of eq. 3.3.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitScale {
    /// `c = 2σ²`, eq. 3.3.3 as stated.
    TwiceVariance,
    /// `c = 2σ`: the planted bug "σ for σ²" (negative control; never the theorem).
    TwiceSigma,
}

impl LogitScale {
    /// `c(σ)`.
    pub(crate) fn divisor(self, sigma: f64) -> f64 {
        match self {
            Self::TwiceVariance => 2.0 * sigma * sigma,
            Self::TwiceSigma => 2.0 * sigma,
        }
    }
}

/// `Σ_i w_i x⁽ⁱ⁾` with `w_i = exp(ℓ_i − max ℓ)/Σ_j exp(ℓ_j − max ℓ)`, `ℓ_i = −‖y − x⁽ⁱ⁾‖²/c(σ)`
/// (log-sum-exp written out here, independent of `linalg::softmax` which the mixture engine
/// uses).
fn softmax_average(training: &Mat, y: &[f64], sigma: f64, scale: LogitScale) -> Vec<f64> {
    let c = scale.divisor(sigma);
    // rows and columns as faer iterators: the sums of indexing (i, j), in the same order,
    // without a bounds check per entry
    let logits: Vec<f64> = (0..training.nrows())
        .map(|i| {
            -y.iter()
                .zip(training.row(i).iter())
                .map(|(yj, xj)| (yj - xj).powi(2))
                .sum::<f64>()
                / c
        })
        .collect();
    let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let unnormalised: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = unnormalised.iter().sum();
    (0..y.len())
        .map(|j| {
            unnormalised
                .iter()
                .zip(training.col_as_slice(j))
                .map(|(w, x)| w * x)
                .sum::<f64>()
                / total
        })
        .collect()
}

/// Eq. 3.3.3 written out: `Σ_i w_i x⁽ⁱ⁾` with `w = softmax(−‖y − x⁽ⁱ⁾‖²/2σ²)` (log-sum-exp stable).
pub fn softmax_denoiser(training: &Mat, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
    check_training(training)?;
    check_input(training.ncols(), y, sigma)?;
    Ok(softmax_average(
        training,
        y,
        sigma,
        LogitScale::TwiceVariance,
    ))
}

fn check_training(training: &Mat) -> Result<()> {
    if training.nrows() == 0 || training.ncols() == 0 {
        return Err(Error::InvalidArgument {
            what: "training set".into(),
            reason: format!(
                "need N ≥ 1 points of dimension d ≥ 1, got {}×{}",
                training.nrows(),
                training.ncols()
            ),
        });
    }
    linalg::ensure_finite_mat("training set", training)
}

/// The softmax average of eq. 3.3.3 as a [`Denoiser`] (with the stated logit scale, or the
/// planted one): an implementation of the empirical Bayes denoiser that shares no code with the
/// mixture engine.
#[derive(Debug, Clone)]
pub struct SoftmaxDenoiser {
    /// The training points, one per row.
    pub training: Mat,
    /// `2σ²` (eq. 3.3.3) or the planted `2σ`.
    pub scale: LogitScale,
}

impl SoftmaxDenoiser {
    /// Validates the training set (N ≥ 1, d ≥ 1, finite).
    pub fn new(training: Mat, scale: LogitScale) -> Result<Self> {
        check_training(&training)?;
        Ok(Self { training, scale })
    }
}

impl Denoiser for SoftmaxDenoiser {
    fn dim(&self) -> usize {
        self.training.ncols()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        check_input(self.dim(), y, sigma)?;
        Ok(softmax_average(&self.training, y, sigma, self.scale))
    }
}

/// The training set as the empirical law `(1/N)Σ δ_{x⁽ⁱ⁾}` of the mixture engine.
pub fn empirical_law(training: &Mat) -> Result<GaussianMixture> {
    let rows: Vec<Vec<f64>> = (0..training.nrows())
        .map(|i| linalg::row(training, i))
        .collect();
    empirical(&rows)
}

/// Eq. 3.3.3 against the Bayes posterior mean of the empirical target at y. Tolerance (derived):
/// `16(N + d)ε·(1 + Q)·max|x|`, Q = ‖y − x₍₁₎‖²/σ² the logits' scale (each weight carries the
/// relative error of its logit, `ε·Q`, and the averages add N terms). Planted: the same
/// residual with the logits divided by `2σ` instead of `2σ²`.
pub fn softmax_equals_bayes(training: &Mat, y: &[f64], sigma: f64) -> Result<Controlled> {
    ensure_sigma(sigma)?;
    let bayes = empirical_law(training)?.posterior_mean(y, sigma)?;
    let direct = softmax_denoiser(training, y, sigma)?;
    let planted = softmax_average(training, y, sigma, LogitScale::TwiceSigma);
    let scale = (0..training.nrows())
        .flat_map(|i| (0..training.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| training[(i, j)].abs())
        .fold(0.0, f64::max);
    let nearest = nearest_two_scan(training, y).0;
    let q = nearest * nearest / (sigma * sigma);
    let tolerance = 16.0 * (training.nrows() + training.ncols()) as f64 * EPS * (1.0 + q) * scale;
    Ok(Controlled {
        check: Check {
            residual: linalg::max_abs_diff(&bayes, &direct),
            tolerance,
        },
        planted: Check {
            residual: linalg::max_abs_diff(&bayes, &planted),
            tolerance,
        },
    })
}

/// The memorization ratio (eq. 3.3.4) of `samples` against `training` with the criterion of
/// eq. 3.3.5, `d₁/d₂ < 1/3` (nearest neighbours by [`crate::stats::nearest::nearest_two_batch`]);
/// also returns the largest ratio `d₁/d₂` seen.
pub fn mem_ratio(training: &Mat, samples: &Mat) -> Result<(f64, f64)> {
    let nearest = nearest_two_batch(training, samples)?;
    let memorized = nearest
        .iter()
        .filter(|p| p.ratio() < MEMORIZED_BELOW)
        .count();
    let worst = nearest.iter().map(NearestTwo::ratio).fold(0.0, f64::max);
    Ok((memorized as f64 / samples.nrows().max(1) as f64, worst))
}

/// `n` standard-normal rows of dimension d from Philox `(seed, 0)`: the initial noise of the
/// samplers here.
pub fn initial_noise(n: usize, d: usize, seed: u64) -> Mat {
    let mut rng = Rng::new(seed, 0);
    Mat::from_fn(n, d, |_, _| rng.normal())
}

/// The VP cosine schedule to `t_max = 0.999` with `steps` steps (book §3.2).
pub(crate) fn memorization_schedule(steps: usize) -> Result<Schedule> {
    Schedule::vp_cosine(0.999, steps)
}

/// DDIM (VP cosine to 0.999, `steps` steps) with `denoiser` from [`initial_noise`]`(n, d, seed)`.
pub fn ddim_samples(denoiser: &dyn Denoiser, steps: usize, n: usize, seed: u64) -> Result<Mat> {
    Ddim {
        schedule: memorization_schedule(steps)?,
    }
    .sample(denoiser, &initial_noise(n, denoiser.dim(), seed))
}

/// DDIM (VP cosine, L steps) with the empirical Bayes denoiser of `training` from `n`
/// standard-normal draws of Philox `(seed, 0)`: returns `(MemRatio, max d₁/d₂)`.
pub fn sampled_mem_ratio(training: &Mat, steps: usize, n: usize, seed: u64) -> Result<(f64, f64)> {
    let denoiser = Bayes::new(empirical_law(training)?);
    mem_ratio(training, &ddim_samples(&denoiser, steps, n, seed)?)
}

/// A training set of N points in d dimensions with N(0, I) entries, Philox `(seed, 1)`.
pub fn training_set(n: usize, d: usize, seed: u64) -> Mat {
    let mut rng = Rng::new(seed, 1);
    Mat::from_fn(n, d, |_, _| rng.normal())
}

/// `inner` above `sigma_stop` and the identity at and below it. In a DDIM step with `f(y) = y`,
/// `x_{ℓ−1} = k x_ℓ + (α_{ℓ−1} − kα_ℓ) x_ℓ/α_ℓ = (α_{ℓ−1}/α_ℓ) x_ℓ` for any k, so with
/// `sigma_stop = σ_m/α_m` DDIM returns `x_m/α_m`: its iterate at step m, at noise level
/// `s = σ_m/α_m` on the data scale — a sampler whose last step is not a denoiser call.
pub struct StopBelow<'a> {
    /// The denoiser used above the stop level.
    pub inner: &'a dyn Denoiser,
    /// The level at and below which the identity is returned.
    pub sigma_stop: f64,
}

impl Denoiser for StopBelow<'_> {
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn denoise(&self, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
        if sigma <= self.sigma_stop {
            check_input(self.dim(), y, sigma)?;
            Ok(y.to_vec())
        } else {
            self.inner.denoise(y, sigma)
        }
    }

    fn denoise_batch(&self, ys: &Mat, sigma: f64) -> Result<Mat> {
        if sigma <= self.sigma_stop {
            linalg::ensure_finite_mat("y", ys)?;
            ensure_sigma(sigma)?;
            Ok(ys.clone())
        } else {
            self.inner.denoise_batch(ys, sigma)
        }
    }
}

/// The iterate `x_m/α_m` of DDIM (VP cosine to 0.999, `steps` steps) with `denoiser` from
/// [`initial_noise`]`(n, d, seed)`, and its noise level `s = σ_m/α_m` (see [`StopBelow`]).
pub fn stopped_ddim(
    denoiser: &dyn Denoiser,
    steps: usize,
    stop_step: usize,
    n: usize,
    seed: u64,
) -> Result<(Mat, f64)> {
    let schedule = memorization_schedule(steps)?;
    if stop_step == 0 || stop_step >= steps {
        return Err(Error::InvalidArgument {
            what: "stop_step".into(),
            reason: format!("need 1 ≤ m < L = {steps}, got {stop_step}"),
        });
    }
    let s = schedule.denoiser_noise(stop_step);
    let stopped = StopBelow {
        inner: denoiser,
        sigma_stop: s,
    };
    let samples = Ddim { schedule }.sample(&stopped, &initial_noise(n, denoiser.dim(), seed))?;
    Ok((samples, s))
}

/// `n` direct draws `x⁽ᴵ⁾ + s·z` of the noisy training law `(1/N)Σ N(x⁽ⁱ⁾, s²I)` (I uniform,
/// z standard normal, Philox `(seed, 2)`): the independent prediction of the stopped DDIM.
pub(crate) fn noisy_law_draws(training: &Mat, s: f64, n: usize, seed: u64) -> Mat {
    let mut rng = Rng::new(seed, 2);
    let big_n = training.nrows();
    let mut out = Mat::zeros(n, training.ncols());
    for p in 0..n {
        let i = ((rng.uniform() * big_n as f64) as usize).min(big_n - 1);
        for j in 0..training.ncols() {
            out[(p, j)] = training[(i, j)] + s * rng.normal();
        }
    }
    out
}

/// The memorization-ratio profile of stopped DDIM against the noisy training law.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoppedProfile {
    /// The stop level `s = σ_m/α_m`.
    pub level: f64,
    /// MemRatio(s) of the stopped DDIM samples (eq. 3.3.4–3.3.5).
    pub ddim_mem_ratio: f64,
    /// MemRatio(s) of the direct draws of the noisy law.
    pub predicted_mem_ratio: f64,
    /// KS two-sample statistic between the two `d₁/d₂` samples (residual) and the DKW bound
    /// `ε_n(α/2) + ε_m(α/2)` (tolerance).
    pub check: Check,
}

/// The sizes of one stopped-DDIM comparison.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StoppedRun {
    /// L, the DDIM steps (VP cosine to 0.999).
    pub steps: usize,
    /// m, the step whose iterate is returned (1 ≤ m < L).
    pub stop_step: usize,
    /// Stopped DDIM samples.
    pub n: usize,
    /// Direct draws of the noisy law.
    pub n_direct: usize,
    /// Seed of the initial noise and of the direct draws.
    pub seed: u64,
    /// False-failure probability of the DKW bound.
    pub alpha: f64,
}

/// Stopped DDIM with `denoiser` against `n_direct` direct draws of the noisy law at the same
/// level: `sup_t |F_DDIM(t) − F_direct(t)|` of `d₁/d₂` (MemRatio(s) is F at 1/3) within the
/// two-sample DKW bound at false-failure probability `alpha` (derived, distribution-free; see
/// [`crate::stats::two_sample`]). The DDIM side uses `stats::nearest::nearest_two_batch`, the
/// direct side [`nearest_two_scan`]. The bound assumes DDIM's discretisation bias is below the KS
/// resolution (≈ 0.2 at n = 500): L = 100 steps.
pub fn stopped_ddim_profile(
    training: &Mat,
    denoiser: &dyn Denoiser,
    run: &StoppedRun,
) -> Result<StoppedProfile> {
    let StoppedRun {
        steps,
        stop_step,
        n,
        n_direct,
        seed,
        alpha,
    } = *run;
    let (samples, s) = stopped_ddim(denoiser, steps, stop_step, n, seed)?;
    let ddim_ratios: Vec<f64> = nearest_two_batch(training, &samples)?
        .iter()
        .map(NearestTwo::ratio)
        .collect();
    let direct = noisy_law_draws(training, s, n_direct, seed);
    let direct_ratios: Vec<f64> = (0..n_direct)
        .map(|p| {
            let (d1, d2) = nearest_two_scan(training, &linalg::row(&direct, p));
            d1 / d2
        })
        .collect();
    let memorized = |r: &[f64]| {
        r.iter().filter(|&&v| v < MEMORIZED_BELOW).count() as f64 / r.len().max(1) as f64
    };
    Ok(StoppedProfile {
        level: s,
        ddim_mem_ratio: memorized(&ddim_ratios),
        predicted_mem_ratio: memorized(&direct_ratios),
        check: Check {
            residual: ks_two_sample(&ddim_ratios, &direct_ratios)?,
            tolerance: two_sample_epsilon(n, n_direct, alpha)?,
        },
    })
}

/// [`stopped_ddim_profile`] for the eq. 3.3.3 denoiser of `training` (check) and for its planted
/// variant with σ for σ² in the logits (planted), from the same noise and the same direct draws.
pub fn stopped_ddim_matches_noisy_law(training: &Mat, run: &StoppedRun) -> Result<Controlled> {
    let profile = |scale| -> Result<Check> {
        let denoiser = SoftmaxDenoiser::new(training.clone(), scale)?;
        Ok(stopped_ddim_profile(training, &denoiser, run)?.check)
    };
    Ok(Controlled {
        check: profile(LogitScale::TwiceVariance)?,
        planted: profile(LogitScale::TwiceSigma)?,
    })
}

/// The full DDIM's samples are copies of training points chosen uniformly: residual
/// `max(χ²/χ²_{N−1}(1 − α), max_p (d₁/d₂)_p ÷ (1/3))`, tolerance 1, with
/// `χ² = Σ_i (c_i − n/N)²/(n/N)` over the counts `c_i` of samples whose nearest training point
/// is i. Both terms ≤ 1 ⇔ every sample is memorized (eq. 3.3.5) and the counts pass Pearson's
/// test of Multinomial(n, 1/N) at level α (derived from the asymptotic χ²_{N−1} law; needs
/// n/N ≥ 5).
pub fn copies_uniform_check(training: &Mat, samples: &Mat, alpha: f64) -> Result<Check> {
    let nearest = nearest_two_batch(training, samples)?;
    let big_n = training.nrows();
    let mut counts = vec![0usize; big_n];
    for p in &nearest {
        counts[p.first] += 1;
    }
    let expected = samples.nrows() as f64 / big_n as f64;
    let chi2: f64 = counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    let critical = ChiSquared::new((big_n - 1) as f64)
        .map_err(|e| Error::Numerical(format!("χ²: {e}")))?
        .inverse_cdf(1.0 - alpha);
    let worst = nearest.iter().map(NearestTwo::ratio).fold(0.0, f64::max);
    Ok(Check {
        residual: (chi2 / critical).max(worst / MEMORIZED_BELOW),
        tolerance: 1.0,
    })
}

/// [`copies_uniform_check`] on full DDIM (`steps` steps) with the eq. 3.3.3 denoiser (check) and
/// with its σ-for-σ² variant (planted), from the same noise.
pub fn ddim_copies_are_uniform(
    training: &Mat,
    steps: usize,
    n: usize,
    seed: u64,
    alpha: f64,
) -> Result<Controlled> {
    let run = |scale| -> Result<Check> {
        let denoiser = SoftmaxDenoiser::new(training.clone(), scale)?;
        copies_uniform_check(training, &ddim_samples(&denoiser, steps, n, seed)?, alpha)
    };
    Ok(Controlled {
        check: run(LogitScale::TwiceVariance)?,
        planted: run(LogitScale::TwiceSigma)?,
    })
}

/// Row 1: eq. 3.3.3 = the mixture engine's posterior mean.
pub const SOFTMAX_EQUALS_BAYES: Claim = Claim {
    theorem: THEOREM,
    statement:
        "eq.3.3.3 softmax average = Bayes posterior mean of the empirical law (N = 50, d = 8)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "memorization::softmax_equals_bayes: 16(N+d)ε(1+Q)max|x|, Q = d₁²/σ² \
                      (logit relative error εQ per weight, N-term averages)",
    planted_variant: "σ for σ² in the logits (−‖y−x‖²/2σ)",
    false_failure: FalseFailure::None,
};

/// Row 2: stopped DDIM follows the noisy training law (MemRatio(s) as predicted).
pub const STOPPED_DDIM_LAW: Claim = Claim {
    theorem: THEOREM,
    statement: "DDIM with eq.3.3.3 stopped at s = σ_m/α_m: d₁/d₂ (MemRatio(s)) distributed as \
                for (1/N)Σ N(x_i, s²I), 5 levels (3 at quick) (N = 50, d = 8, L = 100)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "two-sample DKW–Massart ε_n(α/2F)+ε_m(α/2F), α = 1e-6 over the F levels \
                      (stats::two_sample); n = 500 DDIM and 2000 direct draws (×4 at thorough)",
    planted_variant: "σ for σ² in the logits of the denoiser DDIM runs with",
    false_failure: FalseFailure::PerRow(1e-6),
};

/// Row 3: the full DDIM's copies land on training points uniformly.
pub const COPIES_UNIFORM: Claim = Claim {
    theorem: THEOREM,
    statement: "full DDIM with eq.3.3.3: every sample memorized (d₁/d₂ < 1/3) and the copied \
                points uniform over the training set (N = 50, d = 8, n = 1000 (4000 at \
                thorough), L = 100)",
    tolerance_kind: ToleranceKind::Derived,
    tolerance_basis: "Pearson χ² ≤ χ²_{N−1}(1−α), α = 1e-6 (asymptotic law, n/N ≥ 20); \
                      the 1/3 threshold is eq. 3.3.5",
    planted_variant: "σ for σ² in the logits of the denoiser DDIM runs with",
    false_failure: FalseFailure::PerRow(1e-6),
};

/// The stop steps of the stopped-DDIM row (L = 100): levels s = tan(0.999·πm/200) ≈ 0.094,
/// 0.19, 0.29, 0.41, 1.0, where MemRatio(s) falls from ≈ 1 to ≈ 0.
pub const STOP_STEPS: [usize; 5] = [6, 12, 18, 25, 50];

/// The stopped-DDIM run of the verify row at stop step m: L = 100, 500 DDIM samples, 2000 direct
/// draws, seed 3, α = 10⁻⁶ shared by the [`STOP_STEPS`] levels.
pub fn stopped_run(stop_step: usize) -> StoppedRun {
    StoppedRun {
        steps: 100,
        stop_step,
        n: 500,
        n_direct: 2000,
        seed: 3,
        alpha: 1e-6 / STOP_STEPS.len() as f64,
    }
}

/// The `verify` rows of `memorization`.
///
/// CPU-only: the GPU argument (the signature of [`super::Theorem::verdicts`]) is not used.
pub(crate) fn default_verdicts(_gpu: Result<&crate::gpu::Gpu>, depth: Depth) -> Vec<Verdict> {
    vec![
        Verdict::collect(&SOFTMAX_EQUALS_BAYES, CPU_BACKEND, depth, || {
            let training = training_set(50, 8, 1);
            let mut rng = Rng::new(2, 0);
            let mut out = Vec::new();
            // 8 query points per σ (2 at quick, 32 at thorough)
            let points = depth.samples(8);
            for &sigma in &[0.05, 0.3, 1.0, 5.0] {
                for _ in 0..points {
                    let y: Vec<f64> = rng.normals(8).iter().map(|v| 1.5 * v).collect();
                    out.push(softmax_equals_bayes(&training, &y, sigma)?);
                }
            }
            Ok(out)
        }),
        Verdict::collect(&STOPPED_DDIM_LAW, CPU_BACKEND, depth, || {
            let training = training_set(50, 8, 1);
            // every level (6, 18, 50 at quick, α re-split over them); at thorough four times
            // the draws (quick keeps the default draws: the DKW band at n/4 is twice as wide)
            let levels = depth.thin(2, STOP_STEPS);
            let (n, n_direct) = (500.max(depth.samples(500)), 2000.max(depth.samples(2000)));
            let alpha = 1e-6 / levels.len() as f64;
            levels
                .iter()
                .map(|&m| {
                    let run = StoppedRun {
                        n,
                        n_direct,
                        alpha,
                        ..stopped_run(m)
                    };
                    stopped_ddim_matches_noisy_law(&training, &run)
                })
                .collect()
        }),
        Verdict::collect(&COPIES_UNIFORM, CPU_BACKEND, depth, || {
            Ok(vec![ddim_copies_are_uniform(
                &training_set(50, 8, 1),
                100,
                1000.max(depth.samples(1000)),
                3,
                1e-6,
            )?])
        }),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eq. 3.3.3 row's tolerance is the documented `16(N + d)ε(1 + Q)·max|x|` with
    /// `Q = d₁²/σ²`: three 2-D training points, max|x| = 3, y at distance 0.5 from the nearest,
    /// σ = 0.2, so Q = 6.25.
    #[test]
    fn softmax_tolerance_is_the_documented_bound() {
        let training = Mat::from_fn(3, 2, |i, j| [[0.0, 0.0], [3.0, 1.0], [-1.0, 2.0]][i][j]);
        let row = softmax_equals_bayes(&training, &[0.3, 0.4], 0.2).unwrap();
        let expected = 16.0 * 5.0 * EPS * (1.0 + 6.25) * 3.0;
        assert!(
            (row.check.tolerance - expected).abs() <= 1e-12 * expected,
            "{} vs {expected}",
            row.check.tolerance
        );
    }
}
