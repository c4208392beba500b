//! `memorization` — the optimal denoiser of a finite training set reproduces the training set
//! (book §3.3, eq. 3.3.3–3.3.5): the Bayes denoiser of the empirical law
//! `(1/N)Σ δ_{x⁽ⁱ⁾}` is the softmax-weighted average
//! `x̄*(y) = Σ_i softmax_i(−‖y − x⁽ⁱ⁾‖²/2σ²) x⁽ⁱ⁾` (eq. 3.3.3), and DDIM with it ends on (copies of)
//! training points: the memorization ratio (eq. 3.3.4) with the criterion
//! `‖x̂ − x₍₁₎‖/‖x̂ − x₍₂₎‖ < 1/3` (eq. 3.3.5) tends to 1 as the final noise level goes to 0.
//!
//! Routes: eq. 3.3.3 written out directly against the mixture engine's Bayes posterior mean
//! (Woodbury with rank-0 components); the generated samples against the training set by nearest
//! neighbours. This is the small-scale, CPU statement; the CelebA-scale runs are experiments.

use super::{Check, Verdict, CPU_BACKEND};
use crate::denoisers::Bayes;
use crate::diffusion::{Ddim, Sampler, Schedule};
use crate::error::{ensure_sigma, Result};
use crate::linalg::{self, Mat, EPS};
use crate::rng::Rng;
use crate::stats::nearest::{nearest_two_batch, NearestTwo, MEMORIZED_BELOW};
use crate::targets::{empirical::empirical, ClosedForm};

/// The theorem id.
pub const THEOREM: &str = "memorization";

/// Eq. 3.3.3 written out: `Σ_i w_i x⁽ⁱ⁾` with `w = softmax(−‖y − x⁽ⁱ⁾‖²/2σ²)` (log-sum-exp stable).
pub fn softmax_denoiser(training: &Mat, y: &[f64], sigma: f64) -> Result<Vec<f64>> {
    ensure_sigma(sigma)?;
    crate::error::ensure_len("y", y, training.ncols())?;
    crate::error::ensure_finite("y", y)?;
    let logits: Vec<f64> = (0..training.nrows())
        .map(|i| {
            -(0..y.len())
                .map(|j| (y[j] - training[(i, j)]).powi(2))
                .sum::<f64>()
                / (2.0 * sigma * sigma)
        })
        .collect();
    let w = linalg::softmax(&logits);
    Ok((0..y.len())
        .map(|j| (0..training.nrows()).map(|i| w[i] * training[(i, j)]).sum())
        .collect())
}

/// Eq. 3.3.3 against the Bayes posterior mean of the empirical target at y. Tolerance:
/// `16(N + d)ε·(1 + Q)·max|x|`, Q = ‖y − x₍₁₎‖²/σ² the logits' scale (each weight carries the
/// relative error of its logit, `ε·Q`, and the averages add N terms).
pub fn softmax_equals_bayes(training: &Mat, y: &[f64], sigma: f64) -> Result<Check> {
    let rows: Vec<Vec<f64>> = (0..training.nrows())
        .map(|i| linalg::row(training, i))
        .collect();
    let target = empirical(&rows)?;
    let bayes = target.posterior_mean(y, sigma)?;
    let direct = softmax_denoiser(training, y, sigma)?;
    let scale = (0..training.nrows())
        .flat_map(|i| (0..training.ncols()).map(move |j| (i, j)))
        .map(|(i, j)| training[(i, j)].abs())
        .fold(0.0, f64::max);
    let nearest = nearest_two(training, y).0;
    let q = nearest * nearest / (sigma * sigma);
    Ok(Check {
        residual: linalg::max_abs_diff(&bayes, &direct),
        tolerance: 16.0 * (training.nrows() + training.ncols()) as f64 * EPS * (1.0 + q) * scale,
    })
}

/// Distances from `x` to its nearest and second-nearest training points.
pub fn nearest_two(training: &Mat, x: &[f64]) -> (f64, f64) {
    let (mut d1, mut d2) = (f64::INFINITY, f64::INFINITY);
    for i in 0..training.nrows() {
        let d = (0..x.len())
            .map(|j| (x[j] - training[(i, j)]).powi(2))
            .sum::<f64>()
            .sqrt();
        if d < d1 {
            d2 = d1;
            d1 = d;
        } else if d < d2 {
            d2 = d;
        }
    }
    (d1, d2)
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

/// DDIM (VP cosine to `t_max`, L steps) with the empirical Bayes denoiser of `training` from
/// `n` standard-normal draws of Philox `(seed, 0)`: returns `(MemRatio, max d₁/d₂)`.
pub fn sampled_mem_ratio(training: &Mat, steps: usize, n: usize, seed: u64) -> Result<(f64, f64)> {
    let rows: Vec<Vec<f64>> = (0..training.nrows())
        .map(|i| linalg::row(training, i))
        .collect();
    let denoiser = Bayes::new(empirical(&rows)?);
    let mut rng = Rng::new(seed, 0);
    let noise = Mat::from_fn(n, training.ncols(), |_, _| rng.normal());
    let samples = Ddim {
        schedule: Schedule::vp_cosine(0.999, steps)?,
    }
    .sample(&denoiser, &noise)?;
    mem_ratio(training, &samples)
}

/// A training set of N points in d dimensions with N(0, I) entries, Philox `(seed, 1)`.
pub fn training_set(n: usize, d: usize, seed: u64) -> Mat {
    let mut rng = Rng::new(seed, 1);
    Mat::from_fn(n, d, |_, _| rng.normal())
}

/// The `verify` rows of `memorization`.
pub fn default_verdicts() -> Vec<Verdict> {
    vec![
        Verdict::uncontrolled(
            THEOREM,
            "eq.3.3.3 softmax average = Bayes posterior mean of the empirical law",
            CPU_BACKEND,
            || {
                let training = training_set(50, 8, 1);
                let mut rng = Rng::new(2, 0);
                let mut out = Vec::new();
                for &sigma in &[0.05, 0.3, 1.0, 5.0] {
                    for _ in 0..8 {
                        let y: Vec<f64> = rng.normals(8).iter().map(|v| 1.5 * v).collect();
                        out.push(softmax_equals_bayes(&training, &y, sigma)?);
                    }
                }
                Ok(out)
            },
        ),
        Verdict::uncontrolled(
            THEOREM,
            "DDIM with the empirical denoiser memorizes every sample: max d₁/d₂ < 1/3 (N = 50, d = 8)",
            CPU_BACKEND,
            || {
                // max d₁/d₂ < 1/3 over the samples ⇔ MemRatio = 1 (eq. 3.3.5)
                let (_, worst) = sampled_mem_ratio(&training_set(50, 8, 1), 100, 256, 3)?;
                Ok(vec![Check {
                    residual: worst,
                    tolerance: 1.0 / 3.0,
                }])
            },
        ),
    ]
}
