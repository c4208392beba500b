//! Non-linear f on mixtures: paired Monte Carlo of both sides of SURE on the GPU.

use super::threshold::{PLANTED_FACTOR, STEIN_FACTOR};
use crate::denoisers::divergence::{rademacher_probes, Estimate};
use crate::denoisers::{Bayes, Mlp, PowerMap, SoftThreshold};
use crate::error::{ensure_sigma, Error, Result};
use crate::gpu::denoiser_jvp::{denoiser_jvp, denoiser_jvp_reference, JvpDenoiser};
use crate::gpu::Gpu;
use crate::linalg::{self, Mat, EPS};
use crate::rng::{PhiloxStream, Rng};
use crate::stats::{mean_and_std_error, two_sided_z};
use crate::targets::{GaussianMixture, Target};
use crate::theorems::{Check, Controlled};

/// Monte Carlo estimates of both sides of SURE and of their paired difference.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SureMonteCarlo {
    /// `E‖x − f(y)‖²`.
    pub mse: Estimate,
    /// `E[‖y − f(y)‖² + 2σ²zᵀ∇f(y)z − σ²d]` (Hutchinson probe z per sample).
    pub sure: Estimate,
    /// The per-sample difference `D = mse_i − sure_i`, with the bound on its f32 bias.
    pub difference: Estimate,
    /// The planted variant's difference `D' = mse_i − (‖y − f‖² + σ²zᵀ∇f z − σ²d)` (the factor
    /// 2 dropped), with the same bias bound.
    pub planted_difference: Estimate,
}

impl SureMonteCarlo {
    /// [`monte_carlo_check`] of the difference and of the planted difference at `alpha`.
    pub fn controlled(&self, alpha: f64) -> Controlled {
        Controlled {
            check: monte_carlo_check(&self.difference, alpha),
            planted: monte_carlo_check(&self.planted_difference, alpha),
        }
    }
}

/// Paired Monte Carlo of SURE on the GPU: `n` draws x ~ `target` (stream `(seed, 0)`), noise
/// g (stream `(seed, 1)`) and one Rademacher probe z per sample (stream `(seed, 2)`); the GPU
/// evaluates `f(y)` and `∇f(y)z`. The f32 bias of each `D_i` is at most
/// `2Σ_j|Δf_j||x_j − y_j| + 2σ²Σ_j|Δ(Jz)_j|` (D depends on f only through
/// `−2⟨f, x − y⟩ − 2σ²zᵀJz`), with `Δ` the kernel's per-element bounds from its f64 reference;
/// `difference.bias_bound` is their mean plus the host's f64 rounding `8dε·mean(‖x‖² + ‖y‖² +
/// ‖f‖² + σ²|zᵀJz| + σ²d)`.
pub fn sure_monte_carlo(
    gpu: &Gpu,
    den: &JvpDenoiser,
    target: &GaussianMixture,
    sigma: f64,
    n: usize,
    seed: u64,
) -> Result<SureMonteCarlo> {
    ensure_sigma(sigma)?;
    let d = den.dim();
    if target.dim() != d {
        return Err(Error::DimensionMismatch {
            what: "target dimension".into(),
            expected: d,
            got: target.dim(),
        });
    }
    if n < 2 {
        return Err(Error::InvalidArgument {
            what: "n".into(),
            reason: format!("a standard error needs at least 2 samples, got {n}"),
        });
    }
    let x = target.sample(&mut Rng::new(seed, 0), n);
    let mut noise_rng = Rng::new(seed, 1);
    let y = Mat::from_fn(n, d, |i, j| x[(i, j)] + sigma * noise_rng.normal());
    let probes = rademacher_probes(PhiloxStream::new(seed, 2), n, d);
    let gpu_batch = denoiser_jvp(gpu, den, &y, &probes, sigma)?;
    let bounds = denoiser_jvp_reference(den, &y, &probes, sigma)?;
    let (mut mse, mut sure, mut diff, mut planted_diff, mut bias) =
        (vec![], vec![], vec![], vec![], 0.0);
    for i in 0..n {
        let row = i * d..(i + 1) * d;
        let terms = PairedSample {
            clean: &linalg::row(&x, i),
            noisy: &linalg::row(&y, i),
            probe: &linalg::row(&probes, i),
            value: &gpu_batch.values[row.clone()],
            jvp: &gpu_batch.jvp[row.clone()],
            value_bound: &bounds.value_bound[row.clone()],
            jvp_bound: &bounds.jvp_bound[row],
        }
        .terms(sigma);
        mse.push(terms.loss);
        sure.push(terms.risk);
        diff.push(terms.loss - terms.risk);
        planted_diff.push(terms.loss - terms.planted_risk);
        bias += terms.bias_bound;
    }
    let estimate = |v: &[f64], bias_bound: f64| {
        let (mean, std_error) = mean_and_std_error(v);
        Estimate {
            mean,
            std_error,
            bias_bound,
            samples: n,
        }
    };
    Ok(SureMonteCarlo {
        mse: estimate(&mse, 0.0),
        sure: estimate(&sure, 0.0),
        difference: estimate(&diff, bias / n as f64),
        planted_difference: estimate(&planted_diff, bias / n as f64),
    })
}

/// One sample of [`sure_monte_carlo`]: the clean x, noisy y and probe z rows, the GPU's `f(y)`
/// and `∇f(y)z`, and the kernel's per-element bounds `|Δf|`, `|Δ(Jz)|` from its f64 reference.
struct PairedSample<'a> {
    clean: &'a [f64],
    noisy: &'a [f64],
    probe: &'a [f64],
    value: &'a [f64],
    jvp: &'a [f64],
    value_bound: &'a [f64],
    jvp_bound: &'a [f64],
}

/// The per-sample sums of [`PairedSample::terms`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct SampleTerms {
    /// `‖x − f‖²`.
    loss: f64,
    /// `‖y − f‖² + 2σ²zᵀJz − σ²d`.
    risk: f64,
    /// `‖y − f‖² + σ²zᵀJz − σ²d` (the factor 2 dropped).
    planted_risk: f64,
    /// `2Σ_j|Δf_j||x_j − y_j| + 2σ²Σ_j|Δ(Jz)_j|·|z_j| + 8dε(‖x‖² + ‖y‖² + ‖f‖² + σ²|zᵀJz| + σ²d)`.
    bias_bound: f64,
}

impl PairedSample<'_> {
    /// The sample's loss, SURE, planted SURE and the bound on the bias of `loss − risk`.
    fn terms(&self, sigma: f64) -> SampleTerms {
        let s2 = sigma * sigma;
        let d = self.clean.len();
        let (mut loss, mut fit, mut quad, mut f32_bias, mut magnitude) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for j in 0..d {
            let (xj, yj, zj) = (self.clean[j], self.noisy[j], self.probe[j]);
            let (fj, jzj) = (self.value[j], self.jvp[j]);
            loss += (xj - fj).powi(2);
            fit += (yj - fj).powi(2);
            quad += zj * jzj;
            f32_bias += 2.0 * self.value_bound[j] * (xj - yj).abs()
                + 2.0 * s2 * self.jvp_bound[j] * zj.abs();
            magnitude += xj * xj + yj * yj + fj * fj;
        }
        let host_rounding = 8.0 * d as f64 * EPS * (magnitude + s2 * quad.abs() + s2 * d as f64);
        SampleTerms {
            loss,
            risk: fit + STEIN_FACTOR * s2 * quad - s2 * d as f64,
            planted_risk: fit + PLANTED_FACTOR * s2 * quad - s2 * d as f64,
            bias_bound: f32_bias + host_rounding,
        }
    }
}

/// The Monte Carlo check at false-failure probability `alpha`: residual
/// `max(|mean D| − bias bound, 0)/SE`, tolerance `z(alpha)` (two-sided normal quantile; the
/// CLT applies since D has finite variance for the Gaussian-tailed targets used here).
pub fn monte_carlo_check(difference: &Estimate, alpha: f64) -> Check {
    Check {
        residual: (difference.mean.abs() - difference.bias_bound).max(0.0) / difference.std_error,
        tolerance: two_sided_z(alpha),
    }
}

/// The non-linear denoisers of the default Monte Carlo cases for a target at σ: its Bayes
/// denoiser, soft thresholding at τ = σ, a random tanh MLP (h = 32), and a random cubic power
/// map (W_q entries ~ N(0, 0.3²/(d·q!))).
pub fn default_denoisers(
    target: &GaussianMixture,
    sigma: f64,
    rng: &mut Rng,
) -> Result<(Bayes<GaussianMixture>, SoftThreshold, Mlp, PowerMap)> {
    let d = target.dim();
    let bayes = Bayes::new(target.clone());
    let soft = SoftThreshold::new(d, sigma)?;
    let mlp = Mlp::random(rng, d, 32)?;
    let mut weights = Vec::new();
    let mut factorial = 1.0;
    for q in 1..=3 {
        factorial *= q as f64;
        let s = 0.3 / (d as f64 * factorial).sqrt();
        weights.push(Mat::from_fn(d, d, |_, _| s * rng.normal()));
    }
    let bias = (0..d).map(|_| 0.1 * rng.normal()).collect();
    Ok((bayes, soft, mlp, PowerMap::new(bias, weights)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Monte Carlo sample's sums, by hand for d = 2, σ = 0.8: x = (1, −2), y = (1.5, −1),
    /// z = (1, −1), f = (3, 0.5), Jz = (0.5, −0.75) give ‖x − f‖² = 10.25, ‖y − f‖² = 4.5,
    /// zᵀJz = 1.25, so SURE = 4.5 + 2·0.64·1.25 − 0.64·2 = 4.82 and the planted 4.02; with zero
    /// kernel bounds the bias bound is the host rounding 8·2·ε·(17.5 + 0.64·1.25 + 0.64·2), and
    /// the kernel bounds add 2·(1e-7·0.5 + 2e-7·1) + 2·0.64·(3e-7 + 1e-7).
    #[test]
    fn monte_carlo_sample_terms_by_hand() {
        let (x, y, z) = ([1.0, -2.0], [1.5, -1.0], [1.0, -1.0]);
        let (f, jz) = ([3.0, 0.5], [0.5, -0.75]);
        let sample = |value_bound: &'static [f64], jvp_bound: &'static [f64]| {
            PairedSample {
                clean: &x,
                noisy: &y,
                probe: &z,
                value: &f,
                jvp: &jz,
                value_bound,
                jvp_bound,
            }
            .terms(0.8)
        };
        let exact = sample(&[0.0, 0.0], &[0.0, 0.0]);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-13 * b.abs();
        assert!(close(exact.loss, 10.25), "{exact:?}");
        assert!(close(exact.risk, 4.82), "{exact:?}");
        assert!(close(exact.planted_risk, 4.02), "{exact:?}");
        let host = 16.0 * EPS * (17.5 + 0.64 * 1.25 + 0.64 * 2.0);
        assert!(close(exact.bias_bound, host), "{exact:?} vs {host}");
        let bounded = sample(&[1e-7, 2e-7], &[3e-7, 1e-7]);
        let kernel = 2.0 * (1e-7 * 0.5 + 2e-7 * 1.0) + 2.0 * 0.64 * (3e-7 + 1e-7);
        assert!(close(bounded.bias_bound, kernel + host), "{bounded:?}");
    }
}
