//! The divergence `tr ∇f(y)` of a denoiser: exact ([`Denoiser::divergence`], d Jacobian-vector
//! products or the architecture's own Jacobian) for small d, and Hutchinson's estimator
//! `tr A = E_z[zᵀAz]` with Rademacher probes `z ∈ {±1}ᵈ` (Hutchinson 1990) for large d, its
//! probe products `zᵀ∇f(y)z` computed on the GPU by `gpu/denoiser_jvp.wgsl`.
//!
//! For Rademacher z, `Var(zᵀAz) = 2Σ_{i≠j} ((A_ij + A_ji)/2)²` — the estimator is exact for
//! diagonal A and its variance is carried into every tolerance through the sample standard
//! error of the probe products.

use crate::error::{Error, Result};
use crate::gpu::denoiser_jvp::{denoiser_jvp, JvpDenoiser};
use crate::gpu::Gpu;
use crate::linalg::{self, Mat};
use crate::rng::PhiloxStream;
use crate::stats::mean_and_std_error;

#[cfg(doc)]
use super::Denoiser;

/// `n` Rademacher probe vectors in ℝᵈ (rows of the result) from `stream`: probe p, coordinate i
/// is `+1` or `−1` by bit `i mod 32` of word `(i / 32) mod 4` of block `p·⌈d/128⌉ + i/128`.
pub fn rademacher_probes(stream: PhiloxStream, n: usize, d: usize) -> Mat {
    let blocks_per_probe = d.div_ceil(128).max(1) as u64;
    Mat::from_fn(n, d, |p, i| {
        let block = stream.block(p as u64 * blocks_per_probe + (i / 128) as u64);
        let word = block[(i / 32) % 4];
        if (word >> (i % 32)) & 1 == 1 {
            1.0
        } else {
            -1.0
        }
    })
}

/// A Monte Carlo estimate with its standard error and a bound on its deterministic (f32) bias.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The sample mean.
    pub mean: f64,
    /// Its standard error `s/√n`.
    pub std_error: f64,
    /// Bound on the bias from f32 arithmetic (0 when not bounded, see the producer's docs).
    pub bias_bound: f64,
    /// Number of samples.
    pub samples: usize,
}

/// Hutchinson's estimate of `tr ∇f(y)` from `n_probes` Rademacher probes of `stream`, the
/// products `zᵀ∇f(y)z` computed on the GPU. `bias_bound` is 0: the f32 error of the probe
/// products is bounded by the parity test of the kernel, not here (use
/// [`hutchinson_divergence_bias`] for the bound at a point).
pub fn hutchinson_divergence(
    gpu: &Gpu,
    den: &JvpDenoiser,
    y: &[f64],
    sigma: f64,
    n_probes: usize,
    stream: PhiloxStream,
) -> Result<Estimate> {
    let d = den.dim();
    crate::denoisers::check_input(d, y, sigma)?;
    if n_probes < 2 {
        return Err(Error::InvalidArgument {
            what: "n_probes".into(),
            reason: format!("a standard error needs at least 2 probes, got {n_probes}"),
        });
    }
    let probes = rademacher_probes(stream, n_probes, d);
    let points = Mat::from_fn(n_probes, d, |_, j| y[j]);
    let batch = denoiser_jvp(gpu, den, &points, &probes, sigma)?;
    let products: Vec<f64> = (0..n_probes)
        .map(|p| linalg::dot(&linalg::row(&probes, p), &batch.jvp[p * d..(p + 1) * d]))
        .collect();
    let (mean, std_error) = mean_and_std_error(&products);
    Ok(Estimate {
        mean,
        std_error,
        bias_bound: 0.0,
        samples: n_probes,
    })
}

/// Bound on `|zᵀ(Jz)_gpu − zᵀJz|` over Rademacher probes at y: `Σ_i bound_i` from the kernel's
/// f32 error analysis ([`JvpDenoiser::reference`]), maximised over the given probes.
pub fn hutchinson_divergence_bias(
    den: &JvpDenoiser,
    y: &[f64],
    sigma: f64,
    probes: &Mat,
) -> Result<f64> {
    let mut worst: f64 = 0.0;
    for p in 0..probes.nrows() {
        let point = den.reference(y, &linalg::row(probes, p), sigma)?;
        worst = worst.max(point.jvp_bound.iter().sum());
    }
    Ok(worst)
}
